package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine"
)

// The crash-point matrix (issue 15), in the manner of bbolt's failpoints:
// the real binary is run to a named step of a backup or a restore, killed
// there with SIGKILL (internal/failpoint), and what it left is checked
// against the invariants:
//
//	the store opens and passes its check, with exactly the data it had
//	    (every acknowledged commit is still there);
//	no log is gone unless a durable, verifiable set holds it and the
//	    database headers name that set;
//	a restore's target is the old group or the new one, never neither,
//	    and the next open leaves no staging directory or switch intent;
//	the next backup (an incremental) and a restore of the chain work, and
//	    the restored group dumps like the source.

// copyTree copies a directory (files and directories only).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashCase runs tapestream with a failpoint armed and reports whether the
// process died there (false: the step was never reached and it ran to its
// end with the given exit code).
func crashCase(t *testing.T, dir, point string, args ...string) (killed bool, code int, stderr string) {
	t.Helper()
	cmd := cliCmd(dir, args...)
	cmd.Env = append(cmd.Env, "TAPESTREAM_FAILPOINT="+point)
	var errb strings.Builder
	cmd.Stderr = &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("tapestream %v: %v", args, err)
	}
	ws := cmd.ProcessState.ExitCode()
	return ws == -1, ws, errb.String()
}

type setListing struct {
	Label struct {
		SetID         string `json:"set_id"`
		SetType       string `json:"set_type"`
		PreviousSetID string `json:"previous_set_id"`
	} `json:"label"`
}

func labelOf(t *testing.T, dir, set string) setListing {
	t.Helper()
	code, out, errs := cli(t, dir, "list", "--json", set)
	if code != 0 {
		t.Fatalf("list %s: exit %d: %s", set, code, errs)
	}
	var l setListing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// headerSets returns the set ids the first database's header names as its
// previous full and incremental.
func headerSets(t *testing.T, dir string) (full, incr string) {
	t.Helper()
	code, out, errs := cli(t, dir, "store", "header", "--json", filepath.Join("store", "SG1", "Mailbox1.edb"))
	if code != 0 {
		t.Fatalf("store header: exit %d: %s", code, errs)
	}
	var doc struct {
		Header struct {
			PreviousFull *struct {
				SetID string `json:"set_id"`
			} `json:"previous_full"`
			PreviousIncremental *struct {
				SetID string `json:"set_id"`
			} `json:"previous_incremental"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("store header --json: %v\n%s", err, out)
	}
	h := doc.Header
	if h.PreviousFull != nil {
		full = h.PreviousFull.SetID
	}
	if h.PreviousIncremental != nil {
		incr = h.PreviousIncremental.SetID
	}
	return full, incr
}

func dumpOf(t *testing.T, dir, storeDir, group string) string {
	t.Helper()
	code, out, errs := cli(t, dir, "store", "dump", "--dir", storeDir, "--group", group)
	if code != 0 {
		t.Fatalf("store dump %s/%s: exit %d: %s", storeDir, group, code, errs)
	}
	return out
}

// crashTemplate makes a store with a full set (base.tar) and later mail,
// once per test binary.
func crashTemplate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"store", "init", "--dir", "store", "--log-size", "256KiB"},
		{"store", "load", "--dir", "store", "--size", "2MiB", "--seed", "3"},
		{"backup", "--store", "store", "--type", "full", "-o", "base.tar", "--progress", "never"},
		{"store", "load", "--dir", "store", "--size", "3MiB", "--seed", "3"},
	} {
		if code, _, errs := cli(t, dir, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	return dir
}

func TestCrashMatrixBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary to every crash point")
	}
	tmpl := crashTemplate(t)
	points := []string{
		"backup/after-open", "media/write@1", "media/write@3", "media/commit/after-sync", "media/commit/after-rename",
		"backup/after-commit", "backup/after-headers", "backup/truncate-one", "backup/after-end",
	}
	cases, crashed := 0, 0
	for _, typ := range []string{"full", "incremental"} {
		for _, point := range points {
			t.Run(typ+"/"+strings.ReplaceAll(point, "/", "-"), func(t *testing.T) {
				dir := t.TempDir()
				copyTree(t, tmpl, dir)
				gdir := filepath.Join(dir, "store", "SG1")
				gens0 := logGens(t, gdir)
				dump0 := dumpOf(t, dir, "store", "SG1")
				killed, code, errs := crashCase(t, dir, point, "backup", "--store", "store", "--type", typ, "-o", "set.tar", "--progress", "never")
				cases++
				if killed {
					crashed++
				} else if code != 0 {
					t.Fatalf("not killed at %s and failed: exit %d: %s", point, code, errs)
				}
				// The store opens, passes its check and holds exactly its data.
				if code, _, errs := cli(t, dir, "store", "check", "--dir", "store", "--group", "SG1"); code != 0 {
					t.Fatalf("store check after a crash at %s: exit %d: %s", point, code, errs)
				}
				if got := dumpOf(t, dir, "store", "SG1"); got != dump0 {
					t.Fatalf("the data changed after a crash at %s", point)
				}
				// No log gone unless a durable set holds it and the
				// headers name it.
				gens1 := logGens(t, gdir)
				var missing []uint32
				for _, g := range gens0 {
					if !slices.Contains(gens1, g) {
						missing = append(missing, g)
					}
				}
				hFull, hIncr := headerSets(t, dir)
				_, setErr := os.Stat(filepath.Join(dir, "set.tar"))
				var setID string
				if setErr == nil {
					if code, _, errs := cli(t, dir, "verify", "set.tar"); code != 0 {
						t.Fatalf("a set under its final name fails verification after a crash at %s: %s", point, errs)
					}
					setID = labelOf(t, dir, "set.tar").Label.SetID
				}
				recorded := setID != "" && (hFull == setID || hIncr == setID)
				if len(missing) > 0 && !recorded {
					t.Fatalf("crash at %s: logs %v truncated, but no durable set the headers name holds them (set %q, headers %q/%q)", point, missing, setID, hFull, hIncr)
				}
				if (hFull != "" && hFull != labelOf(t, dir, "base.tar").Label.SetID && hFull != setID) || (hIncr != "" && hIncr != setID) {
					t.Fatalf("crash at %s: the headers name a set that does not exist (%q/%q)", point, hFull, hIncr)
				}
				// The next backup works, and so does a restore of the chain.
				if code, _, errs := cli(t, dir, "backup", "--store", "store", "--type", "incremental", "-o", "next.tar", "--progress", "never"); code != 0 {
					t.Fatalf("the incremental after a crash at %s: exit %d: %s", point, code, errs)
				}
				chain := []string{"base.tar"}
				if recorded {
					if typ == "full" {
						chain = []string{"set.tar"}
					} else {
						chain = append(chain, "set.tar")
					}
				}
				chain = append(chain, "next.tar")
				args := append([]string{"restore"}, chain...)
				args = append(args, "--to", "restored", "--group", "R")
				if code, _, errs := cli(t, dir, args...); code != 0 {
					t.Fatalf("restore of %v after a crash at %s: exit %d: %s", chain, point, code, errs)
				}
				if got := dumpOf(t, dir, "restored", "R"); got != dump0 {
					t.Fatalf("the chain %v restored after a crash at %s does not dump like the source", chain, point)
				}
			})
		}
	}
	t.Logf("backup crash matrix: %d cases, %d killed at their step, 0 invariant violations", cases, crashed)
}

func TestCrashMatrixRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary to every crash point")
	}
	tmpl := crashTemplate(t)
	points := []string{
		"restore/after-stage", "restore/after-recover", "restore/switch/after-intent", "restore/switch/after-exchange",
		"restore/switch/before-intent-removed", "restore/after-switch",
	}
	cases, crashed := 0, 0
	for _, point := range points {
		t.Run(strings.ReplaceAll(point, "/", "-"), func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, tmpl, dir)
			dump0 := dumpOf(t, dir, "store", "SG1")
			// A point-of-failure restore of the full into the live group.
			killed, code, errs := crashCase(t, dir, point, "restore", "base.tar", "--to", "store", "--force")
			cases++
			if killed {
				crashed++
			} else if code != 0 {
				t.Fatalf("not killed at %s and failed: exit %d: %s", point, code, errs)
			}
			// The next open finishes or undoes the switch; the group holds
			// every commit, old group or new.
			code, _, errs = cli(t, dir, "store", "check", "--dir", "store", "--group", "SG1")
			if code != 0 {
				t.Fatalf("store check after a crash at %s: exit %d: %s", point, code, errs)
			}
			if got := dumpOf(t, dir, "store", "SG1"); got != dump0 {
				t.Fatalf("commits lost by a restore killed at %s", point)
			}
			ents, _ := os.ReadDir(filepath.Join(dir, "store"))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".restore-") || strings.HasPrefix(e.Name(), ".switch-") {
					t.Fatalf("leftover %s after a crash at %s and the next open", e.Name(), point)
				}
			}
			restoreAgainAfterCrash(t, dir, point, "base.tar", dump0)
		})
	}
	t.Logf("restore crash matrix: %d cases, %d killed at their step, 0 invariant violations", cases, crashed)
}

// crashDBTemplate makes a store with a full set of one database
// (pub.tar, Public alone) and later mail, once per call.
func crashDBTemplate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"store", "init", "--dir", "store", "--log-size", "256KiB"},
		{"store", "load", "--dir", "store", "--size", "3MiB", "--seed", "3"},
		{"backup", "--store", "store", "--type", "full", "--database", "Public", "-o", "pub.tar", "--progress", "never"},
		{"store", "load", "--dir", "store", "--size", "4MiB", "--seed", "3"},
	} {
		if code, _, errs := cli(t, dir, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	return dir
}

// The restore of one database of a group (issue 23), killed at each of
// its steps: the other database's file is never touched; the next open
// finishes or undoes it (the database is the old one or the restored one,
// mounted either way); every acknowledged commit is there; no staging
// directory or intent is left; the restore runs again, and so do the next
// backup and its restore.
func TestCrashMatrixDatabaseRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary to every crash point")
	}
	tmpl := crashDBTemplate(t)
	points := []string{
		"restore/after-stage", "restore/db/after-intent", "restore/db/after-dismount", "restore/after-recover",
		"restore/dbswitch/after-intent", "restore/dbswitch/after-move-old", "restore/dbswitch/after-move",
		"restore/dbswitch/after-mount", "restore/after-switch",
	}
	cases, crashed := 0, 0
	for _, point := range points {
		t.Run(strings.ReplaceAll(point, "/", "-"), func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, tmpl, dir)
			dump0 := dumpOf(t, dir, "store", "SG1")
			other := fileSum(t, filepath.Join(dir, "store", "SG1", "Mailbox1.edb"))
			killed, code, errs := crashCase(t, dir, point, "restore", "pub.tar", "--to", "store", "--force")
			cases++
			if killed {
				crashed++
			} else if code != 0 {
				t.Fatalf("not killed at %s and failed: exit %d: %s", point, code, errs)
			}
			if fileSum(t, filepath.Join(dir, "store", "SG1", "Mailbox1.edb")) != other {
				t.Fatalf("a restore of Public killed at %s wrote Mailbox1", point)
			}
			code, _, errs = cli(t, dir, "store", "check", "--dir", "store", "--group", "SG1")
			if code != 0 {
				t.Fatalf("store check after a crash at %s: exit %d: %s", point, code, errs)
			}
			if got := dumpOf(t, dir, "store", "SG1"); got != dump0 {
				t.Fatalf("commits lost by a restore of Public killed at %s", point)
			}
			ents, _ := os.ReadDir(filepath.Join(dir, "store"))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".restore-") || strings.HasPrefix(e.Name(), ".switch-") || strings.HasPrefix(e.Name(), ".dbswitch-") {
					t.Fatalf("leftover %s after a crash at %s and the next open", e.Name(), point)
				}
			}
			cfg, err := engine.ReadGroupConfig(filepath.Join(dir, "store", "SG1"))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range cfg.Databases {
				if d.Dismounted {
					t.Fatalf("%s is left dismounted after a crash at %s and the next open", d.Name, point)
				}
			}
			if h := headerOf(t, dir, "store/SG1/Public.edb"); h.PatchCurrentFull != nil || h.State == engine.StateRestored {
				t.Fatalf("Public after a crash at %s: state %s, Patch Current Full Backup %+v", point, h.State, h.PatchCurrentFull)
			}
			restoreAgainAfterCrash(t, dir, point, "pub.tar", dump0)
		})
	}
	t.Logf("database restore crash matrix: %d cases, %d killed at their step, 0 invariant violations", cases, crashed)
}

// Never a silent rollback (issue 15's invariant, per group and per
// database): a restore of an older full whose logs the live group no
// longer continues (a newer full truncated them) is refused, the group
// untouched; with --accept-data-loss it is done, what it replaced is
// kept, and the group recovers, backs up and restores afterwards.
func TestCrashMatrixRollbackRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("restores several times")
	}
	for _, tc := range []struct{ name, set string }{{"group", "base.tar"}, {"database", "pub.tar"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := crashDBTemplate(t)
			for _, args := range [][]string{
				{"backup", "--store", "store", "--type", "full", "-o", "base.tar", "--progress", "never"},
				{"store", "load", "--dir", "store", "--duration", "300ms", "--seed", "3"},
				{"backup", "--store", "store", "--type", "full", "-o", "newer.tar", "--progress", "never"},
				{"store", "load", "--dir", "store", "--duration", "200ms", "--seed", "3"},
			} {
				mustCLI(t, dir, args...)
			}
			if tc.name == "group" {
				// base.tar is older than newer.tar; the logs since it are gone.
				tc.set = "base.tar"
			}
			gdir := filepath.Join(dir, "store", "SG1")
			dump0, list0 := dumpOf(t, dir, "store", "SG1"), dirListing(t, gdir)
			code, _, errs := cli(t, dir, "restore", tc.set, "--to", "store", "--force")
			if code == 0 || !strings.Contains(errs, "does not reach") {
				t.Fatalf("restore of an older %s over newer commits: exit %d: %s", tc.name, code, errs)
			}
			if dirListing(t, gdir) != list0 || dumpOf(t, dir, "store", "SG1") != dump0 {
				t.Fatal("the refused restore changed the group")
			}
			mustCLI(t, dir, "restore", tc.set, "--to", "store", "--force", "--accept-data-loss")
			if ents, _ := filepath.Glob(filepath.Join(dir, "store", ".SG1.replaced-*")); len(ents) != 1 {
				t.Fatalf("what the rollback replaced is not kept: %v", ents)
			}
			if dumpOf(t, dir, "store", "SG1") == dump0 {
				t.Fatal("--accept-data-loss rolled nothing back")
			}
			// The rolled back group runs on: mail, a crash recovery from
			// the oldest log (no checkpoint: the replay meets the replaced
			// file's records, which the restored one must not take), a
			// backup and its restore.
			mustCLI(t, dir, "store", "load", "--dir", "store", "--duration", "200ms", "--seed", "3")
			os.Remove(filepath.Join(gdir, "E00.chk"))
			mustCLI(t, dir, "store", "check", "--dir", "store", "--group", "SG1", "--no-model")
			dump1 := dumpOf(t, dir, "store", "SG1")
			mustCLI(t, dir, "backup", "--store", "store", "--type", "full", "-o", "after.tar", "--progress", "never")
			mustCLI(t, dir, "restore", "after.tar", "--to", "restored", "--group", "R")
			if dumpOf(t, dir, "restored", "R") != dump1 {
				t.Fatal("the group after the rollback does not back up and restore")
			}
		})
	}
}

// restoreAgainAfterCrash: after a restore was killed at point, the same
// restore of set into the live group runs again and gives the source's
// dump0; then the chain starts again with a full (ESE: the restored
// databases name no previous backup), which restores like the source.
func restoreAgainAfterCrash(t *testing.T, dir, point, set, dump0 string) {
	t.Helper()
	if code, _, errs := cli(t, dir, "restore", set, "--to", "store", "--force"); code != 0 {
		t.Fatalf("the restore again after a crash at %s: exit %d: %s", point, code, errs)
	}
	if got := dumpOf(t, dir, "store", "SG1"); got != dump0 {
		t.Fatalf("commits lost by the restore rerun after a crash at %s", point)
	}
	if code, _, errs := cli(t, dir, "backup", "--store", "store", "--type", "full", "-o", "next.tar", "--progress", "never"); code != 0 {
		t.Fatalf("the full after a crash at %s: exit %d: %s", point, code, errs)
	}
	if code, _, errs := cli(t, dir, "restore", "next.tar", "--to", "restored", "--group", "R"); code != 0 {
		t.Fatalf("restore of the next full after a crash at %s: exit %d: %s", point, code, errs)
	}
	if got := dumpOf(t, dir, "restored", "R"); got != dump0 {
		t.Fatalf("the full taken after a crash at %s does not restore like the source", point)
	}
}
