package agestream

import (
	"bytes"
	"io"
	"testing"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/tapeformat/internal/testgen"
)

// The benchmarks measure what encryption adds per byte of compressed data
// (a segment member's units, which look random): 8 MiB per op, one core.
// On a shared machine quote cpu-MB/s, and medians of separate runs:
//
//	go test -c -o /tmp/ag.test ./tapeformat/agestream
//	for i in $(seq 7); do /tmp/ag.test -test.run '^$' -test.bench . -test.benchtime 20x -test.cpu 1; done

const benchSize = 8 << 20

// cpuMBs adds a "cpu-MB/s" metric: bytes per second of this process's
// CPU time (user+system) rather than of wall time, which other jobs on a
// shared machine stretch. Call it before b.Loop.
func cpuMBs(b *testing.B, bytesPerOp int64) {
	cpu := func() int64 {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return ru.Utime.Nano() + ru.Stime.Nano()
	}
	start := cpu()
	b.Cleanup(func() {
		if ns := cpu() - start; ns > 0 && b.N > 0 {
			b.ReportMetric(float64(bytesPerOp)*float64(b.N)/(float64(ns)/1e9)/1e6, "cpu-MB/s")
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	k := x25519Key(b)
	plain := testPlain(benchSize, 1)
	var buf bytes.Buffer
	buf.Grow(benchSize + benchSize/ChunkSize*TagSize + 4096)
	b.SetBytes(benchSize)
	cpuMBs(b, benchSize)
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
	cpuMBs(b, benchSize)
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
	cpuMBs(b, benchSize)
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
	cpuMBs(b, benchSize)
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

// BenchmarkSegment puts the cost in proportion: one 8 MiB stretch of
// mail-like data (tapeformat's test generator, zstd ratio about 2) through
// the codec at the default 1 MiB frame, with and without encrypting the
// units (backup) or decrypting them (restore). MB/s are of raw data, so
// the ratio of two lines is the relative cost of encryption for the codec
// stage alone (a whole backup also reads, hashes and writes).
func BenchmarkSegment(b *testing.B) {
	const frame = 1 << 20
	data := testgen.MailData(benchSize, 9)
	k := x25519Key(b)
	c, err := codec.ParseCodec("zstd")
	if err != nil {
		b.Fatal(err)
	}
	enc, err := codec.NewEncoder(c, frame)
	if err != nil {
		b.Fatal(err)
	}
	encode := func(units []byte) []byte {
		for off := 0; off < len(data); off += frame {
			units = enc.EncodeFrame(units, codec.ChunkMeta{Offset: int64(off)}, data[off:min(off+frame, len(data))])
		}
		return units
	}
	units := encode(nil)
	member, rec := seal(b, units, k)
	b.Logf("zstd ratio %.2f", float64(len(data))/float64(len(units)))
	var sealed bytes.Buffer
	for _, mode := range []string{"backup", "backup+age", "restore", "restore+age"} {
		b.Run(mode, func(b *testing.B) {
			dec := codec.NewDecoder(frame)
			defer dec.Close()
			out := make([]byte, 0, frame)
			plain := make([]byte, 0, len(units))
			b.SetBytes(int64(len(data)))
			cpuMBs(b, int64(len(data)))
			for b.Loop() {
				switch mode {
				case "backup":
					units = encode(units[:0])
				case "backup+age":
					units = encode(units[:0])
					sealed.Reset()
					w, _ := NewWriter(&sealed, recipientsOf(k))
					w.Write(units)
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				case "restore", "restore+age":
					u := units
					if mode == "restore+age" {
						s, err := Open(member, k.id, &rec)
						if err != nil {
							b.Fatal(err)
						}
						var losses []Loss
						if u, losses = s.Decrypt(plain[:0]); len(losses) != 0 {
							b.Fatal(losses)
						}
					}
					for len(u) > 0 {
						h, err := codec.ParseHeader(u)
						if err != nil {
							b.Fatal(err)
						}
						if out, _, err = dec.DecodeFrame(out[:0], u[:h.UnitLen]); err != nil {
							b.Fatal(err)
						}
						u = u[h.UnitLen:]
					}
				}
			}
		})
	}
}
