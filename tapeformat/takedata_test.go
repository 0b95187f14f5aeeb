package tapeformat

import (
	"bytes"
	"io"
	"testing"
)

// A restore hands chunk buffers to its writing goroutine with TakeData and
// gives them back later: the Reader must never decode into a buffer it
// gave away, and recycled buffers must come back into use intact.
func TestTakeDataRecycle(t *testing.T) {
	for _, c := range []string{"zstd", "lz4", "gzip", "none"} {
		t.Run(c, func(t *testing.T) {
			// The empty file in the middle gives an empty chunk: its
			// buffer must be given away like any other.
			files := []testFile{
				{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 600 << 10}, mail(600<<10, 1)},
				{FileInfo{Name: "Empty.edb", Kind: KindDatabase, Size: 0}, nil},
				{FileInfo{Name: "E00000001.log", Kind: KindLog, Size: 300 << 10}, mail(300<<10, 2)},
			}
			set := writeSet(t, smallOpts(t, c), files)
			rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true, RecordSize: 10240, Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			type kept struct {
				file string
				off  int64
				data []byte
				want []byte
			}
			var held []kept
			want := map[string][]byte{}
			for _, f := range files {
				want[f.fi.Name] = f.data
			}
			n, keepAll := 0, false
			for {
				h, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for {
					ch, err := rd.NextChunk()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					b := rd.TakeData()
					if len(b) != int(ch.Meta.Length) {
						t.Fatalf("TakeData: %d bytes, chunk has %d", len(b), ch.Meta.Length)
					}
					if len(b) == 0 {
						// Give the empty chunk's buffer back and keep
						// every later one: a buffer the Reader still
						// used would now be handed out twice.
						rd.Recycle(b)
						keepAll = true
						continue
					}
					held = append(held, kept{h.Name, ch.Meta.Offset, b, want[h.Name][ch.Meta.Offset:ch.Meta.End()]})
					// Give every other buffer back at once, as a writer
					// that keeps up would; keep the rest to the end.
					if n++; n%2 == 0 && !keepAll {
						k := held[len(held)-1]
						if !bytes.Equal(k.data, k.want) {
							t.Fatalf("%s at %d: wrong data", k.file, k.off)
						}
						rd.Recycle(k.data)
						held = held[:len(held)-1]
					}
				}
			}
			if n < 10 {
				t.Fatalf("only %d chunks: the test needs many", n)
			}
			for _, k := range held {
				if !bytes.Equal(k.data, k.want) {
					t.Fatalf("%s at %d: a buffer given away was overwritten", k.file, k.off)
				}
			}
			if _, err := rd.Manifest(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
