package pace

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
)

const mb = 1e6

// fakeStore is a group whose median commit latency is a function of the
// rate the backup reads at (the pressure signal a real store gives,
// without a store).
type fakeStore struct {
	mu      sync.Mutex
	p       engine.Pressure
	latency func(rate float64) time.Duration // nil: no commits
	stalled bool                             // commits waiting, none completing
	perStep uint64                           // commits per interval
	// tail, if set, makes a fifth of the commits that slow instead (the
	// stalls a backup causes: the median does not move, the mean does).
	tail     func(rate float64) time.Duration
	fail     error
	baseline time.Duration // what the engine reports
}

func bucket(d time.Duration) int {
	for i := range engine.PressureBuckets {
		if _, hi := engine.BucketBounds(i); d < hi {
			return i
		}
	}
	return engine.PressureBuckets - 1
}

// advance commits one interval's worth at rate.
func (f *fakeStore) advance(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.p.InFlight = 0
	if f.stalled {
		f.p.InFlight = 8
		return
	}
	if f.latency == nil {
		return
	}
	add := func(n uint64, d time.Duration) {
		b := append([]uint64(nil), f.p.Buckets...)
		for len(b) <= bucket(d) {
			b = append(b, 0)
		}
		b[bucket(d)] += n
		f.p.Buckets = b
		f.p.Commits += n
		f.p.LatencySum += n * uint64(d)
	}
	if f.tail == nil {
		add(f.perStep, f.latency(rate))
		return
	}
	add(f.perStep-f.perStep/5, f.latency(rate))
	add(f.perStep/5, f.tail(rate))
}

func (f *fakeStore) signal(context.Context) (engine.Pressure, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return engine.Pressure{}, f.fail
	}
	p := f.p
	p.Baseline, p.BaselineMean = f.baseline, f.baseline
	p.BackupOpen = true
	return p, nil
}

// sim drives a controller on a fake clock: each step the pipelines read
// at the controller's rate (or at most cap), then the stores commit.
type sim struct {
	t      *testing.T
	c      *Controller
	now    time.Time
	stores []*fakeStore
	cap    float64 // the pipeline's own speed (0: unlimited)
	rates  []float64
}

func newSim(t *testing.T, cfg Config, stores ...*fakeStore) *sim {
	s := &sim{t: t, now: time.Unix(1e9, 0), stores: stores}
	cfg.Now = func() time.Time { return s.now }
	s.c = New(cfg)
	for i, st := range stores {
		// Watch starts the controller's own loop: stop it at once and
		// keep the group, so the test alone steps the controller.
		s.c.mu.Lock()
		s.c.groups[100+i] = &group{name: "SG" + string(rune('1'+i)), sig: st.signal}
		s.c.names = append(s.c.names, "SG"+string(rune('1'+i)))
		s.c.started, s.c.lastProbe, s.c.lastStep = s.now, s.now, s.now
		s.c.mu.Unlock()
	}
	return s
}

func (s *sim) run(steps int) {
	for range steps {
		r := s.c.Rate()
		if r == 0 {
			r = math.Inf(1)
		}
		read := r
		if s.cap > 0 {
			read = min(r, s.cap)
		}
		if math.IsInf(read, 1) {
			read = 1e12
		}
		iv := s.c.cfg.Interval
		s.c.read.Add(int64(read * iv.Seconds()))
		for _, st := range s.stores {
			st.advance(read)
		}
		s.now = s.now.Add(iv)
		s.c.Step(context.Background())
		s.rates = append(s.rates, s.c.Rate())
	}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// knee is a store whose latency grows linearly with the backup's rate:
// base at rate 0, 1.25 x base at quarter.
func knee(base time.Duration, quarter float64) func(float64) time.Duration {
	return func(r float64) time.Duration {
		return time.Duration(float64(base) * (1 + 0.25*r/quarter))
	}
}

func TestConvergesToTolerance(t *testing.T) {
	st := &fakeStore{perStep: 500, baseline: 2 * time.Millisecond, latency: knee(2*time.Millisecond, 40*mb)}
	s := newSim(t, Config{ProbeEvery: -1}, st)
	s.run(400) // 100 s
	tail := s.rates[200:]
	m := mean(tail)
	// The controller settles where the latency reaches 1.25 x baseline
	// (40 MB/s) and oscillates below it (AIMD's saw tooth).
	t.Logf("mean %.1f MB/s, %d decreases", m/mb, s.c.Summary().Decreases)
	if m < 20*mb || m > 44*mb {
		t.Errorf("mean rate %.1f MB/s over the last 50 s, want 20-44 (the knee at 40)", m/mb)
	}
	sum := s.c.Summary()
	if sum.Decreases < 3 {
		t.Errorf("%d decreases: no saw tooth", sum.Decreases)
	}
	if b := float64(sum.Baseline("SG1")) / float64(time.Millisecond); math.Abs(b-2) > 0.3 {
		t.Errorf("baseline %.2f ms, want the engine's 2", b)
	}
}

func TestIdleStoreRunsAtCap(t *testing.T) {
	st := &fakeStore{} // no commits at all: nothing to protect
	s := newSim(t, Config{Max: 300 * mb, ProbeEvery: -1}, st)
	s.run(20)
	if r := s.c.Rate(); r != 300*mb {
		t.Errorf("rate %.1f MB/s, want the cap 300", r/mb)
	}
	for _, r := range s.rates {
		if r > 300*mb {
			t.Fatalf("rate %.1f MB/s above the cap", r/mb)
		}
	}
}

func TestOverloadedStoreHoldsTheFloor(t *testing.T) {
	st := &fakeStore{perStep: 100, baseline: time.Millisecond, latency: func(float64) time.Duration { return 10 * time.Millisecond }}
	s := newSim(t, Config{Min: 2 * mb, ProbeEvery: -1}, st)
	s.run(60)
	if r := s.c.Rate(); r != 2*mb {
		t.Errorf("rate %.1f MB/s, want the floor 2", r/mb)
	}
}

func TestStalledStoreDecreases(t *testing.T) {
	st := &fakeStore{perStep: 100, baseline: time.Millisecond, latency: func(float64) time.Duration { return time.Millisecond }}
	s := newSim(t, Config{ProbeEvery: -1}, st)
	s.run(10)
	before := s.c.Rate()
	st.stalled = true
	s.run(16) // a decrease a second (HoldOff = Window)
	if r := s.c.Rate(); r >= before*0.5 {
		t.Errorf("rate %.1f MB/s after a stall, was %.1f", r/mb, before/mb)
	}
}

// TestSlowPipelineBanksNoBudget: a pipeline slower than its budget (CPU
// bound) keeps the limit near what it reads, so that it cannot burst when
// it speeds up.
func TestSlowPipelineBanksNoBudget(t *testing.T) {
	st := &fakeStore{}
	s := newSim(t, Config{ProbeEvery: -1}, st)
	s.cap = 50 * mb
	s.run(40)
	if r := s.c.Rate(); r > 3*50*mb {
		t.Errorf("rate %.1f MB/s for a pipeline reading 50", r/mb)
	}
}

// TestSharedBudgetAnswersWorstGroup: two groups through one controller;
// one is idle, the other loaded: the budget follows the loaded one.
func TestSharedBudgetAnswersWorstGroup(t *testing.T) {
	idle := &fakeStore{}
	loaded := &fakeStore{perStep: 500, baseline: 2 * time.Millisecond, latency: knee(2*time.Millisecond, 40*mb)}
	s := newSim(t, Config{ProbeEvery: -1}, idle, loaded)
	s.run(400)
	if m := mean(s.rates[200:]); m > 44*mb {
		t.Errorf("mean rate %.1f MB/s, want at most the loaded group's knee (40)", m/mb)
	}
	if got := s.c.Summary().Groups; len(got) != 2 {
		t.Errorf("summary groups %v", got)
	}
}

// TestProbeFollowsHeavierWorkload: the engine's baseline was taken when
// the store was quieter; the workload grew heavier since. Without probes
// the backup crawls at the floor; with them it learns the new baseline.
func TestProbeFollowsHeavierWorkload(t *testing.T) {
	heavier := func(r float64) time.Duration { return knee(4*time.Millisecond, 40*mb)(r) }
	noProbe := newSim(t, Config{ProbeEvery: -1}, &fakeStore{perStep: 500, baseline: time.Millisecond, latency: heavier})
	noProbe.run(400)
	probe := newSim(t, Config{ProbeEvery: 10 * time.Second}, &fakeStore{perStep: 500, baseline: time.Millisecond, latency: heavier})
	probe.run(400)
	a, b := mean(noProbe.rates[200:]), mean(probe.rates[200:])
	t.Logf("no probe %.1f, probe %.1f MB/s", a/mb, b/mb)
	if a > 5*mb {
		t.Errorf("without probes %.1f MB/s, expected the floor", a/mb)
	}
	if b < 15*mb || b > 55*mb {
		t.Errorf("with probes %.1f MB/s, expected near the knee (40)", b/mb)
	}
	sum := probe.c.Summary()
	if sum.Probes < 5 || sum.Baseline("SG1") < 3*time.Millisecond {
		t.Errorf("probes %d, baseline %v (want about 4ms)", sum.Probes, sum.Baseline("SG1"))
	}
}

func TestNoSignalRunsUnpaced(t *testing.T) {
	st := &fakeStore{fail: errors.New("404 page not found")}
	s := newSim(t, Config{}, st)
	s.run(3) // three tries: a network blip is not an old server
	if r := s.c.Rate(); r != 0 {
		t.Errorf("rate %.1f MB/s without a signal, want 0 (unpaced)", r/mb)
	}
	if !math.IsInf(float64(s.c.lim.Limit()), 1) {
		t.Errorf("limiter at %v", s.c.lim.Limit())
	}
	notes := strings.Join(s.c.Summary().Notes, "; ")
	if !strings.Contains(notes, "SG1: no commit pressure (404 page not found)") || !strings.Contains(notes, "unpaced") {
		t.Errorf("notes: %s", notes)
	}
}

func TestSeriesIsCompact(t *testing.T) {
	st := &fakeStore{perStep: 500, baseline: 2 * time.Millisecond, latency: knee(2*time.Millisecond, 40*mb)}
	s := newSim(t, Config{ProbeEvery: 5 * time.Second}, st)
	s.run(4 * 3600) // an hour
	sum := s.c.Summary()
	if len(sum.Series) > maxPoints || len(sum.Series) < 10 {
		t.Fatalf("%d points", len(sum.Series))
	}
	for i := 1; i < len(sum.Series); i++ {
		if sum.Series[i].T < sum.Series[i-1].T {
			t.Fatalf("series out of order at %d", i)
		}
	}
	if last := sum.Series[len(sum.Series)-1].T; last < 50*time.Minute {
		t.Errorf("series ends at %v of an hour", last)
	}
	b, err := json.Marshal(sum.Series[:2])
	if err != nil {
		t.Fatal(err)
	}
	var pairs []struct {
		T    float64 `json:"t_seconds"`
		Rate int64   `json:"rate_bytes_per_second"`
	}
	if err := json.Unmarshal(b, &pairs); err != nil || len(pairs) != 2 || pairs[0].Rate != int64(sum.Series[0].Rate) || pairs[1].T != sum.Series[1].T.Seconds() {
		t.Errorf("series on the wire: %s (%v)", b, err)
	}
	var back []Point
	if err := json.Unmarshal(b, &back); err != nil || back[1].T != sum.Series[1].T {
		t.Errorf("series back: %v (%v)", back, err)
	}
}

// TestWatchRunsTheLoop: the controller's own loop runs while a group is
// watched and stops with the last; Wait paces real reads (race detector).
func TestWatchRunsTheLoop(t *testing.T) {
	c := New(Config{Interval: 5 * time.Millisecond, Start: 64 << 20})
	var mu sync.Mutex
	polls := 0
	sig := func(context.Context) (engine.Pressure, error) {
		mu.Lock()
		defer mu.Unlock()
		polls++
		return engine.Pressure{}, nil
	}
	stop1 := c.Watch("SG1", sig)
	stop2 := c.Watch("SG2", sig)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := c.Wait(context.Background(), 64<<10); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(30 * time.Millisecond)
	stop1()
	stop2()
	stop2() // idempotent
	mu.Lock()
	n := polls
	mu.Unlock()
	if n < 2 {
		t.Errorf("%d polls", n)
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if polls != n {
		t.Errorf("polled %d times after the last unwatch", polls-n)
	}
	if r := c.Rate(); r <= 64<<20 {
		t.Errorf("rate %.0f did not grow on an idle store", r)
	}
}

// TestStallsCountThoughTheMedianHolds: the backup leaves most commits as
// fast as before but stalls a fifth of them, longer the faster it reads.
// A closed-loop client feels the mean: the controller must too.
func TestStallsCountThoughTheMedianHolds(t *testing.T) {
	base := 2 * time.Millisecond
	st := &fakeStore{perStep: 500, baseline: base, latency: func(float64) time.Duration { return base },
		tail: func(r float64) time.Duration { return time.Duration(float64(base) * (1 + 5*r/(40*mb))) }}
	s := newSim(t, Config{ProbeEvery: -1}, st)
	s.run(400)
	// mean = base * (1 + r/40MB): 1.25x at 10 MB/s.
	if m := mean(s.rates[200:]); m > 12*mb {
		t.Errorf("mean rate %.1f MB/s, want at most the 10 where the mean latency reaches 1.25x", m/mb)
	}
}

// TestSlowStartLeavesBeforeTheKnee: a backup of a few seconds is mostly
// its start. The slow start begins low (8 MiB/s) and ends when two
// intervals in a row had a latency halfway to the tolerance, as TCP's
// HyStart leaves slow start on a rise in delay, rather than when the mean
// over the window, a second behind a rate growing x1.5 an interval,
// passes the tolerance. Before, a store whose knee is 15 MB/s (an in-process store
// on a 2-core VM felt 18 MB/s) got 50 MB/s, then 35, 25 and 17, a second
// each: 3.5 of the first 10 s far above its knee. A store with room still
// gets its rate within a few seconds.
func TestSlowStartLeavesBeforeTheKnee(t *testing.T) {
	for _, knee_ := range []float64{15 * mb, 40 * mb, 120 * mb} {
		st := &fakeStore{perStep: 500, baseline: 2 * time.Millisecond, latency: knee(2*time.Millisecond, knee_)}
		s := newSim(t, Config{ProbeEvery: -1}, st)
		s.run(40) // 10 s
		peak, over := 0.0, 0
		for _, r := range s.rates {
			peak = max(peak, r)
			if r > 1.2*knee_ {
				over++
			}
		}
		m := mean(s.rates)
		t.Logf("knee %.0f MB/s, first 10 s: peak %.1f MB/s, mean %.1f, %d of %d intervals above 1.2 x the knee", knee_/mb, peak/mb, m/mb, over, len(s.rates))
		if peak > 1.33*knee_ || over > 2 {
			t.Errorf("knee %.0f MB/s: slow start overshoots: peak %.1f MB/s, %d of %d intervals above 1.2 x the knee", knee_/mb, peak/mb, over, len(s.rates))
		}
		if m < 0.6*knee_ {
			t.Errorf("knee %.0f MB/s: mean rate %.1f MB/s over the first 10 s: the start is too slow", knee_/mb, m/mb)
		}
	}
}

// TestSlowStartEndsOnTwoHighIntervalsInARow: an interval that is not
// halfway to the tolerance between two that are breaks the run, also when
// the pipelines read below the budget (nothing read here), where the rate
// holds instead of growing.
func TestSlowStartEndsOnTwoHighIntervalsInARow(t *testing.T) {
	now := time.Unix(0, 0)
	c := New(Config{ProbeEvery: -1, Now: func() time.Time { return now }})
	high := 1 + (c.cfg.Tolerance-1)*0.75
	step := func(last float64) {
		now = now.Add(c.cfg.Interval)
		c.decide(now, 1, last, true, false)
	}
	step(high)
	step(1)
	step(high)
	if !c.slow {
		t.Fatal("the slow start ended on two high intervals that were not in a row")
	}
	step(high)
	if c.slow {
		t.Fatal("the slow start did not end on two high intervals in a row")
	}
	if c.step <= 0 {
		t.Errorf("no additive step after the slow start: %v", c.step)
	}
}
