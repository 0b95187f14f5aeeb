package main

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

type report struct {
	Machine            machine
	Config             *config
	Started, Finished  time.Time
	LoadStart, LoadEnd string // /proc/loadavg
	Main               []*row
	Scaling            []*row
	Online             *onlineResult
	Week               []*weekRun
	Notes              []string
}

// formatTable is the main table: one line per row, in the given order.
func formatTable(rows []*row) string {
	byName := map[string]*row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	var b strings.Builder
	b.WriteString("| configuration | MB/s (median) | min–max | ratio | CPU s | MB/CPU-s | peak RSS MiB | vs peer |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		name := r.Name
		if r.IsPeer {
			name = "*" + name + "* (peer)"
		}
		name = strings.ReplaceAll(name, "|", `\|`)
		if r.Err != nil && len(r.Runs) == 0 {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | | |\n", name, strings.ReplaceAll(oneLine(r.Err.Error(), 80), "|", `\|`))
			continue
		}
		st := r.stats()
		ratio, cpu, perCPU, rss := "–", "–", "–", "–"
		if st.HasRatio {
			ratio = fmt.Sprintf("%.2f", st.Ratio)
		}
		if st.HasUsage {
			cpu = fmt.Sprintf("%.2f", st.CPU)
			perCPU = fmt.Sprintf("%.0f", st.MBpsPerCPU)
		}
		if st.RSSMiB > 0 {
			rss = fmt.Sprintf("%.0f", st.RSSMiB)
		}
		vs := ""
		if p := byName[r.Peer]; p != nil && len(p.Runs) > 0 {
			vs = fmt.Sprintf("%.2fx %s", st.Med/p.stats().Med, strings.ReplaceAll(p.Name, "|", `\|`))
		}
		if r.Note != "" {
			vs = strings.TrimSpace(vs + " (" + r.Note + ")")
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.1f–%.1f | %s | %s | %s | %s | %s |\n", name, st.Med, st.Min, st.Max, ratio, cpu, perCPU, rss, vs)
	}
	return b.String()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func formatScaling(rows []*row) string {
	var b strings.Builder
	b.WriteString("| store (database size) | bytes read | median s | s per GiB | MB/s (median) | min–max | peak RSS MiB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if len(r.Runs) == 0 {
			fmt.Fprintf(&b, "| %s | failed: %v | | | | | |\n", r.Name, r.Err)
			continue
		}
		st := r.stats()
		in := r.Runs[0].In
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f | %.1f | %.1f–%.1f | %.0f |\n", strings.ReplaceAll(r.Name, "|", `\|`),
			humanize.IBytes(uint64(in)), st.Wall, st.Wall/(float64(in)/(1<<30)), st.Med, st.Min, st.Max, st.RSSMiB)
	}
	return b.String()
}

func formatOnline(o *onlineResult) string {
	if o == nil || len(o.Scenarios) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| setting | workload commits/s alone | during a full backup | during / alone | during a paced backup (--pace auto) | during / alone | backup MB/s under load | paced backup MB/s | paced / unpaced | median pace MB/s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range o.Scenarios {
		if len(sc.Alone) == 0 {
			msg := "no runs"
			if sc.Err != nil {
				msg = "failed: " + oneLine(sc.Err.Error(), 80)
			}
			fmt.Fprintf(&b, "| %s | %s | | | | | | | | |\n", sc.Name, strings.ReplaceAll(msg, "|", `\|`))
			continue
		}
		a, u, p := median(sc.Alone), median(sc.Unpaced), median(sc.Paced)
		um, pm := median(sc.UnpacedMBps), median(sc.PacedMBps)
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2f | %.0f | %.2f | %.1f | %.1f | %.2f | %.1f |\n",
			sc.Name, a, u, u/a, p, p/a, um, pm, pm/um, median(sc.PacedRate))
	}
	if len(o.Caps) == 0 {
		return b.String()
	}
	// What a fixed rate costs the workload: the trade-off any pace has
	// to live with on this machine.
	b.WriteString("\nThe same runs, backed up once more capped by `--max-rate` at a fraction of each run's unpaced speed:\n\n")
	b.WriteString("| setting | cap (x unpaced MB/s) | backup MB/s | workload commits/s during | during / alone |\n")
	b.WriteString("|---|---:|---:|---:|---:|\n")
	for _, sc := range o.Scenarios {
		for i, f := range o.Caps {
			if i >= len(sc.Capped) || len(sc.Capped[i]) == 0 || len(sc.Alone) == 0 {
				// A leg that failed: the scenario's error is in the table above.
				continue
			}
			c, a := median(sc.Capped[i]), median(sc.Alone)
			fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.0f | %.2f |\n", sc.Name, f, median(sc.CappedMBps[i]), c, c/a)
		}
	}
	return b.String()
}

// onlineTargets are the goals of the pacing issue: with --pace auto the
// workload keeps 80% of its commits while the backup keeps half of its
// unpaced speed (both under the same load, medians of the same runs).
func onlineTargets(o *onlineResult) []target {
	if o == nil {
		return nil
	}
	var ts []target
	for _, sc := range o.Scenarios {
		t1 := target{What: "online, " + sc.Name + ": workload commits/s during a paced backup vs alone", Goal: ">= 0.8x"}
		t2 := target{What: "online, " + sc.Name + ": paced backup MB/s vs unpaced (both under load)", Goal: ">= 0.5x"}
		if len(sc.Alone) > 0 {
			a, p := median(sc.Alone), median(sc.Paced)
			t1.Known, t1.Met = true, p/a >= 0.8
			t1.Measured = fmt.Sprintf("%.2fx (%.0f / %.0f commits/s; unpaced %.2fx", p/a, p, a, median(sc.Unpaced)/a)
			for i, f := range o.Caps {
				if i < len(sc.Capped) && len(sc.Capped[i]) > 0 {
					t1.Measured += fmt.Sprintf("; capped at %.2fx of the unpaced speed %.2fx", f, median(sc.Capped[i])/a)
				}
			}
			t1.Measured += ")"
			um, pm := median(sc.UnpacedMBps), median(sc.PacedMBps)
			t2.Known, t2.Met = true, pm/um >= 0.5
			t2.Measured = fmt.Sprintf("%.2fx (%.1f / %.1f MB/s)", pm/um, pm, um)
		}
		ts = append(ts, t1, t2)
	}
	return ts
}

// target is one goal of the backup issue, evaluated on this run.
type target struct {
	What, Goal, Measured string
	Met                  bool
	Known                bool
}

func (rep *report) targets() []target {
	w := rep.Config.Workers
	find := func(name string) *stats {
		for _, r := range append(rep.Main, rep.Scaling...) {
			if r.Name == name && len(r.Runs) > 0 {
				s := r.stats()
				return &s
			}
		}
		return nil
	}
	var ts []target
	ratio := func(what, goal string, min float64, a, b string, maxMode bool) {
		t := target{What: what, Goal: goal}
		sa, sb := find(a), find(b)
		if sa != nil && sb != nil {
			v := sa.Med / sb.Med
			t.Known = true
			if maxMode {
				// The cost of the extra work: throughput lost with it on.
				// Faster with it on is noise (the work is not free), so
				// it says so instead of counting as a cost.
				d := 1 - v
				if d >= 0 {
					t.Measured = fmt.Sprintf("%.1f%% (%.1f vs %.1f MB/s)", 100*d, sa.Med, sb.Med)
				} else {
					t.Measured = fmt.Sprintf("none measurable: on was %.1f%% faster (%.1f vs %.1f MB/s)", -100*d, sa.Med, sb.Med)
				}
				if sa.CPU > 0 && sb.CPU > 0 {
					t.Measured += fmt.Sprintf("; CPU %+.1f%%", 100*(sa.CPU/sb.CPU-1))
				}
				t.Met = d <= min
			} else {
				t.Measured = fmt.Sprintf("%.2fx (%.1f / %.1f MB/s)", v, sa.Med, sb.Med)
				if sa.MBpsPerCPU > 0 && sb.MBpsPerCPU > 0 {
					// Steadier than wall time when the machine is shared.
					t.Measured += fmt.Sprintf("; per CPU-second %.2fx", sa.MBpsPerCPU/sb.MBpsPerCPU)
				}
				t.Met = v >= min
			}
		}
		ts = append(ts, t)
	}
	zf := fmt.Sprintf("backup %s w%d > file", codecZFast, w)
	ratio("zstd:fastest throughput vs tar | zstd -1 -T2", ">= 1.0x", 1.0, zf, peerZstd, false)
	{
		t := target{What: "zstd:fastest compression ratio vs zstd -1", Goal: ">= 0.98x"}
		sa, sb := find(zf), find(peerZstd)
		if sa != nil && sb != nil && sa.HasRatio && sb.HasRatio {
			v := sa.Ratio / sb.Ratio
			t.Known, t.Met = true, v >= 0.98
			t.Measured = fmt.Sprintf("%.3fx (%.3f / %.3f)", v, sa.Ratio, sb.Ratio)
		}
		ts = append(ts, t)
	}
	{
		t := target{What: fmt.Sprintf("same with --frame-size %s (not the default)", altFrameFlag()), Goal: ">= 0.98x"}
		sa, sb := find(fmt.Sprintf("backup %s w%d --frame-size %s > file", codecZFast, w, altFrameFlag())), find(peerZstd)
		if sa != nil && sb != nil && sa.HasRatio && sb.HasRatio {
			v := sa.Ratio / sb.Ratio
			t.Known, t.Met = true, v >= 0.98
			t.Measured = fmt.Sprintf("%.3fx (%.3f / %.3f), throughput %.2fx", v, sa.Ratio, sb.Ratio, sa.Med/sb.Med)
		}
		ts = append(ts, t)
	}
	ratio("lz4 vs tar | lz4 -1", ">= 1.7x", 1.7, fmt.Sprintf("backup lz4 w%d > file", w), peerLZ4, false)
	ratio("none vs tar > file", ">= 1.0x", 1.0, fmt.Sprintf("backup none w%d > file", w), peerTar, false)
	ratio("none vs tar > file && sync file (both durable; informational)", ">= 1.0x", 1.0, fmt.Sprintf("backup none w%d > file", w), peerTarSync, false)
	ratio("pipeline overhead: zstd:fastest end to end (/dev/null) vs in-memory codec", ">= 0.9x", 0.9,
		fmt.Sprintf("backup %s w%d > /dev/null", codecZFast, w), fmt.Sprintf("ceiling %s w%d (in memory)", codecZFast, w), false)
	ratio("pipeline overhead: zstd:fastest end to end (file) vs in-memory codec", ">= 0.9x", 0.9,
		zf, fmt.Sprintf("ceiling %s w%d (in memory)", codecZFast, w), false)
	ratio("page verification on vs off (zstd:fastest, /dev/null)", "<= 5%", 0.05,
		fmt.Sprintf("backup %s w%d > /dev/null", codecZFast, w), fmt.Sprintf("backup %s w%d --no-verify > /dev/null", codecZFast, w), true)
	ratio("page verification on vs off (none, /dev/null)", "<= 5%", 0.05,
		fmt.Sprintf("backup none w%d > /dev/null", w), fmt.Sprintf("backup none w%d --no-verify > /dev/null", w), true)
	{
		t := target{What: "peak RSS of every backup row", Goal: "<= 150 MiB"}
		var m float64
		for _, r := range append(rep.Main, rep.Scaling...) {
			if (r.Section == "backup" || r.Section == "scaling" && !isRestoreRow(r)) && !r.IsPeer && len(r.Runs) > 0 {
				m = max(m, r.stats().RSSMiB)
			}
		}
		if m > 0 {
			t.Known, t.Met, t.Measured = true, m <= 150, fmt.Sprintf("%.0f MiB", m)
		}
		ts = append(ts, t)
	}
	for _, restores := range []bool{false, true} {
		t := target{What: "peak RSS flat in store size (scaling rows)", Goal: "same for 1 GiB and 4 GiB"}
		if restores {
			t = target{What: "restore + recovery peak RSS: at most 150 MiB, flat in set size (scaling rows)", Goal: "<= 150 MiB, same for 1 GiB and 4 GiB"}
		}
		var parts []string
		var rss []float64
		lo, hi := 1e18, 0.0
		for _, r := range rep.Scaling {
			if len(r.Runs) > 0 && isRestoreRow(r) == restores {
				s := r.stats()
				lo, hi = min(lo, s.RSSMiB), max(hi, s.RSSMiB)
				rss = append(rss, s.RSSMiB)
				parts = append(parts, fmt.Sprintf("%.0f", s.RSSMiB))
			}
		}
		if len(parts) >= 2 {
			t.Known, t.Met = true, hi <= lo*1.1+5
			if restores {
				// A restore's peak moves by a GC cycle (~20 MiB) from run to
				// run: flat is the largest set no higher than the one before.
				n := len(rss)
				t.Met = hi <= 150 && rss[n-1] <= rss[n-2]*1.1+5
			}
			t.Measured = strings.Join(parts, " / ") + " MiB"
		}
		if len(parts) > 0 {
			ts = append(ts, t)
		}
	}
	ratio("restore (no recovery) vs tar -xOf SET | zstd -d > /dev/null", ">= 1.0x", 1.0,
		"restore zstd:fastest set (no recovery)", peerXZstd, false)
	ratio("encryption (age) cost: zstd:fastest backup to a file, encrypted vs plain", "<= 5%", 0.05,
		fmt.Sprintf("backup %s w%d encrypted > file", codecZFast, w), zf, true)
	ratio("encryption (age) cost: restore (no recovery), encrypted vs plain set", "<= 5%", 0.05,
		"restore zstd:fastest encrypted set (no recovery)", "restore zstd:fastest set (no recovery)", true)
	return ts
}

func isRestoreRow(r *row) bool { return strings.Contains(r.Name, "restore") }

func formatTargets(ts []target) string {
	var b strings.Builder
	b.WriteString("| target | goal | measured | met |\n|---|---|---|---|\n")
	for _, t := range ts {
		met := "n/a"
		if t.Known {
			met = map[bool]string{true: "yes", false: "**no**"}[t.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", strings.ReplaceAll(t.What, "|", `\|`), t.Goal, strings.ReplaceAll(t.Measured, "|", `\|`), met)
	}
	return b.String()
}

func (rep *report) markdown() string {
	c, m := rep.Config, rep.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "## tapestream bench, %s\n\n", m.Date)
	fmt.Fprintf(&b, "- machine: %s, %d CPUs, %s RAM, %s, host %s\n", m.CPU, m.NCPU, m.MemTotal, m.Kernel, m.Host)
	fmt.Fprintf(&b, "- %s; peers: %s\n", m.Go, strings.Join(m.Tools, "; "))
	fmt.Fprintf(&b, "- `go run ./bench --size %s --runs %d --workers %d`: store of %s (databases), from the page cache; %d runs per row, interleaved, %s pause after each run that deletes its output; took %s\n",
		c.SizeText, c.Runs, c.Workers, humanize.IBytes(uint64(c.Size)), c.Runs, settle, rep.Finished.Sub(rep.Started).Round(time.Second))
	b.WriteString("- MB/s = uncompressed input bytes (10^6) per wall second; ratio = input / output bytes; CPU = user+sys of the child processes (of this process for the in-memory ceiling); peak RSS = largest process; `wN` = N compression workers; `> file` = file sink (fsync at commit, unlike the tar peers).\n")
	if rep.LoadStart != "" {
		fmt.Fprintf(&b, "- load average (1, 5, 15 min) at the start: %s, at the end: %s (with %d CPUs, anything above ~1 means other work shared the machine and widens the min–max ranges)\n", rep.LoadStart, rep.LoadEnd, m.NCPU)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- note: %s\n", n)
	}
	b.WriteString("\n### Throughput\n\n")
	b.WriteString(formatTable(rep.Main))
	if len(rep.Scaling) > 0 {
		b.WriteString("\n### Scaling (time linear, memory flat)\n\n")
		b.WriteString(formatScaling(rep.Scaling))
	}
	if s := formatOnline(rep.Online); s != "" {
		fmt.Fprintf(&b, "\n### Online impact (mail workload, 8 streams; %s window alone; full backup zstd:fastest w%d to a file, unpaced and with --pace auto, in alternating order; medians of the runs)\n\n", rep.Online.Window, rep.Online.Workers)
		b.WriteString(s)
	}
	if s := formatWeek(rep.Week); s != "" {
		fmt.Fprintf(&b, "\n### A week of nightly backups (full, then six incrementals; %s of mail a night; zstd:fastest to a file)\n\n", humanize.IBytes(uint64(c.WeekMail)))
		b.WriteString(s)
	}
	b.WriteString("\n### Targets\n\n")
	b.WriteString(formatTargets(append(rep.targets(), onlineTargets(rep.Online)...)))
	return b.String()
}

// save writes bench/results/<date>-<host>.{md,svg}, latest.{md,svg}, and
// replaces the README's latest-results section.
func (rep *report) save(text string) error {
	dir := rep.Config.Results
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	host := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(rep.Machine.Host, "_")
	stem := rep.Started.UTC().Format("2006-01-02T1504Z") + "-" + host
	svg, err := chart(rep.Main, "tapestream bench "+rep.Machine.Date+" ("+rep.Config.SizeText+" store, "+rep.Machine.CPU+")")
	if err != nil {
		return err
	}
	withChart := func(name string) string { return text + "\n![throughput](" + name + ")\n" }
	files := map[string][]byte{
		stem + ".md": []byte(withChart(stem + ".svg")), stem + ".svg": svg,
		"latest.md": []byte(withChart("latest.svg")), "latest.svg": svg,
	}
	for n, data := range files {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			return err
		}
	}
	logf("wrote %s", filepath.Join(dir, stem+".{md,svg}"))
	if rep.Config.Readme == "" {
		return nil
	}
	rel, err := filepath.Rel(filepath.Dir(rep.Config.Readme), filepath.Join(dir, "latest.svg"))
	if err != nil {
		rel = filepath.Join(dir, "latest.svg")
	}
	return replaceSection(rep.Config.Readme, text+"\n![throughput]("+filepath.ToSlash(rel)+")\n")
}

const (
	beginMark = "<!-- bench:latest:begin -->"
	endMark   = "<!-- bench:latest:end -->"
)

// replaceSection replaces the text between the markers of the README.
func replaceSection(path, text string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section", path, beginMark, endMark)
	}
	s = s[:i+len(beginMark)] + "\n" + text + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// chart draws the median MB/s of every row as a horizontal bar with its
// min-max range; peers in grey.
func chart(rows []*row, title string) ([]byte, error) {
	var ok []*row
	for _, r := range rows {
		if len(r.Runs) > 0 {
			ok = append(ok, r)
		}
	}
	n := len(ok)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "MB/s (median of runs; bars: min–max)"
	p.X.Min = 0
	p.Add(plotter.NewGrid()) // first: under the bars
	ts, peers := make(plotter.Values, n), make(plotter.Values, n)
	names := make([]string, n)
	var errs xErr
	for i, r := range ok {
		y := n - 1 - i // first row on top
		st := r.stats()
		if r.IsPeer {
			peers[y] = st.Med
		} else {
			ts[y] = st.Med
		}
		names[y] = r.Name
		errs = append(errs, xErrPoint{x: st.Med, y: float64(y), lo: st.Med - st.Min, hi: st.Max - st.Med})
	}
	for _, v := range []struct {
		vals plotter.Values
		col  color.Color
		leg  string
	}{{ts, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, "tapestream"}, {peers, color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}, "peer (tar, zstd, lz4)"}} {
		bc, err := plotter.NewBarChart(v.vals, vg.Points(9))
		if err != nil {
			return nil, err
		}
		bc.Horizontal = true
		bc.Color = v.col
		bc.LineStyle.Width = 0
		p.Add(bc)
		p.Legend.Add(v.leg, bc)
	}
	eb, err := plotter.NewXErrorBars(errs)
	if err != nil {
		return nil, err
	}
	p.Add(eb)
	p.NominalY(names...)
	// Bottom right: the last rows (restore, recovery) are short bars.
	p.Legend.Top = false
	wt, err := p.WriterTo(10*vg.Inch, vg.Length(1.2+0.19*float64(n))*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type xErrPoint struct{ x, y, lo, hi float64 }
type xErr []xErrPoint

func (e xErr) Len() int                        { return len(e) }
func (e xErr) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e xErr) XError(i int) (float64, float64) { return e[i].lo, e[i].hi }
