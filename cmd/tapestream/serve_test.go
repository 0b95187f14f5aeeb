package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/workload"
)

// serveCommand runs this test binary as `tapestream ARGS...` (main_test.go).
func serveCommand(args ...string) *exec.Cmd { return cliCmd("", args...) }

type serveProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *strings.Builder
	out    chan string
}

// startServeProc runs `tapestream store serve` and waits for its URL.
func startServeProc(t *testing.T, dir, tokenFile string, extra ...string) *serveProc {
	t.Helper()
	return startServeProcEnv(t, nil, dir, tokenFile, extra...)
}

// startServeProcEnv is startServeProc with more environment (a failpoint).
func startServeProcEnv(t *testing.T, env []string, dir, tokenFile string, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"store", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--token-file", tokenFile}, extra...)
	c := serveCommand(args...)
	c.Env = append(c.Env, env...)
	stdout, _ := c.StdoutPipe()
	p := &serveProc{cmd: c, stderr: &strings.Builder{}, out: make(chan string, 16)}
	c.Stderr = p.stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out <- sc.Text()
		}
		close(p.out)
	}()
	select {
	case line := <-p.out:
		i := strings.LastIndex(line, " on ")
		if !strings.HasPrefix(line, "serving store") || i < 0 {
			t.Fatalf("store serve said %q (stderr %s)", line, p.stderr)
		}
		p.url = line[i+4:]
	case <-time.After(20 * time.Second):
		c.Process.Kill()
		t.Fatalf("store serve did not start: %s", p.stderr)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code and the last stdout line.
func (p *serveProc) stop(t *testing.T) (int, string) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	var last string
	for l := range p.out {
		last = l
	}
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), last
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, last
}

func writeToken(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("serve-test-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fillStore creates a store and writes size bytes of incompressible
// values in process (fast), so that a file stream outlasts socket buffers.
func fillStore(t *testing.T, size int64) string {
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
	rng := rand.NewChaCha8([32]byte{5, 6})
	val := make([]byte, 64<<10)
	for i := int64(0); i*int64(len(val)) < size; i++ {
		rng.Read(val)
		if err := g.Update(func(tx *engine.Tx) error { return tx.Put("Public", "blob", fmt.Appendf(nil, "k%06d", i), val) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func remoteBackupOpts(url, tok, typ, out string) backupOpts {
	return backupOpts{Groups: []string{"SG1"}, Type: typ, Output: out,
		Progress: "never", Out: io.Discard, Err: io.Discard, Pipeline: pipelineFlags{Compress: "zstd"}, Media: writeMediaFlags{BlockSize: "64KiB"}, Source: sourceFlags{Remote: remoteFlags{Server: url, TokenFile: tok}}}
}

// TestServeSubprocess: a real `store serve` process; a remote workload
// (`store load --server`) writes while remote full and incremental backups
// run; the sets restore to a state the workload model accepts; SIGTERM
// exits 0 after a clean shutdown.
func TestServeSubprocess(t *testing.T) {
	dir := fillStore(t, 1<<20)
	tok := writeToken(t)
	p := startServeProc(t, dir, tok)
	ctx := context.Background()

	// The workload through the data API, in this process.
	r, err := remoteFlags{Server: p.url, TokenFile: tok}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out strings.Builder
	if err := runStoreLoad(ctx, storeLoadOpts{Group: "SG1", Size: "1KiB", Seed: 9, Streams: 3, Out: &out, Remote: remoteFlags{Server: p.url, TokenFile: tok}}); err != nil {
		t.Fatalf("store load --server: %v", err)
	}
	if !strings.Contains(out.String(), "loaded SG1 through") {
		t.Fatalf("store load output %q", out.String())
	}
	wctx, stopW := context.WithCancel(ctx)
	acked := map[int]uint64{}
	started := map[int]uint64{}
	var mu sync.Mutex
	wdone := make(chan error, 1)
	go func() {
		_, err := workload.Run(wctx, r.Store("SG1"), workload.RunOptions{
			Workload: workload.Workload{Seed: 9, Streams: 3},
			OnStart:  func(s int, seq uint64) { mu.Lock(); started[s] = seq; mu.Unlock() },
			OnCommit: func(s int, seq uint64) { mu.Lock(); acked[s] = seq; mu.Unlock() },
		})
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		wdone <- err
	}()
	sets := t.TempDir()
	full := filepath.Join(sets, "full.tar")
	if _, err := runBackup(ctx, remoteBackupOpts(p.url, tok, "full", full)); err != nil {
		t.Fatalf("remote full: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	ackedBefore := maps.Clone(acked)
	mu.Unlock()
	inc := filepath.Join(sets, "inc.tar")
	res, err := runBackup(ctx, remoteBackupOpts(p.url, tok, "incremental", inc))
	stopW()
	if werr := <-wdone; werr != nil {
		t.Fatalf("remote workload: %v", werr)
	}
	if err != nil {
		t.Fatalf("remote incremental: %v", err)
	}
	if len(res[0].Truncated) == 0 {
		t.Logf("incremental truncated nothing (logs %d-%d)", res[0].LowGen, res[0].HighGen)
	}
	code, last := p.stop(t)
	if code != 0 || !strings.Contains(last, "shut down cleanly") {
		t.Fatalf("store serve after SIGTERM: exit %d, %q, stderr %s", code, last, p.stderr)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, err := restore.RestoreGroup(ctx, []restore.SetSource{{Path: full}, {Path: inc}}, restore.GroupOptions{To: to}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	eng, err := engine.OpenServer(to, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	g, _ := eng.Group("SG1")
	rep, err := workload.VerifyAtLeast(ctx, mailstore.New(g), ackedBefore, started)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("restored store vs the workload model: %v", err)
	}
}

// TestServeSIGTERMMidBackup: the server stops during a backup; the client
// gets a clear error, the store reopens cleanly with nothing recorded.
func TestServeSIGTERMMidBackup(t *testing.T) {
	dir := fillStore(t, 16<<20)
	tok := writeToken(t)
	p := startServeProc(t, dir, tok)
	o := remoteBackupOpts(p.url, tok, "full", filepath.Join(t.TempDir(), "full.tar"))
	o.Pipeline.MaxRate = "8MiB"
	errc := make(chan error, 1)
	go func() {
		_, err := runBackup(context.Background(), o)
		errc <- err
	}()
	time.Sleep(700 * time.Millisecond)
	code, _ := p.stop(t)
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("client error when the server stopped: %v", err)
	}
	if code != 0 {
		t.Fatalf("store serve exit %d: %s", code, p.stderr)
	}
	if c := exitCode(context.Background(), err); c != exitFailure {
		t.Errorf("exit code %d for a server shutdown", c)
	}
	eng, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := eng.Group("SG1")
	h, _ := g.Header("Public")
	if h.CurrentFull != nil || h.PreviousFull.IsSet() {
		t.Fatalf("header after a backup cut by SIGTERM: %+v", h)
	}
	if ri := g.Recovery(); !ri.Clean {
		t.Errorf("store was not shut down cleanly: %+v", ri)
	}
	eng.Close()
}

// TestServeClientKilled: a backup client process killed mid-stream leaves
// an aborted session; the next backup works. A second client on the busy
// group gets -505 (exit code 5) at once.
func TestServeClientKilled(t *testing.T) {
	dir := fillStore(t, 16<<20)
	tok := writeToken(t)
	p := startServeProc(t, dir, tok)
	sets := t.TempDir()
	c := serveCommand("backup", "--server", p.url, "--token-file", tok, "--group", "SG1", "-o", filepath.Join(sets, "killed.tar"), "--max-rate", "4MiB", "--progress", "never")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	_, err := runBackup(context.Background(), remoteBackupOpts(p.url, tok, "copy", filepath.Join(sets, "busy.tar")))
	if !errors.Is(err, engine.ErrBackupInProgress) || exitCode(context.Background(), err) != exitBusy {
		t.Fatalf("second backup while busy: %v", err)
	}
	c.Process.Kill()
	c.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o := remoteBackupOpts(p.url, tok, "full", filepath.Join(sets, "next.tar"))
		o.Pipeline.Compress = "none"
		_, err := runBackup(context.Background(), o)
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrBackupInProgress) || time.Now().After(deadline) {
			t.Fatalf("backup after the killed client: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("store serve exit %d: %s", code, p.stderr)
	}
	if s := p.stderr.String(); !strings.Contains(s, "went away") && !strings.Contains(s, "connection closed") {
		t.Errorf("server log does not show the client going away:\n%s", p.stderr)
	}
}

// Issue 15 defect 7: a client killed between two calls (here while its
// tape changer command runs) frees its group at once: the server sees its
// held connection close, and does not wait for the session timeout. One
// segment of 32 MiB holds a whole database of this store: the tape's end
// comes when that segment is written, after the reads of the database,
// not in the middle of one (that is TestServeClientKilled).
func TestServeClientKilledBetweenCalls(t *testing.T) {
	dir := fillStore(t, 16<<20)
	tok := writeToken(t)
	p := startServeProc(t, dir, tok, "--session-timeout", "60s")
	sets := t.TempDir()
	marker := filepath.Join(sets, "changer-ran")
	c := serveCommand("backup", "--server", p.url, "--token-file", tok, "--group", "SG1", "--compress", "none",
		"-o", "tape:"+filepath.Join(sets, "vt")+"?capacity=4MiB", "--segment-size", "32MiB", "--next-volume-cmd", "touch "+marker+"; sleep 60", "--progress", "never")
	c.Stderr = io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup never asked for a second volume")
		}
	}
	c.Process.Kill()
	c.Wait()
	killed := time.Now()
	for {
		o := remoteBackupOpts(p.url, tok, "copy", filepath.Join(sets, "next.tar"))
		o.Pipeline.Compress = "none"
		_, err := runBackup(context.Background(), o)
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrBackupInProgress) || time.Since(killed) > 5*time.Second {
			t.Fatalf("the group of a killed client is still busy %s later (session timeout 60s): %v", time.Since(killed).Round(time.Millisecond), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("group free %s after the client was killed", time.Since(killed).Round(time.Millisecond))
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("store serve exit %d: %s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "connection closed") {
		t.Errorf("server log does not show the held connection closing:\n%s", p.stderr)
	}
}

func TestServeUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	err := runStoreServe(context.Background(), storeServeOpts{Dir: dir, Listen: "127.0.0.1:0"})
	if exitCode(context.Background(), err) != exitUsage || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("serve without a token: %v", err)
	}
	_, err = runBackup(context.Background(), backupOpts{Type: "full", Output: "x", Pipeline: pipelineFlags{Compress: "none"}, Source: sourceFlags{Store: dir, Remote: remoteFlags{Server: "http://127.0.0.1:1"}}})
	if exitCode(context.Background(), err) != exitUsage {
		t.Fatalf("--store with --server: %v", err)
	}
}
