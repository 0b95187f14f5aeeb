package media

import "os"

// filePiece is the largest single write(2) to a regular file: on the
// kernels measured here 1 MiB writes cost 4-5x the system time of 128 KiB
// ones (bench/README.md), while tape keeps one write per record.
const filePiece = 128 << 10

// writebackChunk is how much is written before the kernel is asked to
// start writing it back (see startWriteback).
const writebackChunk = 8 << 20

// FileWriter writes a regular file that will be fsynced when complete (a
// set volume, a restored database): in pieces of at most 128 KiB, and every
// 8 MiB it asks the kernel to start writing back what it has, so that the
// disk works while the data is still being produced and the closing fsync
// finds little left to do. Not safe for concurrent use.
type FileWriter struct {
	f   *os.File
	end int64 // highest offset written
	wb  int64 // end of the range last handed to writeback
}

// NewFileWriter returns a FileWriter for f, which it does not close.
func NewFileWriter(f *os.File) *FileWriter { return &FileWriter{f: f} }

// WriteAt writes p at off (pwrite: f must not be in append mode).
func (w *FileWriter) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	var err error
	for n < len(p) && err == nil {
		var k int
		k, err = w.f.WriteAt(p[n:min(len(p), n+filePiece)], off+int64(n))
		n += k
	}
	if e := off + int64(n); e > w.end {
		w.end = e
	}
	if w.end-w.wb >= writebackChunk {
		startWriteback(w.f, w.wb, w.end-w.wb)
		w.wb = w.end
	}
	return n, err
}
