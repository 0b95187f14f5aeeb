package agestream

import (
	"bytes"
	"io"
	"testing"

	"filippo.io/age"
)

// The benchmarks measure what encryption adds per byte of compressed data
// (a segment member's units, which look random): 8 MiB per op, one core.
//
//	go test ./tapeformat/agestream -run '^$' -bench . -count 5 -cpu 1

const benchSize = 8 << 20

func BenchmarkEncrypt(b *testing.B) {
	k := x25519Key(b)
	plain := testPlain(benchSize, 1)
	var buf bytes.Buffer
	buf.Grow(benchSize + benchSize/ChunkSize*TagSize + 4096)
	b.SetBytes(benchSize)
	for b.Loop() {
		buf.Reset()
		w, err := NewWriter(&buf, recipientsOf(k))
		if err != nil {
			b.Fatal(err)
		}
		w.Write(plain)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt opens a member (X25519) and decrypts it chunk by chunk.
func BenchmarkDecrypt(b *testing.B) {
	k := x25519Key(b)
	member, rec := seal(b, testPlain(benchSize, 2), k)
	dst := make([]byte, 0, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		s, err := Open(member, k.id, &rec)
		if err != nil {
			b.Fatal(err)
		}
		if _, losses := s.Decrypt(dst[:0]); len(losses) != 0 {
			b.Fatal(losses)
		}
	}
}

// BenchmarkAgeDecrypt is age's own streaming reader on the same member,
// for reference.
func BenchmarkAgeDecrypt(b *testing.B) {
	k := x25519Key(b)
	member, _ := seal(b, testPlain(benchSize, 2), k)
	b.SetBytes(benchSize)
	for b.Loop() {
		r, err := age.Decrypt(bytes.NewReader(member), k.id[0].Age())
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkVerify is `verify` without the identity: header syntax and the
// CRC-32C of every sealed chunk.
func BenchmarkVerify(b *testing.B) {
	k := x25519Key(b)
	member, rec := seal(b, testPlain(benchSize, 3), k)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, losses, err := Verify(member, &rec); err != nil || len(losses) != 0 {
			b.Fatal(losses, err)
		}
	}
}

// BenchmarkOpen is the fixed cost per member: parsing the header and
// unwrapping the file key, per identity type.
func BenchmarkOpen(b *testing.B) {
	for _, k := range []*keyPair{x25519Key(b), ed25519Key(b), rsaKey(b)} {
		member, rec := seal(b, []byte("x"), k)
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(member, k.id, &rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
