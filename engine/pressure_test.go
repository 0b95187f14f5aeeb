package engine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/ese"
)

func TestPressureBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Microsecond, 4 * time.Microsecond, 7 * time.Microsecond,
		8 * time.Microsecond, 999 * time.Microsecond, time.Millisecond, 1234567 * time.Nanosecond, 40 * time.Millisecond, 3 * time.Second} {
		i := bucketOf(d)
		lo, hi := BucketBounds(i)
		if d.Truncate(time.Microsecond) < lo || d >= hi {
			t.Errorf("%v in bucket %d [%v,%v)", d, i, lo, hi)
		}
		if i >= 8 && float64(hi-lo) > 0.125*float64(lo)+1 {
			t.Errorf("bucket %d [%v,%v) wider than 12.5%%", i, lo, hi)
		}
	}
	for i := 1; i < PressureBuckets; i++ { // contiguous
		_, hi := BucketBounds(i - 1)
		if lo, _ := BucketBounds(i); lo != hi {
			t.Fatalf("bucket %d starts at %v, bucket %d ends at %v", i, lo, i-1, hi)
		}
	}
	if lo, _ := BucketBounds(PressureBuckets - 1); lo < 30*time.Second {
		t.Errorf("the last bucket starts at %v", lo)
	}
	if bucketOf(time.Hour) != PressureBuckets-1 {
		t.Errorf("an hour is not in the last bucket")
	}
}

func TestPressureWindow(t *testing.T) {
	var p pressure
	add := func(n int, d time.Duration) {
		for range n {
			p.end(time.Now().Add(-d), false)
		}
	}
	add(10, 2*time.Millisecond)
	prev := p.snapshot(false)
	add(90, time.Millisecond)
	add(10, 50*time.Millisecond)
	w := p.snapshot(false).Window(prev)
	if w.Commits != 100 {
		t.Fatalf("window of %d commits, want 100", w.Commits)
	}
	// The mean carries the slow tenth, the median does not.
	if w.Mean < 5*time.Millisecond || w.Mean > 7*time.Millisecond {
		t.Errorf("mean %v, want about 5.9ms", w.Mean)
	}
	// Quantiles are as good as the buckets: 1ms is in [960µs,1024µs).
	if w.P50 < 960*time.Microsecond || w.P50 > 1152*time.Microsecond {
		t.Errorf("p50 %v, want about 1ms", w.P50)
	}
	if w.P90 < 960*time.Microsecond || w.P90 > 1152*time.Microsecond {
		t.Errorf("p90 %v, want about 1ms", w.P90)
	}
	// Snapshots of another run of the group say nothing.
	if w := prev.Window(p.snapshot(false)); w.Commits != 0 {
		t.Errorf("reversed window has %d commits", w.Commits)
	}
	// On the wire (the store server) and back.
	b, err := json.Marshal(p.snapshot(false))
	if err != nil {
		t.Fatal(err)
	}
	var back Pressure
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if w2 := back.Window(prev); w2 != w {
		t.Errorf("window after JSON %+v, before %+v", w2, w)
	}
}

func TestPressureBaselineIgnoresBackupCommits(t *testing.T) {
	var p pressure
	for range 50 {
		p.end(time.Now().Add(-time.Millisecond), false)
	}
	s0 := p.snapshot(false)
	base := s0.Baseline
	if base < 960*time.Microsecond || base > 1152*time.Microsecond {
		t.Fatalf("baseline %v, want about 1ms", base)
	}
	if s0.BaselineMean < time.Millisecond || s0.BaselineMean > 1100*time.Microsecond {
		t.Fatalf("baseline mean %v, want about 1ms", s0.BaselineMean)
	}
	for range 500 {
		p.end(time.Now().Add(-20*time.Millisecond), true) // during a backup
	}
	s := p.snapshot(true)
	if s.Baseline != base || s.BaselineMean != s0.BaselineMean {
		t.Errorf("baseline moved to %v (mean %v) by commits made during a backup", s.Baseline, s.BaselineMean)
	}
	if s.EWMA < 10*time.Millisecond {
		t.Errorf("EWMA %v does not follow the recent commits", s.EWMA)
	}
}

// TestGroupPressure commits through a real group: every commit is
// counted, and the commits made while a backup session is open leave the
// baseline alone.
func TestGroupPressure(t *testing.T) {
	g := newTestGroup(t, vfs.OS, t.TempDir(), false)
	defer g.Close()
	put := func(i int) {
		if err := g.Update(func(tx *Tx) error { return tx.Put("Mailbox1", "t", keyN(i), []byte("v")) }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		put(i)
	}
	p0 := g.Pressure()
	if p0.Commits != 20 || p0.Baseline <= 0 || p0.InFlight != 0 || p0.BackupOpen {
		t.Fatalf("after 20 commits: %+v", p0)
	}
	s, err := g.BackupSetup(ese.Copy, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(100 + i)
	}
	p1 := g.Pressure()
	if !p1.BackupOpen || p1.Baseline != p0.Baseline {
		t.Errorf("during the backup: open %v, baseline %v (was %v)", p1.BackupOpen, p1.Baseline, p0.Baseline)
	}
	if w := p1.Window(p0); w.Commits != 5 || w.Mean <= 0 || w.P50 <= 0 {
		t.Errorf("window %+v, want 5 commits", w)
	}
	s.Abort(nil)
	// A transaction with nothing to write commits nothing.
	if err := g.Update(func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if p := g.Pressure(); p.Commits != 25 {
		t.Errorf("%d commits counted, want 25", p.Commits)
	}
}
