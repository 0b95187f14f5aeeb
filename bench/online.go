package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

// onlineResult is the online impact: the mail workload's commit rate
// alone and while a full backup (zstd:fastest, all workers, to a file)
// runs in the same process, as the embedded store is backed up.
type onlineResult struct {
	Alone, During []float64 // commits per second, one per run
	BackupMBps    []float64 // the backup's throughput under load
	BackupSecs    []float64
	Workers       int
	Window        time.Duration
}

// onlinePhase runs on a copy of the store (the workload changes it) and
// returns the recovery rows, which restore and replay the set the last
// online backup wrote (its logs hold the transactions committed during
// the backup).
func onlinePhase(ctx context.Context, c *config, st *storeInfo) (*onlineResult, []*row, error) {
	dir := filepath.Join(c.Work, "online-store")
	logf("online impact: copying the store to %s", dir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, nil, err
	}
	if out, err := exec.Command("cp", "-a", st.Dir, dir).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("cp: %v: %s", err, out)
	}
	set := filepath.Join(c.Work, "sets", "online.tset")
	res := &onlineResult{Workers: c.Workers, Window: c.Online}
	err := func() error {
		srv, err := engine.OpenServer(dir, engine.Options{})
		if err != nil {
			return err
		}
		defer srv.Close()
		g, err := srv.Group("SG1")
		if err != nil {
			return err
		}
		src := source.NewLocal(srv)
		var commits atomic.Int64
		// start runs the workload until stop is called.
		start := func() (stop func() error) {
			wctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var werr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, werr = workload.Run(wctx, mailstore.New(g), workload.RunOptions{
					OnCommit: func(int, uint64) { commits.Add(1) },
				})
			}()
			return func() error {
				cancel()
				wg.Wait()
				if werr != nil && !errors.Is(werr, context.Canceled) {
					return werr
				}
				return nil
			}
		}
		const warmup = time.Second
		for r := 0; r < c.Runs; r++ {
			// Alone.
			stop := start()
			time.Sleep(warmup)
			c0, t0 := commits.Load(), time.Now()
			time.Sleep(c.Online)
			alone := float64(commits.Load()-c0) / time.Since(t0).Seconds()
			if err := stop(); err != nil {
				return err
			}
			// During a full backup.
			stop = start()
			time.Sleep(warmup)
			c0, t0 = commits.Load(), time.Now()
			br, berr := backupInProcess(ctx, src, set, c.Workers)
			dt := time.Since(t0)
			during := float64(commits.Load()-c0) / dt.Seconds()
			if err := stop(); err != nil {
				return err
			}
			if berr != nil {
				return berr
			}
			res.Alone = append(res.Alone, alone)
			res.During = append(res.During, during)
			res.BackupMBps = append(res.BackupMBps, float64(br.BytesIn)/dt.Seconds()/1e6)
			res.BackupSecs = append(res.BackupSecs, dt.Seconds())
			logf("  run %d/%d online: %.0f commits/s alone, %.0f during the backup (%.1f MB/s, %.1fs)", r+1, c.Runs, alone, during, res.BackupMBps[r], dt.Seconds())
		}
		return nil
	}()
	os.RemoveAll(dir)
	if err != nil {
		return res, nil, err
	}
	return res, recoveryRows(c, set), nil
}

func backupInProcess(ctx context.Context, src source.Source, set string, workers int) (*backup.Result, error) {
	cd, _ := codec.ParseCodec(codecZFast)
	return backup.Run(ctx, src, "SG1", set, backup.Options{Type: ese.Full, Media: media.Options{Force: true}, Pipeline: pipeline.Options{Codec: cd, Workers: workers}})
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
