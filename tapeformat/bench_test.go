package tapeformat

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// BenchmarkWriter measures the writer goroutine alone: precompressed units
// in, records out.
func BenchmarkWriter(b *testing.B) {
	data := mail(32<<20, 7)
	c := mustCodec(b, "zstd")
	enc, _ := codec.NewEncoder(c, DefaultFrameSize)
	var units [][]byte
	var metas []codec.ChunkMeta
	for off := 0; off < len(data); off += DefaultFrameSize {
		u, m := enc.Encode(nil, codec.ChunkMeta{Offset: int64(off)}, data[off:min(off+DefaultFrameSize, len(data))])
		units, metas = append(units, u), append(metas, m)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w, _ := NewWriter(io.Discard, WriterOptions{Codec: c})
		w.Begin(testLabel())
		w.BeginFile(FileInfo{Name: "a.edb", Kind: KindDatabase, Size: int64(len(data))})
		for i, u := range units {
			if err := w.WriteFrame(u, metas[i]); err != nil {
				b.Fatal(err)
			}
		}
		w.EndFile(FileSummary{Digest: make([]byte, 32)})
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReader measures reading, decoding and verifying a set.
func BenchmarkReader(b *testing.B) {
	data := mail(32<<20, 7)
	for _, c := range []string{"zstd", "lz4", "none"} {
		b.Run(c, func(b *testing.B) {
			set := writeSet(b, WriterOptions{Codec: mustCodec(b, c)}, []testFile{{FileInfo{Name: "a.edb", Kind: KindDatabase, Size: int64(len(data))}, data}})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true})
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := rd.Next(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := rd.NextChunk(); err == io.EOF {
							break
						} else if err != nil {
							b.Fatal(err)
						}
					}
				}
				rd.Close()
			}
		})
	}
}

// BenchmarkWriterSmallFiles writes 50 files of 100 KiB (like a set of log
// generations): a short segment must not cost a fresh segment buffer.
func BenchmarkWriterSmallFiles(b *testing.B) {
	c := mustCodec(b, "none")
	data := mail(100<<10, 3)
	meta := codec.ChunkMeta{Length: uint32(len(data)), CRC32C: codec.Checksum(data)}
	b.SetBytes(50 * int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w, _ := NewWriter(io.Discard, WriterOptions{Codec: c})
		w.Begin(testLabel())
		for i := 0; i < 50; i++ {
			idx, _ := w.BeginFile(FileInfo{Name: fmt.Sprintf("E%010d.log", i), Kind: KindLog, Size: int64(len(data))})
			m := meta
			m.FileIndex = uint32(idx)
			if err := w.WriteFrame(data, m); err != nil {
				b.Fatal(err)
			}
			w.EndFile(FileSummary{Digest: make([]byte, 32)})
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
