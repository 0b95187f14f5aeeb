package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/pace"
)

// TestBackupPaceAuto: `backup --pace auto --json` of a store the mail
// workload keeps committing to: the summary carries the pace chosen over
// time, paced by the commit latency the engine measured (a baseline), and
// the set restores.
func TestBackupPaceAuto(t *testing.T) {
	// Large enough for a few of the controller's 250 ms intervals.
	ls := newLiveStore(t, 24<<20)
	ls.startWriting()
	time.Sleep(200 * time.Millisecond) // an unloaded baseline
	acked := ls.w.snapshot()           // in the set for sure
	dir := t.TempDir()
	set := filepath.Join(dir, "full.tar")
	var out, errb bytes.Buffer
	o := quietBackup(ls, "full", "zstd", set)
	o.JSON, o.Out, o.Err = true, &out, &errb
	o.Pipeline.Pace = "auto"
	if _, err := runBackup(context.Background(), o); err != nil {
		t.Fatalf("backup: %v\n%s", err, errb.String())
	}
	ls.stopWriting(t)
	var doc struct {
		Groups []struct {
			SetID string `json:"set_id"`
		} `json:"groups"`
		Pace *pace.Summary `json:"pace"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Groups) != 1 {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	p := doc.Pace
	if p == nil || p.Mode != "auto" || len(p.Groups) != 1 || p.Groups[0] != "SG1" || len(p.Notes) != 0 {
		t.Fatalf("pace summary %+v\n%s", p, out.String())
	}
	// Points from the start, at the first rate.
	if len(p.Series) < 2 || p.Series[0].T != 0 || p.Series[0].Rate != 8<<20 {
		t.Errorf("series %v", p.Series)
	}
	if !strings.Contains(out.String(), `"series": [`) || p.Baseline("SG1") <= 0 {
		t.Errorf("no series or baseline in the summary:\n%s", out.String())
	}
	if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{set}, To: filepath.Join(dir, "r"), Group: "RSG1", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}}); err != nil {
		t.Fatal(err)
	}
	proveRestored(t, filepath.Join(dir, "r"), "RSG1", acked)
}

func TestBackupPaceRefusesUnknownMode(t *testing.T) {
	code, _, stderr := cli(t, t.TempDir(), "backup", "--store", "x", "-o", "x.tar", "--pace", "fast")
	if code != exitUsage || !strings.Contains(stderr, `--pace "fast": want auto or off`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
