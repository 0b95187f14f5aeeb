package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine/vfs"
)

// TestGroupCommitCrash: many goroutines append and SyncTo while a crasher
// takes crash images; in every image, every record acknowledged before the
// image was taken is readable, and each goroutine's records form a prefix.
func TestGroupCommitCrash(t *testing.T) {
	for _, torn := range []bool{false, true} {
		t.Run(fmt.Sprintf("torn=%v", torn), func(t *testing.T) {
			fsys := vfs.NewCrashFS()
			if torn {
				fsys.SetTornWrites(true, 42)
			}
			o := testOpts(128 << 10)
			var hooks atomic.Int32
			o.OnRollover = func(uint32) { hooks.Add(1) }
			w := mustOpen(t, fsys, o)
			const G, N = 24, 40
			var mu sync.Mutex
			acked := make([]int, G)
			type image struct {
				fs    *vfs.CrashFS
				acked []int
			}
			var images []image
			snap := func() {
				mu.Lock()
				a := append([]int(nil), acked...)
				mu.Unlock()
				images = append(images, image{fsys.CrashClone(), a})
			}
			var wg sync.WaitGroup
			done := make(chan struct{})
			for g := 0; g < G; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 7))
					for i := 0; i < N; i++ {
						p := make([]byte, 6+r.IntN(3000))
						binary.LittleEndian.PutUint16(p, uint16(g))
						binary.LittleEndian.PutUint32(p[2:], uint32(i))
						_, e, err := w.Append(p)
						if err != nil {
							t.Error(err)
							return
						}
						if err := w.SyncTo(e); err != nil {
							t.Error(err)
							return
						}
						if w.Durable().Less(e) {
							t.Error("durable < acknowledged end")
						}
						mu.Lock()
						acked[g] = i + 1
						mu.Unlock()
					}
				}(g)
			}
			var bg sync.WaitGroup
			bg.Add(1)
			go func() { // crasher and forced rollovers
				defer bg.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					case <-time.After(3 * time.Millisecond):
					}
					if i%3 == 0 {
						if _, err := w.Rollover(); err != nil {
							t.Error(err)
						}
					}
					if len(images) < 6 {
						snap()
					}
				}
			}()
			wg.Wait()
			close(done)
			bg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			snap()
			st := w.Stats()
			t.Logf("%d commits, %d fsyncs, %d rollovers, %d images", G*N, st.Syncs, st.Rollovers, len(images))
			if hooks.Load() != int32(st.Rollovers) {
				t.Fatalf("hook %d rollovers %d", hooks.Load(), st.Rollovers)
			}
			for n, im := range images {
				seen := make([]int, G)
				got, res, err := scanAll(t, im.fs)
				if err != nil {
					t.Fatalf("image %d: %v", n, err)
				}
				for _, r := range got {
					g := int(binary.LittleEndian.Uint16(r.data))
					i := int(binary.LittleEndian.Uint32(r.data[2:]))
					if i != seen[g] {
						t.Fatalf("image %d: goroutine %d record %d after %d", n, g, i, seen[g])
					}
					seen[g]++
				}
				for g := range seen {
					if seen[g] < im.acked[g] {
						t.Fatalf("image %d: goroutine %d: %d records readable, %d acknowledged", n, g, seen[g], im.acked[g])
					}
				}
				// The image reopens and takes appends.
				w, err := OpenAt(im.fs, o, res.End)
				if err != nil {
					t.Fatalf("image %d: %v", n, err)
				}
				if _, _, err := w.Append([]byte("after")); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if got2, _, err := scanAll(t, im.fs); err != nil || len(got2) != len(got)+1 {
					t.Fatalf("image %d after reopen: %d records, %v", n, len(got2), err)
				}
			}
		})
	}
}

// faultScenario appends, syncs and rolls over; ackedN is the number of
// records acknowledged durable (SyncTo, Rollover or Close returned nil).
func faultScenario(fsys vfs.FS, appended *[]rec, ackedN *int) error {
	w, err := Open(fsys, testOpts(MinLogSize))
	if err != nil {
		return err
	}
	add := func(size int) error {
		p := payload(len(*appended), size)
		s, e, err := w.Append(p)
		if err != nil {
			return err
		}
		*appended = append(*appended, rec{p, s, e})
		return nil
	}
	ack := func(err error) error {
		if err == nil {
			*ackedN = len(*appended)
		}
		return err
	}
	steps := []func() error{
		func() error { return add(10) },
		func() error { return add(200) },
		func() error { return ack(w.Sync()) },
		func() error { return add(40 << 10) }, // crosses a block boundary
		func() error { return add(0) },
		func() error { return ack(w.SyncTo((*appended)[len(*appended)-1].end)) },
		func() error { _, err := w.Rollover(); return ack(err) },
		func() error { return add(300) },
		func() error { return ack(w.Sync()) },
		func() error { return add(50 << 10) },
		func() error { return add(30 << 10) }, // does not fit: automatic rollover
		func() error { return add(5) },
		func() error { return ack(w.Sync()) },
		func() error { return add(7) },
		func() error { return ack(w.Close()) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			w.Close()
			return err
		}
	}
	return nil
}

// TestFaultInjectionEveryOp fails every mutating file-system operation of
// faultScenario in turn (once, or from then on), checks the error is
// reported, crashes, and checks the log recovers to a prefix of what was
// appended that holds every acknowledged record.
func TestFaultInjectionEveryOp(t *testing.T) {
	var appended []rec
	var ackedN int
	ff := vfs.NewFaultFS(vfs.NewCrashFS())
	if err := faultScenario(ff, &appended, &ackedN); err != nil {
		t.Fatal(err)
	}
	total := ff.Count()
	if ackedN != len(appended) || total < 20 {
		t.Fatalf("scenario: %d ops, %d/%d acked", total, ackedN, len(appended))
	}
	t.Logf("%d operations: %v", total, ff.Ops())
	for n := int64(1); n <= total; n++ {
		for _, mode := range []string{"once", "sticky", "torn"} {
			crash := vfs.NewCrashFS()
			if mode == "torn" {
				crash.SetTornWrites(true, n)
			}
			ff := vfs.NewFaultFS(crash)
			ff.FailAt(n, mode == "sticky")
			var appended []rec
			var ackedN int
			err := faultScenario(ff, &appended, &ackedN)
			if !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("op %d (%v) %s: error %v", n, ff.Ops()[n-1], mode, err)
			}
			crash.Crash()
			got, res, err := scanAll(t, crash)
			if err != nil {
				t.Fatalf("op %d (%v) %s: after crash: %v", n, ff.Ops()[n-1], mode, err)
			}
			if len(got) < ackedN || len(got) > len(appended) {
				t.Fatalf("op %d (%v) %s: %d records, %d acked, %d appended", n, ff.Ops()[n-1], mode, len(got), ackedN, len(appended))
			}
			checkRecs(t, got, appended[:len(got)])
			w, err := OpenAt(crash, testOpts(MinLogSize), res.End)
			if err != nil {
				t.Fatalf("op %d %s: reopen: %v", n, mode, err)
			}
			p := []byte("after recovery")
			s, e, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got2, _, err := scanAll(t, crash)
			if err != nil {
				t.Fatalf("op %d %s: after reopen: %v", n, mode, err)
			}
			checkRecs(t, got2, append(append([]rec(nil), got...), rec{p, s, e}))
		}
	}
}

// TestTornCrashUnsynced: unsynced appends survive in random torn subsets;
// recovery always yields a clean prefix including the synced records.
func TestTornCrashUnsynced(t *testing.T) {
	o := testOpts(MinLogSize)
	for seed := int64(0); seed < 40; seed++ {
		fsys := vfs.NewCrashFS()
		fsys.SetTornWrites(true, seed)
		w := mustOpen(t, fsys, o)
		var want []rec
		r := rand.New(rand.NewPCG(uint64(seed), 1))
		synced := 0
		for i := 0; i < 30; i++ {
			p := payload(i, r.IntN(6000))
			s, e, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, rec{p, s, e})
			if r.IntN(6) == 0 {
				if err := w.SyncTo(e); err != nil {
					t.Fatal(err)
				}
				synced = len(want)
			}
		}
		// write the rest without syncing it
		w.mu.Lock()
		if !w.ioBusy && len(w.buf) > 0 {
			w.f.WriteAt(w.buf, w.bufOff)
		}
		w.mu.Unlock()
		fsys.Crash()
		got, res, err := scanAll(t, fsys)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(got) < synced {
			t.Fatalf("seed %d: %d records, %d synced", seed, len(got), synced)
		}
		checkRecs(t, got, want[:len(got)])
		w, err = OpenAt(fsys, o, res.End)
		if err != nil {
			t.Fatal(err)
		}
		w.Append([]byte("z"))
		w.Close()
		fsys.Crash()
		got2, _, err := scanAll(t, fsys)
		if err != nil || len(got2) != len(got)+1 {
			t.Fatalf("seed %d: after reopen %d records (want %d): %v", seed, len(got2), len(got)+1, err)
		}
	}
}

// BenchmarkGroupCommit: N goroutines each Append ~1 KiB and SyncTo, on the
// real file system. Reports commits/s and fsyncs/s.
func BenchmarkGroupCommit(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			o := Options{Dir: b.TempDir(), Signature: testSig, LogSize: 16 << 20}
			w, err := Open(vfs.OS, o)
			if err != nil {
				b.Fatal(err)
			}
			p := make([]byte, 1024)
			var next atomic.Int64
			b.ResetTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			for g := 0; g < n; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						_, e, err := w.Append(p)
						if err != nil {
							b.Error(err)
							return
						}
						if err := w.SyncTo(e); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(t0).Seconds()
			b.StopTimer()
			st := w.Stats()
			b.ReportMetric(float64(b.N)/el, "commits/s")
			b.ReportMetric(float64(st.Syncs)/el, "fsyncs/s")
			b.ReportMetric(float64(b.N)/float64(max(st.Syncs, 1)), "commits/fsync")
			w.Close()
		})
	}
}
