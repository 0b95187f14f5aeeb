package s3store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/media/s3store/s3test"
)

// killedUpload runs an upload of data(seed, size) to key in a child
// process and SIGKILLs it once parts parts are recorded in the state
// file, with more parts in flight. It returns the state file.
func killedUpload(t *testing.T, srv *s3test.Server, bucket, key string, seed uint64, size, parts int) string {
	t.Helper()
	state := t.TempDir() + "/upload.state"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(cleanAWSEnv(),
		childEnv+"=upload",
		"S3STORE_TEST_URL=s3://"+bucket+"/"+key+"?endpoint="+srv.Endpoint,
		"S3STORE_TEST_KEY="+s3test.AccessKey, "S3STORE_TEST_SECRET="+s3test.SecretKey,
		fmt.Sprintf("S3STORE_TEST_SIZE=%d", size), fmt.Sprintf("S3STORE_TEST_SEED=%d", seed),
		fmt.Sprintf("S3STORE_TEST_PARTS=%d", parts), "S3STORE_TEST_STATE="+state)
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "READY\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v\n%s", line, err, stderr.String())
	}
	cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	cmd.Wait()
	return state
}

// TestResumeAfterKill: a process killed with SIGKILL mid-upload leaves a
// pending multipart upload (no object) and its state file; Resume with
// the same bytes skips the recorded parts (verified by CRC32C) and
// commits the right object; with different bytes it aborts the old
// upload and starts anew; with bytes that differ from the third part on it
// keeps the first two and replaces the rest.
func TestResumeAfterKill(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	const size = 47<<20 + 333

	check := func(t *testing.T, key, state string, data []byte) UploadStats {
		t.Helper()
		if _, err := s.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("killed upload left an object: %v", err)
		}
		st, err := ReadState(state)
		if err != nil {
			t.Fatal(err)
		}
		pend, err := s.ListPending(ctx, key)
		if err != nil || len(pend) != 1 || pend[0].UploadID != st.UploadID {
			t.Fatalf("pending uploads %v, %v; state has %s", pend, err, st.UploadID)
		}
		u, err := s.Resume(ctx, state, UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, u, data, 1<<20)
		if _, err := u.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, key, readObject(t, s, key), data)
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Fatalf("state file left after commit: %v", err)
		}
		if pend, _ := s.ListPending(ctx, key); len(pend) != 0 {
			t.Fatalf("pending uploads after commit: %v", pend)
		}
		return u.Stats()
	}

	t.Run("same bytes", func(t *testing.T) {
		state := killedUpload(t, srv, bucket, "same", 7, size, 2)
		st, _ := ReadState(state)
		stats := check(t, "same", state, testData(7, size))
		if stats.PartsReused < 2 || stats.PartsReused != len(st.Parts) || stats.Restarted {
			t.Fatalf("stats %+v, state had %d parts", stats, len(st.Parts))
		}
		t.Logf("killed with %d parts recorded; resumed: %+v", len(st.Parts), stats)
	})
	t.Run("different bytes", func(t *testing.T) {
		state := killedUpload(t, srv, bucket, "diff", 8, size, 2)
		st, _ := ReadState(state)
		stats := check(t, "diff", state, testData(9, size))
		// Restarted when part 1 was recorded (else part 1 went into the
		// old upload this run, and the recorded parts are replaced).
		if stats.PartsReused != 0 || stats.Restarted != (st.Parts[0].Number == 1) {
			t.Fatalf("stats %+v, recorded parts %v", stats, st.Parts)
		}
	})
	t.Run("differs from part 3", func(t *testing.T) {
		state := killedUpload(t, srv, bucket, "tail", 10, size, 3)
		data := testData(10, size)
		data[12<<20] ^= 1 // part 3 is bytes [10 MiB, 20 MiB)
		st, _ := ReadState(state)
		stats := check(t, "tail", state, data)
		// Recorded parts before the first recorded one that differs (3)
		// are reused, that one and all after it replaced.
		var reused, replaced int
		for _, p := range st.Parts {
			if p.Number < 3 || (replaced == 0 && p.Number > 3 && !recorded(st, 3)) {
				reused++
			} else {
				replaced++
			}
		}
		if stats.PartsReused != reused || stats.PartsReplaced != replaced || stats.Restarted {
			t.Fatalf("stats %+v, recorded parts %v", stats, st.Parts)
		}
	})
}

// TestResumeGoneUpload: an upload that the server no longer has (aborted
// by a cleanup) restarts from scratch.
func TestResumeGoneUpload(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	state := killedUpload(t, srv, bucket, "gone", 11, 30<<20, 1)
	pend, _ := s.ListPending(ctx, "gone")
	for _, p := range pend {
		if err := s.AbortPending(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.Resume(ctx, state, UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := testData(11, 30<<20)
	writeAll(t, u, data, 1<<20)
	if _, err := u.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if st := u.Stats(); !st.Restarted || st.PartsReused != 0 {
		t.Fatalf("stats %+v", st)
	}
	mustEqual(t, "gone", readObject(t, s, "gone"), data)
}

// TestPendingCleanup: uploads abandoned by killed runs are listed by
// prefix and aborted; other prefixes are left alone; a pending upload is
// never visible as an object.
func TestPendingCleanup(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	for _, key := range []string{"run/a", "run/b", "keep/c"} {
		u, err := s.Create(ctx, key, UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, u, testData(1, 6<<20), 1<<20)
		flushNow(t, u) // abandoned: no Commit, no Abort
	}
	pend, err := s.ListPending(ctx, "run/")
	if err != nil || len(pend) != 2 || pend[0].Key != "run/a" || pend[1].Key != "run/b" {
		t.Fatalf("pending %v %v", pend, err)
	}
	if objs, _ := s.List(ctx, ""); len(objs) != 0 {
		t.Fatalf("pending uploads listed as objects: %v", objs)
	}
	for _, p := range pend {
		if err := s.AbortPending(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := s.AbortPending(ctx, p); err != nil {
			t.Fatalf("second abort: %v", err)
		}
	}
	if pend, _ := s.ListPending(ctx, "run/"); len(pend) != 0 {
		t.Fatalf("left: %v", pend)
	}
	if pend, _ := s.ListPending(ctx, ""); len(pend) != 1 || pend[0].Key != "keep/c" {
		t.Fatalf("other prefix: %v", pend)
	}
}

// TestFaultProxy: a proxy answers every third request with 503 SlowDown
// and resets every fifth connection mid-request; uploads (multipart and
// single) and ranged reads retry through it and the objects are intact.
// A stalled request times out and is retried.
func TestFaultProxy(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	p := s3test.NewProxy(t, srv.Endpoint, func(n int, r *http.Request) s3test.Fault {
		switch {
		case n%5 == 4:
			return s3test.Reset
		case n%3 == 2:
			return s3test.SlowDown
		case n == 7:
			return s3test.Stall
		}
		return s3test.Pass
	})
	o := testOptions(srv, bucket)
	o.Endpoint = p.URL
	o.RequestTimeout = 2 * time.Second
	s := newStore(t, o)
	ctx := deadline(t, time.Minute)
	for _, size := range []int{0, 3000, 41<<20 + 5} {
		key := fmt.Sprintf("f/%d", size)
		data := testData(uint64(size), size)
		u, err := s.Create(ctx, key, UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, u, data, 1<<20)
		if _, err := u.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, key, readObject(t, s, key), data)
	}
	c := p.Counts()
	t.Logf("proxy: %v", c)
	if c[s3test.SlowDown] < 3 || c[s3test.Reset] < 3 || c[s3test.Stall] != 1 {
		t.Fatalf("faults injected: %v", c)
	}
}

// TestServerKilledMidUpload: the server dies while parts are in flight.
// The upload fails within the retry budget with an error naming the
// object; nothing is committed; once the server is back, Abort cleans up.
func TestServerKilledMidUpload(t *testing.T) {
	srv := s3test.Start(t) // its own server: this test kills it
	bucket := newBucket(t, srv, false)
	o := testOptions(srv, bucket)
	o.MaxAttempts = 4
	s := newStore(t, o)
	ctx := deadline(t, time.Minute)
	u, err := s.Create(ctx, "k/set", UploadOptions{StateFile: t.TempDir() + "/st"})
	if err != nil {
		t.Fatal(err)
	}
	data := testData(12, 60<<20)
	writeAll(t, u, data[:16<<20], 1<<20)
	srv.Kill()
	start := time.Now()
	var werr error
	for off := 16 << 20; off < len(data) && werr == nil; off += 1 << 20 {
		_, werr = u.Write(data[off : off+1<<20])
	}
	_, cerr := u.Commit(ctx)
	if cerr == nil {
		t.Fatal("commit succeeded with the server dead")
	}
	t.Logf("write error: %v\ncommit error: %v (after %v)", werr, cerr, time.Since(start))
	errContains(t, cerr, "s3://"+bucket+"/k/set", "connect")
	if time.Since(start) > 20*time.Second {
		t.Fatalf("failing took %v", time.Since(start))
	}
	// Abort with the server down fails and keeps the state file.
	if err := u.Abort(ctx); err == nil {
		t.Fatal("abort with the server down reported success")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "k/set"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object after failed upload: %v", err)
	}
	pend, err := s.ListPending(ctx, "k/")
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending: %v %v", pend, err)
	}
	if err := s.AbortPending(ctx, pend[0]); err != nil {
		t.Fatal(err)
	}
}

func recorded(st *UploadState, n int32) bool {
	for _, p := range st.Parts {
		if p.Number == n {
			return true
		}
	}
	return false
}
