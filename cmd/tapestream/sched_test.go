package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/workload"
)

// schedEnv is a store under a workload plus a job configuration, with an
// injected clock.
type schedEnv struct {
	t       *testing.T
	dir     string
	srv     *engine.Server
	g       *engine.Group
	cfgPath string
	now     time.Time
	seqs    []uint64
	logs    bytes.Buffer
}

func newSchedEnv(t *testing.T, cfg string, moreGroups ...string) *schedEnv {
	t.Helper()
	e := &schedEnv{t: t, dir: t.TempDir()}
	store := filepath.Join(e.dir, "store")
	specs := []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1", "Public"}, LogSize: 256 << 10}}
	for _, g := range moreGroups {
		specs = append(specs, engine.GroupSpec{Name: g, Databases: []string{"Mailbox1"}, LogSize: 256 << 10})
	}
	if err := engine.InitStore(store, specs, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.OpenServer(store, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.srv = srv
	e.g, _ = srv.Group("SG1")
	e.cfgPath = filepath.Join(e.dir, "tapestream.toml")
	cfg = strings.ReplaceAll(cfg, "STORE", store)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// load runs the workload for a bounded number of bytes.
func (e *schedEnv) load(n int64) {
	e.t.Helper()
	st, err := workload.Run(context.Background(), mailstore.New(e.g), workload.RunOptions{
		Workload: workload.Workload{Seed: 7, Streams: 4, Databases: e.g.Databases()}, StopAfterBytes: n,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.seqs = st.Seqs
}

func (e *schedEnv) opts() runOpts {
	return runOpts{Config: e.cfgPath, Out: &bytes.Buffer{}, Err: &e.logs, now: func() time.Time { return e.now },
		openSource: func(ctx context.Context, j *scheduler.Job) (source.Source, error) { return source.NewLocal(e.srv), nil }}
}

func (e *schedEnv) run(job string) (*scheduler.Summary, error) {
	o := e.opts()
	o.Job = job
	return runRun(context.Background(), o)
}

func (e *schedEnv) catalog() *catalog.Catalog {
	cat, err := catalog.Open(filepath.Join(e.dir, "catalog.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	return cat
}

// verifyRestore restores group SG1 as of at from the catalog into a
// recovery group and proves it with the workload model: exactly the seqs
// committed when the chain's last set was taken.
func (e *schedEnv) verifyRestore(name string, at time.Time, want []uint64, wantChain []string) {
	e.t.Helper()
	to := filepath.Join(e.dir, "restore-"+name)
	var errb bytes.Buffer
	o := restoreOpts{Catalog: filepath.Join(e.dir, "catalog.db"), FromGroup: "SG1", Group: "R" + name, To: to, Out: &bytes.Buffer{}, Err: &errb, Read: readMediaFlags{BlockSize: "64KiB"}}
	if !at.IsZero() {
		o.At = at.Format(time.RFC3339)
	}
	res, err := runRestore(context.Background(), o)
	if err != nil {
		e.t.Fatalf("restore %s: %v\n%s", name, err, errb.String())
	}
	if got := res[0].Sets; !slices.Equal(got, wantChain) {
		e.t.Fatalf("restore %s picked %v, want %v", name, got, wantChain)
	}
	rsrv, err := engine.OpenServer(to, engine.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer rsrv.Close()
	rg, err := rsrv.Group("R" + name)
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := workload.Verify(context.Background(), mailstore.New(rg))
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK() {
		e.t.Fatalf("restore %s: workload model: %v", name, rep.Err())
	}
	if want != nil && !slices.Equal(rep.Seqs, want) {
		e.t.Fatalf("restore %s: seqs %v, want %v (the state when the chain's last set was taken)", name, rep.Seqs, want)
	}
}

const weekConfig = `
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
segment_size = "128KiB"

[job.schedule]
at = "02:00"
full = ["sun", "thu"]
differential = ["tue", "wed"]

[job.destination]
dir = "sets"
name = "{group}-{type}-{time}.tar.zst"
split_size = "512KiB"

[job.retention]
keep_full_chains = 2

[[job]]
name = "broken"
store = "STORE"
groups = ["SG1"]
[job.schedule]
cron = ["0 3 1 1 * full"]
[job.destination]
dir = "/proc/self/no-such-dir"
name = "{group}-{time}.tar"
`

// TestSchedScriptedWeek runs ten nights of `tapestream run` against a store
// the workload keeps writing to, with the time injected.
func TestSchedScriptedWeek(t *testing.T) {
	e := newSchedEnv(t, weekConfig)
	defer func() {
		if testing.Verbose() || t.Failed() {
			t.Log("run logs:\n" + e.logs.String())
		}
	}()
	e.load(1 << 20)
	sunday := time.Date(2026, 11, 1, 2, 0, 30, 0, time.UTC) // a Sunday
	type night struct {
		level, requested string
		parent           int // index of the expected parent night, -1 none
		promoted         string
	}
	want := []night{
		{"full", "full", -1, ""},                       // 0 Sun
		{"incremental", "incremental", 0, ""},          // 1 Mon (the workload keeps writing during the backup)
		{"full", "differential", -1, "truncated"},      // 2 Tue: Monday's incremental truncated the logs since the full
		{"differential", "differential", 2, ""},        // 3 Wed
		{"full", "full", -1, ""},                       // 4 Thu
		{"incremental", "incremental", 4, ""},          // 5 Fri
		{"incremental", "incremental", 5, ""},          // 6 Sat
		{"full", "full", -1, ""},                       // 7 Sun: retention (keep 2) expires the first chains
		{"full", "incremental", -1, "chain is broken"}, // 8 Mon: night 7's full was deleted
		{"differential", "differential", 8, ""},        // 9 Tue
	}
	ids := make([]string, len(want))
	seqs := make([][]uint64, len(want))
	times := make([]time.Time, len(want))
	for i, w := range want {
		e.now = sunday.Add(time.Duration(i) * 24 * time.Hour)
		times[i] = e.now
		if i == 8 {
			// Someone deletes last night's full.
			s, err := e.catalog().GetSet(ids[7])
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Location.Paths {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}
		var bg chan error
		if i == 1 {
			bg = make(chan error, 1)
			go func() {
				_, err := workload.Run(context.Background(), mailstore.New(e.g), workload.RunOptions{StopAfterBytes: 256 << 10})
				bg <- err
			}()
		}
		sum, err := e.run("")
		if bg != nil {
			if err := <-bg; err != nil {
				t.Fatal(err)
			}
			e.seqs = nil // not known exactly
		}
		if err != nil {
			t.Fatalf("night %d: %v\n%s", i, err, e.logs.String())
		}
		var jr *scheduler.JobResult
		for k := range sum.Jobs {
			if sum.Jobs[k].Job == "mail" {
				jr = &sum.Jobs[k]
			}
			if sum.Jobs[k].Job == "broken" && sum.Jobs[k].Status != "not-due" {
				t.Fatalf("night %d: job broken ran: %+v", i, sum.Jobs[k])
			}
		}
		if jr == nil || jr.Status != "success" || len(jr.Groups) != 1 {
			t.Fatalf("night %d: %+v", i, jr)
		}
		g := jr.Groups[0]
		if g.Level != w.level || g.Requested != w.requested || !strings.Contains(g.Promoted, w.promoted) || (w.promoted == "") != (g.Promoted == "") {
			t.Fatalf("night %d: level %s (requested %s, promoted %q), want %s (requested %s, promoted ~%q)", i, g.Level, g.Requested, g.Promoted, w.level, w.requested, w.promoted)
		}
		ids[i] = g.SetID
		if w.parent >= 0 && g.Parent != ids[w.parent] {
			t.Fatalf("night %d: parent %s, want night %d's %s", i, g.Parent, w.parent, ids[w.parent])
		}
		seqs[i] = e.seqs
		// The same night again: nothing is due.
		if i == 1 {
			sum, err := e.run("")
			if err != nil || sum.Jobs[0].Status != "not-due" {
				t.Fatalf("second run of night 1: %v %+v", err, sum.Jobs)
			}
		}
		if i == 6 {
			// Restores by time (the first chain expired with Thursday's full).
			e.verifyRestore("wed", times[3].Add(time.Hour), seqs[3], []string{ids[2], ids[3]})
			e.verifyRestore("fri", times[5].Add(time.Hour), seqs[5], []string{ids[4], ids[5]})
		}
		e.load(256 << 10)
	}

	// Retention: the first two chains (nights 0-3) expired and their files are gone;
	// night 7's deleted full is recorded missing.
	cat := e.catalog()
	all, err := cat.List(catalog.Filter{Job: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, s := range all {
		status[s.ID] = s.Status
	}
	for i := range want {
		wantStatus := catalog.StatusComplete
		switch {
		case i <= 3:
			wantStatus = catalog.StatusExpired
		case i == 7:
			wantStatus = catalog.StatusMissing
		}
		if status[ids[i]] != wantStatus {
			t.Errorf("night %d set %s: status %s, want %s", i, ids[i], status[ids[i]], wantStatus)
		}
	}
	// catalog list shows each set's log range, so the chain can be read
	// off it: every incremental starts at or before the end of its parent.
	var lj bytes.Buffer
	if err := runCatalogList(context.Background(), catalogOpts{Config: e.cfgPath, JSON: true, Out: &lj}); err != nil {
		t.Fatal(err)
	}
	var doc catalogListDoc
	err = json.Unmarshal(lj.Bytes(), &doc)
	listed := doc.Sets
	if err != nil || len(listed) != len(all) {
		t.Fatalf("catalog list --json: %v (%d sets, %d in the catalog)", err, len(listed), len(all))
	}
	byID := catalog.NewIndex(listed)
	for _, ls := range listed {
		if ls.Status == catalog.StatusFailed {
			continue
		}
		if ls.LowGen == 0 || ls.HighGen < ls.LowGen {
			t.Errorf("catalog list: set %s (%s) has log range %d-%d", ls.ID, ls.Type, ls.LowGen, ls.HighGen)
		}
		if p := byID[ls.ParentID]; ls.Type == ese.Incremental && p != nil && ls.LowGen > p.HighGen+1 {
			t.Errorf("catalog list: incremental %s starts at %d, its parent %s ends at %d", ls.ID, ls.LowGen, p.ID, p.HighGen)
		}
	}
	var lt bytes.Buffer
	if err := runCatalogList(context.Background(), catalogOpts{Config: e.cfgPath, Out: &lt}); err != nil || !strings.Contains(lt.String(), fmt.Sprintf("%d-%d", listed[1].LowGen, listed[1].HighGen)) {
		t.Errorf("catalog list does not show night 1's logs %d-%d: %v\n%s", listed[1].LowGen, listed[1].HighGen, err, lt.String())
	}

	// The catalog matches the files: the complete sets' files are exactly
	// the files in the destination.
	var wantFiles, haveFiles []string
	for _, s := range all {
		if s.Status == catalog.StatusComplete {
			wantFiles = append(wantFiles, s.Location.Paths...)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(e.dir, "sets"))
	for _, de := range ents {
		haveFiles = append(haveFiles, filepath.Join(e.dir, "sets", de.Name()))
	}
	sort.Strings(wantFiles)
	if len(wantFiles) <= 4 {
		t.Fatalf("no set was split into volumes: %v", wantFiles)
	}
	if !slices.Equal(wantFiles, haveFiles) {
		t.Fatalf("catalog files %v\n   dir files %v", wantFiles, haveFiles)
	}

	// Restore by time skips the missing full: as of Sunday night 7 the
	// newest restorable state is Saturday's incremental.
	e.verifyRestore("sun", times[7].Add(time.Hour), seqs[6], []string{ids[4], ids[5], ids[6]})
	e.verifyRestore("latest", time.Time{}, seqs[9], []string{ids[8], ids[9]})

	// catalog rebuild from the files reproduces the catalog.
	before := completeSets(t, cat)
	var out bytes.Buffer
	rebuilt := filepath.Join(e.dir, "rebuilt.db") // as if catalog.db was lost
	if err := runCatalogRebuild(context.Background(), catalogOpts{Config: e.cfgPath, Catalog: rebuilt, BlockSize: "64KiB", Out: &out, Err: &out}, nil); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	rcat, err := catalog.Open(rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	after := completeSets(t, rcat)
	if len(before) != len(after) || len(before) != 5 {
		t.Fatalf("rebuild: %d sets, catalog had %d\n%s", len(after), len(before), out.String())
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.ID != a.ID || b.Job != a.Job || b.Group != a.Group || b.GroupSignature != a.GroupSignature || b.Type != a.Type || b.ParentID != a.ParentID ||
			b.FullID != a.FullID || !b.Created.Equal(a.Created) || b.LowGen != a.LowGen || b.HighGen != a.HighGen ||
			!slices.Equal(b.Location.Paths, a.Location.Paths) || b.Location.Target != a.Location.Target || !slices.Equal(b.Files, a.Files) ||
			!slices.Equal(b.Databases, a.Databases) || b.Codec != a.Codec {
			t.Errorf("rebuilt set differs:\n was %+v\n now %+v", b, a)
		}
	}

	// Overlapping runs are refused with their own exit code.
	cfg, err := scheduler.LoadConfig(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := cfg.Job("mail")
	_ = j
	lk, err := scheduler.LockGroup(cfg.LockDir, "mail", "store:"+filepath.Join(e.dir, "store"), "SG1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.run("mail")
	lk.Release()
	if code := exitCode(context.Background(), err); code != exitLocked || !strings.Contains(fmt.Sprint(err), "already running") {
		t.Fatalf("overlapping run: exit %d, %v", code, err)
	}

	// A failing job: the exit code and the textfile say so.
	_, err = e.run("broken")
	if err == nil || exitCode(context.Background(), err) == exitOK {
		t.Fatalf("failing job: %v", err)
	}
	prom, err := os.ReadFile(filepath.Join(e.dir, "metrics", "tapestream.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`tapestream_job_last_success{job="broken"} 0`, `tapestream_job_failures_total{job="broken"} 1`,
		`tapestream_job_last_success{job="mail"} 1`, `tapestream_job_failures_total{job="mail"} 0`, `tapestream_job_last_success_timestamp_seconds{job="mail"}`} {
		if !strings.Contains(string(prom), line) {
			t.Errorf("textfile lacks %q:\n%s", line, prom)
		}
	}
	if strings.Contains(string(prom), `tapestream_job_last_success_timestamp_seconds{job="broken"}`) {
		t.Errorf("textfile has a success time for the job that never succeeded:\n%s", prom)
	}
}

func completeSets(t *testing.T, cat *catalog.Catalog) []*catalog.Set {
	t.Helper()
	sets, err := cat.List(catalog.Filter{Status: catalog.StatusComplete})
	if err != nil {
		t.Fatal(err)
	}
	return sets
}

const tapeConfig = `
catalog = "catalog.db"

[[job]]
name = "tape"
store = "STORE"
groups = ["SG1"]
codec = "zstd:fastest"
block_size = "64KiB"
[job.schedule]
cron = ["0 2 * * 0 full", "0 2 * * 1-6 incremental"]
[job.destination]
tape = "tape:TAPEDIR?capacity=1536KiB&early-warning=256KiB"
next_volume_cmd = "echo $TAPESTREAM_VOLUME >> CHANGERLOG"
label_prefix = "MAIL"
[job.retention]
keep_full_chains = 1
`

// TestSchedTape: volume labels, sets appended at the end of data with
// their file numbers in the catalog, a full tape detected and the next
// volume requested, restore and rebuild from the tape.
func TestSchedTape(t *testing.T) {
	dir := t.TempDir()
	tapeDir := filepath.Join(dir, "vtape")
	changer := filepath.Join(dir, "changer.log")
	cfg := strings.NewReplacer("TAPEDIR", tapeDir, "CHANGERLOG", changer).Replace(tapeConfig)
	e := newSchedEnv(t, cfg)
	defer func() {
		if t.Failed() {
			t.Log("run logs:\n" + e.logs.String())
		}
	}()
	e.load(1 << 20)
	sunday := time.Date(2026, 11, 1, 2, 0, 30, 0, time.UTC)
	target := "tape:" + tapeDir

	// Label the blank tape by hand (the next label of the prefix).
	var out bytes.Buffer
	if err := runTapeLabel(context.Background(), tapeOpts{catalogOpts: catalogOpts{Config: e.cfgPath, Job: "MAIL", BlockSize: "64KiB", Out: &out, Err: &out}, Tape: target}); err != nil {
		t.Fatalf("tape label: %v", err)
	}
	if !strings.Contains(out.String(), "MAIL0001") {
		t.Fatalf("tape label: %s", out.String())
	}
	// A labelled tape is not labelled again.
	if err := runTapeLabel(context.Background(), tapeOpts{catalogOpts: catalogOpts{Config: e.cfgPath, BlockSize: "64KiB", Out: &out, Err: &out}, Tape: target, Label: "MAIL0009"}); err == nil {
		t.Fatal("labelling a tape that holds a label succeeded without --overwrite")
	}

	var ids []string
	var seqs [][]uint64
	spanned := -1
	for i := 0; i < 6 && spanned < 0; i++ {
		e.now = sunday.Add(time.Duration(i) * 24 * time.Hour)
		if i == 3 {
			e.now = sunday.Add(7 * 24 * time.Hour) // next Sunday: another full
		}
		sum, err := e.run("")
		if err != nil {
			t.Fatalf("night %d: %v\n%s", i, err, e.logs.String())
		}
		g := sum.Jobs[0].Groups[0]
		ids = append(ids, g.SetID)
		seqs = append(seqs, e.seqs)
		s, err := e.catalog().GetSet(g.SetID)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Location.Tape) == 0 || s.Location.Kind != "tape" {
			t.Fatalf("night %d: location %+v", i, s.Location)
		}
		tv := s.Location.Tape[0]
		if tv.Label != "MAIL0001" || tv.FileNumber != int64(i+1) {
			t.Fatalf("night %d: on %q file %d, want MAIL0001 file %d", i, tv.Label, tv.FileNumber, i+1)
		}
		if len(s.Location.Tape) > 1 {
			spanned = i
		}
		e.load(1 << 20)
	}
	if spanned < 0 {
		t.Fatal("no set reached the end of the tape")
	}
	if b, _ := os.ReadFile(changer); strings.TrimSpace(string(b)) != "2" {
		t.Fatalf("next-volume command calls: %q", b)
	}
	v, err := e.catalog().GetVolume("MAIL0001")
	if err != nil || !v.Full {
		t.Fatalf("volume MAIL0001: %+v %v", v, err)
	}

	// Restore the newest chain (its last set spans both volumes).
	chain := ids // night 0 full, then incrementals
	if len(ids) > 3 {
		chain = ids[3:] // the second Sunday's full, then incrementals
	}
	to := filepath.Join(dir, "restore")
	var errb bytes.Buffer
	res, err := runRestore(context.Background(), restoreOpts{Catalog: filepath.Join(e.dir, "catalog.db"), FromGroup: "SG1", Group: "RSG", To: to, Out: &bytes.Buffer{}, Err: &errb, Read: readMediaFlags{BlockSize: "64KiB", NextVolumeCmd: "true"}})
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, errb.String())
	}
	if !slices.Equal(res[0].Sets, chain) {
		t.Fatalf("restore chain %v, want %v", res[0].Sets, chain)
	}
	rsrv, err := engine.OpenServer(to, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rg, _ := rsrv.Group("RSG")
	rep, err := workload.Verify(context.Background(), mailstore.New(rg))
	rsrv.Close()
	if err != nil || !rep.OK() || !slices.Equal(rep.Seqs, seqs[len(seqs)-1]) {
		t.Fatalf("restored: %v %v seqs %v want %v", err, rep.Err(), rep.Seqs, seqs[len(seqs)-1])
	}

	// The next run (a full) appends to the continuation cartridge, which
	// was labelled MAIL0002 when the set continued on it (its file 1 holds
	// the continuation); retention (keep 1 chain) expires every earlier
	// set, and the first volume, whose sets have all expired, becomes
	// recyclable.
	e.now = e.now.Add(24 * time.Hour)
	o := e.opts()
	o.Job, o.Level = "tape", "full"
	sum, err := runRun(context.Background(), o)
	if err != nil {
		t.Fatalf("run after the volume change: %v", err)
	}
	last, _ := e.catalog().GetSet(sum.Jobs[0].Groups[0].SetID)
	if tv := last.Location.Tape[0]; tv.Label != "MAIL0002" || tv.Loaded != 2 || tv.FileNumber != 2 {
		t.Fatalf("set after the volume change: %+v", last.Location)
	}
	for _, id := range ids {
		if s, _ := e.catalog().GetSet(id); s.Status != catalog.StatusExpired {
			t.Fatalf("set %s: %s, want expired", id, s.Status)
		}
	}
	if v, _ := e.catalog().GetVolume("MAIL0001"); v.Status != "recyclable" {
		t.Fatalf("volume MAIL0001: %+v", v)
	}

	// Rebuild from the first volume reproduces its sets.
	rebuilt := filepath.Join(dir, "rebuilt.db")
	out.Reset()
	if err := runCatalogRebuild(context.Background(), catalogOpts{Catalog: rebuilt, Config: e.cfgPath, BlockSize: "64KiB", NextVolumeCmd: "true", Out: &out, Err: &out},
		[]string{target + "?volume=1"}); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	rcat, _ := catalog.Open(rebuilt)
	for _, id := range ids {
		a, err := rcat.GetSet(id)
		if err != nil {
			t.Fatalf("rebuild lacks %s:\n%s", id, out.String())
		}
		b, _ := e.catalog().GetSet(id)
		if a.Job != "tape" || a.Type != b.Type || a.ParentID != b.ParentID || a.Location.Tape[0].FileNumber != b.Location.Tape[0].FileNumber ||
			a.Location.Tape[0].Label != "MAIL0001" || len(a.Location.Tape) != len(b.Location.Tape) || !slices.Equal(a.Files, b.Files) {
			t.Errorf("rebuilt %s:\n was %+v\n now %+v", id, b, a)
		}
	}
	if v, err := rcat.GetVolume("MAIL0001"); err != nil || v.Label != "MAIL0001" {
		t.Fatalf("rebuilt volume: %+v %v", v, err)
	}
}

const daemonConfig = `
catalog = "catalog.db"
textfile = "tapestream.prom"
log_format = "json"

[[job]]
name = "often"
store = "STORE"
groups = ["SG1"]
codec = "lz4"
[job.schedule]
cron = ["@every 1s full"]
[job.destination]
dir = "sets"
name = "{group}-{type}-{set}.tar.lz4"
`

// TestSchedDaemon runs the daemon for a few seconds of real time: the
// schedule fires, sets are cataloged, the notify hook and the textfile
// follow, and it stops cleanly.
func TestSchedDaemon(t *testing.T) {
	e := newSchedEnv(t, daemonConfig)
	e.load(256 << 10)
	notes := filepath.Join(e.dir, "notes")
	o := e.opts()
	o.now = nil
	o.NotifyCmd = `echo "$TAPESTREAM_JOB $TAPESTREAM_STATUS $TAPESTREAM_LEVEL" >> ` + notes
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := runDaemon(ctx, o); err != nil {
		t.Fatal(err)
	}
	sets, err := e.catalog().List(catalog.Filter{Job: "often", Status: catalog.StatusComplete})
	if err != nil || len(sets) == 0 {
		t.Fatalf("daemon cataloged %d sets (%v)\n%s", len(sets), err, e.logs.String())
	}
	b, _ := os.ReadFile(notes)
	if !strings.Contains(string(b), "often success full") {
		t.Fatalf("notify: %q", b)
	}
	if !strings.Contains(e.logs.String(), `"msg":"job finished"`) {
		t.Fatalf("no JSON log lines:\n%s", e.logs.String())
	}
	prom, _ := os.ReadFile(filepath.Join(e.dir, "tapestream.prom"))
	// (the last run may have been interrupted by the stop: it counts as failed)
	if !strings.Contains(string(prom), `tapestream_job_last_success_timestamp_seconds{job="often"} `) {
		t.Fatalf("textfile:\n%s", prom)
	}
}

// TestSchedDryRunJSON: a dry run plans (an incremental with no full in
// the catalog is promoted) and writes nothing.
func TestSchedDryRunJSON(t *testing.T) {
	e := newSchedEnv(t, weekConfig)
	o := e.opts()
	e.now = time.Date(2026, 11, 3, 2, 0, 30, 0, time.UTC) // a Tuesday: differential
	var out bytes.Buffer
	o.Out, o.DryRun, o.JSON, o.Job = &out, true, true, "mail"
	sum, err := runRun(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	g := sum.Jobs[0].Groups[0]
	if sum.Jobs[0].Status != "planned" || g.Level != "full" || g.Requested != "differential" || !strings.Contains(g.Promoted, "no full") {
		t.Fatalf("plan: %+v", sum.Jobs[0])
	}
	if !strings.Contains(out.String(), `"promoted": "no full backup of the group in the catalog"`) {
		t.Fatalf("JSON summary:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "sets")); err == nil {
		t.Fatal("a dry run created the destination")
	}
}

// TestSchedPromotionBackstop: sets taken outside the scheduler (a manual
// `tapestream backup`) are not in the catalog; the engine's headers and
// its -528 refusal still lead to a full, with the reason logged.
func TestSchedPromotionBackstop(t *testing.T) {
	e := newSchedEnv(t, weekConfig)
	e.load(512 << 10)
	e.now = time.Date(2026, 11, 1, 2, 0, 30, 0, time.UTC)
	if _, err := e.run("mail"); err != nil {
		t.Fatal(err)
	}
	manual := func() {
		e.load(128 << 10)
		_, err := runBackup(context.Background(), backupOpts{Groups: []string{"SG1"}, Type: "incremental", Output: filepath.Join(e.dir, "manual-"+e.now.Format("0102")+".tar"), Progress: "never", Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, source: source.NewLocal(e.srv), Pipeline: pipelineFlags{Compress: "lz4"}, Media: writeMediaFlags{BlockSize: "64KiB"}})
		if err != nil {
			t.Fatal(err)
		}
		e.load(128 << 10)
	}
	for i, c := range []struct{ level, reason string }{
		{"differential", "(-528)"},    // logs since the full deleted behind the catalog's back: the engine refuses
		{"incremental", "not usable"}, // continues a manual incremental the catalog does not know
	} {
		if i == 0 {
			e.load(128 << 10)
			if _, err := e.g.Rollover(); err != nil {
				t.Fatal(err)
			}
			logs, _ := filepath.Glob(filepath.Join(e.dir, "store", "SG1", "E0*.log"))
			n := 0
			for _, l := range logs {
				if len(filepath.Base(l)) > len("E00.log") {
					os.Remove(l)
					n++
				}
			}
			if n == 0 {
				t.Fatalf("no closed logs to delete: %v", logs)
			}
			e.load(128 << 10)
		} else {
			manual()
		}
		e.now = e.now.Add(24 * time.Hour)
		o := e.opts()
		o.Job, o.Level = "mail", c.level
		sum, err := runRun(context.Background(), o)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		g := sum.Jobs[0].Groups[0]
		t.Logf("%s promoted: %s", c.level, g.Promoted)
		if g.Level != "full" || !strings.Contains(g.Promoted, c.reason) {
			t.Fatalf("%d: %s promoted %q, want full ~%q", i, g.Level, g.Promoted, c.reason)
		}
	}
	var out bytes.Buffer
	if err := runCatalogList(context.Background(), catalogOpts{Config: e.cfgPath, Out: &out}); err != nil || strings.Count(out.String(), "full") < 3 {
		t.Fatalf("catalog list: %v\n%s", err, out.String())
	}
	sets, _ := e.catalog().List(catalog.Filter{})
	out.Reset()
	if err := runCatalogShow(context.Background(), catalogOpts{Config: e.cfgPath, Out: &out}, sets[1].ID[:8]); err != nil || !strings.Contains(out.String(), "promoted to full: ") {
		t.Fatalf("catalog show: %v\n%s", err, out.String())
	}
}
