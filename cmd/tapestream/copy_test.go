package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/media/s3store/s3test"
)

// TestCopy: a set copied file → S3 → emulated tape is the same set
// (restores to the same dump) and is cataloged as a copy; restore from the
// catalog uses a copy when the set's own file is gone; a damaged source is
// never copied.
func TestCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary and an S3 server")
	}
	srv := s3test.Start(t)
	if err := srv.CreateBucket("sets", false); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := srv.Env()
	run := func(want int, args ...string) string {
		t.Helper()
		cmd := cliCmd(dir, args...)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != want {
			t.Fatalf("tapestream %v: exit %d (%v), want %d\n%s", args, code, err, want, out)
		}
		return string(out)
	}
	run(0, "store", "init", "--dir", "store", "--log-size", "256KiB")
	run(0, "store", "load", "--dir", "store", "--size", "3MiB")
	run(0, "backup", "--store", "store", "--type", "full", "-o", "full.tar", "--progress", "never")
	dump0 := dumpOf(t, dir, "store", "SG1")
	cat := filepath.Join(dir, "catalog.db")
	run(0, "catalog", "rebuild", "--catalog", cat, "full.tar")

	run(0, "copy", "full.tar", "s3://sets/vault/full.tar", "--catalog", cat)
	run(0, "copy", "s3://sets/vault/full.tar", "tape:vt?capacity=64MiB", "--catalog", cat)
	run(0, "verify", "tape:vt")
	run(0, "restore", "tape:vt", "--to", "r1", "--group", "R")
	if dumpOf(t, dir, "r1", "R") != dump0 {
		t.Fatal("the copy on tape does not restore like the source")
	}
	show := run(0, "catalog", "show", "--catalog", cat, labelOf(t, dir, "full.tar").Label.SetID)
	if !strings.Contains(show, "s3://sets/vault/full.tar") || !strings.Contains(show, "tape:") {
		t.Fatalf("the catalog does not list both copies:\n%s", show)
	}
	// The set's own file is gone: a catalog restore reads a copy.
	os.Remove(filepath.Join(dir, "full.tar"))
	run(0, "restore", "--catalog", cat, "--group", "SG1", "--to", "r2")
	if dumpOf(t, dir, "r2", "SG1") != dump0 {
		t.Fatal("the catalog restore from a copy does not dump like the source")
	}
	// A damaged source is not copied, and nothing is left at the destination.
	run(0, "copy", "tape:vt", "again.tar")
	raw, _ := os.ReadFile(filepath.Join(dir, "again.tar"))
	damageMember(t, raw, "databases/Mailbox1.edb")
	os.WriteFile(filepath.Join(dir, "bad.tar"), raw, 0o644)
	run(exitCorruption, "copy", "bad.tar", "s3://sets/vault/bad.tar")
	run(exitUsage, "list", "s3://sets/vault/bad.tar")
}
