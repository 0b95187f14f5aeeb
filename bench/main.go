// Command bench measures tapestream's throughput on this machine against
// its command line peers (tar, tar|zstd, tar|lz4) and writes a markdown
// table and an SVG chart under bench/results/.
//
//	go run ./bench                           # 1 GiB store, 5 runs, scaling 256MiB,1GiB,4GiB
//	go run ./bench --size 256MiB --runs 3 --scaling ''   # quick
//
// Every configuration runs as a child process of the built binary (peak
// RSS and CPU from the child's rusage); all rows of a phase are interleaved
// run by run so that machine drift hits them alike, and each row reports
// the median MB/s of its runs with the min-max range. MB/s is always
// uncompressed input bytes per wall-clock second (1 MB = 10^6 bytes).
//
// Phases: preparation (generate the stores once, cached under --work;
// warm the page cache; make the sets the restore rows read) → main rows
// (peers, backups, in-memory codec ceiling, restores) → online impact
// (workload commit rate alone and during a full backup, in process on a
// copy of the store) → recovery replay of the online set → scaling.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/tapestream/tapestream/media"
)

type config struct {
	Size       int64
	SizeText   string
	Runs       int
	Work       string
	Bin        string
	Results    string
	Readme     string
	Scaling    []int64
	Online     time.Duration
	OnlineCaps []float64 // --online-caps
	Only       string
	Workers    int
	NoWrite    bool
	Ceiling    bool   // --ceiling: only the in-memory codec ceiling
	CompareBin string // --compare-bin: a previous binary, for before/after rows

	cleanups []func() // run when the harness ends (the S3 server)
	WeekMail int64    // mail a night in the week of nightly backups (0: skip)
	Week     bool     // --week: only the week of nightly backups
}

func main() {
	var c config
	var scaling string
	flag.StringVar(&c.SizeText, "size", "1GiB", "database size of the generated mail store")
	flag.IntVar(&c.Runs, "runs", 5, "runs per row (the median is reported)")
	flag.DurationVar(&settle, "settle", settle, "pause after each run that deletes its output, before the next timed run")
	flag.StringVar(&c.Work, "work", filepath.Join(os.TempDir(), "tapestream-bench"), "work directory (stores are generated once and kept here)")
	flag.StringVar(&c.Bin, "bin", "", "tapestream binary (default: go build ./cmd/tapestream into --work)")
	flag.StringVar(&c.Results, "results", "bench/results", "directory for the results (markdown, SVG)")
	flag.StringVar(&c.Readme, "readme", "bench/README.md", "README whose latest-results section is replaced (empty: none)")
	flag.StringVar(&scaling, "scaling", "256MiB,1GiB,4GiB", "store sizes for the scaling rows (empty: skip)")
	flag.DurationVar(&c.Online, "online", 5*time.Second, "window of the workload-alone measurement of the online impact (0: skip online and recovery)")
	caps := flag.String("online-caps", "0.5", "comma-separated fractions of the unpaced speed: each online run also backs up capped by --max-rate at each (empty: none)")
	flag.StringVar(&c.Only, "only", "", "run only rows whose name contains one of these comma-separated words")
	flag.IntVar(&c.Workers, "workers", runtime.NumCPU(), "\"all workers\" (default: number of CPUs)")
	flag.BoolVar(&c.NoWrite, "no-write", false, "print the table only; write no results files")
	flag.BoolVar(&c.Ceiling, "ceiling", false, "only measure the in-memory codec ceiling (1 and --workers workers)")
	flag.StringVar(&c.CompareBin, "compare-bin", "", "another tapestream binary (e.g. before a change): adds \"before:\" twins of the key backup rows, interleaved, and backs up the week with it too")
	weekMail := flag.String("week-mail", "16MiB", "mail written each night of the week of nightly backups (full, six incrementals; 0 skips it)")
	flag.BoolVar(&c.Week, "week", false, "only the week of nightly backups (with --compare-bin: before and after)")
	flag.Parse()
	var err error
	if c.Size, err = media.ParseSize(c.SizeText); err != nil {
		fatal(err)
	}
	if *weekMail != "0" {
		if c.WeekMail, err = media.ParseSize(*weekMail); err != nil {
			fatal(err)
		}
	}
	for _, s := range strings.Split(scaling, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := media.ParseSize(s)
		if err != nil {
			fatal(err)
		}
		c.Scaling = append(c.Scaling, n)
	}
	for _, s := range strings.Split(*caps, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f >= 1 {
			fatal(fmt.Errorf("--online-caps %q: want fractions between 0 and 1", s))
		}
		c.OnlineCaps = append(c.OnlineCaps, f)
	}
	if c.Runs < 1 {
		c.Runs = 1
	}
	err = run(context.Background(), &c)
	for _, f := range c.cleanups {
		f()
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, c *config) error {
	if err := os.MkdirAll(c.Work, 0o755); err != nil {
		return err
	}
	if c.Bin == "" {
		c.Bin = filepath.Join(c.Work, "tapestream")
		logf("building %s", c.Bin)
		cmd := exec.Command("go", "build", "-o", c.Bin, "./cmd/tapestream")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/tapestream (run from the module root or give --bin): %w", err)
		}
	}
	for _, tool := range []string{"tar", "zstd", "lz4", "sh", "cat"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the peers need %s: %w", tool, err)
		}
	}
	machine := describeMachine(c)
	if c.Week {
		if c.WeekMail == 0 {
			return fmt.Errorf("--week needs --week-mail above 0")
		}
		runs, err := weekPhase(ctx, c)
		if err != nil {
			return err
		}
		fmt.Printf("### A week of nightly backups (%s of mail a night)\n\n%s", humanize.IBytes(uint64(c.WeekMail)), formatWeek(runs))
		return nil
	}
	store, err := ensureStore(c, c.Size)
	if err != nil {
		return err
	}
	if c.Ceiling {
		rows := ceilingRows(c, store)
		if err := loadCeilingData(store); err != nil {
			return err
		}
		runInterleaved(rows, c.Runs)
		fmt.Print(formatTable(rows))
		return nil
	}
	rep := &report{Machine: machine, Config: c, Started: time.Now(), LoadStart: loadAvg()}
	main, err := mainRows(c, store)
	if err != nil {
		return err
	}
	main = filterRows(main, c.Only)
	if len(main) > 0 {
		logf("main rows: %d rows x %d runs", len(main), c.Runs)
		runInterleaved(main, c.Runs)
		dropCeilingData()
	}
	rep.Main = main
	if c.Online > 0 && keep(c.Only, "online", "recovery") {
		on, rec, err := onlinePhase(ctx, c, store)
		if err != nil {
			logf("online impact: %v", err)
			rep.Notes = append(rep.Notes, "online impact failed: "+err.Error())
		}
		rep.Online = on
		if len(rec) > 0 {
			logf("recovery rows: %d rows x %d runs", len(rec), c.Runs)
			runInterleaved(rec, c.Runs)
			rep.Main = append(rep.Main, rec...)
		}
	}
	if len(c.Scaling) > 0 && keep(c.Only, "scaling") {
		sc, err := scalingRows(c)
		if err != nil {
			return err
		}
		if c.Online > 0 {
			rs, err := recoveryScalingRows(ctx, c)
			if err != nil {
				return err
			}
			sc = append(sc, rs...)
		}
		logf("scaling rows: %d rows x %d runs", len(sc), c.Runs)
		runInterleaved(sc, c.Runs)
		rep.Scaling = sc
	}
	if c.WeekMail > 0 && keep(c.Only, "week") {
		if rep.Week, err = weekPhase(ctx, c); err != nil {
			return err
		}
	}
	rep.Finished, rep.LoadEnd = time.Now(), loadAvg()
	text := rep.markdown()
	fmt.Print(text)
	if c.NoWrite {
		return nil
	}
	return rep.save(text)
}

// loadAvg is /proc/loadavg's first three fields: a busy machine makes
// every row slower and noisier, which the reader should know.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// keep reports whether a phase named by one of words runs under --only.
func keep(only string, words ...string) bool {
	if only == "" {
		return true
	}
	for _, o := range strings.Split(only, ",") {
		for _, w := range words {
			if strings.Contains(w, strings.TrimSpace(o)) {
				return true
			}
		}
	}
	return false
}

func filterRows(rows []*row, only string) []*row {
	if only == "" {
		return rows
	}
	var out []*row
	for _, r := range rows {
		if keep(only, r.Name) || (r.Peer != "" && keep(only, r.Name, r.Peer)) {
			out = append(out, r)
		}
	}
	// Keep the peers of the rows kept.
	names := map[string]bool{}
	for _, r := range out {
		names[r.Name] = true
	}
	var res []*row
	for _, r := range rows {
		need := names[r.Name]
		for _, o := range out {
			if o.Peer == r.Name {
				need = true
			}
		}
		if need {
			res = append(res, r)
		}
	}
	return res
}
