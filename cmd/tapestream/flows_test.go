package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/restore"
)

// writeFor opens the store, runs the mail workload for d and closes it; it
// returns what was acknowledged.
func writeFor(t *testing.T, dir string, d time.Duration) map[int]uint64 {
	t.Helper()
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := srv.Group("SG1")
	w := startDemoWriter(context.Background(), g)
	time.Sleep(d)
	if _, err := w.stop(); err != nil {
		t.Fatal(err)
	}
	acked := w.snapshot()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	return acked
}

func restoreForce(dir, set string, accept bool) ([]*restore.Result, error) {
	return runRestore(context.Background(), restoreOpts{Sets: []string{set}, To: dir, Force: true, AcceptDataLoss: accept,
		Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}})
}

// Issue 15 defect 1: a point-of-failure restore keeps the group's later
// logs, so that a second point-of-failure restore from the same full still
// reaches every commit (it used to find a gap, skip the logs silently and
// roll the group back to the full).
func TestPointOfFailureTwice(t *testing.T) {
	ls := newLiveStore(t, 2<<20)
	set := filepath.Join(t.TempDir(), "full.tar")
	if _, err := runBackup(context.Background(), quietBackup(ls, "full", "zstd", set)); err != nil {
		t.Fatal(err)
	}
	ls.srv.Close()
	writeFor(t, ls.dir, 300*time.Millisecond)
	if _, err := restoreForce(ls.dir, set, false); err != nil {
		t.Fatal(err)
	}
	acked := writeFor(t, ls.dir, 300*time.Millisecond)
	res, err := restoreForce(ls.dir, set, false)
	if err != nil {
		t.Fatalf("second point-of-failure restore: %v", err)
	}
	if res[0].Recovery.ToGen <= res[0].HighGen {
		t.Fatalf("second restore replayed to %d, the set ends at %d", res[0].Recovery.ToGen, res[0].HighGen)
	}
	proveRestored(t, ls.dir, "SG1", acked)
}

// A restore never rolls back commits silently: an older full whose logs
// the live group no longer continues (a newer full truncated them) is
// refused before anything is written, and accepted only when asked.
func TestRestoreRefusesARollback(t *testing.T) {
	ls := newLiveStore(t, 2<<20)
	dir := t.TempDir()
	old := filepath.Join(dir, "old.tar")
	if _, err := runBackup(context.Background(), quietBackup(ls, "full", "zstd", old)); err != nil {
		t.Fatal(err)
	}
	ls.startWriting()
	time.Sleep(300 * time.Millisecond)
	ls.stopWriting(t)
	if _, err := runBackup(context.Background(), quietBackup(ls, "full", "zstd", filepath.Join(dir, "new.tar"))); err != nil {
		t.Fatal(err)
	}
	ls.startWriting()
	time.Sleep(200 * time.Millisecond)
	acked := ls.stopWriting(t)
	ls.srv.Close()
	before := dirListing(t, filepath.Join(ls.dir, "SG1"))
	_, err := restoreForce(ls.dir, old, false)
	var re *restore.RollbackError
	if !errors.As(err, &re) {
		t.Fatalf("restore of an older full over newer commits: %v", err)
	}
	if after := dirListing(t, filepath.Join(ls.dir, "SG1")); after != before {
		t.Fatalf("the refused restore changed the group:\n%s\n---\n%s", before, after)
	}
	proveRestored(t, ls.dir, "SG1", acked)
	if _, err := restoreForce(ls.dir, old, true); err != nil {
		t.Fatalf("with --accept-data-loss: %v", err)
	}
	ents, _ := filepath.Glob(filepath.Join(ls.dir, ".SG1.replaced-*"))
	if len(ents) != 1 {
		t.Fatalf("the replaced group is not kept: %v", ents)
	}
}

// dirListing is the names and sizes of a directory's files.
func dirListing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, e := range ents {
		fi, _ := e.Info()
		s += e.Name() + " " + fi.ModTime().String() + "\n"
	}
	return s
}
