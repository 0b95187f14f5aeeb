package agestream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"filippo.io/age"
)

var roundTripSizes = []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3 * ChunkSize, 5<<20 + 123}

// TestRoundTrip: every recipient set and plaintext size round-trips
// through Writer and Stream, each identity decrypting alone; the file is a
// standard age file (age.Decrypt reads it), its size is SealedSize, and
// the Writer's record is what ComputeRecord finds and what Verify accepts.
func TestRoundTrip(t *testing.T) {
	x, x2, ed, rs := x25519Key(t), x25519Key(t), ed25519Key(t), rsaKey(t)
	sets := [][]*keyPair{{x}, {ed}, {rs}, {x, ed}, {x2, rs}}
	for _, keys := range sets {
		var names []string
		for _, k := range keys {
			names = append(names, k.name)
		}
		for _, size := range roundTripSizes {
			t.Run(fmt.Sprintf("%v/%d", names, size), func(t *testing.T) {
				plain := testPlain(size, uint64(size))
				member, rec := seal(t, plain, keys...)
				h, err := ParseHeader(member)
				if err != nil {
					t.Fatal(err)
				}
				if len(h.Stanzas) != len(keys) {
					t.Fatalf("%d stanzas for %d recipients", len(h.Stanzas), len(keys))
				}
				if got := SealedSize(h.Len, int64(size)); got != int64(len(member)) {
					t.Fatalf("SealedSize %d, file %d", got, len(member))
				}
				if got, err := PlaintextSize(h.Len, int64(len(member))); err != nil || got != int64(size) {
					t.Fatalf("PlaintextSize %d, %v", got, err)
				}
				computed, err := ComputeRecord(member)
				if err != nil {
					t.Fatal(err)
				}
				if !recordsEqual(rec, computed) || rec.Plain != int64(size) || rec.Size != int64(len(member)) {
					t.Fatalf("writer record %+v, computed %+v", rec, computed)
				}
				if _, losses, err := Verify(member, &rec); err != nil || len(losses) != 0 {
					t.Fatalf("Verify: %v %v", losses, err)
				}
				for _, k := range keys {
					for _, r := range []*Record{&rec, nil} {
						s, err := Open(member, k.id, r)
						if err != nil {
							t.Fatalf("%s alone: %v", k.name, err)
						}
						got, losses := s.Decrypt(nil)
						if len(losses) != 0 || !bytes.Equal(got, plain) {
							t.Fatalf("%s alone: %d bytes, losses %v", k.name, len(got), losses)
						}
					}
					ageIDs := []age.Identity{k.id[0].Age()}
					r, err := age.Decrypt(bytes.NewReader(member), ageIDs...)
					if err != nil {
						t.Fatal(err)
					}
					if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("age.Decrypt: %v", err)
					}
				}
			})
		}
	}
}

func recordsEqual(a, b Record) bool {
	return a.Plain == b.Plain && a.Size == b.Size && a.Header == b.Header && slices.Equal(a.Chunks, b.Chunks)
}

// TestConcurrentChunks decrypts the chunks of one Stream from several
// goroutines (run with -race), as a parallel reader would.
func TestConcurrentChunks(t *testing.T) {
	k := x25519Key(t)
	plain := testPlain(40*ChunkSize+5, 1)
	member, rec := seal(t, plain, k)
	s, err := Open(member, k.id, &rec)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, s.Chunks())
	for i := range s.Chunks() {
		wg.Go(func() {
			got, err := s.DecryptChunk(nil, i)
			off, n := s.ChunkRange(i)
			if err != nil || !bytes.Equal(got, plain[off:off+n]) {
				errs <- fmt.Errorf("chunk %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRecordJSON: the record survives a member record's JSON, and a CRC
// list that is not whole 4-byte values is refused.
func TestRecordJSON(t *testing.T) {
	k := x25519Key(t)
	member, rec := seal(t, testPlain(3*ChunkSize+9, 2), k)
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || !recordsEqual(rec, back) {
		t.Fatalf("%s -> %+v, %v", b, back, err)
	}
	if _, _, err := Verify(member, &back); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"crc":"AAAAAAA="}`), &back); !errors.Is(err, ErrRecord) {
		t.Fatalf("5-byte CRC list: %v", err)
	}
	// A record for another header length (or size) is refused rather than
	// trusted to place the chunks.
	bad := rec
	bad.Size++
	if _, _, err := Verify(member, &bad); !errors.Is(err, ErrRecord) {
		t.Fatalf("size+1: %v", err)
	}
	if _, err := Open(member, k.id, &bad); !errors.Is(err, ErrRecord) {
		t.Fatalf("Open with size+1: %v", err)
	}
}

// TestWriterErrors: Write after Close fails, errors from dst are sticky,
// and no recipients is an error.
func TestWriterErrors(t *testing.T) {
	k := x25519Key(t)
	if _, err := NewWriter(io.Discard, nil); !errors.Is(err, ErrRecipient) {
		t.Fatalf("no recipients: %v", err)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, recipientsOf(k))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Record(); err == nil {
		t.Fatal("Record before Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriteAfterClose) {
		t.Fatalf("Write after Close: %v", err)
	}
	fw := &failWriter{after: 1000}
	w, err = NewWriter(fw, recipientsOf(k))
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := w.Write(make([]byte, 3*ChunkSize))
	_, err2 := w.Write([]byte("more"))
	err3 := w.Close()
	if err1 == nil || err2 == nil || err3 == nil {
		t.Fatalf("failing dst: %v, %v, %v", err1, err2, err3)
	}
	if _, err := w.Record(); err == nil {
		t.Fatal("Record after a failed write succeeded")
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		return 0, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

// TestPostQuantumRoundTrip: an allowed hybrid recipient works end to end,
// and age refuses to mix it with a classic one.
func TestPostQuantumRoundTrip(t *testing.T) {
	pq, x := hybridKey(t), x25519Key(t)
	plain := testPlain(ChunkSize+7, 3)
	member, rec := seal(t, plain, pq)
	s, err := Open(member, pq.id, &rec)
	if err != nil {
		t.Fatal(err)
	}
	if got, losses := s.Decrypt(nil); len(losses) != 0 || !bytes.Equal(got, plain) {
		t.Fatalf("losses %v", losses)
	}
	if s.Header().Stanzas[0].Type != "mlkem768x25519" {
		t.Fatalf("stanzas %v", s.Header().Stanzas)
	}
	if _, err := NewWriter(io.Discard, recipientsOf(pq, x)); err == nil {
		t.Fatal("post-quantum and X25519 recipients mixed")
	}
}
