package workload

import (
	"context"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time. The benchmarks report
// throughput per CPU-second too, which stays meaningful on a loaded machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, bytes float64) {
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(bytes/d.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkGenerate measures content generation throughput on one core
// (messages plus separately stored attachments, as in WriteCorpus).
func BenchmarkGenerate(b *testing.B) {
	g := NewGenerator(1)
	const chunk = 32 << 20
	b.SetBytes(chunk)
	c0 := cpuTime()
	for b.Loop() {
		if _, err := g.WriteCorpus(io.Discard, chunk); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0, float64(b.N)*chunk)
}

// BenchmarkGenerateText measures generation of MIME messages only.
func BenchmarkGenerateText(b *testing.B) {
	g := NewGenerator(1)
	var buf []byte
	var n int64
	msg := uint64(0)
	c0 := cpuTime()
	for b.Loop() {
		msg++
		buf = g.appendRaw(buf[:0], 0, msg)
		n += int64(len(buf))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds()/1e6, "MB/s")
	reportCPU(b, c0, float64(n))
}

// BenchmarkReplayModel measures content-free model replay (what Run does to
// resume and Verify does before scanning), per transaction.
func BenchmarkReplayModel(b *testing.B) {
	w, _ := Workload{Seed: 1, Streams: 1}.normalize()
	g := NewGenerator(1)
	const txns = 100000
	for b.Loop() {
		st := newStreamState(g, &w, 0)
		st.replay(txns)
	}
	b.ReportMetric(float64(b.N*txns)/b.Elapsed().Seconds(), "txns/s")
}

var (
	benchStoreOnce sync.Once
	benchStore     *MemStore
	benchStats     Stats
)

func loadedStore(b *testing.B) *MemStore {
	benchStoreOnce.Do(func() {
		benchStore = NewMemStore()
		var err error
		benchStats, err = Run(context.Background(), benchStore, RunOptions{
			Workload:       Workload{Seed: 1, Streams: 8},
			StopAfterBytes: 128 << 20,
		})
		if err != nil {
			b.Fatal(err)
		}
	})
	return benchStore
}

// BenchmarkRunMemStore measures Run end to end against MemStore (8 streams).
func BenchmarkRunMemStore(b *testing.B) {
	for b.Loop() {
		s := NewMemStore()
		st, err := Run(context.Background(), s, RunOptions{Workload: Workload{Seed: 1, Streams: 8}, StopAfterBytes: 64 << 20})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(st.Bytes)
		b.ReportMetric(float64(st.Txns)/st.Elapsed.Seconds(), "txns/s")
	}
}

// BenchmarkVerify measures Verify (replay + regenerate + compare) over a
// store loaded with 128 MiB of message data.
func BenchmarkVerify(b *testing.B) {
	s := loadedStore(b)
	var rep Report
	c0 := cpuTime()
	for b.Loop() {
		var err error
		rep, err = Verify(context.Background(), s)
		if err != nil || !rep.OK() {
			b.Fatal(err, rep.Err())
		}
	}
	b.SetBytes(rep.Bytes)
	reportCPU(b, c0, float64(b.N)*float64(rep.Bytes))
	b.ReportMetric(float64(rep.Keys), "keys")
	b.ReportMetric(float64(benchStats.Txns), "txns")
}
