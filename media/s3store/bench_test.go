package s3store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkS3VsFile measures, in one run, uploading an object to versitygw
// on loopback (default options: 8 MiB parts, 4 in flight) and reading it
// back with ranged GETs (8 MiB ranges, 4 in flight), against writing the
// same bytes to a local file (1 MiB writes, then fsync as the file sink
// does; and without the fsync, since versitygw does not fsync) and reading
// it back. Each iteration does all of them; the reported figures are
// medians over the iterations and their ratios (S3 ÷ file, ≥ 1 means S3
// is as fast). Run with
//
//	go test -run '^$' -bench S3VsFile -benchtime 5x ./media/s3store/
//
// Set S3STORE_BENCH_MIB to change the object size (default 256).
func BenchmarkS3VsFile(b *testing.B) {
	srv := server(b)
	bucket := newBucket(b, srv, false)
	o := testOptions(srv, bucket)
	o.PartSize, o.MaxPartSize, o.PartGrowEvery, o.RangeSize = 0, 0, 0, 0 // defaults
	s := newStore(b, o)
	size := 256 << 20
	if v := os.Getenv("S3STORE_BENCH_MIB"); v != "" {
		var mib int
		if _, err := fmt.Sscan(v, &mib); err == nil && mib > 0 {
			size = mib << 20
		}
	}
	data := testData(99, size)
	dir := b.TempDir()
	ctx := context.Background()
	const rec = 1 << 20

	var up, upSync, upNoSync, down, fdown []float64
	var peak atomic.Uint64
	mbps := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := filepath.Join("bench", string(rune('a'+i%26)), time.Now().Format("150405.000000"))

		runtime.GC()
		stop := sampleHeap(&peak)
		t0 := time.Now()
		u, err := s.Create(ctx, key, UploadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += rec {
			if _, err := u.Write(data[off : off+rec]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := u.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		up = append(up, mbps(time.Since(t0)))
		stop()

		name := filepath.Join(dir, "set")
		for _, sync := range []bool{true, false} {
			os.Remove(name)
			t0 = time.Now()
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			for off := 0; off < size; off += rec {
				if _, err := f.Write(data[off : off+rec]); err != nil {
					b.Fatal(err)
				}
			}
			if sync {
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
			if sync {
				upSync = append(upSync, mbps(time.Since(t0)))
			} else {
				upNoSync = append(upNoSync, mbps(time.Since(t0)))
			}
		}

		t0 = time.Now()
		r, err := s.Open(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		if err != nil || n != int64(size) {
			b.Fatal(n, err)
		}
		r.Close()
		down = append(down, mbps(time.Since(t0)))

		t0 = time.Now()
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, f); err != nil || n != int64(size) {
			b.Fatal(n, err)
		}
		f.Close()
		fdown = append(fdown, mbps(time.Since(t0)))
		s.Delete(ctx, key)
	}
	b.StopTimer()
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(med(up), "s3-upload-MB/s")
	b.ReportMetric(med(upSync), "file-write+fsync-MB/s")
	b.ReportMetric(med(upNoSync), "file-write-MB/s")
	b.ReportMetric(med(down), "s3-read-MB/s")
	b.ReportMetric(med(fdown), "file-read-MB/s")
	b.ReportMetric(med(up)/med(upSync), "upload/file+fsync")
	b.ReportMetric(med(up)/med(upNoSync), "upload/file")
	b.ReportMetric(med(down)/med(fdown), "read/file")
	b.ReportMetric(float64(peak.Load())/(1<<20), "upload-heap-growth-MB")
}

// sampleHeap records the peak growth of the heap in use over its value at
// the start (the test data excluded) until stop is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
