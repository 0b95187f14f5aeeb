package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/server"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/storeapi"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

const testToken = "0123456789abcdef-test-token"

type testServer struct {
	dir  string
	eng  *engine.Server
	srv  *server.Server
	url  string
	done chan error
}

func initStore(t testing.TB, groups ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	var specs []engine.GroupSpec
	for _, g := range groups {
		specs = append(specs, engine.GroupSpec{Name: g, Databases: []string{"Mailbox1", "Public"}, LogSize: 256 << 10})
	}
	if err := engine.InitStore(dir, specs, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startServer(t testing.TB, dir string, cfg server.Config) *testServer {
	t.Helper()
	eng, err := engine.OpenServer(dir, engine.Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{dir: dir, eng: eng, srv: server.New(eng, cfg), url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ln, nil) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t testing.TB) {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	<-ts.done
	if err := ts.eng.Close(); err != nil {
		t.Errorf("engine close: %v", err)
	}
	ts.srv = nil
}

func remote(t testing.TB, url, token string) *storeapi.Remote {
	t.Helper()
	r, err := storeapi.OpenRemote(url, storeapi.RemoteOptions{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func runBackup(t testing.TB, ctx context.Context, src source.Source, group string, typ ese.BackupType, path string) (*backup.Result, error) {
	t.Helper()
	return backup.Run(ctx, src, group, path, backup.Options{Type: typ, Pipeline: pipeline.Options{Codec: mustCodec(t, "zstd"), Workers: 2}})
}

// writer runs the mail workload through the data API until stopped.
type writer struct {
	mu      sync.Mutex
	acked   map[int]uint64
	started map[int]uint64
	cancel  context.CancelFunc
	done    chan error
	st      workload.Stats
}

func startWriter(store workload.Store, streams int) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{acked: map[int]uint64{}, started: map[int]uint64{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		st, err := workload.Run(ctx, store, workload.RunOptions{
			Workload: workload.Workload{Seed: 7, Streams: streams},
			OnStart: func(s int, seq uint64) {
				w.mu.Lock()
				w.started[s] = seq
				w.mu.Unlock()
			},
			OnCommit: func(s int, seq uint64) {
				w.mu.Lock()
				w.acked[s] = seq
				w.mu.Unlock()
			},
		})
		w.st = st
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		w.done <- err
	}()
	return w
}

func (w *writer) snapshot() map[int]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[int]uint64{}
	for k, v := range w.acked {
		m[k] = v
	}
	return m
}

func (w *writer) stop(t testing.TB) map[int]uint64 {
	w.cancel()
	if err := <-w.done; err != nil {
		t.Fatalf("workload: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[int]uint64{}
	for k, v := range w.started {
		m[k] = v
	}
	return m
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupFree reports whether the group accepts a new backup session.
func groupFree(t testing.TB, r *storeapi.Remote, group string) bool {
	st, err := r.Status(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	return !st.Backup
}

func TestRemoteFullIncrementalRestore(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	store := r.Store("SG1")

	// Some mail first, through the data API.
	if _, err := workload.Run(ctx, store, workload.RunOptions{Workload: workload.Workload{Seed: 7, Streams: 4}, StopAfterBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w := startWriter(store, 4)
	sets := t.TempDir()
	full, err := runBackup(t, ctx, r, "SG1", ese.Full, filepath.Join(sets, "full.tar"))
	if err != nil {
		w.stop(t)
		t.Fatalf("remote full: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	acked := w.snapshot()
	inc, err := runBackup(t, ctx, r, "SG1", ese.Incremental, filepath.Join(sets, "inc.tar"))
	started := w.stop(t)
	if err != nil {
		t.Fatalf("remote incremental: %v", err)
	}
	if inc.LowGen > full.HighGen+1 || inc.HighGen < inc.LowGen {
		t.Fatalf("incremental logs %d-%d do not continue the full's %d-%d", inc.LowGen, inc.HighGen, full.LowGen, full.HighGen)
	}
	if inc.PreviousSetID != full.SetID {
		t.Fatalf("incremental continues %q, want %q", inc.PreviousSetID, full.SetID)
	}
	if w.st.Txns == 0 {
		t.Fatal("the workload committed nothing during the backups")
	}
	hdr, _ := ts.eng.Group("SG1")
	h, err := hdr.Header("Mailbox1")
	if err != nil || !h.PreviousIncremental.IsSet() || h.CurrentFull != nil {
		t.Fatalf("headers after remote backups: %+v, %v", h, err)
	}
	ts.stop(t)

	to := filepath.Join(t.TempDir(), "restored")
	res, err := restore.RestoreGroup(ctx, []restore.SetSource{{Path: filepath.Join(sets, "full.tar")}, {Path: filepath.Join(sets, "inc.tar")}}, restore.GroupOptions{To: to})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !res.Recovered {
		t.Fatal("restore did not recover")
	}
	eng, err := engine.OpenServer(to, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	g, err := eng.Group("SG1")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := workload.VerifyAtLeast(ctx, mailstore.New(g), acked, started)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("restored store does not match the workload model: %v", err)
	}
}

func TestAuth(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken})
	ctx := context.Background()
	for _, tok := range []string{"", "wrong-token-wrong-token", testToken + "x"} {
		_, err := remote(t, ts.url, tok).Prepare(ctx)
		var re *storeapi.RemoteError
		if !errors.As(err, &re) || re.Status != http.StatusUnauthorized {
			t.Fatalf("token %q: got %v, want 401", tok, err)
		}
	}
	if gi, err := remote(t, ts.url, testToken).Prepare(ctx); err != nil || len(gi) != 1 || gi[0].Name != "SG1" {
		t.Fatalf("Prepare with the token: %v %v", gi, err)
	}
	// Health needs no token; metrics do.
	resp, err := http.Get(ts.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(ts.url + "/metrics")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestNoTokenRefusesAllButHealth(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{})
	if _, err := remote(t, ts.url, "").Prepare(context.Background()); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("no-token server answered: %v", err)
	}
	resp, err := http.Get(ts.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestBusyGroupAndMetrics(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	s1, err := r.Begin(ctx, "SG1", ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = r.Begin(ctx, "SG1", ese.Copy, nil)
	if !errors.Is(err, engine.ErrBackupInProgress) {
		t.Fatalf("second session: %v, want -505", err)
	}
	var ee *engine.ESEError
	if !errors.As(err, &ee) || ee.Code != -505 || ee.Group != "SG1" {
		t.Fatalf("second session error %#v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("-505 took %s", d)
	}
	// Unknown groups, bad names.
	if _, err := r.Begin(ctx, "nope", ese.Full, nil); err == nil {
		t.Fatal("backup of a missing group")
	}
	if _, err := r.Begin(ctx, "../etc", ese.Full, nil); err == nil {
		t.Fatal("backup of ../etc")
	}
	// Incremental before any full: -520 travels as an ESE error.
	s1.Abort(errors.New("test"))
	waitFor(t, "abort", func() bool { return groupFree(t, r, "SG1") })
	if _, err := r.Begin(ctx, "SG1", ese.Incremental, nil); !errors.Is(err, engine.ErrNoBackup) {
		t.Fatalf("incremental without full: %v", err)
	}
	req, _ := http.NewRequest("GET", ts.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"tapestream_backup_sessions_active 0", `tapestream_backup_sessions_ended_total{result="aborted"} 1`,
		`tapestream_group_checkpoint_generation{group="SG1"}`, `tapestream_group_log_generation{group="SG1"}`, "# TYPE tapestream_group_commits_total counter"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

// loadDirect fills a group in process (fast) before the server starts:
// incompressible 64 KiB values.
func loadDirect(t testing.TB, dir, group string, size int64) {
	t.Helper()
	eng, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := eng.Group(group)
	rng := rand.NewChaCha8([32]byte{1, 2})
	val := make([]byte, 64<<10)
	for i := int64(0); i*int64(len(val)) < size; i++ {
		rng.Read(val)
		if err := g.Update(func(tx *engine.Tx) error { return tx.Put("Mailbox1", "blob", fmt.Appendf(nil, "k%06d", i), val) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClientGoneMidStreamAborts(t *testing.T) {
	dir := initStore(t, "SG1")
	// More than the loopback socket buffers can hold (send up to 4 MiB,
	// receive up to 32 MiB here): with 6 MiB the whole file could be on
	// its way before the client died; the stream then ended normally and
	// only the idle timeout would have noticed (a CI failure).
	loadDirect(t, dir, "SG1", 80<<20)
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx, cancel := context.WithCancel(context.Background())
	sess, err := r.Begin(ctx, "SG1", ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := sess.DatabaseFiles(ctx)
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	f, err := sess.OpenFile(ctx, files[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, engine.ChunkSize)
	if _, err := f.Read(buf); err != nil {
		t.Fatal(err)
	}
	// The client "dies": its connection goes away mid-stream and it never
	// calls again (no Abort, no keepalive: cancel the heartbeat too).
	cancel()
	f.Close()
	r.Close()
	r2 := remote(t, ts.url, testToken)
	waitFor(t, "the session to abort", func() bool { return groupFree(t, r2, "SG1") })
	g, _ := ts.eng.Group("SG1")
	h, _ := g.Header("Mailbox1")
	if h.CurrentFull != nil || h.PreviousFull.IsSet() {
		t.Fatalf("aborted session touched the header: %+v", h)
	}
	// The next backup works.
	if _, err := runBackup(t, context.Background(), r2, "SG1", ese.Full, filepath.Join(t.TempDir(), "full.tar")); err != nil {
		t.Fatalf("backup after the aborted one: %v", err)
	}
}

func TestIdleSessionTimesOut(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken, SessionIdleTimeout: 150 * time.Millisecond})
	// A raw client that begins and then goes silent (no keepalives).
	req, _ := http.NewRequest("POST", ts.url+"/v1/groups/SG1/backup", strings.NewReader(`{"type":"full"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("begin: %v %v", resp, err)
	}
	resp.Body.Close()
	r := remote(t, ts.url, testToken)
	if groupFree(t, r, "SG1") {
		t.Fatal("session not registered")
	}
	waitFor(t, "the idle session to abort", func() bool { return groupFree(t, r, "SG1") })
	g, _ := ts.eng.Group("SG1")
	if h, _ := g.Header("Mailbox1"); h.CurrentFull != nil {
		t.Fatalf("timed-out session left Current Full set")
	}
	// A client with keepalives outlives the timeout.
	sess, err := r.Begin(context.Background(), "SG1", ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := sess.DatabaseFiles(context.Background()); err != nil {
		t.Fatalf("session with keepalives timed out: %v", err)
	}
	sess.Abort(nil)
}

func TestShutdownMidBackup(t *testing.T) {
	dir := initStore(t, "SG1")
	loadDirect(t, dir, "SG1", 6<<20)
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	sess, err := r.Begin(ctx, "SG1", ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := sess.DatabaseFiles(ctx)
	f, err := sess.OpenFile(ctx, files[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, engine.ChunkSize)
	if _, err := f.Read(buf); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { ts.stop(t); close(stopped) }()
	var rerr error
	for rerr == nil {
		_, rerr = f.Read(buf)
	}
	<-stopped
	if !errors.Is(rerr, storeapi.ErrServerShutdown) || !strings.Contains(rerr.Error(), "shutting down") {
		t.Fatalf("client error on server shutdown: %v", rerr)
	}
	f.Close()
	sess.Abort(rerr)
	// The store reopens cleanly with nothing recorded.
	eng, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	g, _ := eng.Group("SG1")
	if h, _ := g.Header("Mailbox1"); h.CurrentFull != nil || h.PreviousFull.IsSet() {
		t.Fatalf("header after shutdown mid-backup: %+v", h)
	}
}

func TestTwoGroupsInParallel(t *testing.T) {
	dir := initStore(t, "SG1", "SG2")
	ts := startServer(t, dir, server.Config{Token: testToken})
	ctx := context.Background()
	sets := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, g := range []string{"SG1", "SG2"} {
		r := remote(t, ts.url, testToken)
		if _, err := workload.Run(ctx, r.Store(g), workload.RunOptions{Workload: workload.Workload{Seed: uint64(i + 1), Streams: 2}, StopAfterBytes: 256 << 10}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = runBackup(t, ctx, r, g, ese.Full, filepath.Join(sets, g+".tar"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"SG1", "SG2"} {
		if st, err := os.Stat(filepath.Join(sets, g+".tar")); err != nil || st.Size() == 0 {
			t.Fatalf("%s set: %v", g, err)
		}
	}
}

func mustCodec(t testing.TB, s string) codec.Codec {
	c, err := codec.ParseCodec(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStalledReaderIsAborted: a client that opens a file stream and stops
// reading, connection open, is silent too: the session aborts.
func TestStalledReaderIsAborted(t *testing.T) {
	dir := initStore(t, "SG1")
	loadDirect(t, dir, "SG1", 24<<20)
	ts := startServer(t, dir, server.Config{Token: testToken, SessionIdleTimeout: 300 * time.Millisecond})
	do := func(method, path, body string) *http.Response {
		req, _ := http.NewRequest(method, ts.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do("POST", "/v1/groups/SG1/backup", `{"type":"full"}`)
	var br storeapi.BeginResponse
	json.NewDecoder(resp.Body).Decode(&br)
	resp.Body.Close()
	stream := do("GET", "/v1/sessions/"+br.Session+"/files/Mailbox1.edb", "")
	defer stream.Body.Close() // never read
	r := remote(t, ts.url, testToken)
	waitFor(t, "the stalled session to abort", func() bool { return groupFree(t, r, "SG1") })
	g, _ := ts.eng.Group("SG1")
	if h, _ := g.Header("Mailbox1"); h.CurrentFull != nil {
		t.Fatal("stalled session left Current Full set")
	}
}

// TestRestoreIntoRecoveryGroup: sets on the server host restore into a
// new recovery group the server recovers and serves; the workload model
// proves it over the data API. Set paths cannot leave the restore
// directory.
func TestRestoreIntoRecoveryGroup(t *testing.T) {
	dir := initStore(t, "SG1")
	sets := t.TempDir()
	ts := startServer(t, dir, server.Config{Token: testToken, RestoreDir: sets})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	st, err := workload.Run(ctx, r.Store("SG1"), workload.RunOptions{Workload: workload.Workload{Seed: 11, Streams: 2}, StopAfterBytes: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runBackup(t, ctx, r, "SG1", ese.Full, filepath.Join(sets, "full.tar")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(filepath.Dir(sets), "outside.tar"), []byte("x"), 0o644)
	os.Symlink("../outside.tar", filepath.Join(sets, "link.tar"))
	for _, bad := range []string{"../outside.tar", "/etc/passwd", "link.tar", "missing.tar", ""} {
		if _, err := r.Restore(ctx, storeapi.RestoreRequest{Sets: []string{bad}, Group: "RSG1"}); err == nil || !strings.Contains(err.Error(), "restore directory") {
			t.Errorf("restore of %q: %v", bad, err)
		}
	}
	if _, err := r.Restore(ctx, storeapi.RestoreRequest{Sets: []string{"full.tar"}, Group: "SG1"}); err == nil {
		t.Error("restore over the live group accepted")
	}
	res, err := r.Restore(ctx, storeapi.RestoreRequest{Sets: []string{"full.tar"}, Group: "RSG1"})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Group.Name != "RSG1" || !res.Result.Recovered {
		t.Fatalf("restore result %+v", res)
	}
	gi, _ := r.Prepare(ctx)
	if len(gi) != 2 || gi[1].Name != "RSG1" {
		t.Fatalf("groups after restore: %+v", gi)
	}
	rep, err := workload.VerifyAtLeast(ctx, r.Store("RSG1"), mapOf(st.Seqs), mapOf(st.Seqs))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("recovery group vs the workload model: %v", err)
	}
	// The recovery group can itself be backed up remotely.
	if _, err := runBackup(t, ctx, r, "RSG1", ese.Copy, filepath.Join(t.TempDir(), "rsg.tar")); err != nil {
		t.Fatalf("backup of the recovery group: %v", err)
	}
}

func mapOf(seqs []uint64) map[int]uint64 {
	m := map[int]uint64{}
	for i, s := range seqs {
		m[i] = s
	}
	return m
}

// TestBeginRacesAbort: a begin racing with the end of the previous
// session gets a session or -505, never anything else (run with -race).
func TestBeginRacesAbort(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	for range 20 {
		s, err := r.Begin(ctx, "SG1", ese.Copy, nil)
		if err != nil {
			if errors.Is(err, engine.ErrBackupInProgress) {
				continue
			}
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { s.Abort(nil); close(done) }()
		s2, err := r.Begin(ctx, "SG1", ese.Copy, nil)
		<-done
		switch {
		case err == nil:
			s2.Abort(nil)
		case !errors.Is(err, engine.ErrBackupInProgress):
			t.Fatalf("begin racing an abort: %v", err)
		}
	}
}

// TestRestoreIntoOwnedGroup: the server dismounts a live group, restores
// its last full into it, replays the group's later logs (point of
// failure), mounts it, and serves exactly the latest committed state.
func TestRestoreIntoOwnedGroup(t *testing.T) {
	dir := initStore(t, "SG1")
	sets := t.TempDir()
	ts := startServer(t, dir, server.Config{Token: testToken, RestoreDir: sets})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	if _, err := workload.Run(ctx, r.Store("SG1"), workload.RunOptions{Workload: workload.Workload{Seed: 12, Streams: 2}, StopAfterBytes: 512 << 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := runBackup(t, ctx, r, "SG1", ese.Full, filepath.Join(sets, "full.tar")); err != nil {
		t.Fatal(err)
	}
	st, err := workload.Run(ctx, r.Store("SG1"), workload.RunOptions{StopAfterBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(ctx, storeapi.RestoreRequest{Sets: []string{"nope.tar"}, Group: "SG1", Replace: true}); err == nil {
		t.Fatal("restore of a missing set accepted")
	}
	res, err := r.Restore(ctx, storeapi.RestoreRequest{Sets: []string{"full.tar"}, Group: "SG1", Replace: true})
	if err != nil {
		t.Fatalf("restore into the owned group: %v", err)
	}
	if !res.Result.Recovered || res.Result.Recovery.ToGen <= res.Result.HighGen {
		t.Fatalf("later logs not replayed: %+v", res.Result.Recovery)
	}
	rep, err := workload.VerifyAtLeast(ctx, r.Store("SG1"), mapOf(st.Seqs), mapOf(st.Seqs))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("restored group vs the workload model: %v", err)
	}
}
