package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/workload"
)

// The restore an Exchange administrator runs on the worst night of the
// year (issue 23): one database of a storage group, or some, or all, at the
// point of failure, while mail flows into the others.

var matrixDBs = []string{"Mailbox1", "Mailbox2", "Public"}

var matrixTemplate struct {
	once sync.Once
	dir  string
	err  error
}

// dbMatrixTemplate is a store of one group of three databases holding the
// mail workload, made once per test binary.
func dbMatrixTemplate(t *testing.T) string {
	t.Helper()
	m := &matrixTemplate
	m.once.Do(func() {
		m.dir, m.err = os.MkdirTemp("", "dbrestore-matrix")
		if m.err != nil {
			return
		}
		for _, args := range [][]string{
			{"store", "init", "--dir", "store", "--databases", strings.Join(matrixDBs, ","), "--log-size", "256KiB"},
			{"store", "load", "--dir", "store", "--size", "4MiB", "--seed", "4", "--streams", "4"},
		} {
			if code, _, errs := cli(t, m.dir, args...); code != 0 {
				m.err = fmt.Errorf("%v: exit %d: %s", args, code, errs)
				return
			}
		}
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m.dir
}

// mailFlow commits mail into each database on its own (one transaction
// per message and database, so that a dismounted database stops only its
// own mail) and records what was acknowledged: the same messages replayed
// into a copy of the store taken before are the source to compare with.
type mailFlow struct {
	commit    func(db string, key, val []byte) error
	restoring atomic.Bool

	mu      sync.Mutex
	acked   map[string][]int
	refused map[string][]error
	during  map[string]int // acknowledged while the restore ran
	stopC   chan struct{}
	wg      sync.WaitGroup
}

func mailValue(db string, n int) []byte {
	v := []byte(fmt.Sprintf("From: %s-%d\r\n\r\n", db, n))
	for len(v) < 200+(n*37)%1800 {
		v = append(v, byte('a'+(n+len(v))%26))
	}
	return v
}

func mailKey(n int) []byte { return []byte(fmt.Sprintf("m%07d", n)) }

func startMail(commit func(db string, key, val []byte) error) *mailFlow {
	f := &mailFlow{commit: commit, acked: map[string][]int{}, refused: map[string][]error{}, during: map[string]int{}, stopC: make(chan struct{})}
	for _, db := range matrixDBs {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-f.stopC:
					return
				case <-time.After(time.Millisecond):
				}
				during := f.restoring.Load()
				err := f.commit(db, mailKey(n), mailValue(db, n))
				f.mu.Lock()
				if err == nil {
					f.acked[db] = append(f.acked[db], n)
					if during && f.restoring.Load() {
						f.during[db]++
					}
				} else {
					f.refused[db] = append(f.refused[db], err)
				}
				f.mu.Unlock()
			}
		}()
	}
	return f
}

func (f *mailFlow) stop() {
	close(f.stopC)
	f.wg.Wait()
}

// replayMail commits the acknowledged mail into the store at dir.
func replayMail(t *testing.T, dir string, acked map[string][]int) {
	t.Helper()
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, _ := srv.Group("SG1")
	for db, ns := range acked {
		for _, n := range ns {
			if err := g.Update(func(tx *engine.Tx) error { return tx.Put(db, "w", mailKey(n), mailValue(db, n)) }); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// dumpsOf dumps every database of SG1 in dir and checks the group.
func dumpsOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, _ := srv.Group("SG1")
	if r, err := g.Check(); err != nil || !r.OK() {
		t.Fatalf("check of %s: %v %v", dir, err, r.Problems)
	}
	out := map[string]string{}
	for _, db := range matrixDBs {
		var b strings.Builder
		if err := g.Dump(&b, db); err != nil {
			t.Fatal(err)
		}
		out[db] = b.String()
	}
	return out
}

// attachOf is a database file's attach position and last attach time: a
// mount changes them, nothing else does.
func attachOf(t *testing.T, file string) string {
	t.Helper()
	h, err := engine.ReadHeader(nil, file)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%+v %v", h.Attach, h.LastAttach)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestRestoreDatabasesMatrix restores one, some and all of a group's
// databases at the point of failure: in process with the store open and
// mail flowing (restore.GroupOptions.Live), through the store server with
// mail flowing over the data API (restore --server --replace), and with
// the CLI into the closed store. Every database dumps exactly as the
// source does at the same instant (the store as it was, plus the mail it
// acknowledged); the databases not restored were never dismounted (their
// mail never refused, some taken during the restore, no new attach), and
// in the closed store their files are not even touched.
func TestRestoreDatabasesMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("restores nine times")
	}
	tmpl := dbMatrixTemplate(t)
	subsets := map[string][]string{"one": {"Public"}, "some": {"Mailbox1", "Public"}, "all": matrixDBs}
	for _, mode := range []string{"process", "server", "cli"} {
		for _, name := range []string{"one", "some", "all"} {
			subset := subsets[name]
			t.Run(mode+"/"+name, func(t *testing.T) {
				dir := t.TempDir()
				copyTree(t, tmpl, dir)
				store := filepath.Join(dir, "store")
				args := []string{"backup", "--store", "store", "--type", "full", "-o", "set.tar", "--progress", "never"}
				if name != "all" {
					for _, db := range subset {
						args = append(args, "--database", db)
					}
				}
				mustCLI(t, dir, args...)
				// Mail after the set: the restore must replay it.
				mustCLI(t, dir, "store", "load", "--dir", "store", "--size", "5MiB", "--seed", "4", "--streams", "4")
				source := filepath.Join(dir, "source")
				copyTree(t, store, source)
				before := map[string]string{}
				sums := map[string][32]byte{}
				for _, db := range matrixDBs {
					before[db] = attachOf(t, filepath.Join(store, "SG1", db+".edb"))
					sums[db] = fileSum(t, filepath.Join(store, "SG1", db+".edb"))
				}
				var flow *mailFlow
				var res *restore.Result
				switch mode {
				case "process":
					flow, res = restoreInProcess(t, store, filepath.Join(dir, "set.tar"))
				case "server":
					flow, res = restoreThroughServer(t, dir, store)
				case "cli":
					rs, err := runRestore(context.Background(), restoreOpts{Sets: []string{filepath.Join(dir, "set.tar")}, To: store, Force: true,
						Out: &strings.Builder{}, Err: &strings.Builder{}})
					if err != nil {
						t.Fatal(err)
					}
					res = rs[0]
				}
				if res != nil && res.Recovery != nil && res.Recovery.ToGen <= res.HighGen {
					t.Fatalf("recovery replayed to generation %d, the set ends at %d: not the point of failure", res.Recovery.ToGen, res.HighGen)
				}
				if mode == "cli" {
					for _, db := range matrixDBs {
						if !slices.Contains(subset, db) && fileSum(t, filepath.Join(store, "SG1", db+".edb")) != sums[db] {
							t.Fatalf("%s, not restored, was written by the restore of %v", db, subset)
						}
					}
				}
				if flow != nil {
					replayMail(t, source, flow.acked)
				}
				got, want := dumpsOf(t, store), dumpsOf(t, source)
				for _, db := range matrixDBs {
					if got[db] != want[db] {
						t.Fatalf("%s after restoring %v: does not dump as the source does", db, subset)
					}
					if slices.Contains(subset, db) {
						continue
					}
					file := filepath.Join(store, "SG1", db+".edb")
					if a := attachOf(t, file); a != before[db] {
						t.Fatalf("%s, not restored, was mounted again (attach %s, before %s)", db, a, before[db])
					}
					if flow == nil {
						continue
					}
					if n := len(flow.refused[db]); n > 0 {
						t.Fatalf("%s, not restored, refused %d messages during the restore of %v: %v", db, n, subset, flow.refused[db][0])
					}
					if flow.during[db] == 0 {
						t.Fatalf("%s took no mail while %v were restored", db, subset)
					}
				}
				if flow != nil {
					t.Logf("mail acknowledged: %v messages; during the restore: %v; refused: %d/%d/%d",
						len(flow.acked["Mailbox1"])+len(flow.acked["Mailbox2"])+len(flow.acked["Public"]), flow.during,
						len(flow.refused["Mailbox1"]), len(flow.refused["Mailbox2"]), len(flow.refused["Public"]))
				}
				if ents, _ := filepath.Glob(filepath.Join(store, ".[rsd]*")); len(ents) > 0 && mode != "cli" {
					for _, e := range ents {
						if !strings.Contains(e, ".replaced-") {
							t.Fatalf("leftover %s", e)
						}
					}
				}
			})
		}
	}
}

// restoreInProcess opens the store in this process, lets mail flow, and
// restores the set through the open group (as a server does).
func restoreInProcess(t *testing.T, store, set string) (*mailFlow, *restore.Result) {
	t.Helper()
	srv, err := engine.OpenServer(store, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, _ := srv.Group("SG1")
	flow := startMail(func(db string, key, val []byte) error {
		return g.Update(func(tx *engine.Tx) error { return tx.Put(db, "w", key, val) })
	})
	defer flow.stop()
	time.Sleep(100 * time.Millisecond)
	chains, err := restore.Plan([]restore.SetSource{{Path: set}}, restore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flow.restoring.Store(true)
	res, err := restore.RunChain(context.Background(), chains[0], restore.GroupOptions{To: store, Force: true, StoreLocked: true, Live: g})
	flow.restoring.Store(false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	flow.stop()
	flow.stopC = make(chan struct{}) // the deferred stop finds nothing to do
	return flow, res
}

// restoreThroughServer serves the store, lets mail flow over the data API
// and restores the set with `restore --server --replace`.
func restoreThroughServer(t *testing.T, dir, store string) (*mailFlow, *restore.Result) {
	t.Helper()
	tok := writeToken(t)
	p := startServeProc(t, store, tok, "--restore-dir", dir)
	r, err := remoteFlags{Server: p.url, TokenFile: tok}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rs := r.Store("SG1")
	flow := startMail(func(db string, key, val []byte) error {
		return rs.Update(func(tx workload.Tx) error { return tx.Put(db, "w", key, val) })
	})
	time.Sleep(200 * time.Millisecond)
	flow.restoring.Store(true)
	code, out, errs := cli(t, dir, "restore", "--server", p.url, "--token-file", tok, "--group", "SG1", "--replace", "set.tar", "--json")
	flow.restoring.Store(false)
	time.Sleep(200 * time.Millisecond)
	flow.stop()
	if code != 0 {
		t.Fatalf("restore --server --replace: exit %d: %s", code, errs)
	}
	if c, _ := p.stop(t); c != 0 {
		t.Fatalf("store serve: exit %d: %s", c, p.stderr)
	}
	for db, errs := range flow.refused {
		for _, e := range errs {
			if !errors.Is(e, engine.ErrDismounted) {
				t.Fatalf("mail to %s refused for another reason than a dismount: %v", db, e)
			}
		}
	}
	var doc restoreDoc
	if err := jsonUnmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Groups) != 1 || !doc.Groups[0].Mounted {
		t.Fatalf("restore --server --json: %s", out)
	}
	g := doc.Groups[0]
	res := &restore.Result{Group: g.Group, LowGen: g.LogFirstGeneration, HighGen: g.LogLastGeneration, Databases: g.Databases}
	if g.Recovery != nil {
		res.Recovery = &engine.RecoveryInfo{FromGen: g.Recovery.FromGeneration, ToGen: g.Recovery.ToGeneration, Commits: g.Recovery.Commits}
	}
	return flow, res
}

func jsonUnmarshal(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("%w: %s", err, s)
	}
	return nil
}

// Seed 003: "restore multiple instances in parallel … the entire server can
// be restored at the same time". Two and four groups are restored at once
// into one store, by as many restore processes, and through the store
// server. Each restore holds its step after recovery for a while (a
// failpoint delay): run one after another (a second restore used to be
// refused on the store lock, exit 5, and the server serialised them) they
// would take that long times their number.
func TestRestoreGroupsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("restores groups for seconds")
	}
	const hold = 3 * time.Second
	dir := t.TempDir()
	groups := []string{"SG1", "SG2", "SG3", "SG4"}
	args := []string{"store", "init", "--dir", "store", "--log-size", "256KiB"}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	mustCLI(t, dir, args...)
	for i, g := range groups {
		mustCLI(t, dir, "store", "load", "--dir", "store", "--group", g, "--size", "3MiB", "--seed", fmt.Sprint(i+1), "--streams", "2")
		mustCLI(t, dir, "backup", "--store", "store", "--group", g, "--type", "full", "-o", g+".tar", "--progress", "never")
		mustCLI(t, dir, "store", "load", "--dir", "store", "--group", g, "--duration", "100ms", "--seed", fmt.Sprint(i+1), "--streams", "2")
	}
	dump0 := map[string]string{}
	for _, g := range groups {
		dump0[g] = dumpOf(t, dir, "store", g)
	}
	delay := "TAPESTREAM_FAILPOINT=restore/after-recover=delay:" + hold.String()
	check := func(t *testing.T, n int, wall time.Duration) {
		t.Helper()
		if limit := time.Duration(n)*hold - hold/2; wall >= limit {
			t.Fatalf("%d restores of %s each took %s together: they did not run at the same time (limit %s)", n, hold, wall, limit)
		}
		for _, g := range groups[:n] {
			if got := dumpOf(t, dir, "store", g); got != dump0[g] {
				t.Fatalf("%s restored at the same time as %d others does not dump as before", g, n-1)
			}
		}
		t.Logf("%d groups restored at once in %s (each held %s)", n, wall.Round(time.Millisecond), hold)
	}
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprintf("process/%d", n), func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make([]string, n)
			t0 := time.Now()
			for i, g := range groups[:n] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := cliCmd(dir, "restore", g+".tar", "--to", "store", "--force")
					c.Env = append(c.Env, delay)
					if out, err := c.CombinedOutput(); err != nil {
						errs[i] = fmt.Sprintf("restore of %s: %v: %s", g, err, out)
					}
				}()
			}
			wg.Wait()
			wall := time.Since(t0)
			for _, e := range errs {
				if e != "" {
					t.Fatal(e)
				}
			}
			check(t, n, wall)
		})
		t.Run(fmt.Sprintf("server/%d", n), func(t *testing.T) {
			tok := writeToken(t)
			p := startServeProcEnv(t, []string{delay}, filepath.Join(dir, "store"), tok, "--restore-dir", dir)
			var wg sync.WaitGroup
			errs := make([]string, n)
			t0 := time.Now()
			for i, g := range groups[:n] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := cliCmd(dir, "restore", "--server", p.url, "--token-file", tok, "--group", g, "--replace", g+".tar")
					if out, err := c.CombinedOutput(); err != nil {
						errs[i] = fmt.Sprintf("restore of %s through the server: %v: %s", g, err, out)
					}
				}()
			}
			wg.Wait()
			wall := time.Since(t0)
			if code, _ := p.stop(t); code != 0 {
				t.Fatalf("store serve: exit %d: %s", code, p.stderr)
			}
			for _, e := range errs {
				if e != "" {
					t.Fatal(e)
				}
			}
			check(t, n, wall)
		})
	}
}
