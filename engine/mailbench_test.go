package engine

// Benchmarks of the engine under the mail workload: commit throughput and
// log volume, recovery replay speed, Group.Check speed, memory against the
// cache budget, and the backup API's read throughput.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/workload"
)

var (
	benchReplayMB = flag.Int("bench.replaymb", 64, "MiB of message data BenchmarkRecoveryReplay logs before the crash")
	benchCheckMB  = flag.Int("bench.checkmb", 64, "MiB of message data in BenchmarkCheck's database")
	benchBackupMB = flag.Int("bench.backupmb", 256, "size in MiB of BenchmarkBackupRead's database files")
)

func mailGroupConfig(logSize int64) GroupConfig {
	return GroupConfig{Name: "SG1", LogSize: logSize, Databases: []DBConfig{{Name: "Mailbox1", Streaming: true}, {Name: "Public"}}}
}

func openMailGroup(tb testing.TB, dir string, logSize int64, opts Options) *Group {
	tb.Helper()
	if err := CreateGroup(dir, mailGroupConfig(logSize), Options{}); err != nil {
		tb.Fatal(err)
	}
	g, err := OpenGroup(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// loadMail runs the mail workload on g until it wrote bytes of message
// data (messages and attachments).
func loadMail(tb testing.TB, g *Group, streams int, bytes int64) workload.Stats {
	tb.Helper()
	st, err := workload.Run(context.Background(), wlStore{g}, workload.RunOptions{
		Workload:       workload.Workload{Seed: 42, Streams: streams},
		StopAfterBytes: bytes,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// logVolume is what the log holds from position from to the end.
type logVolume struct {
	span    int64 // bytes of the log files used: chunks, headers and padding
	payload int64 // record payload bytes
	byType  [8]int64
}

func measureLog(tb testing.TB, g *Group, from wal.Pos) logVolume {
	tb.Helper()
	var v logVolume
	res, err := wal.Scan(g.fs, wal.ScanOptions{Dirs: []string{g.dir}, Prefix: g.cfg.Prefix(), Signature: g.cfg.sig(), FromGen: from.Gen},
		func(rec []byte, start, end wal.Pos) error {
			if start.Less(from) {
				return nil
			}
			v.payload += int64(len(rec))
			if len(rec) > 0 && int(rec[0]) < len(v.byType) {
				v.byType[rec[0]] += int64(len(rec))
			}
			return nil
		})
	if err != nil {
		tb.Fatal(err)
	}
	for _, gi := range res.Gens {
		lo := int64(wal.HeaderSize)
		if gi.Header.Gen == from.Gen {
			lo = int64(from.Off)
		}
		v.span += int64(gi.End.Off) - lo
	}
	return v
}

// BenchmarkMailCommit measures commits of the mail workload (8 concurrent
// streams, default log size and cache): message MB/s, transactions/s and
// log bytes written per byte of message data. One op is one transaction.
func BenchmarkMailCommit(b *testing.B) {
	const streams = 8
	g := openMailGroup(b, filepath.Join(b.TempDir(), "SG1"), DefaultLogSize, Options{})
	defer g.Close()
	from := g.log.Current()
	b.ResetTimer()
	st, err := workload.Run(context.Background(), wlStore{g}, workload.RunOptions{
		Workload:  workload.Workload{Seed: 7, Streams: streams},
		StopAtSeq: uint64(b.N+streams-1) / streams,
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if st.Txns == 0 || st.Bytes == 0 {
		return // b.N too small to commit a message
	}
	sec := b.Elapsed().Seconds()
	v := measureLog(b, g, from)
	b.ReportMetric(float64(st.Bytes)/sec/1e6, "msgMB/s")
	b.ReportMetric(float64(st.Txns)/sec, "tx/s")
	b.ReportMetric(float64(v.span)/float64(st.Bytes), "logB/msgB")
	b.ReportMetric(float64(st.Bytes)/float64(st.Txns), "msgB/tx")
	if testing.Verbose() {
		b.Logf("txns %d, message bytes %d, log span %d, payload %d (insert %d delete %d replace %d image %d commit %d abort %d), %+v",
			st.Txns, st.Bytes, v.span, v.payload, v.byType[recInsert], v.byType[recDelete], v.byType[recReplace], v.byType[recImage], v.byType[recCommit], v.byType[recAbort], g.log.Stats())
	}
}

// copyDir copies the regular files of src into a new directory dst.
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkRecoveryReplay measures crash recovery: -bench.replaymb MiB of
// mail are committed with a cache large enough to hold every page and no
// flush, the process "dies" (the group is abandoned), and each iteration
// recovers a fresh copy of that state. logMiB/s is log record bytes
// replayed per second of OpenGroup, which includes writing and syncing the
// replayed pages.
func BenchmarkRecoveryReplay(b *testing.B) {
	root := b.TempDir()
	src := filepath.Join(root, "src")
	g := openMailGroup(b, src, DefaultLogSize, Options{CacheSize: 2 << 30, FlushInterval: time.Hour})
	st := loadMail(b, g, 8, int64(*benchReplayMB)<<20)
	g.abandon()
	var logBytes int64
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(root, fmt.Sprintf("r%d", i))
		copyDir(b, src, dir)
		b.StartTimer()
		g, err := OpenGroup(dir, Options{CacheSize: 2 << 30})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		info := g.Recovery()
		logBytes += info.LogBytes
		total += info.Duration
		if info.Commits < int(st.Txns) {
			b.Fatalf("replayed %d commits, the workload made %d", info.Commits, st.Txns)
		}
		g.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(logBytes)/(1<<20)/total.Seconds(), "logMiB/s")
	b.ReportMetric(float64(logBytes)/float64(b.N)/(1<<20), "logMiB/op")
}

// BenchmarkCheck measures Group.Check (store check) on a database holding
// -bench.checkmb MiB of mail, read from the page cache. SetBytes is the
// size of the database files.
func BenchmarkCheck(b *testing.B) {
	g := openMailGroup(b, filepath.Join(b.TempDir(), "SG1"), DefaultLogSize, Options{CacheSize: 8 << 20})
	defer g.Close()
	loadMail(b, g, 8, int64(*benchCheckMB)<<20)
	if err := g.flush(true); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(g.DatabaseSize())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := g.Check()
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK() {
			b.Fatal(r.Problems)
		}
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory loads two database sizes with an 8 MiB cache and reports
// the live heap (after GC) with the group open: it must stay near the
// cache budget plus a constant, whatever the size. Run with -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	const cache = 8 << 20
	for _, mb := range []int64{32, 128} {
		b.Run(fmt.Sprintf("data=%dMiB", mb), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				base := heapInUse()
				g := openMailGroup(b, filepath.Join(b.TempDir(), "SG1"), DefaultLogSize, Options{CacheSize: cache})
				loadMail(b, g, 8, mb<<20)
				heap := heapInUse()
				b.ReportMetric(float64(heap-min(heap, base))/(1<<20), "heapMiB")
				b.ReportMetric(float64(g.DatabaseSize())/(1<<20), "dbMiB")
				g.Close()
			}
		})
	}
}

// TestMemoryWithinCacheBudget: the live heap with a group open after
// loading stays within the cache budget plus a constant, for two database
// sizes.
func TestMemoryWithinCacheBudget(t *testing.T) {
	const cache = 2 << 20
	const slack = 16 << 20
	// The budget bound alone cannot fail at these sizes (a store keeping
	// every byte in memory would still be under it), so the heap must also
	// stay flat while the database grows 4x.
	var heaps []uint64
	defer func() {
		if len(heaps) == 2 && heaps[1] > heaps[0]+4<<20 {
			t.Errorf("live heap grew from %d to %d MiB with the database: not flat", heaps[0]>>20, heaps[1]>>20)
		}
	}()
	for _, mb := range []int64{4, 16} {
		base := heapInUse()
		g := openMailGroup(t, filepath.Join(t.TempDir(), "SG1"), DefaultLogSize, Options{CacheSize: cache})
		loadMail(t, g, 4, mb<<20)
		h := heapInUse()
		heap := h - min(h, base)
		heaps = append(heaps, heap)
		t.Logf("%d MiB of mail, database %d MiB: live heap %.1f MiB (cache budget %d MiB)", mb, g.DatabaseSize()>>20, float64(heap)/(1<<20), cache>>20)
		if heap > cache+slack {
			t.Errorf("live heap %d MiB exceeds the cache budget %d MiB + %d MiB", heap>>20, cache>>20, slack>>20)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkBackupRead measures the backup API's database read path:
// Session.OpenFile and Read of 64 KiB chunks (every page's checksum and
// number verified) to io.Discard, from the page cache, over database files
// of -bench.backupmb MiB in total. The files hold some mail; the rest is
// formatted, verifiable pages (file growth), which cost the same to read
// and verify.
func BenchmarkBackupRead(b *testing.B) {
	g := openMailGroup(b, filepath.Join(b.TempDir(), "SG1"), DefaultLogSize, Options{})
	defer g.Close()
	loadMail(b, g, 4, 16<<20)
	if err := g.flush(true); err != nil {
		b.Fatal(err)
	}
	target := int64(*benchBackupMB) << 20
	if extra := target - g.DatabaseSize(); extra > 0 {
		pf := g.dbs[0].files[fileEDB]
		if err := pf.ensure(uint32((pf.size() + extra) / page.Size)); err != nil {
			b.Fatal(err)
		}
	}
	s, err := g.BackupSetup(ese.Copy, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.End()
	var total int64
	for _, f := range s.DatabaseFiles() {
		total += f.Size
	}
	// Warm the page cache.
	readBackupFiles(b, s)
	b.SetBytes(total)
	c0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		readBackupFiles(b, s)
	}
	b.StopTimer()
	// Throughput per CPU-second of the process: what one core does, also
	// on a loaded machine.
	if d := cpuTime() - c0; d > 0 {
		b.ReportMetric(float64(total)*float64(b.N)/d.Seconds()/1e6, "MB/cpu-s")
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func readBackupFiles(b *testing.B, s *Session) {
	buf := make([]byte, ChunkSize)
	for _, f := range s.DatabaseFiles() {
		r, err := s.OpenFile(f.Name)
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := r.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			io.Discard.Write(buf[:n])
		}
		r.Close()
	}
}

// BenchmarkLogVolume commits single messages of a fixed size (random
// bytes, one put each, as the workload's message table) and reports log
// bytes per message byte, to check the log overhead for messages of 1 KiB
// and more.
func BenchmarkLogVolume(b *testing.B) {
	for _, size := range []int{1 << 10, 4 << 10, 16 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("msg=%dKiB", size>>10), func(b *testing.B) {
			g := openMailGroup(b, filepath.Join(b.TempDir(), "SG1"), DefaultLogSize, Options{})
			defer g.Close()
			val := make([]byte, size)
			for i := range val {
				val[i] = byte(i*7 + i>>8)
			}
			from := g.log.Current()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				val[0], val[1] = byte(i), byte(i>>8)
				if err := g.Update(func(tx *Tx) error {
					return tx.Put("Mailbox1", "messages", []byte(fmt.Sprintf("s0000/%012d", i)), val)
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			v := measureLog(b, g, from)
			b.ReportMetric(float64(v.span)/float64(b.N*size), "logB/msgB")
			if testing.Verbose() {
				n := float64(b.N)
				b.Logf("per message: log span %.0f, payload %.0f (insert %.0f replace %.0f image %.0f commit %.0f)",
					float64(v.span)/n, float64(v.payload)/n, float64(v.byType[recInsert])/n, float64(v.byType[recReplace])/n, float64(v.byType[recImage])/n, float64(v.byType[recCommit])/n)
			}
		})
	}
}
