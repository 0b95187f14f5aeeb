package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/storeapi"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

// onlineResult is the online impact: the mail workload's commit rate
// alone, during an unpaced full backup and during a full backup paced by
// --pace auto (zstd:fastest, all workers, to a file), in three settings:
// in process, through the store server, and two groups at once.
type onlineResult struct {
	Scenarios []*onlineScenario
	Workers   int
	Window    time.Duration
	// Caps are fractions of the unpaced speed: each run also backs up
	// with --max-rate at that fraction of the run's unpaced MB/s, which
	// says what a fixed rate costs the workload on this machine, whatever
	// a controller would choose.
	Caps []float64
}

// onlineScenario is one setting's runs (one value per run).
type onlineScenario struct {
	Name                   string
	Alone, Unpaced, Paced  []float64 // workload commits per second
	UnpacedMBps, PacedMBps []float64 // the backup's throughput under load
	PacedRate              []float64 // the median pace chosen (MB/s)
	// Capped[i] and CappedMBps[i] are the legs capped at Caps[i].
	Capped, CappedMBps [][]float64
	Err                error
}

// backupLeg is one backup of an online run: paced by --pace auto, capped
// by --max-rate (bytes per second), or neither.
type backupLeg struct {
	paced   bool
	maxRate int64
}

// onlinePhase runs on copies of the store (the workload changes them) and
// returns the recovery rows, which restore and replay the set the last
// unpaced in-process backup wrote (its logs hold the transactions
// committed while it ran).
func onlinePhase(ctx context.Context, c *config, st *storeInfo) (*onlineResult, []*row, error) {
	res := &onlineResult{Workers: c.Workers, Window: c.Online, Caps: c.OnlineCaps}
	set := filepath.Join(c.Work, "sets", "online.tset")
	same := func() (string, error) { return st.Dir, nil }
	scenarios := []struct {
		name  string
		store func() (string, error) // the store every leg copies
		open  func(from string) (*leg, error)
	}{
		// In process: the embedded store is locked to one process, so
		// the workload and the backup run in this one.
		{"in process", same, func(from string) (*leg, error) { return openInProcess(ctx, c, from, []string{"SG1"}, set) }},
		// Through the store server: `store serve` in a child process,
		// the workload over its data API from this one, the backup a
		// child process (`backup --server`).
		{"through the store server", same, func(from string) (*leg, error) { return openServer(ctx, c, from) }},
		// Two groups at once, each half the size, in process: one
		// RunGroups call, one pace for both.
		{"two groups at once (in process)", func() (string, error) { return ensureTwoGroupStore(c, st.Size) },
			func(from string) (*leg, error) { return openInProcess(ctx, c, from, []string{"SG1", "SG2"}, "") }},
	}
	var recErr error
	for i, s := range scenarios {
		sc := &onlineScenario{Name: s.name}
		res.Scenarios = append(res.Scenarios, sc)
		from, err := s.store()
		sc.Err = err
		for r := 0; r < c.Runs && sc.Err == nil; r++ {
			sc.Err = sc.measure(ctx, c, r, func() (*leg, error) { return s.open(from) })
		}
		if sc.Err != nil {
			logf("online impact, %s: %v", sc.Name, sc.Err)
		}
		if i == 0 {
			recErr = sc.Err
		}
	}
	if recErr != nil {
		return res, nil, recErr
	}
	return res, recoveryRows(c, set), nil
}

// leg is one leg of an online run on its own copy of the store: the
// workload's stores, a backup of every group, and what ends it (the
// copy is removed).
type leg struct {
	stores []workload.Store
	backup func(backupLeg) (in int64, pace float64, err error)
	close  func()
}

// copyStore copies the store from into a fresh work directory. Every leg
// starts from the same store: the workload grows it by tens of MB a
// second on a quiet machine, and a leg run on what earlier legs left
// backed up a store many times the size (35 GB after two runs).
func copyStore(c *config, from string) (string, error) {
	dir := filepath.Join(c.Work, "online-store")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if out, err := exec.Command("cp", "-a", from, dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp: %v: %s", err, out)
	}
	// The copy's writeback would otherwise share the disk with the
	// workload's commits while the leg is measured.
	if out, err := exec.Command("sync", "-f", dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("sync -f: %v: %s", err, out)
	}
	return dir, nil
}

// commitCounter runs the mail workload on stores until stopped, counting
// commits.
type commitCounter struct{ n atomic.Int64 }

func (cc *commitCounter) start(ctx context.Context, stores []workload.Store) (stop func() error) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = workload.Run(wctx, s, workload.RunOptions{OnCommit: func(int, uint64) { cc.n.Add(1) }})
		}()
	}
	return func() error {
		cancel()
		wg.Wait()
		for _, err := range errs {
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
		}
		return nil
	}
}

// measure runs the legs of one run (alone, unpaced and paced, in
// alternating order run by run, then one capped at each fraction of this
// run's unpaced speed), each on a store open() copies afresh, and appends
// their figures.
func (sc *onlineScenario) measure(ctx context.Context, c *config, run int, open func() (*leg, error)) error {
	const warmup = time.Second
	// during runs the workload on a fresh copy for the warm-up and then
	// for the backup (b nil: for c.Online) and returns the workload's
	// commits/s and the backup's MB/s and median pace.
	during := func(b *backupLeg) (commits, mbps, pace float64, err error) {
		l, err := open()
		if err != nil {
			return 0, 0, 0, err
		}
		defer l.close()
		var cc commitCounter
		stop := cc.start(ctx, l.stores)
		time.Sleep(warmup)
		c0, t0 := cc.n.Load(), time.Now()
		var in int64
		var berr error
		if b == nil {
			time.Sleep(c.Online)
		} else {
			in, pace, berr = l.backup(*b)
		}
		dt := time.Since(t0)
		commits = float64(cc.n.Load()-c0) / dt.Seconds()
		if err := stop(); err != nil {
			return 0, 0, 0, err
		}
		return commits, float64(in) / dt.Seconds() / 1e6, pace, berr
	}
	alone, _, _, err := during(nil)
	if err != nil {
		return err
	}
	var u, p [3]float64
	for _, paced := range []bool{run%2 == 1, run%2 == 0} {
		v := &u
		if paced {
			v = &p
		}
		if v[0], v[1], v[2], err = during(&backupLeg{paced: paced}); err != nil {
			return err
		}
	}
	sc.Alone, sc.Unpaced, sc.Paced = append(sc.Alone, alone), append(sc.Unpaced, u[0]), append(sc.Paced, p[0])
	sc.UnpacedMBps, sc.PacedMBps, sc.PacedRate = append(sc.UnpacedMBps, u[1]), append(sc.PacedMBps, p[1]), append(sc.PacedRate, p[2])
	logf("  run %d/%d online, %s: %.0f commits/s alone, %.0f during the backup (%.1f MB/s), %.0f during the paced backup (%.1f MB/s, pace median %.1f MB/s)",
		run+1, c.Runs, sc.Name, alone, u[0], u[1], p[0], p[1], p[2])
	if sc.Capped == nil {
		sc.Capped, sc.CappedMBps = make([][]float64, len(c.OnlineCaps)), make([][]float64, len(c.OnlineCaps))
	}
	for i, f := range c.OnlineCaps {
		commits, mbps, _, err := during(&backupLeg{maxRate: int64(f * u[1] * 1e6)})
		if err != nil {
			return err
		}
		sc.Capped[i], sc.CappedMBps[i] = append(sc.Capped[i], commits), append(sc.CappedMBps[i], mbps)
		logf("  run %d/%d online, %s: %.0f commits/s during a backup capped at %.2fx of the unpaced speed (%.1f MB/s)",
			run+1, c.Runs, sc.Name, commits, f, mbps)
	}
	return nil
}

// openInProcess opens a copy of the store from with the workload and the
// backups in this process. The unpaced backup of a single group goes to
// set (kept for the recovery rows).
func openInProcess(ctx context.Context, c *config, from string, groups []string, set string) (*leg, error) {
	dir, err := copyStore(c, from)
	if err != nil {
		return nil, err
	}
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l := &leg{close: func() { srv.Close(); os.RemoveAll(dir) }}
	for _, name := range groups {
		g, err := srv.Group(name)
		if err != nil {
			l.close()
			return nil, err
		}
		l.stores = append(l.stores, mailstore.New(g))
	}
	src := source.NewLocal(srv)
	cd, _ := codec.ParseCodec(codecZFast)
	l.backup = func(leg backupLeg) (int64, float64, error) {
		var pc *pace.Controller
		if leg.paced {
			pc = pace.New(pace.Config{})
		}
		var reqs []backup.Request
		for _, g := range groups {
			target := filepath.Join(c.Work, "sets", "online-"+g+".tset")
			if set != "" && !leg.paced && leg.maxRate == 0 {
				target = set
			}
			reqs = append(reqs, backup.Request{Group: g, Target: target, Options: backup.Options{Type: ese.Full, Media: media.Options{Force: true},
				// A cap is on the whole backup: each group has its share.
				Pipeline: pipeline.Options{Codec: cd, Workers: c.Workers, Pace: pc, MaxRate: leg.maxRate / int64(len(groups))}}})
		}
		var in int64
		for _, o := range backup.RunGroups(ctx, src, reqs) {
			if o.Err != nil {
				return 0, 0, o.Err
			}
			in += o.Result.BytesIn
			if o.Result.Target != set {
				os.Remove(o.Result.Target)
			}
		}
		return in, medianPace(pc), nil
	}
	return l, nil
}

// medianPace is the median rate of a controller's series in MB/s,
// weighted by how long each rate held.
func medianPace(pc *pace.Controller) float64 {
	if pc == nil {
		return 0
	}
	return medianSeries(pc.Summary().Series)
}

func medianSeries(s []pace.Point) float64 {
	var v []float64
	for i := 1; i < len(s); i++ {
		for t := s[i-1].T; t < s[i].T; t += 50 * time.Millisecond {
			v = append(v, s[i-1].Rate/1e6)
		}
	}
	return median(v)
}

// openServer serves a copy of the store from from a child process; the
// backups are child processes of the binary.
func openServer(ctx context.Context, c *config, from string) (*leg, error) {
	dir, err := copyStore(c, from)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	serve := exec.Command(c.Bin, "store", "serve", "--dir", dir, "--listen", addr, "--insecure-no-auth")
	var serr bytes.Buffer
	serve.Stderr = &serr
	if err := serve.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stopServe := func() {
		serve.Process.Signal(os.Interrupt)
		serve.Wait()
		os.RemoveAll(dir)
	}
	url := "http://" + addr
	r, err := storeapi.OpenRemote(url, storeapi.RemoteOptions{})
	if err != nil {
		stopServe()
		return nil, err
	}
	l := &leg{stores: []workload.Store{r.Store("SG1")}, close: func() { r.Close(); stopServe() }}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := r.Prepare(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			l.close()
			return nil, fmt.Errorf("store server did not start: %v: %s", err, lastLines(serr.String(), 3))
		}
	}
	out := filepath.Join(c.Work, "sets", "online-server.tset")
	l.backup = func(leg backupLeg) (int64, float64, error) {
		args := []string{"backup", "--server", url, "--group", "SG1", "--type", "full", "-o", out, "--compress", codecZFast,
			"--workers", fmt.Sprint(c.Workers), "--progress", "never", "--force", "--json"}
		if leg.paced {
			args = append(args, "--pace", "auto")
		}
		if leg.maxRate > 0 {
			args = append(args, "--max-rate", fmt.Sprint(leg.maxRate))
		}
		b, err := exec.Command(c.Bin, args...).Output()
		os.Remove(out)
		if err != nil {
			return 0, 0, fmt.Errorf("backup --server: %w", err)
		}
		var res struct {
			BytesIn int64 `json:"bytes_in"`
		}
		if err := decodeBackupJSON(b, &res); err != nil {
			return 0, 0, fmt.Errorf("backup --server --json: %w", err)
		}
		// The pace is the document's, beside the groups.
		var doc struct {
			Pace *pace.Summary `json:"pace"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return 0, 0, fmt.Errorf("backup --server --json: %w", err)
		}
		mp := 0.0
		if doc.Pace != nil {
			mp = medianSeries(doc.Pace.Series)
		}
		return res.BytesIn, mp, nil
	}
	return l, nil
}

// recoveryRows restore the online set and replay its logs.
func recoveryRows(c *config, set string) []*row {
	rdir := filepath.Join(c.Work, "restore-online")
	var logBytes int64
	restoreUntimed := func() error {
		os.RemoveAll(rdir)
		out, err := exec.Command(c.Bin, "restore", set, "--to", rdir, "--no-recover").CombinedOutput()
		if err != nil {
			return fmt.Errorf("restore: %v: %s", err, out)
		}
		logBytes = 0
		return filepath.WalkDir(rdir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".log") {
				fi, err := d.Info()
				if err == nil {
					logBytes += fi.Size()
				}
			}
			return err
		})
	}
	var setIn int64
	return []*row{
		{Name: "restore online set + recovery", Section: "recovery",
			pre: func() error {
				if err := restoreUntimed(); err != nil { // for the size only
					return err
				}
				setIn = dirSize(rdir)
				return os.RemoveAll(rdir)
			},
			cmd:  func() *exec.Cmd { return exec.Command(c.Bin, "restore", set, "--to", rdir) },
			post: func(s *sample) error { s.In = setIn; return os.RemoveAll(rdir) }},
		{Name: "recovery replay of the online set (log MB/s)", Section: "recovery", Note: "MB/s of log files replayed",
			pre:  restoreUntimed,
			cmd:  func() *exec.Cmd { return exec.Command(c.Bin, "store", "recover", "--dir", rdir, "--group", "SG1") },
			post: func(s *sample) error { s.In = logBytes; return os.RemoveAll(rdir) }},
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
