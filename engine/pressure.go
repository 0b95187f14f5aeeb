package engine

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// A group measures its own commit path, so that a backup can tell whether
// it slows the store down (an adaptive pace, see package pace): how long
// each Commit took (from the call to the durable log: the latency a mail
// server's client waits for) and how many commits are in progress at
// once (the commit queue). Recording is a few atomic adds and a short
// critical section per commit; reading is a snapshot of cumulative
// counters, so any number of readers can poll at any interval (in
// process, or through the store server as JSON) and compute the window
// they need with Window.
//
// Latencies go into a log-linear histogram: eight buckets per power of
// two of microseconds (a bucket spans at most 12.5% of its lower bound,
// finer than the 25% a pace tolerates), from 1 µs up to about a minute.

// PressureBuckets is the number of latency buckets.
const PressureBuckets = 192

// Pressure is a snapshot of a group's commit path. The counters are
// cumulative since the group was opened.
type Pressure struct {
	// Commits counts completed commits that wrote something (failed ones
	// included).
	Commits uint64 `json:"commits"`
	// LatencySum is the sum of their latencies, in nanoseconds.
	LatencySum uint64 `json:"latency_sum_ns"`
	// Buckets[i] counts commits whose latency fell in bucket i
	// (BucketBounds); trailing empty buckets are left out.
	Buckets []uint64 `json:"buckets"`
	// InFlight is the number of commits in progress when the snapshot was
	// taken: the commit queue.
	InFlight int64 `json:"in_flight"`
	// EWMA is the mean latency of recent commits, each weighted by
	// e^(-age/1s).
	EWMA time.Duration `json:"ewma_ns"`
	// Baseline is the store's unloaded commit latency: the median latency
	// of the commits made while no backup session was open on the group,
	// each weighted by e^(-age/30s). It keeps its value while a backup
	// runs. Zero until such a commit.
	Baseline time.Duration `json:"baseline_ns"`
	// BaselineMean is the mean of the same commits: a client that waits
	// for each commit makes 1/mean of them a second.
	BaselineMean time.Duration `json:"baseline_mean_ns"`
	// BackupOpen says a backup session is open on the group.
	BackupOpen bool `json:"backup_open"`
}

// pressure is the live state behind Pressure.
type pressure struct {
	commits    atomic.Uint64
	latencySum atomic.Uint64
	buckets    [PressureBuckets]atomic.Uint64
	inFlight   atomic.Int64

	mu        sync.Mutex // guards the decaying statistics
	ewmaSum   float64
	ewmaW     float64
	ewmaAt    time.Time
	idle      [PressureBuckets]float64 // unloaded commits, decayed
	idleAt    time.Time                // last decay of idle
	idleTotal float64
	idleSum   float64 // of the latencies in idle, decayed alike
}

// Time constants of the decaying statistics.
const (
	ewmaTau     = time.Second
	baselineTau = 30 * time.Second
)

// begin counts a commit in progress; the returned time goes to end.
func (p *pressure) begin() time.Time {
	p.inFlight.Add(1)
	return time.Now()
}

// end records a commit that began at t0. loaded says a backup session was
// open during it.
func (p *pressure) end(t0 time.Time, loaded bool) {
	now := time.Now()
	d := now.Sub(t0)
	b := bucketOf(d)
	p.inFlight.Add(-1)
	p.commits.Add(1)
	p.latencySum.Add(uint64(d))
	p.buckets[b].Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Weights decay with time, not per sample: the memory is the same at
	// 10 and at 10,000 commits a second.
	if !p.ewmaAt.IsZero() {
		f := math.Exp(-float64(now.Sub(p.ewmaAt)) / float64(ewmaTau))
		p.ewmaSum, p.ewmaW = p.ewmaSum*f, p.ewmaW*f
	}
	p.ewmaSum += float64(d)
	p.ewmaW++
	p.ewmaAt = now
	if loaded {
		return
	}
	// The unloaded histogram decays at most every 100 ms (192 multiplies).
	if dt := now.Sub(p.idleAt); p.idleAt.IsZero() || dt >= 100*time.Millisecond {
		if !p.idleAt.IsZero() {
			f := math.Exp(-float64(dt) / float64(baselineTau))
			for i := range p.idle {
				p.idle[i] *= f
			}
			p.idleTotal *= f
			p.idleSum *= f
		}
		p.idleAt = now
	}
	p.idle[b]++
	p.idleTotal++
	p.idleSum += float64(d)
}

func (p *pressure) snapshot(backupOpen bool) Pressure {
	s := Pressure{
		Commits:    p.commits.Load(),
		LatencySum: p.latencySum.Load(),
		InFlight:   p.inFlight.Load(),
		BackupOpen: backupOpen,
	}
	n := 0
	var b [PressureBuckets]uint64
	for i := range b {
		if b[i] = p.buckets[i].Load(); b[i] != 0 {
			n = i + 1
		}
	}
	s.Buckets = append([]uint64(nil), b[:n]...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ewmaW > 0 {
		s.EWMA = time.Duration(p.ewmaSum / p.ewmaW)
	}
	if p.idleTotal > 0 {
		s.Baseline = quantile(p.idle[:], 0.5, p.idleTotal)
		s.BaselineMean = time.Duration(p.idleSum / p.idleTotal)
	}
	return s
}

// Pressure returns a snapshot of the group's commit path.
func (g *Group) Pressure() Pressure {
	g.mu.Lock()
	open := g.backup != nil
	g.mu.Unlock()
	return g.pressure.snapshot(open)
}

// bucketOf is the histogram bucket of latency d.
func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 8 {
		return int(us)
	}
	l := bits.Len64(us) // >= 4
	i := (l-3)*8 + int((us>>(l-4))&7)
	return min(i, PressureBuckets-1)
}

// BucketBounds returns the latency range [lo, hi) of bucket i (the last
// bucket also holds everything above it).
func BucketBounds(i int) (lo, hi time.Duration) {
	if i < 8 {
		return time.Duration(i) * time.Microsecond, time.Duration(i+1) * time.Microsecond
	}
	l, sub := i/8+3, i%8
	lo = time.Duration(uint64(8+sub)<<(l-4)) * time.Microsecond
	hi = time.Duration(uint64(9+sub)<<(l-4)) * time.Microsecond
	return lo, hi
}

// PressureWindow describes the commits between two snapshots.
type PressureWindow struct {
	Commits  uint64
	Mean     time.Duration
	P50, P90 time.Duration
	InFlight int64 // at the later snapshot
}

// Window describes the commits made between prev (an earlier snapshot of
// the same group) and p. Snapshots of different runs of the group (p's
// counters below prev's) give an empty window.
func (p Pressure) Window(prev Pressure) PressureWindow {
	w := PressureWindow{InFlight: p.InFlight}
	if p.Commits <= prev.Commits || p.LatencySum < prev.LatencySum || len(p.Buckets) > PressureBuckets {
		return w
	}
	var d [PressureBuckets]float64
	var n float64
	for i, c := range p.Buckets {
		var pc uint64
		if i < len(prev.Buckets) {
			pc = prev.Buckets[i]
		}
		if c < pc {
			return PressureWindow{InFlight: p.InFlight}
		}
		d[i] = float64(c - pc)
		n += d[i]
	}
	w.Commits = p.Commits - prev.Commits
	w.Mean = time.Duration((p.LatencySum - prev.LatencySum) / w.Commits)
	w.P50, w.P90 = quantile(d[:], 0.5, n), quantile(d[:], 0.9, n)
	return w
}

// quantile interpolates the q-quantile of a histogram of n samples within
// its bucket.
func quantile(h []float64, q, n float64) time.Duration {
	rank := q * n
	var cum float64
	for i, c := range h {
		if c > 0 && cum+c >= rank {
			lo, hi := BucketBounds(i)
			f := (rank - cum) / c
			return lo + time.Duration(math.Round(f*float64(hi-lo)))
		}
		cum += c
	}
	return 0
}
