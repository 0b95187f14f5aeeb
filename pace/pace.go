// Package pace paces backups so that the store they read keeps its own
// pace: an AIMD controller (as TCP's congestion control) over the read
// rate of one or more pipelines, driven by the commit latency the engine
// measures (engine.Pressure; through the store server for a remote
// source).
//
//	every Interval:   poll each watched group ──► mean latency of its
//	                  commits in the last Window / its unloaded baseline
//	                  = ratio (worst group) ──┬─ <= Tolerance: rate += Step
//	                                          │  (x SlowStart from Start until two
//	                                          │  intervals in a row are halfway to
//	                                          │  Tolerance, or the first decrease)
//	                                          └─ >  Tolerance: rate *= Decrease,
//	                                             or Tolerance/ratio (at least 0.5)
//	                                             (at most every HoldOff)
//	pipelines' read stages ──WaitN──► one rate.Limiter (the shared budget)
//
// Latencies are means over the last second's commits (the engine's
// cumulative counters): a mail client that waits for each commit makes
// 1/mean of them a second, so a mean within Tolerance of the baseline is
// the workload's commit rate within 1/Tolerance of its own. (A median
// ignored the stalls a backup causes: paced by it on this 2-core VM the
// workload kept 0.65-0.70x.) The baseline is the engine's: the mean latency
// of the commits made while no backup session was open (engine.Pressure.
// BaselineMean). A group without one (nothing committed before the backup)
// uses the lowest latency seen since the controller started, which the
// slow start, at its lowest rate, measures first. Every ProbeEvery the
// controller drops to Min for ProbeLen and averages the latency it
// measures there into the baseline, so that a workload that grows heavier
// during a long backup is not mistaken for the backup's doing.
//
// Several backups given the same Controller (backup.RunGroups of several
// groups) share its one limiter and so one budget; the controller watches
// every group and answers the worst. A hard cap (--max-rate) stays each
// pipeline's own limiter. A paced pipeline also compresses on as few
// workers at once as the rate needs (pipeline/gate.go), so that its
// frames do not take every CPU from the store in bursts: the worker count
// follows the rate instead of being a second control. The rate increases
// only while the pipelines read at least half of it, so a pipeline slower
// than its budget (CPU bound, a slow network) grows no limit it would
// later burst into.
package pace

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tapestream/tapestream/engine"
)

// Signal reads a group's commit pressure (engine.Group.Pressure, or the
// store server's /v1/groups/{g}/pressure).
type Signal func(ctx context.Context) (engine.Pressure, error)

// Config tunes a Controller; zero fields take the defaults.
type Config struct {
	// Max caps the rate (bytes per second; 0: no cap but twice the
	// measured read rate).
	Max float64
	// Min is the floor (default 4 MiB/s): the backup always progresses.
	Min float64
	// Start is the first rate (default 8 MiB/s: on a 2-core VM an in-process
	// store felt 18 MB/s; the slow start reaches 128 MiB/s in 1.75 s).
	Start float64
	// Interval is the control period (default 250 ms).
	Interval time.Duration
	// Tolerance is the commit latency, relative to the baseline, above
	// which the rate decreases (default 1.25: a closed-loop workload keeps
	// 1/1.25 = 80% of its commit rate).
	Tolerance float64
	// Decrease multiplies the rate when the latency is above tolerance
	// (default 0.7); Tolerance/ratio does when lower, down to 0.5.
	Decrease float64
	// HoldOff is the least time between decreases, so that one excess is
	// answered once (default 2 intervals).
	HoldOff time.Duration
	// SlowStart multiplies the rate per interval until the first decrease,
	// or until two intervals in a row had a latency halfway to Tolerance
	// (default 1.5).
	SlowStart float64
	// Step is the additive increase per interval (default: 1/32 of the
	// rate at the last decrease or at the end of the slow start, at least
	// Min/4).
	Step float64
	// ProbeEvery is the period of baseline probes (default 30 s; negative:
	// never); ProbeLen their length (default 2 intervals).
	ProbeEvery, ProbeLen time.Duration
	// MinCommits is the least number of commits in an interval that make
	// a latency (default 4); fewer say nothing about the store.
	MinCommits uint64
	// Window is the span of commits whose median latency is compared with
	// the baseline (default 1 s, at least an interval): a longer one
	// answers later, a shorter one follows the noise of a shared machine.
	Window time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

func (c *Config) fill() {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Min, 4<<20)
	def(&c.Start, 8<<20)
	if c.Max > 0 {
		c.Min, c.Start = min(c.Min, c.Max), min(c.Start, c.Max)
	}
	c.Start = max(c.Start, c.Min)
	def(&c.Tolerance, 1.25)
	def(&c.Decrease, 0.7)
	def(&c.SlowStart, 1.5)
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.Window <= 0 {
		c.Window = time.Second
	}
	c.Window = max(c.Window, c.Interval)
	if c.HoldOff <= 0 {
		c.HoldOff = c.Window
	}
	if c.ProbeEvery == 0 {
		c.ProbeEvery = 30 * time.Second
	}
	if c.ProbeLen <= 0 {
		c.ProbeLen = 2 * c.Interval
	}
	if c.MinCommits == 0 {
		c.MinCommits = 4
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// burst is the limiter's bucket: a few of the read stage's 64 KiB chunks,
// so that a paced backup reads smoothly rather than in bursts of frames.
const burst = 256 << 10

// Point is the rate chosen at a time since the controller started. In
// JSON it is {"t_seconds": 1.5, "rate_bytes_per_second": 33554432}: the
// --json contract (docs/json.md) gives durations in seconds.
type Point struct {
	T    time.Duration
	Rate float64
}

type pointJSON struct {
	T    float64 `json:"t_seconds"`
	Rate int64   `json:"rate_bytes_per_second"`
}

func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal(pointJSON{p.T.Seconds(), int64(p.Rate)})
}

func (p *Point) UnmarshalJSON(b []byte) error {
	var v pointJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p.T, p.Rate = time.Duration(math.Round(v.T*float64(time.Second))), float64(v.Rate)
	return nil
}

// maxPoints bounds the series; when full, every other point is dropped.
const maxPoints = 256

// Summary is what a controller did, for the --json summary.
type Summary struct {
	Mode string `json:"mode"` // "auto"
	// Groups the budget was shared by.
	Groups []string `json:"groups"`
	// Series is the rate over time: a point whenever it moved by 10% or
	// more (and the last).
	Series []Point `json:"series"`
	// Rate is the last rate (0: unpaced).
	Rate      float64 `json:"rate_bytes_per_second"`
	Decreases int     `json:"decreases"`
	Probes    int     `json:"probes"`
	// Baselines are the unloaded commit latencies used, per group.
	Baselines []Baseline `json:"baselines"`
	// Ratio is the last commit latency (mean over Window) over its
	// baseline.
	Ratio float64  `json:"latency_ratio"`
	Notes []string `json:"notes,omitempty"`
}

// Baseline is a group's unloaded commit latency.
type Baseline struct {
	Group   string  `json:"group"`
	Seconds float64 `json:"commit_latency_seconds"`
}

// Baseline returns group's baseline commit latency (0: none).
func (s *Summary) Baseline(group string) time.Duration {
	for _, b := range s.Baselines {
		if b.Group == group {
			return time.Duration(math.Round(b.Seconds * float64(time.Second)))
		}
	}
	return 0
}

// Controller paces the read stages given it.
type Controller struct {
	cfg  Config
	lim  *rate.Limiter
	read atomic.Int64 // bytes through Wait

	mu        sync.Mutex
	groups    map[int]*group
	nextID    int
	names     []string
	started   time.Time
	rate      float64
	slow      bool // slow start until the first decrease or its end (decide)
	slowHigh  int  // intervals in a row of the slow start halfway to the tolerance
	step      float64
	ratio     float64 // the last known, over Window
	lastDec   time.Time
	lastProbe time.Time
	probeLeft int     // intervals of the probe still to run at Min
	probeRate float64 // the rate a probe interrupted
	baselines map[string]time.Duration
	lastRead  int64
	lastStep  time.Time
	unpaced   bool // no group could report its pressure
	series    []Point
	decreases int
	probes    int
	notes     []string
	loop      *loop
}

type group struct {
	name    string
	sig     Signal
	hist    []engine.Pressure // the last snapshots, one per interval, spanning Window
	learned time.Duration     // lowest mean seen (when the engine has no baseline)
	probed  time.Duration     // measured by the last probe
	fails   int
	dead    bool
}

type loop struct {
	stop, done chan struct{}
}

// New returns a controller at cfg.Start.
func New(cfg Config) *Controller {
	cfg.fill()
	return &Controller{
		cfg:       cfg,
		lim:       rate.NewLimiter(rate.Limit(cfg.Start), burst),
		groups:    map[int]*group{},
		baselines: map[string]time.Duration{},
		rate:      cfg.Start,
		slow:      true,
	}
}

// Wait blocks until n bytes (at most 256 KiB) may be read.
func (c *Controller) Wait(ctx context.Context, n int) error {
	c.read.Add(int64(n))
	return c.lim.WaitN(ctx, n)
}

// Rate is the current rate in bytes per second (0 once unpaced: no group
// could report its pressure).
func (c *Controller) Rate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unpaced {
		return 0
	}
	if c.probeLeft > 0 {
		return c.cfg.Min
	}
	return c.rate
}

// Note adds a remark to the summary.
func (c *Controller) Note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes = append(c.notes, s)
}

// Watch adds a group's pressure to the controller while one of its
// backups reads; the returned function removes it. The controller runs
// while anything is watched.
func (c *Controller) Watch(name string, sig Signal) (unwatch func()) {
	c.mu.Lock()
	id := c.nextID
	c.nextID++
	c.groups[id] = &group{name: name, sig: sig}
	known := false
	for _, n := range c.names {
		known = known || n == name
	}
	if !known {
		c.names = append(c.names, name)
	}
	if c.started.IsZero() {
		c.started = c.cfg.Now()
		c.lastProbe, c.lastStep = c.started, c.started
		c.record(c.started, true)
	}
	if c.loop == nil {
		l := &loop{stop: make(chan struct{}), done: make(chan struct{})}
		c.loop = l
		go c.run(l)
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.groups, id)
			var l *loop
			if len(c.groups) == 0 {
				l, c.loop = c.loop, nil
				c.record(c.cfg.Now(), true)
			}
			c.mu.Unlock()
			if l != nil {
				close(l.stop)
				<-l.done
			}
		})
	}
}

func (c *Controller) run(l *loop) {
	defer close(l.done)
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			c.Step(ctx)
		}
	}
}

// Step polls every watched group and adjusts the rate once. The
// controller's own loop calls it every Interval; tests call it directly.
func (c *Controller) Step(ctx context.Context) {
	c.mu.Lock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		if !g.dead {
			gs = append(gs, g)
		}
	}
	c.mu.Unlock()
	// Poll outside the lock (a remote group answers over the network).
	type reading struct {
		p   engine.Pressure
		err error
	}
	rs := make([]reading, len(gs))
	for i, g := range gs {
		pctx, cancel := context.WithTimeout(ctx, max(2*c.cfg.Interval, time.Second))
		rs[i].p, rs[i].err = g.sig(pctx)
		cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	worst, worstLast, known := 0.0, 0.0, false
	// The interval that just ended was the last of a probe: it measures
	// the baselines.
	measure := c.probeLeft == 1
	blind := false // a group did not answer: no increase on its silence
	for i, g := range gs {
		r, last, ok := c.observe(g, rs[i].p, rs[i].err, measure)
		if ok {
			worst, worstLast, known = max(worst, r), max(worstLast, last), true
		}
		blind = blind || rs[i].err != nil
	}
	c.decide(now, worst, worstLast, known, blind)
}

// observe takes one reading of g and returns its latency ratio over the
// Window, and over the interval that just ended (0 if it had too few
// commits); ok is false if the window says nothing.
func (c *Controller) observe(g *group, p engine.Pressure, err error, measure bool) (ratio, lastRatio float64, ok bool) {
	if err != nil {
		// A server that does not measure (older than this client) fails
		// every time; a network blip does not.
		if g.fails++; g.fails >= 3 {
			g.dead = true
			c.notes = append(c.notes, fmt.Sprintf("%s: no commit pressure (%v): not paced by it", g.name, err))
		}
		return 0, 0, false
	}
	g.fails = 0
	g.hist = append(g.hist, p)
	if k := int(c.cfg.Window/c.cfg.Interval) + 1; len(g.hist) > k {
		g.hist = append(g.hist[:0], g.hist[len(g.hist)-k:]...)
	}
	if len(g.hist) < 2 {
		return 0, 0, false
	}
	prev := g.hist[len(g.hist)-2]
	last := p.Window(prev) // the interval just ended
	base := g.probed
	if base == 0 {
		base = p.BaselineMean
	}
	if base == 0 {
		base = g.learned
	}
	if last.Commits == 0 && p.InFlight > 0 && prev.InFlight > 0 && base < c.cfg.Interval/4 {
		// Commits waiting and none completing for a whole interval, many
		// times their usual latency: the store is stalled.
		return math.Inf(1), math.Inf(1), true
	}
	if measure && last.Commits >= c.cfg.MinCommits {
		// A probe is one interval of a noisy signal: average them.
		g.probed = last.Mean
		if base > 0 {
			g.probed = (base + last.Mean) / 2
		}
		base = g.probed
	}
	w := p.Window(g.hist[0])
	if w.Commits < c.cfg.MinCommits {
		return 0, 0, false
	}
	if g.learned == 0 || w.Mean < g.learned {
		g.learned = w.Mean
	}
	if base == 0 {
		base = g.learned
	}
	c.baselines[g.name] = base
	if last.Commits >= c.cfg.MinCommits {
		lastRatio = float64(last.Mean) / float64(base)
	}
	return float64(w.Mean) / float64(base), lastRatio, true
}

// decide applies the control law for one interval: ratio is the worst
// group's latency ratio over the Window, last over the interval alone.
func (c *Controller) decide(now time.Time, ratio, last float64, known, blind bool) {
	read := c.read.Load()
	dt := now.Sub(c.lastStep).Seconds()
	readRate := 0.0
	if dt > 0 {
		readRate = float64(read-c.lastRead) / dt
	}
	c.lastRead, c.lastStep = read, now

	if len(c.groups) > 0 && c.allDead() {
		if !c.unpaced {
			c.unpaced = true
			c.notes = append(c.notes, "no group reports its commit pressure: the backup runs unpaced")
			c.setLimit(math.Inf(1))
			c.record(now, false)
		}
		return
	}
	if c.probeLeft > 0 {
		if c.probeLeft--; c.probeLeft == 0 { // resume
			c.rate, c.probeRate = c.probeRate, 0
			c.setLimit(c.rate)
			c.record(now, false)
		}
		return
	}
	if c.cfg.ProbeEvery > 0 && now.Sub(c.lastProbe) >= c.cfg.ProbeEvery {
		c.lastProbe, c.probeRate = now, c.rate
		c.probeLeft = max(int(c.cfg.ProbeLen/c.cfg.Interval), 2)
		c.probes++
		c.setLimit(c.cfg.Min)
		c.record(now, false)
		return
	}
	if known {
		c.ratio = ratio
	}
	// high: the last interval's latency is halfway to the tolerance. Two
	// in a row end the slow start; any other interval the group answered
	// starts the count again.
	high := c.slow && last > 1+(c.cfg.Tolerance-1)/2
	if !high && !blind {
		c.slowHigh = 0
	}
	switch {
	case known && c.ratio > c.cfg.Tolerance:
		if now.Sub(c.lastDec) < c.cfg.HoldOff {
			return
		}
		c.step = c.cfg.Step
		if c.step <= 0 {
			c.step = max(c.rate/32, c.cfg.Min/4)
		}
		// Far above the tolerance the store is far past its knee: one
		// decrease takes the rate back in proportion (down to half), not
		// by Decrease a HoldOff at a time while the store suffers.
		c.rate *= max(min(c.cfg.Decrease, c.cfg.Tolerance/c.ratio), min(0.5, c.cfg.Decrease))
		c.slow = false
		c.lastDec = now
		c.decreases++
	case blind:
		return
	case high:
		// The rate holds, and a second such interval in a row ends the slow
		// start (as TCP's HyStart leaves slow start on a rise in delay),
		// before the mean over the window, a second behind a rate growing
		// x1.5 an interval, passes the tolerance at several times the
		// knee. One interval is a few commits, and on a shared machine
		// one slow fsync would end it at the start rate, from which the
		// additive increase takes many seconds.
		if c.slowHigh++; c.slowHigh >= 2 {
			c.slow = false
			c.step = max(c.rate/32, c.cfg.Min/4)
		}
		return
	case readRate < c.rate/2:
		// The pipelines read at less than half the budget (their own
		// speed, or between files): a larger one would only let them
		// burst later, faster than a decrease can answer.
		return
	default:
		// The store is unaffected (or idle): increase.
		if c.slow {
			c.rate *= c.cfg.SlowStart
		} else {
			c.rate += max(c.step, c.cfg.Min/4, c.cfg.Step)
		}
	}
	c.rate = max(c.rate, c.cfg.Min)
	if c.cfg.Max > 0 {
		c.rate = min(c.rate, c.cfg.Max)
	}
	c.setLimit(c.rate)
	c.record(now, false)
}

func (c *Controller) allDead() bool {
	for _, g := range c.groups {
		if !g.dead {
			return false
		}
	}
	return true
}

func (c *Controller) setLimit(r float64) { c.lim.SetLimit(rate.Limit(r)) }

// record adds the current rate to the series if it moved by 10% since
// the last point (or force). Caller holds c.mu.
func (c *Controller) record(now time.Time, force bool) {
	r := c.rate
	if c.unpaced {
		r = 0
	} else if c.probeLeft > 0 {
		r = c.cfg.Min
	}
	p := Point{T: now.Sub(c.started), Rate: r}
	if n := len(c.series); n > 0 && !force {
		last := c.series[n-1].Rate
		if math.Abs(r-last) < 0.1*last {
			return
		}
	}
	if len(c.series) >= maxPoints {
		kept := c.series[:0]
		for i, q := range c.series {
			if i%2 == 0 {
				kept = append(kept, q)
			}
		}
		c.series = kept
	}
	c.series = append(c.series, p)
}

// Summary describes what the controller did so far.
func (c *Controller) Summary() *Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &Summary{Mode: "auto", Groups: append([]string(nil), c.names...), Series: append([]Point(nil), c.series...),
		Rate: c.rate, Decreases: c.decreases, Probes: c.probes, Ratio: c.ratio, Notes: append([]string(nil), c.notes...),
		Baselines: []Baseline{}}
	if c.unpaced {
		s.Rate = 0
	}
	for n, b := range c.baselines {
		s.Baselines = append(s.Baselines, Baseline{Group: n, Seconds: b.Seconds()})
	}
	slices.SortFunc(s.Baselines, func(a, b Baseline) int { return strings.Compare(a.Group, b.Group) })
	return s
}
