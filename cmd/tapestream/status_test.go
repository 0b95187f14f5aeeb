package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/source"
)

const statusConfig = `
catalog = "catalog.db"
textfile = "metrics/tapestream.prom"
due_window = "6h"

[[job]]
name = "mail"
store = "STORE"
groups = ["SG1"]
codec = "zstd:fastest"
workers = 2
block_size = "64KiB"
[job.schedule]
at = "02:00"
full = ["sun", "wed"]
[job.destination]
dir = "sets"
name = "{group}-{type}-{time}.tar.zst"
[job.retention]
keep_full_chains = 2

[[job]]
name = "broken"
store = "STORE"
groups = ["SG2"]
[job.schedule]
cron = ["0 3 * * 3 full"]
[job.destination]
dir = "/proc/self/no-such-dir"
name = "{group}-{time}.tar"
`

// status runs `tapestream status --json` at the env's time and decodes it.
func (e *schedEnv) status(o statusOpts) (*scheduler.Status, string, error) {
	e.t.Helper()
	var out, errb bytes.Buffer
	o.catalogOpts.Out, o.catalogOpts.Err = &out, &errb // tape prompts go to Err
	if o.Config == "" && o.Catalog == "" {
		o.Config = e.cfgPath
	}
	o.now = func() time.Time { return e.now }
	o.openSource = func(ctx context.Context, j *scheduler.Job) (source.Source, error) { return source.NewLocal(e.srv), nil }
	st, err := runStatus(context.Background(), o)
	if o.JSON {
		var got scheduler.Status
		if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
			e.t.Fatalf("status --json: %v\n%s", jerr, out.String())
		}
		if st != nil && len(got.Groups) != len(st.Groups) {
			e.t.Fatalf("status --json printed %d groups, built %d", len(got.Groups), len(st.Groups))
		}
		return &got, out.String(), err
	}
	return st, out.String(), err
}

func findGroup(st *scheduler.Status, name string) *scheduler.GroupStatus {
	for i := range st.Groups {
		if st.Groups[i].Group == name {
			return &st.Groups[i]
		}
	}
	return nil
}

func findJob(st *scheduler.Status, name string) *scheduler.JobStatus {
	for i := range st.Jobs {
		if st.Jobs[i].Job == name {
			return &st.Jobs[i]
		}
	}
	return nil
}

func problemsOf(st *scheduler.Status, kind string) []scheduler.Problem {
	var out []scheduler.Problem
	for _, p := range st.Problems {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// TestStatusWeek runs a week of nightly jobs with the time injected and
// checks `tapestream status --json` after each night: the newest full of
// SG1 and the sets chained on it, the oldest and newest restore points
// and their age, each job's last run (the failing one's error) and next
// run with its level, and the problems as they come and go: SG3 covered
// by no job, the chain retention expires at the next full, an
// incremental whose file was deleted (and the chain it breaks), a
// destination too small for the next full, and --max-age (exit 1, naming
// the group; the Prometheus textfile carries the same age).
func TestStatusWeek(t *testing.T) {
	e := newSchedEnv(t, statusConfig, "SG2", "SG3")
	defer func() {
		if t.Failed() {
			t.Log("run logs:\n" + e.logs.String())
		}
	}()
	e.load(1 << 20)
	sunday := time.Date(2025, 11, 2, 2, 0, 30, 0, time.UTC) // a Sunday
	type night struct {
		level     string
		chain     []int // nights whose sets the newest chain of SG1 holds
		oldest    int   // night of the oldest restore point
		points    int   // restore points
		expires   int   // night of the full whose chain expires next (-1 none)
		nextLevel string
	}
	want := []night{
		{"full", []int{0}, 0, 1, -1, "incremental"},           // 0 Sun
		{"incremental", []int{0, 1}, 0, 2, -1, "incremental"}, // 1 Mon
		{"incremental", []int{0, 1, 2}, 0, 3, -1, "full"},     // 2 Tue
		{"full", []int{3}, 0, 4, 0, "incremental"},            // 3 Wed: two chains, keep 2: the first expires next
		{"incremental", []int{3, 4}, 0, 5, 0, "incremental"},  // 4 Thu
		{"full", []int{5}, 3, 2, 3, "incremental"},            // 5 Fri: Thursday's set deleted: promoted; the first chain expired
		{"incremental", []int{5, 6}, 3, 3, 3, "full"},         // 6 Sat
		{"full", []int{7}, 5, 3, 5, "incremental"},            // 7 Sun
	}
	ids := make([]string, len(want))
	times := make([]time.Time, len(want))
	for i, w := range want {
		e.now = sunday.Add(time.Duration(i) * 24 * time.Hour)
		times[i] = e.now
		if i == 5 {
			// Someone deletes Thursday's incremental: status names it at once.
			s, err := e.catalog().GetSet(ids[4])
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Location.Paths {
				os.Remove(p)
			}
			st, _, err := e.status(statusOpts{catalogOpts: catalogOpts{JSON: true}})
			if err != nil {
				t.Fatal(err)
			}
			gone := problemsOf(st, scheduler.ProblemMediumGone)
			if len(gone) != 1 || gone[0].Set != ids[4] || !strings.Contains(gone[0].Message, "files gone: "+s.Location.Paths[0]) {
				t.Fatalf("night 5: medium_gone %+v", gone)
			}
			if g := findGroup(st, "SG1"); !g.NewestRestorePoint.Equal(times[3]) || g.RestorePoints != 4 {
				t.Fatalf("night 5, before the run: newest restore point %s (%d), want night 3's (the incremental on the deleted one is none)", g.NewestRestorePoint, g.RestorePoints)
			}
		}
		sum, err := e.run("")
		if err != nil {
			t.Fatalf("night %d: %v", i, err)
		}
		g := sum.Jobs[0].Groups[0]
		if sum.Jobs[0].Job != "mail" || g.Level != w.level {
			t.Fatalf("night %d: %+v", i, sum.Jobs[0])
		}
		ids[i] = g.SetID
		if i == 3 {
			// The broken job's slot is at 03:00.
			e.now = e.now.Add(time.Hour)
			if _, err := e.run(""); err == nil {
				t.Fatal("the broken job did not fail")
			}
		}

		st, text, err := e.status(statusOpts{catalogOpts: catalogOpts{JSON: true}})
		if err != nil {
			t.Fatalf("night %d: status: %v", i, err)
		}
		sg1 := findGroup(st, "SG1")
		if sg1 == nil || !slices.Equal(sg1.Jobs, []string{"mail"}) || len(sg1.Chains) != 1 {
			t.Fatalf("night %d: SG1 %+v\n%s", i, sg1, text)
		}
		var chain []string
		for _, s := range sg1.Chains[0].Sets {
			chain = append(chain, s.ID)
			if !s.RestorePoint || s.Status != catalog.StatusComplete || s.LowGen == 0 || s.Bytes <= 0 || !strings.Contains(s.Location, filepath.Join(e.dir, "sets")) {
				t.Fatalf("night %d: set %+v", i, s)
			}
		}
		var wantChain []string
		for _, n := range w.chain {
			wantChain = append(wantChain, ids[n])
		}
		if !slices.Equal(chain, wantChain) || sg1.Chains[0].Sets[0].Type != "full" {
			t.Fatalf("night %d: newest chain %v, want nights %v %v", i, chain, w.chain, wantChain)
		}
		age := e.now.Sub(times[i]).Seconds()
		if !sg1.NewestRestorePoint.Equal(times[i]) || !sg1.OldestRestorePoint.Equal(times[w.oldest]) || sg1.RestorePoints != w.points || sg1.AgeSeconds != age {
			t.Fatalf("night %d: restore points %s..%s (%d, age %v), want %s..%s (%d, age %v)", i, sg1.OldestRestorePoint, sg1.NewestRestorePoint, sg1.RestorePoints, sg1.AgeSeconds,
				times[w.oldest], times[i], w.points, age)
		}
		mail := findJob(st, "mail")
		wantNext := times[i].Add(24 * time.Hour).Truncate(time.Hour)
		if mail == nil || mail.LastStatus != "success" || !mail.LastRun.Equal(times[i]) || !mail.NextRun.Equal(wantNext) || mail.NextLevel != w.nextLevel {
			t.Fatalf("night %d: job mail %+v, want next run %s %s", i, mail, wantNext, w.nextLevel)
		}
		if sg3 := findGroup(st, "SG3"); sg3 == nil || len(sg3.Jobs) != 0 || sg3.RestorePoints != 0 || sg3.AgeSeconds != -1 {
			t.Fatalf("night %d: SG3 %+v", i, sg3)
		}
		unc := problemsOf(st, scheduler.ProblemUncoveredGroup)
		if len(unc) != 1 || unc[0].Group != "SG3" || !strings.Contains(unc[0].Message, "storage group SG3 of store "+filepath.Join(e.dir, "store")+" is backed up by no job") {
			t.Fatalf("night %d: uncovered %+v", i, unc)
		}
		exp := problemsOf(st, scheduler.ProblemExpiresNext)
		if w.expires < 0 && len(exp) != 0 || w.expires >= 0 && (len(exp) != 1 || exp[0].Set != ids[w.expires] || !strings.Contains(exp[0].Message, "keep_full_chains = 2")) {
			t.Fatalf("night %d: expires_next %+v, want night %d's full", i, exp, w.expires)
		}
		failed := problemsOf(st, scheduler.ProblemJobFailed)
		broken := findJob(st, "broken")
		if i < 3 && (len(failed) != 0 || broken.LastStatus != "") || i >= 3 && (len(failed) != 1 || failed[0].Job != "broken" || broken.LastStatus != "failure" ||
			!strings.Contains(broken.LastError, "no-such-dir") || !broken.NextRun.Equal(time.Date(2025, 11, 12, 3, 0, 0, 0, time.UTC)) || broken.NextLevel != "full") {
			t.Fatalf("night %d: job broken %+v, problems %+v", i, broken, failed)
		}
		gone := problemsOf(st, scheduler.ProblemMediumGone)
		if (i == 5 || i == 6) != (len(gone) == 1) {
			t.Fatalf("night %d: medium_gone %+v", i, gone)
		}
		if len(problemsOf(st, scheduler.ProblemShortOfSpace))+len(problemsOf(st, scheduler.ProblemTooOld))+len(problemsOf(st, scheduler.ProblemMissingGroup)) != 0 {
			t.Fatalf("night %d: problems %+v", i, st.Problems)
		}
		e.load(256 << 10)
	}

	// The human table says the same.
	st, text, err := e.status(statusOpts{})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"storage group SG1 (", "backed up by mail", "restore points: 3, oldest " + times[5].Format(time.RFC3339),
		"full          " + ids[7][:12], "mail              " + times[7].Format("2006-01-02T15:04:05Z") + "  success", "uncovered_group", "expires_next",
		"NO RESTORE POINT", "no-such-dir"} {
		if !strings.Contains(text, line) {
			t.Errorf("status lacks %q:\n%s", line, text)
		}
	}
	if testing.Verbose() {
		t.Logf("status after the week:\n%s", text)
	}
	_ = st

	// A destination too small for the next full: the catalog says the last
	// full was enormous.
	cat := e.catalog()
	last, _ := cat.GetSet(ids[7])
	size := last.BytesOut
	last.BytesOut = 1 << 60
	if err := cat.PutSet(last); err != nil {
		t.Fatal(err)
	}
	st, _, err = e.status(statusOpts{catalogOpts: catalogOpts{JSON: true}})
	if err != nil {
		t.Fatal(err)
	}
	if sp := problemsOf(st, scheduler.ProblemShortOfSpace); len(sp) != 1 || sp[0].Job != "mail" || !strings.Contains(sp[0].Message, "destination "+filepath.Join(e.dir, "sets")+" has ") ||
		!strings.Contains(sp[0].Message, "the next full needs about 1.0 EiB (the last full of SG1 1.0 EiB)") {
		t.Fatalf("short_of_space: %+v", sp)
	}
	last.BytesOut = size
	cat.PutSet(last)

	// --max-age: with the configuration, SG2 and SG3 have no restore point
	// at all; from the catalog alone SG1 is the only group.
	e.now = times[7].Add(time.Hour)
	_, _, err = e.status(statusOpts{MaxAge: "26h"})
	if code := exitCode(context.Background(), err); code != exitFailure || !strings.Contains(fmt.Sprint(err), "storage group SG3 has no restore point") || strings.Contains(fmt.Sprint(err), "SG1") {
		t.Fatalf("--max-age 26h an hour after the last run: exit %d, %v", code, err)
	}
	catPath := filepath.Join(e.dir, "catalog.db")
	if _, _, err := e.status(statusOpts{catalogOpts: catalogOpts{Catalog: catPath}, MaxAge: "26h"}); err != nil {
		t.Fatalf("--catalog --max-age 26h an hour after the last run: %v", err)
	}
	e.now = times[7].Add(30 * time.Hour)
	_, _, err = e.status(statusOpts{catalogOpts: catalogOpts{Catalog: catPath}, MaxAge: "26h"})
	if code := exitCode(context.Background(), err); code != exitFailure ||
		!strings.Contains(fmt.Sprint(err), "storage group SG1: newest restore point "+times[7].Format(time.RFC3339)+" is 30h old (--max-age 26h)") {
		t.Fatalf("--max-age 26h 30 hours after the last run: exit %d, %v", code, err)
	}
	// The binary, on the real clock (the week is long past).
	code, _, stderr := cli(t, e.dir, "status", "--catalog", catPath, "--max-age", "26h")
	if code != exitFailure || !strings.Contains(stderr, "storage group SG1: newest restore point "+times[7].Format(time.RFC3339)) {
		t.Fatalf("tapestream status --max-age 26h: exit %d\n%s", code, stderr)
	}
	if code, out, stderr := cli(t, e.dir, "status", "--catalog", catPath, "--max-age", "100000d", "--json"); code != exitOK || !strings.Contains(out, `"newest_restore_point": "`+times[7].Format(time.RFC3339)) {
		t.Fatalf("tapestream status --max-age 100000d: exit %d\n%s%s", code, out, stderr)
	}

	// The textfile carries the same restore point per group.
	prom, err := os.ReadFile(filepath.Join(e.dir, "metrics", "tapestream.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{fmt.Sprintf(`tapestream_group_newest_restore_point_timestamp_seconds{group="SG1"} %d`, times[7].Unix()),
		`tapestream_group_newest_restore_point_age_seconds{group="SG1"} 0`} {
		if !strings.Contains(string(prom), line+"\n") {
			t.Errorf("textfile lacks %q:\n%s", line, prom)
		}
	}
}
