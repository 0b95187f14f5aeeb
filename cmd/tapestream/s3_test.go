package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestream/tapestream/media/s3store/s3test"
)

// S3 end to end (issue 16), with a real S3 server (versitygw) on loopback
// and the binary run as users run it, configured by the standard AWS
// environment alone.

type s3env struct {
	t   *testing.T
	srv *s3test.Server
	dir string
	env []string
}

func newS3Env(t *testing.T) *s3env {
	t.Helper()
	srv := s3test.Start(t)
	if err := srv.CreateBucket("sets", false); err != nil {
		t.Fatal(err)
	}
	e := &s3env{t: t, srv: srv, dir: t.TempDir()}
	e.env = append(srv.Env(), "XDG_CACHE_HOME="+filepath.Join(e.dir, "cache"))
	return e
}

func (e *s3env) run(want int, args ...string) string {
	e.t.Helper()
	cmd := cliCmd(e.dir, args...)
	cmd.Env = append(cmd.Env, e.env...)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != want {
		e.t.Fatalf("tapestream %v: exit %d (%v), want %d\n%s", args, code, err, want, out)
	}
	return string(out)
}

func (e *s3env) store(size string) {
	e.t.Helper()
	e.run(0, "store", "init", "--dir", "store", "--log-size", "256KiB")
	e.run(0, "store", "load", "--dir", "store", "--size", size)
}

// Every backup type to S3 and back: list, verify and restore read the
// objects; the chains restore like the source.
func TestS3RoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against an S3 server")
	}
	e := newS3Env(t)
	e.store("3MiB")
	e.run(0, "backup", "--store", "store", "--type", "full", "-o", "s3://sets/sg1/full.tar", "--progress", "never")
	e.run(0, "store", "load", "--dir", "store", "--duration", "300ms")
	e.run(0, "backup", "--store", "store", "--type", "differential", "-o", "s3://sets/sg1/diff.tar", "--progress", "never")
	e.run(0, "backup", "--store", "store", "--type", "copy", "-o", "s3://sets/sg1/copy.tar", "--progress", "never", "--volume-size", "512KiB", "--block-size", "64KiB", "--compress", "none", "--segment-size", "256KiB", "--frame-size", "64KiB")
	dumpDiff := dumpOf(t, e.dir, "store", "SG1")
	e.run(0, "store", "load", "--dir", "store", "--duration", "300ms")
	e.run(0, "backup", "--store", "store", "--type", "incremental", "-o", "s3://sets/sg1/incr.tar", "--progress", "never", "--compress", "lz4")
	dumpIncr := dumpOf(t, e.dir, "store", "SG1")

	if out := e.run(0, "list", "s3://sets/sg1/incr.tar"); !strings.Contains(out, "incremental") {
		t.Fatalf("list:\n%s", out)
	}
	e.run(0, "verify", "s3://sets/sg1/full.tar", "s3://sets/sg1/incr.tar")
	e.run(0, "restore", "s3://sets/sg1/full.tar", "s3://sets/sg1/incr.tar", "--to", "r", "--group", "RI")
	if dumpOf(t, e.dir, "r", "RI") != dumpIncr {
		t.Fatal("full + incremental from S3 does not restore like the source")
	}
	e.run(0, "restore", "s3://sets/sg1/full.tar", "s3://sets/sg1/diff.tar", "--to", "r", "--group", "RD")
	if dumpOf(t, e.dir, "r", "RD") != dumpDiff {
		t.Fatal("full + differential from S3 does not restore like the source")
	}
	// The copy went to volumes sg1/copy.tar.001, .002, ...: read from the first.
	e.run(0, "restore", "s3://sets/sg1/copy.tar", "--to", "r", "--group", "RC")
	// Objects are never replaced.
	e.run(exitSink, "backup", "--store", "store", "--type", "copy", "-o", "s3://sets/sg1/full.tar", "--progress", "never")
	// The catalog rebuilds from the bucket.
	out := e.run(0, "catalog", "rebuild", "--catalog", "cat.db", "s3://sets/sg1")
	if !strings.Contains(out, "4 set(s)") {
		t.Fatalf("catalog rebuild from the bucket:\n%s", out)
	}
}

// A backup killed mid-upload leaves no object (an upload in progress is not
// one) and truncates nothing; the next run of the same backup cleans the
// upload up and writes the set. A server gone mid-upload fails the backup
// cleanly, truncating nothing. Requests answered 503 SlowDown or reset on
// the way are retried and the set is intact.
func TestS3Failures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against an S3 server")
	}
	e := newS3Env(t)
	e.store("40MiB") // with codec none, a set of several 8 MiB parts
	gdir := filepath.Join(e.dir, "store", "SG1")
	gens0 := logGens(t, gdir)

	cmd := cliCmd(e.dir, "backup", "--store", "store", "--type", "full", "--compress", "none", "--max-rate", "10MiB", "-o", "s3://sets/k/full.tar", "--progress", "never")
	cmd.Env = append(cmd.Env, e.env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // a few parts up
	cmd.Process.Kill()
	cmd.Wait()
	if out := e.run(exitUsage, "list", "s3://sets/k/full.tar"); !strings.Contains(out, "no such") {
		t.Fatalf("a killed upload left something that reads:\n%s", out)
	}
	if got := logGens(t, gdir); len(got) == 0 || got[0] != gens0[0] {
		t.Fatalf("logs truncated by a backup killed mid-upload: %v -> %v", gens0, got)
	}
	e.run(0, "backup", "--store", "store", "--type", "full", "--compress", "none", "-o", "s3://sets/k/full.tar", "--progress", "never")
	e.run(0, "verify", "s3://sets/k/full.tar")
	gens1 := logGens(t, gdir)

	// The server killed mid-upload.
	e.run(0, "store", "load", "--dir", "store", "--duration", "200ms")
	cmd = cliCmd(e.dir, "backup", "--store", "store", "--type", "full", "--compress", "none", "--max-rate", "10MiB", "-o", "s3://sets/k/full2.tar", "--progress", "never")
	cmd.Env = append(cmd.Env, e.env...)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	e.srv.Kill()
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code == 0 || code == -1 {
		t.Fatalf("backup with its S3 server gone: exit %d\n%s", code, errb.String())
	}
	if got := logGens(t, gdir); got[0] != gens1[0] {
		t.Fatalf("logs truncated by a backup whose server went away: %v -> %v", gens1, got)
	}
	if err := e.srv.Restart(); err != nil {
		t.Fatal(err)
	}

	// Faults on the way: every 4th request answered 503 SlowDown, every
	// 7th reset.
	var mu sync.Mutex
	var faults int
	p := s3test.NewProxy(t, e.srv.Endpoint, func(n int, r *http.Request) s3test.Fault {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case n%4 == 1:
			faults++
			return s3test.SlowDown
		case n%7 == 3:
			faults++
			return s3test.Reset
		}
		return s3test.Pass
	})
	e.env = append(e.env, "AWS_ENDPOINT_URL="+p.URL)
	e.run(0, "backup", "--store", "store", "--type", "incremental", "--compress", "zstd", "-o", "s3://sets/k/incr.tar", "--progress", "never")
	e.run(0, "verify", "s3://sets/k/full.tar", "s3://sets/k/incr.tar")
	if faults == 0 {
		t.Fatal("the proxy injected no fault")
	}
	t.Logf("%d faults injected (SlowDown, resets), retried; the set is intact", faults)
}

// Two archiver hosts sharing a bucket never back up one group at once:
// the per-group lease goes to one, the other is refused (exit 7) and
// writes nothing.
func TestS3LeaseRace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against an S3 server")
	}
	e := newS3Env(t)
	for _, host := range []string{"a", "b"} {
		e.run(0, "store", "init", "--dir", host+"/store", "--log-size", "256KiB")
		e.run(0, "store", "load", "--dir", host+"/store", "--size", "6MiB")
		cfg := fmt.Sprintf(`catalog = "catalog.db"
[[job]]
name = "mail"
store = "store"
groups = ["SG1"]
max_rate = "4MiB"
[job.schedule]
at = "01:30"
full = ["sun"]
[job.destination]
s3 = "s3://sets/fleet"
`)
		os.WriteFile(filepath.Join(e.dir, host, "jobs.toml"), []byte(cfg), 0o644)
	}
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i, host := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := cliCmd(filepath.Join(e.dir, host), "run", "--config", "jobs.toml", "--job", "mail", "--level", "full")
			cmd.Env = append(cmd.Env, e.env...)
			out, _ := cmd.CombinedOutput()
			codes[i] = cmd.ProcessState.ExitCode()
			t.Logf("host %s: exit %d\n%s", host, codes[i], out)
		}()
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	if !(codes[0] == 0 && codes[1] == exitLocked || codes[0] == exitLocked && codes[1] == 0) {
		t.Fatalf("two hosts racing for SG1: exits %v, want one 0 and one %d", codes, exitLocked)
	}
	out := e.run(0, "catalog", "rebuild", "--catalog", "all.db", "s3://sets/fleet")
	if !strings.Contains(out, "1 set(s)") {
		t.Fatalf("the bucket should hold the winner's set alone:\n%s", out)
	}
}
