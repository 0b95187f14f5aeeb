package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
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

// logGens lists a group's closed log generations.
func logGens(t *testing.T, dir string) []uint32 {
	t.Helper()
	gens, _, err := wal.ListGenerations(vfs.OS, dir, "E00")
	if err != nil {
		t.Fatal(err)
	}
	return gens
}

// Issue 15 defects 3 and 4: a set on stdout truncates nothing (its
// consumer's durability is out of sight) and stdout carries the set alone
// (summary and JSON on stderr); `truncate` does it once the stored set is
// read back and verified. A consumer that fails mid-set fails the backup
// with exit 4, and nothing is truncated either.
func TestStdoutSetTruncatesNothingUntilVerified(t *testing.T) {
	dir := t.TempDir()
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, errs := cli(t, dir, args...)
		if code != want {
			t.Fatalf("tapestream %v: exit %d, want %d\n%s", args, code, want, errs)
		}
		return out, errs
	}
	run(0, "store", "init", "--dir", "store", "--log-size", "256KiB")
	run(0, "store", "load", "--dir", "store", "--size", "6MiB")
	gdir := filepath.Join(dir, "store", "SG1")
	before := logGens(t, gdir)

	// A consumer that goes away after 64 KiB: EPIPE, exit 4, nothing truncated.
	cmd := cliCmd(dir, "backup", "--store", "store", "--type", "full", "-o", "-", "--progress", "never", "--compress", "none")
	stdout, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, stdout, 64<<10)
	stdout.Close()
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitSink {
		t.Fatalf("backup into a consumer that went away: exit %d, want %d\n%s", code, exitSink, errb.String())
	}
	if got := logGens(t, gdir); len(got) < len(before) || got[0] != before[0] {
		t.Fatalf("logs truncated by a backup whose set never landed: %v -> %v", before, got)
	}

	// A whole set on stdout: stdout is exactly the set, the summary is on
	// stderr and says nothing was truncated.
	out, errs := run(0, "backup", "--store", "store", "--type", "full", "-o", "-", "--progress", "never", "--json")
	set := filepath.Join(dir, "piped.tar")
	os.WriteFile(set, []byte(out), 0o644)
	if !strings.Contains(errs, `"truncation_skipped"`) {
		t.Fatalf("stderr does not carry the JSON summary with the skipped truncation:\n%s", errs)
	}
	run(0, "verify", set)
	full := logGens(t, gdir)
	if full[0] != before[0] {
		t.Fatalf("a full to stdout truncated logs: %v -> %v", before, full)
	}
	// A damaged copy of the set truncates nothing.
	b := []byte(out)
	b[len(b)/2] ^= 0xff
	os.WriteFile(filepath.Join(dir, "bad.tar"), b, 0o644)
	run(exitCorruption, "truncate", "--store", "store", "--group", "SG1", "bad.tar")
	if got := logGens(t, gdir); got[0] != before[0] {
		t.Fatal("a damaged set truncated logs")
	}
	hdr, _ := run(0, "store", "header", "--json", filepath.Join("store", "SG1", "Mailbox1.edb"))
	if !strings.Contains(hdr, `"pending_log_floor"`) {
		t.Fatalf("the piped full's floor is not pending in the header:\n%s", hdr)
	}
	o, _ := run(0, "truncate", "--store", "store", "--group", "SG1", set)
	if hdr, _ := run(0, "store", "header", "--json", filepath.Join("store", "SG1", "Mailbox1.edb")); strings.Contains(hdr, `"pending_log_floor"`) {
		t.Fatalf("the floor is still pending after truncate:\n%s", hdr)
	}
	if got := logGens(t, gdir); len(got) > 0 && got[0] <= before[0] {
		t.Fatalf("truncate after a verified set deleted nothing (%s): %v", o, got)
	}
}

// Issue 15 defect 2: a member that fits a volume but not below its early
// warning mark used to be written again and again on every next volume
// (8,594 volumes until the disk was full). It is refused after a bounded
// number of volumes, with an error that says what to change, exit 4.
func TestVolumeRunawayIsBounded(t *testing.T) {
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		code, _, errs := cli(t, dir, args...)
		if code != want {
			t.Fatalf("tapestream %v: exit %d, want %d\n%s", args, code, want, errs)
		}
		return errs
	}
	run(0, "store", "init", "--dir", "store", "--log-size", "256KiB")
	run(0, "store", "load", "--dir", "store", "--size", "12MiB")
	errs := run(exitSink, "backup", "--store", "store", "--type", "full", "--progress", "never",
		"-o", "tape:vt?capacity=2MiB", "--next-volume-cmd", "true")
	// Issue 22: it says how big a member is and which setting to change.
	for _, want := range []string{"databases/", "as stored", "--segment-size", "segment_size in a job", "now 4.0 MiB"} {
		if !strings.Contains(errs, want) {
			t.Fatalf("the error does not say %q:\n%s", want, errs)
		}
	}
	vols, _ := filepath.Glob(filepath.Join(dir, "vt", "vol*.img"))
	if len(vols) > 4 {
		t.Fatalf("%d volumes written for one member that never fits", len(vols))
	}
	// The same through a job, on an emulated tape of 8 MiB with segments of
	// 16 MiB (and a store big enough to fill one): the run says it too.
	run(0, "store", "load", "--dir", "store", "--size", "40MiB")
	cfg := filepath.Join(dir, "job.toml")
	os.WriteFile(cfg, []byte(`catalog = "catalog.db"
[[job]]
name = "tape8"
store = "store"
groups = ["SG1"]
codec = "none"
segment_size = "16MiB"
[job.schedule]
cron = ["0 6 * * 0 full"]
[job.destination]
tape = "tape:vt8?capacity=8MiB"
next_volume_cmd = "true"
`), 0o644)
	code, out, errs := cli(t, dir, "run", "--config", cfg, "--job", "tape8", "--level", "full")
	if code == 0 || !strings.Contains(out+errs, "segment_size in a job") || !strings.Contains(out+errs, "as stored") || !strings.Contains(out+errs, "now 16 MiB") {
		t.Fatalf("a job on an 8 MiB tape: exit %d, does not say what to change:\n%s%s", code, out, errs)
	}
}

// Issue 15 defect 8: SIGTERM during a restore's recovery stops it (exit
// 6), and the target is untouched.
func TestSIGTERMDuringRecovery(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"store", "init", "--dir", "store", "--log-size", "256KiB"},
		{"store", "load", "--dir", "store", "--size", "1MiB"},
		{"backup", "--store", "store", "--type", "full", "-o", "full.tar", "--progress", "never"},
		{"store", "load", "--dir", "store", "--size", "3MiB"},
		{"backup", "--store", "store", "--type", "incremental", "-o", "incr.tar", "--progress", "never"},
	} {
		if code, _, errs := cli(t, dir, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	// The incremental's logs give the recovery thousands of records.
	cmd := cliCmd(dir, "restore", "full.tar", "incr.tar", "--to", "restored", "--group", "R")
	cmd.Env = append(cmd.Env, "TAPESTREAM_FAILPOINT=engine/recover-record=delay")
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the recovery to start (the staged logs are there).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		logs, _ := filepath.Glob(filepath.Join(dir, "restored", ".restore-*", "restore-logs", "*.log"))
		if len(logs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restore never staged its logs")
		}
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("SIGTERM during recovery: exit %d, want %d\n%s", code, exitInterrupted, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "restored", "R")); err == nil {
		t.Fatal("an interrupted restore left its group in place")
	}
}
