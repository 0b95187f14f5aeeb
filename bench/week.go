package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/workload"
)

// weekStoreSize is the store the week starts from (the smallest scaling
// store, generated once like the others).
const weekStoreSize = 256 << 20

// night is one nightly backup of the simulated week.
type night struct {
	Type          string
	LowGen        uint32 `json:"log_first_generation"`
	HighGen       uint32 `json:"log_last_generation"`
	SetBytes      int64  // the set file
	LogsOnDisk    int    // closed log generations left after it
	LogBytesOnDsk int64
}

// weekRun is the week as one binary backs it up.
type weekRun struct {
	Label  string // "after" (this binary) or "before" (--compare-bin)
	Nights []night
	Err    error
}

// weekPhase backs up a copy of the week store every night for a week (a
// full, then six incrementals) with the same mail between nights, by this
// binary and, with --compare-bin, by the binary before: what each night
// writes and how many logs stay on disk. An incremental that copies only
// the logs since the last backup stays the same size every night; one
// that copies every log since the full grows with the week, and so does
// the log directory.
func weekPhase(ctx context.Context, c *config) ([]*weekRun, error) {
	st, err := ensureStore(c, weekStoreSize)
	if err != nil {
		return nil, err
	}
	bins := []struct{ label, bin string }{{"after", c.Bin}}
	if c.CompareBin != "" {
		bins = append([]struct{ label, bin string }{{"before", c.CompareBin}}, bins...)
	}
	var runs []*weekRun
	for _, b := range bins {
		logf("week of nightly backups (%s: %s), %s of mail a night", b.label, b.bin, humanize.IBytes(uint64(c.WeekMail)))
		wr := &weekRun{Label: b.label}
		wr.Nights, wr.Err = backupWeek(ctx, c, st, b.bin)
		if wr.Err != nil {
			logf("week (%s): %v", b.label, wr.Err)
		}
		runs = append(runs, wr)
	}
	return runs, nil
}

func backupWeek(ctx context.Context, c *config, st *storeInfo, bin string) ([]night, error) {
	dir := filepath.Join(c.Work, "week-store")
	sets := filepath.Join(c.Work, "week-sets")
	for _, d := range []string{dir, sets} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	defer os.RemoveAll(dir)
	defer os.RemoveAll(sets)
	if err := os.MkdirAll(sets, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("cp", "-a", st.Dir, dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cp: %v: %s", err, out)
	}
	var week []night
	for i := range 7 {
		typ := "incremental"
		if i == 0 {
			typ = "full"
		} else if err := loadMail(ctx, dir, c.WeekMail); err != nil {
			return week, err
		}
		set := filepath.Join(sets, fmt.Sprintf("night%d.tset", i))
		cmd := exec.CommandContext(ctx, bin, "backup", "--store", dir, "--group", "SG1", "--type", typ, "-o", set,
			"--compress", codecZFast, "--workers", fmt.Sprint(c.Workers), "--progress", "never", "--json")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return week, fmt.Errorf("night %d (%s): %w", i, typ, err)
		}
		n := night{Type: typ}
		if err := decodeBackupJSON(out, &n); err != nil {
			return week, fmt.Errorf("night %d: --json: %w", i, err)
		}
		if fi, err := os.Stat(set); err == nil {
			n.SetBytes = fi.Size()
		}
		gens, _, err := wal.ListGenerations(vfs.OS, filepath.Join(dir, "SG1"), "E00")
		if err != nil {
			return week, err
		}
		n.LogsOnDisk = len(gens)
		for _, g := range gens {
			if fi, err := os.Stat(filepath.Join(dir, "SG1", wal.GenName("E00", g))); err == nil {
				n.LogBytesOnDsk += fi.Size()
			}
		}
		week = append(week, n)
	}
	return week, nil
}

// decodeBackupJSON decodes the one group of what `backup --json` prints
// (docs/json.md: {"schema_version": 1, "groups": [...], ...}) into v. An
// older binary's output (the group's object, or an array of them) is
// decoded too, so that a comparison with a baseline binary still runs.
func decodeBackupJSON(out []byte, v any) error {
	b := bytes.TrimSpace(out)
	var doc struct {
		SchemaVersion int               `json:"schema_version"`
		Groups        []json.RawMessage `json:"groups"`
	}
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &doc.Groups); err != nil {
			return err
		}
	case json.Unmarshal(b, &doc) == nil && doc.SchemaVersion > 0:
		if doc.SchemaVersion != 1 {
			return fmt.Errorf("backup --json: schema_version %d, want 1", doc.SchemaVersion)
		}
	default:
		return json.Unmarshal(b, v)
	}
	if len(doc.Groups) != 1 {
		return fmt.Errorf("backup --json printed %d results, want 1", len(doc.Groups))
	}
	return json.Unmarshal(doc.Groups[0], v)
}

// loadMail writes size bytes of mail into the store in process (the same
// day's mail for every binary compared).
func loadMail(ctx context.Context, dir string, size int64) error {
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		return err
	}
	g, err := srv.Group("SG1")
	if err == nil {
		_, err = workload.Run(ctx, mailstore.New(g), workload.RunOptions{StopAfterBytes: size})
	}
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	return err
}

// formatWeek is the week table: one line per night, each binary side by
// side, then how the incrementals' size moved over the week.
func formatWeek(runs []*weekRun) string {
	if len(runs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| night | type |")
	sep := "|---:|---|"
	for _, r := range runs {
		fmt.Fprintf(&b, " %s: logs in the set | %s: set MiB | %s: closed logs left on disk |", r.Label, r.Label, r.Label)
		sep += "---:|---:|---:|"
	}
	b.WriteString("\n" + sep + "\n")
	mib := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
	for i := range 7 {
		typ := "incremental"
		if i == 0 {
			typ = "full"
		}
		fmt.Fprintf(&b, "| %d | %s |", i, typ)
		for _, r := range runs {
			if i >= len(r.Nights) {
				b.WriteString(" failed | | |")
				continue
			}
			n := r.Nights[i]
			fmt.Fprintf(&b, " %d (%d-%d) | %s | %d (%s MiB) |", n.HighGen-n.LowGen+1, n.LowGen, n.HighGen, mib(n.SetBytes), n.LogsOnDisk, mib(n.LogBytesOnDsk))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, r := range runs {
		if r.Err != nil {
			fmt.Fprintf(&b, "- %s: failed: %s\n", r.Label, oneLine(r.Err.Error(), 120))
			continue
		}
		var sizes []string
		for _, n := range r.Nights[1:] {
			sizes = append(sizes, mib(n.SetBytes))
		}
		last := r.Nights[len(r.Nights)-1]
		fmt.Fprintf(&b, "- %s: incrementals of %s MiB on nights 1-6; %d closed logs (%s MiB) on disk after the week\n", r.Label, strings.Join(sizes, ", "), last.LogsOnDisk, mib(last.LogBytesOnDsk))
	}
	return b.String()
}
