package pipeline

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/internal/fakesource"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// pressured is a fake session whose store reports an idle commit path.
type pressured struct {
	*fakesource.Session
	polls atomic.Int64
}

func (p *pressured) Pressure(context.Context) (engine.Pressure, error) {
	p.polls.Add(1)
	return engine.Pressure{}, nil
}

// TestPaceSharesOneBudget: two pipelines given one controller read
// through its one limiter (the budget of both, not each), watch their
// groups while they run, and still write every byte in order.
func TestPaceSharesOneBudget(t *testing.T) {
	const rate = 1 << 20
	pc := pace.New(pace.Config{Start: rate, Min: rate, Max: rate, Interval: 10 * time.Millisecond})
	var wg sync.WaitGroup
	sess := []*pressured{{Session: fakesource.New()}, {Session: fakesource.New()}}
	total := 0
	for _, s := range sess {
		total += len(s.Files["A.edb"]) + len(s.Files["B.edb"])
	}
	t0 := time.Now()
	for _, s := range sess {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set, _, err := runSession(context.Background(), s, Options{Codec: codec.Codec{Kind: codec.Zstd}, Workers: 2, Pace: pc})
			if err != nil {
				t.Error(err)
				return
			}
			got := readBack(t, set)
			for _, n := range s.Order {
				if !bytes.Equal(got[n], s.Files[n]) {
					t.Errorf("%s differs after the round trip", n)
				}
			}
		}()
	}
	wg.Wait()
	// One budget for both: at least (total - the limiter's burst) / rate.
	if el, least := time.Since(t0), time.Duration(float64(total-256<<10)/rate*float64(time.Second)); el < least*9/10 {
		t.Errorf("%d bytes at a shared 1 MiB/s took %v, less than %v", total, el, least)
	}
	for i, s := range sess {
		if s.polls.Load() == 0 {
			t.Errorf("session %d: its pressure was never read", i)
		}
	}
}

func TestPaceWithoutPressureIsUnpaced(t *testing.T) {
	pc := pace.New(pace.Config{Start: 1, Min: 1, Max: 1}) // 1 byte/s: would never finish
	if _, _, err := run(context.Background(), fakesource.New(), Options{Codec: codec.Codec{Kind: codec.LZ4}, Pace: pc}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Join(pc.Summary().Notes, ";"); !strings.Contains(n, "reports no commit pressure: not paced") {
		t.Errorf("notes: %q", n)
	}
}

// TestGateRunsAsFewWorkersAsThePaceNeeds: at 10 MB/s, with a worker
// compressing 100 MB a busy second, one worker at a time; at 1000 MB/s,
// all of them.
func TestGateRunsAsFewWorkersAsThePaceNeeds(t *testing.T) {
	for _, c := range []struct {
		rate float64
		want int
	}{{10e6, 1}, {100e6, 2}, {1000e6, 4}} {
		pc := pace.New(pace.Config{Start: c.rate, Max: c.rate, Min: c.rate})
		var st StageStats
		st.BytesIn.Store(100e6)
		st.Busy.Store(int64(time.Second))
		g := newGate(pc, 4, &st)
		if n := g.limit(); n != c.want {
			t.Errorf("at %.0f MB/s: %d workers, want %d", c.rate/1e6, n, c.want)
		}
		var active, most atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					g.acquire()
					n := active.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(100 * time.Microsecond)
					active.Add(-1)
					g.release()
				}
			}()
		}
		wg.Wait()
		if int(most.Load()) > c.want {
			t.Errorf("at %.0f MB/s: %d workers at once, limit %d", c.rate/1e6, most.Load(), c.want)
		}
	}
}
