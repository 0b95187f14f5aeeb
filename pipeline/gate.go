package pipeline

import (
	"math"
	"sync"

	"github.com/tapestream/tapestream/pace"
)

// gate bounds how many workers compress at once while the backup is
// paced: as many as the pace needs (its rate over what one worker
// compresses in a busy second, as measured so far, with half again to
// spare), at least one. A paced backup whose every worker compresses a
// frame at the same moment takes every CPU from the store for that
// moment (in process, every P of the Go scheduler: the store's committers
// wait for a worker's time slice); on fewer workers the store keeps a CPU
// of its own between the backup's frames, for the same bytes per second.
type gate struct {
	mu     sync.Mutex
	cond   sync.Cond
	active int
	max    int
	pace   *pace.Controller
	st     *StageStats
}

func newGate(pc *pace.Controller, workers int, st *StageStats) *gate {
	g := &gate{max: workers, pace: pc, st: st}
	g.cond.L = &g.mu
	return g
}

// limit is the number of workers the current pace needs.
func (g *gate) limit() int {
	r := g.pace.Rate()
	if r <= 0 { // unpaced (no pressure to follow)
		return g.max
	}
	busy, in := g.st.Busy.Load(), g.st.BytesIn.Load()
	if busy <= 0 || in <= 0 {
		return 1 // the first frames: the pace starts low
	}
	perWorker := float64(in) / (float64(busy) / 1e9)
	return min(max(int(math.Ceil(1.5*r/perWorker)), 1), g.max)
}

func (g *gate) acquire() {
	g.mu.Lock()
	for g.active >= g.limit() {
		g.cond.Wait() // bounded: a holder releases after one frame
	}
	g.active++
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	g.active--
	g.mu.Unlock()
	g.cond.Broadcast()
}
