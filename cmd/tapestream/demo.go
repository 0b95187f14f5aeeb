package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/workload"
)

func init() { extraCommands = append(extraCommands, newDemoCmd) }

type demoOpts struct {
	Dir  string
	Size string
	Keep bool
	Out  io.Writer
}

func newDemoCmd() *cobra.Command {
	var o demoOpts
	c := &cobra.Command{
		Use:   "demo [--dir DIR] [--size 256MiB]",
		Short: "End-to-end demo: create a store, load mail, online full + incremental backups, restore the chain, verify",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runDemo(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "work directory (default: a new temporary directory, kept afterwards)")
	c.Flags().StringVar(&o.Size, "size", "256MiB", "mail to load before the first backup")
	return c
}

// demoWriter keeps the mail workload writing during the backups and
// remembers what was acknowledged.
type demoWriter struct {
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	acked  map[int]uint64
	stats  workload.Stats
}

func startDemoWriter(ctx context.Context, g *engine.Group) *demoWriter {
	ctx, cancel := context.WithCancel(ctx)
	w := &demoWriter{cancel: cancel, done: make(chan error, 1), acked: map[int]uint64{}}
	go func() {
		st, err := workload.Run(ctx, mailstore.New(g), workload.RunOptions{
			OnCommit: func(stream int, seq uint64) {
				w.mu.Lock()
				w.acked[stream] = seq
				w.mu.Unlock()
			},
		})
		w.stats = st
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		w.done <- err
	}()
	return w
}

func (w *demoWriter) snapshot() map[int]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[int]uint64, len(w.acked))
	for k, v := range w.acked {
		m[k] = v
	}
	return m
}

func (w *demoWriter) stop() (workload.Stats, error) {
	w.cancel()
	err := <-w.done
	return w.stats, err
}

func runDemo(ctx context.Context, o demoOpts) error {
	t0 := time.Now()
	size, err := parseSize("size", o.Size)
	if err != nil {
		return err
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tapestream-demo-"); err != nil {
			return err
		}
	}
	out := o.Out
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	storeDir := filepath.Join(dir, "store")
	setsDir := filepath.Join(dir, "sets")
	restoreDir := filepath.Join(dir, "restored")
	for _, d := range []string{storeDir, restoreDir} {
		if _, err := os.Stat(d); err == nil {
			return fmt.Errorf("%s exists: give an empty --dir", d)
		}
	}
	if err := os.MkdirAll(setsDir, 0o755); err != nil {
		return err
	}

	// 1. Create and load.
	if err := engine.InitStore(storeDir, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1", "Public"}}}, engine.Options{}); err != nil {
		return err
	}
	step("created store %s: storage group SG1 with databases Mailbox1, Public", storeDir)
	srv, err := engine.OpenServer(storeDir, engine.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	g, _ := srv.Group("SG1")
	lst, err := workload.Run(ctx, mailstore.New(g), workload.RunOptions{
		Workload: workload.Workload{Seed: 1, Streams: 8, Databases: g.Databases()}, SizeFunc: g.DatabaseSize, TargetSize: size,
	})
	if err != nil {
		return err
	}
	step("loaded %s of mail in %d transactions (%s/s); databases %s",
		humanize.IBytes(uint64(lst.Bytes)), lst.Txns, humanize.IBytes(uint64(float64(lst.Bytes)/lst.Elapsed.Seconds())), humanize.IBytes(uint64(g.DatabaseSize())))

	// 2. Online full backup while the workload keeps writing.
	src := source.NewLocal(srv)
	w := startDemoWriter(ctx, g)
	fullPath := filepath.Join(setsDir, "SG1-full.tar")
	quiet := io.Discard
	full, err := runBackup(ctx, backupOpts{Groups: []string{"SG1"}, Type: "full", Output: fullPath, Progress: "never", Out: quiet, Err: quiet, source: src, Pipeline: pipelineFlags{Compress: "zstd"}, Media: writeMediaFlags{BlockSize: "1MiB"}})
	if err != nil {
		w.stop()
		return err
	}
	step("online full backup while mail kept arriving: %s -> %s (ratio %.2f) in %s, %s/s, logs %d-%d",
		humanize.IBytes(uint64(full[0].BytesIn)), humanize.IBytes(uint64(full[0].BytesOut)), full[0].Ratio,
		full[0].Duration.Round(time.Millisecond), humanize.IBytes(uint64(full[0].Throughput)), full[0].LowGen, full[0].HighGen)

	// 3. More mail, then two incrementals: each copies the logs since the
	// backup before it and truncates them once its set is durable.
	incPaths := []string{filepath.Join(setsDir, "SG1-incr1.tar"), filepath.Join(setsDir, "SG1-incr2.tar")}
	var before map[int]uint64
	prev := full[0]
	for i, incPath := range incPaths {
		time.Sleep(time.Second)
		before = w.snapshot()
		inc, err := runBackup(ctx, backupOpts{Groups: []string{"SG1"}, Type: "incremental", Output: incPath, Progress: "never", Out: quiet, Err: quiet, source: src, Pipeline: pipelineFlags{Compress: "zstd"}, Media: writeMediaFlags{BlockSize: "1MiB"}})
		if err != nil {
			w.stop()
			return err
		}
		gens, _, err := wal.ListGenerations(vfs.OS, filepath.Join(storeDir, "SG1"), "E00")
		if err != nil {
			w.stop()
			return err
		}
		step("incremental backup %d: logs %d-%d (the set before ended at %d), %s, continues set %s; truncated the %d logs it copied, %d closed logs left on disk",
			i+1, inc[0].LowGen, inc[0].HighGen, prev.HighGen, humanize.IBytes(uint64(inc[0].BytesOut)), inc[0].PreviousSetID[:8], len(inc[0].Truncated), len(gens))
		prev = inc[0]
	}
	wst, werr := w.stop()
	if werr != nil {
		return werr
	}
	step("%d transactions committed during the backups", wst.Txns)

	// 4. List and verify the sets.
	chainPaths := append([]string{fullPath}, incPaths...)
	var srcs []restore.SetSource
	for _, p := range chainPaths {
		srcs = append(srcs, restore.SetSource{Path: p})
	}
	infos, chain, err := restore.Verify(ctx, srcs, restore.Options{})
	if err != nil {
		return err
	}
	for _, in := range infos {
		if len(in.Problems) > 0 {
			return fmt.Errorf("verify %s: %s", in.Source.Path, in.Problems[0])
		}
	}
	if len(chain) > 0 {
		return fmt.Errorf("verify chain: %s", chain[0])
	}
	step("verified the three sets: every frame, chunk CRC, page checksum, file digest, log record and the full+incrementals chain")

	// 5. Restore the chain into a recovery storage group and prove it.
	rres, err := runRestore(ctx, restoreOpts{Sets: chainPaths, To: restoreDir, Group: "RSG1", Out: quiet, Err: quiet, Read: readMediaFlags{BlockSize: "1MiB"}})
	if err != nil {
		return err
	}
	r := rres[0]
	step("restored full + incrementals into recovery storage group RSG1 (%s): replayed generations %d-%d, %d commits, in %s",
		r.Dir, r.Recovery.FromGen, r.Recovery.ToGen, r.Recovery.Commits, r.Duration.Round(time.Millisecond))
	rsrv, err := engine.OpenServer(restoreDir, engine.Options{})
	if err != nil {
		return err
	}
	rg, _ := rsrv.Group("RSG1")
	check, err := rg.Check()
	if err == nil && !check.OK() {
		err = fmt.Errorf("restored group fails its check: %s", check.Problems[0])
	}
	var rep workload.Report
	if err == nil {
		rep, err = workload.VerifyAtLeast(ctx, mailstore.New(rg), before, nil)
		if err == nil && !rep.OK() {
			err = rep.Err()
		}
	}
	rsrv.Close()
	if err != nil {
		return fmt.Errorf("proving the restore: %w", err)
	}
	step("proved the restore with the workload model: %d pages verified, %d keys exactly as committed, every commit acknowledged before the last incremental present", check.Pages, rep.Keys)

	// 6. Recovery without tapestream: tar and zstd only.
	if err := demoByHand(ctx, dir, fullPath, infos[0], step); err != nil {
		return err
	}
	var sizes []string
	for _, p := range chainPaths {
		sizes = append(sizes, fmt.Sprintf("%s (%s)", p, humanize.IBytes(uint64(fileSize(p)))))
	}
	fmt.Fprintf(out, "\nSummary\n  store      %s\n  sets       %s\n  restored   %s\n  total time %s\n",
		storeDir, strings.Join(sizes, ", "), filepath.Join(restoreDir, "RSG1"), time.Since(t0).Round(100*time.Millisecond))
	fmt.Fprintf(out, "  try        tapestream list %s\n             tapestream verify %s\n", incPaths[1], strings.Join(chainPaths, " "))
	return nil
}

func fileSize(p string) int64 {
	if fi, err := os.Stat(p); err == nil {
		return fi.Size()
	}
	return 0
}

// demoByHand recovers Mailbox1.edb from the full set with tar and zstd
// and checks it against the manifest's SHA-256.
func demoByHand(ctx context.Context, dir, set string, info *restore.SetInfo, step func(string, ...any)) error {
	cmdline := fmt.Sprintf("tar -xf %s databases/ && cat databases/Mailbox1.edb.zst.part* | zstd -d -q -o Mailbox1.edb", set)
	for _, tool := range []string{"tar", "zstd", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			step("skipped recovery by hand: %s is not installed; the commands are: %s", tool, cmdline)
			return nil
		}
	}
	work := filepath.Join(dir, "by-hand")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	c := exec.CommandContext(ctx, "sh", "-c", cmdline)
	c.Dir = work
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("recovery by hand (%s): %v: %s", cmdline, err, out)
	}
	f, err := os.Open(filepath.Join(work, "Mailbox1.edb"))
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := tapeformat.NewDigest(info.Label.Digest)
	if err != nil {
		return err
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	got := fmt.Sprintf("%x", h.Sum(nil))
	var want string
	for _, mf := range info.Manifest.Files {
		if mf.Name == "Mailbox1.edb" && mf.Kind == tapeformat.KindDatabase {
			want = mf.Digest()
		}
	}
	if got != want {
		return fmt.Errorf("recovery by hand: Mailbox1.edb has %s digest %s, the manifest says %s", info.Label.Digest, got, want)
	}
	names, _ := filepath.Glob(filepath.Join(work, "databases", "*"))
	sort.Strings(names)
	step("recovered Mailbox1.edb with only tar and zstd (its %s digest matches the manifest):\n          cd %s && %s", info.Label.Digest, work, strings.ReplaceAll(cmdline, set, "../sets/"+filepath.Base(set)))
	return nil
}
