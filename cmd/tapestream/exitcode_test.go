package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/scheduler"
)

// TestExitCodes runs the binary into every exit code the README documents.
func TestExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := cli(t, dir, args...)
		if code != want {
			t.Fatalf("tapestream %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
		}
		return errs
	}
	// 0: success.
	run(exitOK, "store", "init", "--dir", "store", "--log-size", "256KiB")
	run(exitOK, "store", "load", "--dir", "store", "--size", "2MiB")
	run(exitOK, "backup", "--store", "store", "--type", "full", "-o", "full.tar", "--block-size", "64KiB", "--progress", "never")
	run(exitOK, "verify", "full.tar", "--block-size", "64KiB")

	// 2: usage, whatever part of the command line is wrong.
	run(exitUsage, "backup", "--no-such-flag")
	run(exitUsage, "no-such-command")
	run(exitUsage, "verify")
	run(exitUsage, "backup", "--store", "store", "--type", "weekly", "-o", "x.tar")
	run(exitUsage, "backup", "--store", "store", "-o", "x.tar", "--block-size", "lots")
	// ... or a thing it names that is not there (issue 22): each is named,
	// and nothing is created in its place.
	for _, c := range []struct {
		args []string
		say  string
	}{
		{[]string{"backup", "--store", "nosuch", "-o", "x.tar"}, "nosuch is not a store (no such directory); create one with: tapestream store init --dir nosuch"},
		{[]string{"backup", "--store", "store", "--group", "SG9", "-o", "x.tar"}, `store store has no storage group "SG9" (have SG1)`},
		{[]string{"store", "check", "--dir", "store", "--group", "SG9"}, `store store has no storage group "SG9" (have SG1)`},
		{[]string{"restore", "nosuch.tar", "--to", "nosuch-target"}, "nosuch.tar: no such set"},
		{[]string{"verify", "store"}, "store: a directory, not a set"},
		{[]string{"catalog", "list", "--catalog", "nosuch.db"}, "no catalog at nosuch.db"},
		{[]string{"restore", "--catalog", "nosuch.db", "--group", "SG1", "--to", "nosuch-target"}, "no catalog at nosuch.db"},
		{[]string{"catalog", "rebuild", "--catalog", "nosuch.db", "nosuch.tar"}, "nosuch.tar: no such set"},
	} {
		if errs := run(exitUsage, c.args...); !strings.Contains(errs, c.say) {
			t.Fatalf("tapestream %s says:\n%s\nwant it to say %q", strings.Join(c.args, " "), errs, c.say)
		}
	}
	// A damaged configuration of one group keeps the repair tools away
	// from that group only.
	run(exitOK, "store", "init", "--dir", "two", "--group", "SG1", "--group", "SG2", "--log-size", "256KiB")
	if err := os.WriteFile(filepath.Join(dir, "two", "SG2", "group.json"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(exitOK, "store", "check", "--dir", "two", "--group", "SG1")
	if errs := run(exitUsage, "store", "check", "--dir", "two", "--group", "SG3"); !strings.Contains(errs, `no storage group "SG3" (have SG1, SG2)`) {
		t.Fatalf("store check of a missing group beside a damaged one says:\n%s", errs)
	}
	for _, p := range []string{"nosuch", "x.tar", "nosuch-target", "nosuch.db"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Fatalf("a refused command created %s", p)
		}
	}

	// 3: corruption: verify and a strict restore of a damaged set.
	b, err := os.ReadFile(filepath.Join(dir, "full.tar"))
	if err != nil {
		t.Fatal(err)
	}
	damageMember(t, b, "databases/Mailbox1.edb")
	if err := os.WriteFile(filepath.Join(dir, "bad.tar"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	run(exitCorruption, "verify", "bad.tar", "--block-size", "64KiB")
	run(exitCorruption, "restore", "bad.tar", "--to", "r1", "--group", "R1", "--block-size", "64KiB")
	if _, err := os.Stat(filepath.Join(dir, "r1", "R1")); err == nil {
		t.Fatal("a refused restore left a group")
	}
	// A salvage says what it lost (exit 3), and exits 0 on an intact set.
	code, out, _ := cli(t, dir, "restore", "bad.tar", "--to", "r2", "--group", "R2", "--block-size", "64KiB", "--salvage", "--no-recover")
	if code != exitCorruption || !strings.Contains(out, "LOST") {
		t.Fatalf("salvage of a damaged set: exit %d\n%s", code, out)
	}
	run(exitOK, "restore", "full.tar", "--to", "r3", "--group", "R3", "--block-size", "64KiB", "--salvage")

	// 4: the destination failed.
	if err := os.WriteFile(filepath.Join(dir, "notadir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run(exitSink, "backup", "--store", "store", "--type", "copy", "-o", "notadir/set.tar", "--progress", "never")

	// 5: the store is locked by another process (this one).
	release, err := engine.LockStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	run(exitBusy, "backup", "--store", "store", "--type", "copy", "-o", "busy.tar", "--progress", "never")
	release()

	// 7: run: the job's group is being backed up by another run.
	cfg := filepath.Join(dir, "jobs.toml")
	os.WriteFile(cfg, []byte(`catalog = "catalog.db"
[[job]]
name = "mail"
store = "store"
groups = ["SG1"]
[job.schedule]
at = "01:30"
full = ["sun"]
[job.destination]
dir = "sets"
`), 0o644)
	c, err := scheduler.LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := scheduler.LockGroup(c.LockDir, "other", "store:"+c.Jobs[0].Store, "SG1")
	if err != nil {
		t.Fatal(err)
	}
	run(exitLocked, "run", "--config", cfg, "--job", "mail")
	l.Release()

	// 6: interrupted: SIGINT in the middle of a slow backup.
	cmd := cliCmd(dir, "backup", "--store", "store", "--type", "copy", "-o", "slow.tar", "--max-rate", "256KiB", "--progress", "never")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("SIGINT during a backup: exit %d (%v), want %d", code, err, exitInterrupted)
	}
	if _, err := os.Stat(filepath.Join(dir, "slow.tar")); err == nil {
		t.Fatal("an interrupted backup left its set")
	}

	// 1: anything else (here: a catalog that does not hold the set).
	run(exitFailure, "catalog", "show", "0123456789ab", "--catalog", "catalog.db")
}
