package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/workload"
)

// liveStore is an in-process store with the mail workload writing to it.
type liveStore struct {
	dir string
	srv *engine.Server
	src source.Source
	g   *engine.Group
	w   *demoWriter
}

func newLiveStore(t *testing.T, size int64) *liveStore {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := engine.InitStore(dir, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1", "Public"}, LogSize: 256 << 10}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := srv.Group("SG1")
	if _, err := workload.Run(context.Background(), mailstore.New(g), workload.RunOptions{
		Workload: workload.Workload{Seed: 3, Streams: 4, Databases: g.Databases()}, StopAfterBytes: size,
	}); err != nil {
		t.Fatal(err)
	}
	ls := &liveStore{dir: dir, srv: srv, src: source.NewLocal(srv), g: g}
	t.Cleanup(func() {
		if ls.w != nil {
			ls.w.stop()
		}
		srv.Close()
	})
	return ls
}

func (ls *liveStore) startWriting() { ls.w = startDemoWriter(context.Background(), ls.g) }

func (ls *liveStore) stopWriting(t *testing.T) map[int]uint64 {
	t.Helper()
	if _, err := ls.w.stop(); err != nil {
		t.Fatal(err)
	}
	acked := ls.w.snapshot()
	ls.w = nil
	return acked
}

func quietBackup(ls *liveStore, typ, codec, out string) backupOpts {
	return backupOpts{Groups: []string{"SG1"}, Type: typ, Output: out,
		Progress: "never", Out: io.Discard, Err: io.Discard, source: ls.src, Pipeline: pipelineFlags{Compress: codec}, Media: writeMediaFlags{BlockSize: "64KiB"}}
}

// proveRestored checks a restored group with store check and the workload
// model: exactly the committed state, and at least what was acknowledged
// before the last set's logs were listed.
func proveRestored(t *testing.T, dir, group string, acked map[int]uint64) {
	t.Helper()
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, err := srv.Group(group)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkGroup(context.Background(), g, io.Discard, false); err != nil {
		t.Fatal(err)
	}
	rep, err := workload.VerifyAtLeast(context.Background(), mailstore.New(g), acked, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("%s: %v", group, rep.Err())
	}
}

// TestBackupRestoreEveryTypeAndCodec takes full, differential,
// incremental and copy sets with each codec while the workload writes
// (the differential before the incremental, which truncates the logs it
// needs), verifies them with tar and the codec CLI, and restores every
// chain.
func TestBackupRestoreEveryTypeAndCodec(t *testing.T) {
	for _, codec := range []string{"zstd", "lz4", "gzip", "none"} {
		t.Run(codec, func(t *testing.T) {
			ls := newLiveStore(t, 6<<20)
			sets := t.TempDir()
			p := func(n string) string { return filepath.Join(sets, n+".tar") }
			ls.startWriting()
			for _, typ := range []string{"full", "differential", "incremental", "copy"} {
				if _, err := runBackup(context.Background(), quietBackup(ls, typ, codec, p(typ))); err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			acked := ls.stopWriting(t)
			_ = acked
			checkTarAndCodecCLI(t, p("full"), codec)
			res, err := runRestore(context.Background(), restoreOpts{Sets: []string{p("full"), p("incremental")}, To: filepath.Join(sets, "r"), Group: "RINC", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}})
			if err != nil {
				t.Fatal(err)
			}
			proveRestored(t, filepath.Join(sets, "r"), "RINC", nil)
			if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{p("full"), p("differential")}, To: filepath.Join(sets, "r"), Group: "RDIFF", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}}); err != nil {
				t.Fatal(err)
			}
			proveRestored(t, filepath.Join(sets, "r"), "RDIFF", nil)
			if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{p("copy")}, To: filepath.Join(sets, "r"), Group: "RCOPY", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}}); err != nil {
				t.Fatal(err)
			}
			proveRestored(t, filepath.Join(sets, "r"), "RCOPY", nil)
			if res[0].Recovery == nil || res[0].Recovery.Commits == 0 {
				t.Fatalf("restore replayed nothing: %+v", res[0])
			}
		})
	}
}

// checkTarAndCodecCLI lists a set with GNU tar (no warning) and recovers
// its first database with tar + the codec's CLI, comparing its BLAKE3
// (b3sum) with the manifest.
func checkTarAndCodecCLI(t *testing.T, set, codec string) {
	t.Helper()
	need := map[string]string{"zstd": "zstd", "lz4": "lz4", "gzip": "gzip", "none": "cat"}[codec]
	for _, tool := range []string{"tar", need, "b3sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	var stderr bytes.Buffer
	c := exec.Command("tar", "-tvf", set)
	c.Stderr = &stderr
	if out, err := c.Output(); err != nil || stderr.Len() > 0 || !strings.Contains(string(out), "tapestream/manifest.json") {
		t.Fatalf("tar -tvf %s: %v %s\n%s", set, err, stderr.String(), out)
	}
	dir := t.TempDir()
	ext := map[string]string{"zstd": ".zst", "lz4": ".lz4", "gzip": ".gz", "none": ""}[codec]
	dec := map[string]string{"zstd": "zstd -d -q", "lz4": "lz4 -d -q", "gzip": "gzip -d", "none": "cat"}[codec]
	script := fmt.Sprintf("tar -xf %s && cat databases/Mailbox1.edb%s.part* | %s > Mailbox1.edb && b3sum Mailbox1.edb", set, ext, dec)
	c = exec.Command("sh", "-c", script)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	infos, _, err := restore.Verify(context.Background(), []restore.SetSource{{Path: set}}, restore.Options{Sink: sinkOpts64K()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range infos[0].Manifest.Files {
		if f.Name == "Mailbox1.edb" && (f.BLAKE3 == "" || !strings.HasPrefix(string(out), f.BLAKE3)) {
			t.Fatalf("tar+%s recovered Mailbox1.edb with %s; manifest says blake3 %s", codec, out, f.BLAKE3)
		}
	}
}

func TestBackupToStdoutAndRestoreFromStdin(t *testing.T) {
	ls := newLiveStore(t, 4<<20)
	var buf bytes.Buffer
	o := quietBackup(ls, "full", "zstd", "-")
	o.stdout = &buf
	ls.startWriting()
	time.Sleep(100 * time.Millisecond)
	acked := ls.w.snapshot() // acknowledged before the backup: the set must hold them
	if _, err := runBackup(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	ls.stopWriting(t)
	to := filepath.Join(t.TempDir(), "r")
	if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{"-"}, To: to, Group: "FROMPIPE", Out: io.Discard, Err: io.Discard, stdin: &buf, Read: readMediaFlags{BlockSize: "64KiB"}}); err != nil {
		t.Fatal(err)
	}
	proveRestored(t, to, "FROMPIPE", acked)
}

func TestEmulatedTapeSpansVolumes(t *testing.T) {
	ls := newLiveStore(t, 8<<20)
	tape := "tape:" + filepath.Join(t.TempDir(), "tape") + "?capacity=2MiB"
	o := quietBackup(ls, "full", "zstd", tape)
	o.Pipeline.SegmentSize = "512KiB"
	o.Media.NextVolumeCmd = "true"
	res, err := runBackup(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Volumes) < 2 {
		t.Fatalf("set fits on %d volume(s); want it to span", len(res[0].Volumes))
	}
	to := filepath.Join(t.TempDir(), "r")
	ro := restoreOpts{Sets: []string{tape}, To: to, Group: "FROMTAPE", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB", NextVolumeCmd: "true"}}
	if _, err := runRestore(context.Background(), ro); err != nil {
		t.Fatal(err)
	}
	proveRestored(t, to, "FROMTAPE", nil)
}

// TestCorruptPageFailsBackup: a flipped byte in a database page ends the
// backup with the corruption exit code, naming database, page and -1018;
// no set file is left and no log is truncated.
func TestCorruptPageFailsBackup(t *testing.T) {
	ls := newLiveStore(t, 4<<20)
	ls.srv.Close()
	path := filepath.Join(ls.dir, "SG1", "Mailbox1.edb")
	b, _ := os.ReadFile(path)
	b[20*4096+300] ^= 0x5a
	os.WriteFile(path, b, 0o644)
	before, _, _ := wal.ListGenerations(vfs.OS, filepath.Join(ls.dir, "SG1"), "E00")
	out := filepath.Join(t.TempDir(), "bad.tar")
	_, err := runBackup(context.Background(), backupOpts{Groups: []string{"SG1"}, Type: "full", Output: out, Progress: "never", Out: io.Discard, Err: io.Discard, Source: sourceFlags{Store: ls.dir}, Pipeline: pipelineFlags{Compress: "zstd"}, Media: writeMediaFlags{BlockSize: "64KiB"}})
	if err == nil {
		t.Fatal("backup of a corrupt database succeeded")
	}
	if code := exitCode(context.Background(), err); code != exitCorruption {
		t.Fatalf("exit code %d for %v", code, err)
	}
	for _, want := range []string{"Mailbox1.edb", "page 20", "-1018"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %s", err, want)
		}
	}
	for _, p := range []string{out, out + ".partial"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s left behind", p)
		}
	}
	after, _, _ := wal.ListGenerations(vfs.OS, filepath.Join(ls.dir, "SG1"), "E00")
	if len(after) < len(before) || after[0] != before[0] {
		t.Fatalf("logs truncated by a failed backup: %v -> %v", before, after)
	}
}

// TestBadChainsRefused: a missing incremental, a wrong order, and a
// differential of another full are refused before anything is written.
func TestBadChainsRefused(t *testing.T) {
	ls := newLiveStore(t, 2<<20)
	sets := t.TempDir()
	p := func(n string) string { return filepath.Join(sets, n+".tar") }
	steps := []struct{ name, typ string }{{"full1", "full"}, {"inc1", "incremental"}, {"inc2", "incremental"}, {"full2", "full"}, {"diff2", "differential"}}
	for _, s := range steps {
		ls.startWriting()
		time.Sleep(30 * time.Millisecond)
		ls.stopWriting(t)
		if _, err := runBackup(context.Background(), quietBackup(ls, s.typ, "lz4", p(s.name))); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(t.TempDir(), "r")
	for _, chain := range [][]string{{"full1", "inc2"}, {"full1", "inc2", "inc1"}, {"full1", "diff2"}, {"inc1"}} {
		var paths []string
		for _, c := range chain {
			paths = append(paths, p(c))
		}
		_, err := runRestore(context.Background(), restoreOpts{Sets: paths, To: to, Group: "R", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}})
		if err == nil || !strings.Contains(err.Error(), "refusing to restore") {
			t.Fatalf("chain %v: got %v", chain, err)
		}
		if ents, _ := os.ReadDir(to); len(ents) > 1 {
			t.Fatalf("chain %v: something was written: %v", chain, ents)
		}
	}
	if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{p("full1"), p("inc1"), p("inc2")}, To: to, Group: "R", Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}}); err != nil {
		t.Fatal(err)
	}
}

// TestPointOfFailure restores the last full into the live group's own
// directory with its later logs still there: recovery rolls forward to
// the latest commit.
func TestPointOfFailure(t *testing.T) {
	ls := newLiveStore(t, 3<<20)
	set := filepath.Join(t.TempDir(), "full.tar")
	if _, err := runBackup(context.Background(), quietBackup(ls, "full", "zstd", set)); err != nil {
		t.Fatal(err)
	}
	ls.startWriting()
	time.Sleep(300 * time.Millisecond)
	acked := ls.stopWriting(t)
	ls.srv.Close()
	// The databases are lost; the logs survive.
	for _, db := range []string{"Mailbox1.edb", "Public.edb"} {
		os.Remove(filepath.Join(ls.dir, "SG1", db))
	}
	res, err := runRestore(context.Background(), restoreOpts{Sets: []string{set}, To: ls.dir, Force: true, Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Recovery.ToGen <= res[0].HighGen {
		t.Fatalf("recovery stopped at %d, the set ends at %d: later logs were not replayed", res[0].Recovery.ToGen, res[0].HighGen)
	}
	proveRestored(t, ls.dir, "SG1", acked)
	// Exactly the final state: every stream at its last acknowledged seq.
	srv, _ := engine.OpenServer(ls.dir, engine.Options{})
	defer srv.Close()
	g, _ := srv.Group("SG1")
	rep, _ := workload.Verify(context.Background(), mailstore.New(g))
	for s, seq := range acked {
		if rep.Seqs[s] != seq {
			t.Fatalf("stream %d at seq %d after point-of-failure restore; last acknowledged %d", s, rep.Seqs[s], seq)
		}
	}
}

var buildOnce sync.Once
var builtBinary string

func tapestreamBinary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, _ := os.MkdirTemp("", "tapestream-bin")
		builtBinary = filepath.Join(dir, "tapestream")
		if out, err := exec.Command("go", "build", "-o", builtBinary, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	})
	return builtBinary
}

// TestSIGINTLeavesNoSet interrupts a real backup process: exit code 6, no
// set file, and the next backup works.
func TestSIGINTLeavesNoSet(t *testing.T) {
	ls := newLiveStore(t, 8<<20)
	ls.srv.Close()
	bin := tapestreamBinary(t)
	out := filepath.Join(t.TempDir(), "full.tar")
	cmd := exec.Command(bin, "backup", "--store", ls.dir, "--group", "SG1", "--type", "full", "-o", out, "--max-rate", "2MiB", "--progress", "never")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("interrupted backup: %v (stderr %s)", err, stderr.String())
	}
	for _, p := range []string{out, out + ".partial"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s left behind after SIGINT", p)
		}
	}
	if b, err := exec.Command(bin, "backup", "--store", ls.dir, "--group", "SG1", "--type", "full", "-o", out, "--progress", "never").CombinedOutput(); err != nil {
		t.Fatalf("backup after SIGINT: %v\n%s", err, b)
	}
}

func sinkOpts64K() media.Options { return media.Options{RecordSize: 64 << 10} }

// TestRestoreUntil stops replay early: at a generation inside the
// incremental, and at a commit time; a point before the full's end is
// refused.
func TestRestoreUntil(t *testing.T) {
	ls := newLiveStore(t, 2<<20)
	sets := t.TempDir()
	full := filepath.Join(sets, "full.tar")
	inc := filepath.Join(sets, "inc.tar")
	fr, err := runBackup(context.Background(), quietBackup(ls, "full", "zstd", full))
	if err != nil {
		t.Fatal(err)
	}
	ls.startWriting()
	time.Sleep(400 * time.Millisecond)
	mid := time.Now()
	time.Sleep(400 * time.Millisecond)
	ls.stopWriting(t)
	ir, err := runBackup(context.Background(), quietBackup(ls, "incremental", "zstd", inc))
	if err != nil {
		t.Fatal(err)
	}
	if ir[0].HighGen < fr[0].HighGen+2 {
		t.Fatalf("incremental too short for the test: %d-%d", ir[0].LowGen, ir[0].HighGen)
	}
	until := fr[0].HighGen + 1
	to := filepath.Join(t.TempDir(), "r")
	res, err := runRestore(context.Background(), restoreOpts{Sets: []string{full, inc}, To: to, Group: "G", Until: fmt.Sprint(until), Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Recovery.ToGen != until {
		t.Fatalf("replay ended at generation %d, --until %d", res[0].Recovery.ToGen, until)
	}
	proveRestored(t, to, "G", nil)
	res, err = runRestore(context.Background(), restoreOpts{Sets: []string{full, inc}, To: to, Group: "T", Until: mid.Format(time.RFC3339Nano), Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}})
	if err != nil {
		t.Fatal(err)
	}
	proveRestored(t, to, "T", nil)
	if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{full, inc}, To: to, Group: "EARLY", Until: fmt.Sprint(fr[0].LowGen), Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}}); fr[0].LowGen < fr[0].HighGen && err == nil {
		t.Fatal("--until before the end of the full was accepted")
	}
}

// TestTwoGroupsBackupAndRestoreInOneCommand: one command backs up two
// storage groups concurrently, one restores both in parallel.
func TestTwoGroupsBackupAndRestoreInOneCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if err := engine.InitStore(dir, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1"}}, {Name: "SG2", Databases: []string{"Mailbox2"}}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SG1", "SG2"} {
		g, _ := srv.Group(name)
		if _, err := workload.Run(context.Background(), mailstore.New(g), workload.RunOptions{
			Workload: workload.Workload{Seed: 9, Streams: 2, Databases: g.Databases()}, StopAfterBytes: 1 << 20,
		}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	sets := t.TempDir()
	if _, err := runBackup(context.Background(), backupOpts{Groups: []string{"SG1", "SG2"}, Type: "full",
		Output: filepath.Join(sets, "{group}.tar"), Progress: "never", Out: io.Discard, Err: io.Discard, Source: sourceFlags{Store: dir}, Pipeline: pipelineFlags{Compress: "zstd"}, Media: writeMediaFlags{BlockSize: "64KiB"}}); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "r")
	if _, err := runRestore(context.Background(), restoreOpts{Sets: []string{filepath.Join(sets, "SG1.tar"), filepath.Join(sets, "SG2.tar")}, To: to, Out: io.Discard, Err: io.Discard, Read: readMediaFlags{BlockSize: "64KiB"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SG1", "SG2"} {
		srv, err := engine.OpenServer(to, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		g, err := srv.Group(name)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := workload.VerifyWith(context.Background(), mailstore.New(g), workload.VerifyOptions{MetaDB: g.Databases()[0]})
		srv.Close()
		if err != nil || !rep.OK() {
			t.Fatalf("%s: %v %v", name, err, rep.Err())
		}
	}
}
