package engine

// Fault injection through the vfs seam: a FaultFS over a CrashFS fails
// every mutating file-system operation of a small scripted workload in
// turn; the file system then loses everything not synced (CrashFS.Crash)
// and the group is reopened on the clean view. Recovery must always
// succeed and yield a store that passes Check and holds exactly the
// acknowledged commits (plus, possibly, the one in flight).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/vfs"
)

const (
	faultDir     = "/store/SG1"
	faultCommits = 36
)

func faultGroupConfig() GroupConfig {
	return GroupConfig{Name: "SG1", LogSize: 128 << 10, Databases: []DBConfig{{Name: "Mailbox1", Streaming: true}, {Name: "Public"}}}
}

// faultOpts: no timed background flush and a cache that never fills, so
// that the operation sequence is the same on every run.
func faultOpts(fs vfs.FS) Options { return faultOptsCache(fs, 8<<20) }

// faultOptsCache: with a small cache, commits wake the background flusher
// (and wait for it when the cache is far over budget): the operation
// sequence then varies from run to run.
func faultOptsCache(fs vfs.FS, cache int) Options {
	return Options{FS: fs, CacheSize: cache, FlushInterval: time.Hour}
}

// faultTxn is commit i of the script: one put into Mailbox1/t (every fifth
// a long value living in the streaming file, every ninth a 40 KiB one so
// that the 128 KiB log rolls over by itself), a delete every fourth commit,
// a put into Public/t and the sequence number.
func faultTxn(i int) (key, val, del []byte) {
	key = []byte(fmt.Sprintf("k%03d", i*7%50))
	n := 40 + i*7%250
	switch {
	case i%9 == 0:
		n = 40 << 10
	case i%5 == 0:
		n = 9000 + 100*i
	}
	val = make([]byte, n)
	for j := range val {
		val[j] = byte(i*31 + j*7 + j>>8)
	}
	if i%4 == 0 {
		del = []byte(fmt.Sprintf("k%03d", i*3%50))
	}
	return
}

// faultModel is the content of Mailbox1/t and Public/t after commits 1..n.
func faultModel(n int) (mb, pub map[string][]byte) {
	mb, pub = map[string][]byte{}, map[string][]byte{}
	for i := 1; i <= n; i++ {
		k, v, d := faultTxn(i)
		mb[string(k)] = v
		if d != nil {
			delete(mb, string(d))
		}
		mb["seq"] = binary.BigEndian.AppendUint64(nil, uint64(i))
		pub[fmt.Sprintf("p%03d", i%10)] = []byte(fmt.Sprintf("commit %d", i))
	}
	return
}

func faultCommit(g *Group, i int) error {
	k, v, d := faultTxn(i)
	return g.Update(func(tx *Tx) error {
		if err := tx.Put("Mailbox1", "t", k, v); err != nil {
			return err
		}
		if d != nil {
			if err := tx.Delete("Mailbox1", "t", d); err != nil {
				return err
			}
		}
		if err := tx.Put("Public", "t", []byte(fmt.Sprintf("p%03d", i%10)), []byte(fmt.Sprintf("commit %d", i))); err != nil {
			return err
		}
		return tx.Put("Mailbox1", "t", []byte("seq"), binary.BigEndian.AppendUint64(nil, uint64(i)))
	})
}

// scriptResult is what a run of the fault script observed.
type scriptResult struct {
	created  bool // CreateGroup returned nil
	acked    int  // commits 1..acked were acknowledged
	inflight bool // commit acked+1 failed (it may or may not be durable)
	errs     []string
	firstErr error
}

func (r *scriptResult) note(step string, err error) {
	if err == nil {
		return
	}
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.errs = append(r.errs, step+": "+err.Error())
}

// runFaultScript creates a group, opens it, makes faultCommits commits
// with two forced flushes and a forced rollover between them, and closes
// it. The first failed commit ends the script (the group is then closed
// as well as it goes); a failed flush or rollover does not: the commits
// after it must either fail or be durable.
func runFaultScript(fs vfs.FS, cache int) scriptResult {
	var r scriptResult
	if err := CreateGroup(faultDir, faultGroupConfig(), faultOpts(fs)); err != nil {
		r.note("create", err)
		return r
	}
	r.created = true
	g, err := OpenGroup(faultDir, faultOptsCache(fs, cache))
	if err != nil {
		r.note("open", err)
		return r
	}
	for i := 1; i <= faultCommits; i++ {
		if err := faultCommit(g, i); err != nil {
			r.note(fmt.Sprintf("commit %d", i), err)
			r.inflight = true
			break
		}
		r.acked = i
		switch i {
		case 10, 25:
			r.note("flush", g.flush(true))
		case 18:
			_, err := g.Rollover()
			r.note("rollover", err)
		}
	}
	r.note("close", g.Close())
	return r
}

// checkFaultState opens the group on fs (recovery) and checks it against
// the script's result.
func checkFaultState(t *testing.T, fs vfs.FS, r scriptResult, what string) {
	t.Helper()
	g, err := OpenGroup(faultDir, faultOpts(fs))
	if err != nil {
		if !r.created && errors.Is(err, os.ErrNotExist) {
			return // CreateGroup failed before group.json was durable
		}
		t.Fatalf("%s: reopen after crash: %v (script: %v)", what, err, r.errs)
	}
	defer g.Close()
	rep, err := g.Check()
	if err != nil {
		t.Fatalf("%s: check: %v", what, err)
	}
	if !rep.OK() {
		t.Fatalf("%s: check: %s (script: %v)", what, strings.Join(rep.Problems, "; "), r.errs)
	}
	var seq int
	err = g.View(func(tx *Tx) error {
		v, ok, err := tx.Get("Mailbox1", "t", []byte("seq"))
		if ok {
			seq = int(binary.BigEndian.Uint64(v))
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if seq < r.acked || seq > r.acked+1 || seq == r.acked+1 && !r.inflight {
		t.Fatalf("%s: store is at commit %d; %d acknowledged, in flight: %v (script: %v)", what, seq, r.acked, r.inflight, r.errs)
	}
	mb, pub := faultModel(seq)
	for _, c := range []struct {
		db    string
		model map[string][]byte
	}{{"Mailbox1", mb}, {"Public", pub}} {
		n := 0
		err := g.View(func(tx *Tx) error {
			return tx.Scan(c.db, "t", nil, func(k, v []byte) error {
				want, ok := c.model[string(k)]
				if !ok || !bytes.Equal(want, v) {
					return fmt.Errorf("%s/t key %q: %d bytes, model has %v/%d bytes", c.db, k, len(v), ok, len(want))
				}
				n++
				return nil
			})
		})
		if err == nil && n != len(c.model) {
			err = fmt.Errorf("%s/t has %d keys, the model after commit %d has %d", c.db, n, seq, len(c.model))
		}
		if err != nil {
			t.Fatalf("%s: %v (script: %v)", what, err, r.errs)
		}
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

var faultStride = flag.Int64("fault.stride", 0, "test every n-th injection point of TestFaultInjection (0: every point, every 3rd/7th with -race)")

// TestFaultInjection fails every counted operation of the script in turn,
// once as a dead disk (that operation and every later one fail) and once
// as a single transient failure, then crashes (unsynced data is lost) and
// recovers on the clean file system. Every counted operation turned out to
// be on a durability path: its failure must be reported by some call of
// the script. A second configuration with a cache of 64 pages (background
// flushes woken by commits, so the operation order varies between runs)
// tests every 3rd point. Under the race detector (about 20x slower) the
// strides are 3 and 7 (dead disk, transient) and 9 for the small cache,
// unless -fault.stride is given.
func TestFaultInjection(t *testing.T) {
	race := raceEnabled()
	for _, cfg := range []struct {
		name   string
		cache  int
		stride [2]int64 // dead disk, transient
		race   [2]int64
	}{
		{"deterministic", 8 << 20, [2]int64{1, 1}, [2]int64{3, 7}},
		{"small cache", 64 * page.Size, [2]int64{3, 3}, [2]int64{9, 9}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			base := vfs.NewFaultFS(vfs.NewCrashFS())
			clean := runFaultScript(base, cfg.cache)
			if clean.firstErr != nil {
				t.Fatalf("script without faults: %v", clean.errs)
			}
			ops := base.Count()
			kinds := map[vfs.OpKind]int{}
			for _, op := range base.Ops() {
				kinds[op.Kind]++
			}
			t.Logf("script: %d counted operations %v", ops, kinds)
			for i, sticky := range []bool{true, false} {
				stride := cfg.stride[i]
				if race {
					stride = cfg.race[i]
				}
				if *faultStride > 0 {
					stride = *faultStride
				}
				silent, runs := 0, 0
				for n := int64(1); n <= ops; n += stride {
					cfs := vfs.NewCrashFS()
					ffs := vfs.NewFaultFS(cfs)
					ffs.FailAt(n, sticky)
					r := runFaultScript(ffs, cfg.cache)
					var op vfs.Op
					for _, o := range ffs.Ops() {
						if o.N == n {
							op = o
						}
					}
					what := fmt.Sprintf("sticky=%v op %v", sticky, op)
					if ffs.Injected() == 0 {
						if cfg.cache == 8<<20 {
							t.Fatalf("%s: nothing injected (the script is not deterministic)", what)
						}
						continue // this run had fewer operations
					}
					runs++
					if r.firstErr == nil {
						silent++
						t.Errorf("%s: the failure was not reported", what)
					} else if !errors.Is(r.firstErr, vfs.ErrInjected) {
						t.Errorf("%s: first error does not wrap the injected fault: %v", what, r.firstErr)
					}
					cfs.Crash()
					checkFaultState(t, cfs, r, what)
					if t.Failed() {
						return
					}
				}
				t.Logf("sticky=%v: %d of %d injection points tested, %d unreported", sticky, runs, ops, silent)
			}
		})
	}
}

// TestOrphanTailNotReplayed: a transaction interrupted by a crash leaves
// page ops without a commit at the end of the log. After recovery new
// transactions are appended behind them; a later replay that starts before
// them (here: an open without checkpoint file, as after a restore, which
// replays from the start of the backup's first generation) must not apply
// them together with the next commit.
func TestOrphanTailNotReplayed(t *testing.T) {
	fs := vfs.NewCrashFS()
	if err := CreateGroup(faultDir, faultGroupConfig(), faultOpts(fs)); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGroup(faultDir, faultOpts(fs))
	if err != nil {
		t.Fatal(err)
	}
	put := func(g *Group, k string, n int) {
		t.Helper()
		if err := g.Update(func(tx *Tx) error { return tx.Put("Mailbox1", "t", []byte(k), bytes.Repeat([]byte{byte(n)}, n)) }); err != nil {
			t.Fatal(err)
		}
	}
	put(g, "a", 100)
	put(g, "b", 20000)
	// Apply (and log) a transaction without its commit record, make the
	// log durable and die, as a crash between the page ops and the commit.
	g.mu.Lock()
	a := &applier{g: g}
	d, _ := g.database("Mailbox1")
	root, err := g.tableRoot(a, d, "t")
	if err == nil {
		err = a.put(d, root, []byte("orphan"), bytes.Repeat([]byte{7}, 30000))
	}
	if err == nil {
		_, err = a.del(d, root, []byte("a"))
	}
	g.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.log.Sync(); err != nil {
		t.Fatal(err)
	}
	g.abandon()
	fs.Crash()

	g, err = OpenGroup(faultDir, faultOpts(fs))
	if err != nil {
		t.Fatal(err)
	}
	put(g, "c", 100)
	put(g, "d", 25000)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	model := map[string][]byte{
		"a": bytes.Repeat([]byte{100}, 100), "b": bytes.Repeat([]byte{32}, 20000),
		"c": bytes.Repeat([]byte{100}, 100), "d": bytes.Repeat([]byte{byte(25000 % 256)}, 25000),
	}
	for _, chk := range []bool{true, false} {
		if !chk {
			// Replay everything from the first generation.
			if err := fs.Remove(filepath.Join(faultDir, "E00.chk")); err != nil {
				t.Fatal(err)
			}
		}
		g, err = OpenGroup(faultDir, faultOpts(fs))
		if err != nil {
			t.Fatalf("checkpoint %v: %v", chk, err)
		}
		checkModel(t, g, model)
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
