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
			files := []testFile{
				{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 600 << 10}, mail(600<<10, 1)},
				{FileInfo{Name: "E00000001.log", Kind: KindLog, Size: 100 << 10}, mail(100<<10, 2)},
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
			want := map[string][]byte{files[0].fi.Name: files[0].data, files[1].fi.Name: files[1].data}
			n := 0
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
					held = append(held, kept{h.Name, ch.Meta.Offset, b, want[h.Name][ch.Meta.Offset:ch.Meta.End()]})
					// Give every other buffer back at once, as a writer
					// that keeps up would; keep the rest to the end.
					if n++; n%2 == 0 {
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
