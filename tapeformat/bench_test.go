package tapeformat

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
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

// BenchmarkReaderManyFiles reads a set of 100,000 one-byte files (a set
// of log generations gone wild) and reports the heap the Reader holds per
// file once every file is read: flat (a small record per file, one digest
// state for the whole set), not a digest state per file.
func BenchmarkReaderManyFiles(b *testing.B) {
	const n = 100_000
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, WriterOptions{Codec: mustCodec(b, "lz4"), SegmentSize: 64 << 10, FrameSize: 16 << 10})
	w.Begin(testLabel())
	for i := range n {
		fw, err := w.CreateFile(FileInfo{Name: fmt.Sprintf("E%08X.log", i), Kind: KindLog, Size: 1})
		if err != nil {
			b.Fatal(err)
		}
		fw.Write([]byte{byte(i)})
		fw.Close()
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	set := buf.Bytes()
	b.SetBytes(int64(len(set)))
	b.ResetTimer()
	var perFile float64
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true})
		if err != nil {
			b.Fatal(err)
		}
		files, _ := drain(b, rd)
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		perFile = float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc)) / n
		runtime.KeepAlive(rd)
		rd.Close()
		if files != n {
			b.Fatalf("%d files", files)
		}
	}
	b.ReportMetric(perFile, "heap-B/file")
}
