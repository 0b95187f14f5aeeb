package engine

// Process crash tests: a child process (this test binary re-executed with
// TS_CRASH_DIR set) runs the mail workload against a real storage group on
// disk and is SIGKILLed at a random point; the parent then opens the group
// (crash recovery), runs Group.Check and verifies the workload model with
// the acknowledgements the child printed.
//
// The tests live in package engine (not engine_test) so they can reach the
// group's internals; engine/mailstore imports engine, so they use the same
// three-line adapter (wlStore) instead.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapestream/tapestream/workload"
)

var (
	crashIterations = flag.Int("crash.iterations", 50, "iterations of TestCrashKill (SIGKILLed child processes)")
	crashSeed       = flag.Uint64("crash.seed", 0, "seed of TestCrashKill's random choices (0: time based, logged)")
	crashMaxDelay   = flag.Duration("crash.maxdelay", 300*time.Millisecond, "longest time a crash child runs its workload before SIGKILL")
)

// wlStore adapts a Group to workload.Store (as engine/mailstore does).
type wlStore struct{ g *Group }

func (s wlStore) Update(fn func(workload.Tx) error) error {
	return s.g.Update(func(tx *Tx) error { return fn(tx) })
}

func (s wlStore) View(fn func(workload.Tx) error) error {
	return s.g.View(func(tx *Tx) error { return fn(tx) })
}

var _ workload.Store = wlStore{}

// Crash test group layout: small log files so that rollovers happen often,
// a small cache so that the flusher, evictions and checkpoints run all the
// time.
const (
	crashLogSize   = 128 << 10
	crashCacheSize = 1 << 20
	crashStreams   = 4
)

func crashGroupConfig() GroupConfig {
	return GroupConfig{Name: "SG1", LogSize: crashLogSize, Databases: []DBConfig{{Name: "Mailbox1", Streaming: true}, {Name: "Public"}}}
}

// abandon stops g like a killed process would: the flusher stops, files
// are closed, nothing is flushed and no header is marked clean, so the next
// open runs recovery again.
func (g *Group) abandon() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	close(g.stopC)
	g.flushWG.Wait()
	g.mu.Lock()
	g.closed = true
	if g.fatal == nil {
		g.fatal = errors.New("abandoned by test")
	}
	g.mu.Unlock()
	if g.log != nil {
		g.log.Close()
	}
	g.closeFiles()
}

// TestCrashChild is the child process of TestCrashKill; it does nothing
// unless TS_CRASH_DIR is set. It prints "R" once the group is open, then
// "S stream seq" before submitting a transaction and "A stream seq" once
// its commit was acknowledged, one write(2) per line.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("TS_CRASH_DIR")
	if dir == "" {
		t.Skip("crash test child process only (run by TestCrashKill)")
	}
	seed, _ := strconv.ParseUint(os.Getenv("TS_CRASH_SEED"), 10, 64)
	var mu sync.Mutex
	out := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		mu.Lock()
		os.Stdout.WriteString(line)
		mu.Unlock()
	}
	g, err := OpenGroup(dir, Options{CacheSize: crashCacheSize, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintf(os.Stderr, "crash child: open: %v\n", err)
		os.Exit(3)
	}
	out("R")
	_, err = workload.Run(context.Background(), wlStore{g}, workload.RunOptions{
		Workload: workload.Workload{Seed: seed, Streams: crashStreams},
		OnStart:  func(s int, seq uint64) { out("S %d %d", s, seq) },
		OnCommit: func(s int, seq uint64) { out("A %d %d", s, seq) },
	})
	fmt.Fprintf(os.Stderr, "crash child: workload stopped: %v\n", err)
	os.Exit(4)
}

// crashRun is what one child printed before it died.
type crashRun struct {
	ready   bool
	started map[int]uint64
	acked   map[int]uint64
	lines   int
}

// runCrashChild starts a child on dir and SIGKILLs it: with early, delay
// after starting the process (possibly during recovery), else delay after
// it reported the group open.
func runCrashChild(t *testing.T, dir string, seed uint64, early bool, delay time.Duration) crashRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TS_CRASH_DIR="+dir, "TS_CRASH_SEED="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res := crashRun{started: map[int]uint64{}, acked: map[int]uint64{}}
	readyC := make(chan struct{})
	doneC := make(chan error, 1)
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				// A line without its newline was cut by the kill: ignore it.
				if err == io.EOF {
					err = nil
				}
				doneC <- err
				return
			}
			res.lines++
			f := strings.Fields(line)
			switch {
			case len(f) == 1 && f[0] == "R":
				res.ready = true
				close(readyC)
			case len(f) == 3 && (f[0] == "S" || f[0] == "A"):
				s, err1 := strconv.Atoi(f[1])
				seq, err2 := strconv.ParseUint(f[2], 10, 64)
				if err1 != nil || err2 != nil {
					doneC <- fmt.Errorf("bad line from child: %q", line)
					return
				}
				m := res.started
				if f[0] == "A" {
					m = res.acked
				}
				m[s] = max(m[s], seq)
			default:
				// Test framework output: ignore.
			}
		}
	}()
	exited := make(chan struct{})
	if early {
		select {
		case <-time.After(delay):
		case <-exited:
		}
	} else {
		select {
		case <-readyC:
			time.Sleep(delay)
		case err := <-doneC:
			cmd.Wait()
			t.Fatalf("crash child ended before opening the group (%v): %s", err, stderr.String())
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("crash child did not open the group within 60s: %s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	rerr := <-doneC
	werr := cmd.Wait()
	if rerr != nil {
		t.Fatal(rerr)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("crash child did not die by SIGKILL (%v): %s", werr, stderr.String())
	}
	return res
}

// TestCrashKill: after every SIGKILL, recovery yields a store that passes
// Group.Check, holds every acknowledged commit and no transaction that was
// never started (the one transaction per stream that was in flight may or
// may not be there: its log records may have reached the file; the model
// check proves it is there entirely or not at all). The same store is
// reused across iterations (recovery on top of recovery: the parent
// abandons the group after checking it half of the time instead of closing
// it cleanly, and some children are killed while they are still
// recovering); every tenth iteration starts a fresh store.
func TestCrashKill(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash seed %d (rerun with -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	root := t.TempDir()
	var (
		dir      string
		wlSeed   uint64
		acked    map[int]uint64 // lower bounds of the committed seqs
		started  map[int]uint64 // upper bounds
		stores   int
		grown    uint64
		prevSeqs map[int]uint64
		replays  int
		t0       = time.Now()
	)
	for it := 0; it < *crashIterations; it++ {
		if dir == "" || it%10 == 0 {
			stores++
			dir = filepath.Join(root, fmt.Sprintf("sg%d", stores))
			if err := CreateGroup(dir, crashGroupConfig(), Options{}); err != nil {
				t.Fatal(err)
			}
			wlSeed = rng.Uint64()
			acked, started, prevSeqs = map[int]uint64{}, map[int]uint64{}, map[int]uint64{}
		}
		early := rng.IntN(10) == 0
		var delay time.Duration
		if early {
			delay = time.Duration(rng.Int64N(int64(80 * time.Millisecond)))
		} else {
			delay = 5*time.Millisecond + time.Duration(rng.Int64N(int64(*crashMaxDelay)))
		}
		run := runCrashChild(t, dir, wlSeed, early, delay)
		for s, n := range run.acked {
			acked[s] = max(acked[s], n)
		}
		for s, n := range run.started {
			started[s] = max(started[s], n)
		}

		g, err := OpenGroup(dir, Options{CacheSize: 4 << 20})
		if err != nil {
			t.Fatalf("iteration %d (store %d, early %v, delay %v): recovery: %v", it, stores, early, delay, err)
		}
		if !g.Recovery().Clean {
			replays++
		}
		r, err := g.Check()
		if err != nil {
			t.Fatalf("iteration %d: check: %v", it, err)
		}
		if !r.OK() {
			t.Fatalf("iteration %d (store %d): check found %d problems:\n  %s", it, stores, len(r.Problems), strings.Join(r.Problems, "\n  "))
		}
		rep, err := workload.VerifyAtLeast(context.Background(), wlStore{g}, acked, started)
		switch {
		case errors.Is(err, workload.ErrNoParams):
			// The parameters' transaction was in flight: nothing can have
			// been acknowledged.
			if len(acked) > 0 {
				t.Fatalf("iteration %d: workload parameters lost although commits were acknowledged: %v", it, acked)
			}
		case err != nil:
			t.Fatalf("iteration %d: verify: %v", it, err)
		case !rep.OK():
			t.Fatalf("iteration %d (store %d, early %v, delay %v, acked %v, started %v): %v", it, stores, early, delay, acked, started, rep.Err())
		default:
			// What recovery produced is durable now: later recoveries must
			// keep it, and nothing beyond it was started.
			for s, n := range rep.Seqs {
				grown += n - prevSeqs[s]
				acked[s], started[s], prevSeqs[s] = n, n, n
			}
		}
		if rng.IntN(2) == 0 {
			if err := g.Close(); err != nil {
				t.Fatalf("iteration %d: close: %v", it, err)
			}
		} else {
			g.abandon()
		}
	}
	t.Logf("%d iterations on %d stores in %v: %d recoveries replayed log records, %d transactions committed in total", *crashIterations, stores, time.Since(t0).Round(time.Millisecond), replays, grown)
}
