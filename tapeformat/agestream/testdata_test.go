package agestream

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
)

var update = flag.Bool("update", false, "rewrite the testdata files made by agestream.Writer")

// vectorPlain is the plaintext of testdata/*-N.age: the first n bytes of
// `yes 'agestream test vector'`.
func vectorPlain(n int) []byte {
	line := []byte("agestream test vector\n")
	return bytes.Repeat(line, n/len(line)+1)[:n]
}

func testdataKey(t testing.TB) []*Identity {
	ids, err := ReadIdentityFile("testdata/key.txt")
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

var ourVectors = []int{0, 1, 100, ChunkSize + 1}

// TestTestdata reads the golden vectors (age 1.1.1's and ours) with the
// chunk reader, Verify and age itself.
func TestTestdata(t *testing.T) {
	ids := testdataKey(t)
	if *update {
		r, err := ParseRecipient(ids[0].Description().Recipient, RecipientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ourVectors {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, []*Recipient{r})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(vectorPlain(n))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fmt.Sprintf("testdata/ours-%d.age", n), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob("testdata/*.age")
	if len(files) < len(ourVectors)+3 {
		t.Fatalf("testdata has %d vectors", len(files))
	}
	for _, p := range files {
		base := strings.TrimSuffix(filepath.Base(p), ".age")
		n, err := strconv.Atoi(base[strings.LastIndexByte(base, '-')+1:])
		if err != nil {
			t.Fatal(p, err)
		}
		member, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ComputeRecord(member)
		if err != nil || rec.Plain != int64(n) {
			t.Fatalf("%s: record %+v, %v", p, rec, err)
		}
		s, err := Open(member, ids, &rec)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got, losses := s.Decrypt(nil); len(losses) != 0 || !bytes.Equal(got, vectorPlain(n)) {
			t.Fatalf("%s: losses %v", p, losses)
		}
		r, err := age.Decrypt(bytes.NewReader(member), ids[0].Age())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(r); !bytes.Equal(got, vectorPlain(n)) {
			t.Fatalf("%s: age.Decrypt differs", p)
		}
	}
}

// FuzzDecrypt feeds mutated age files to the reader. Whatever the input:
// no panic; losses well formed; and the chunk reader agrees with age
// itself: if age decrypts the file, the reader returns the same plaintext
// with no loss, and if the reader reports no loss, age decrypts it to the
// same bytes. So damage is never taken for data.
func FuzzDecrypt(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.age")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ids := testdataKey(f)
	f.Fuzz(func(t *testing.T, member []byte) {
		var ref []byte
		r, refErr := age.Decrypt(bytes.NewReader(member), ids[0].Age())
		if refErr == nil {
			ref, refErr = io.ReadAll(r)
		}
		Verify(member, nil)
		if rec, err := ComputeRecord(member); err == nil {
			if _, vl, err := Verify(member, &rec); err != nil || len(vl) != 0 {
				t.Fatalf("Verify against its own record: %v %v", vl, err)
			}
		}
		s, err := Open(member, ids, nil)
		if err != nil {
			if refErr == nil {
				t.Fatalf("age decrypts it, Open fails: %v", err)
			}
			return
		}
		got, losses := s.Decrypt(nil)
		checkLosses(t, nil, got, losses)
		if refErr == nil && (len(losses) != 0 || !bytes.Equal(got, ref)) {
			t.Fatalf("age decrypts %d bytes, the reader %d with losses %v", len(ref), len(got), losses)
		}
		if len(losses) == 0 && refErr != nil {
			t.Fatalf("the reader delivers %d bytes without loss, age fails: %v", len(got), refErr)
		}
		// In the member's own buffer, as a restore decrypts: the same.
		buf := bytes.Clone(member)
		if s, err = Open(buf, ids, nil); err != nil {
			t.Fatalf("Open of a copy: %v", err)
		}
		igot, ilosses := s.DecryptInPlace(2)
		if !bytes.Equal(igot, got) || fmt.Sprint(ilosses) != fmt.Sprint(losses) {
			t.Fatalf("DecryptInPlace: %d bytes, losses %v; Decrypt: %d bytes, losses %v", len(igot), ilosses, len(got), losses)
		}
	})
}
