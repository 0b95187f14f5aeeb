package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// trickleWriter accepts at most 100 bytes per call.
type trickleWriter struct{ bytes.Buffer }

func (w *trickleWriter) Write(p []byte) (int, error) {
	if len(p) > 100 {
		p = p[:100]
	}
	return w.Buffer.Write(p)
}

func TestStdoutWriter(t *testing.T) {
	var w trickleWriter
	s, err := Open("-", Options{Stdout: &w, RecordSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	r := record(4096, 1, 0)
	if n, err := s.Write(r); n != len(r) || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if !bytes.Equal(w.Bytes(), r) {
		t.Fatal("short writes not completed")
	}
	if err := s.NextVolume(); !errors.Is(err, ErrNoMoreVolumes) {
		t.Fatalf("next volume: %v", err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if v := s.Volumes(); len(v) != 1 || v[0].Bytes != 4096 || v[0].Records != 1 || v[0].Name != "stdout" {
		t.Fatalf("volumes %+v", v)
	}
	if _, err := s.Write(r); !errors.Is(err, ErrCommitted) {
		t.Fatalf("write after commit: %v", err)
	}
}

func TestStdoutBrokenPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	pr.Close()
	s, err := Open("-", Options{Stdout: pw, RecordSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Write(record(4096, 1, 0))
	if !errors.Is(err, ErrBrokenPipe) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("want broken pipe, got %v", err)
	}
	if err.Error() != "stdout closed by reader (EPIPE)" {
		t.Fatalf("message %q", err)
	}
	if err := s.Commit(); err == nil {
		t.Fatal("commit after a failed write succeeded")
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
}

func TestStdoutPipeSizeAndAbort(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	s, err := Open("-", Options{Stdout: pw})
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		if max := pipeMaxSize(); max >= PipeBufferSize {
			if got := pipeSize(pw); got < PipeBufferSize {
				t.Fatalf("pipe size %d, want >= %d", got, PipeBufferSize)
			}
		} else {
			t.Logf("pipe-max-size %d: raise skipped", max)
		}
	}
	// Fill the pipe so that a Write blocks; Abort must not wait for it.
	rec := record(DefaultRecordSize, 1, 0)
	done := make(chan error, 4)
	go func() {
		for i := 0; i < 4; i++ {
			_, err := s.Write(rec)
			done <- err
			if err != nil {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	aborted := make(chan error)
	go func() { aborted <- s.Abort() }()
	select {
	case err := <-aborted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Abort blocked behind a stalled Write")
	}
	go io.Copy(io.Discard, pr)
	var last error
	for err := range done {
		last = err
		if err != nil {
			break
		}
	}
	if !errors.Is(last, ErrAborted) {
		t.Fatalf("write after abort: %v", last)
	}
}

func TestStdinReader(t *testing.T) {
	r, err := OpenReader("-", Options{Stdin: strings.NewReader("abc")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "abc" {
		t.Fatalf("%q %v", b, err)
	}
	if err := r.NextVolume(); !errors.Is(err, ErrNoMoreVolumes) {
		t.Fatalf("next volume: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	pr, pw, _ := os.Pipe()
	defer pr.Close()
	r, err = OpenReader("-", Options{Stdin: pr})
	if err != nil {
		t.Fatal(err)
	}
	go func() { pw.Write([]byte("xyz")); pw.Close() }()
	b, _ = io.ReadAll(r)
	if string(b) != "xyz" {
		t.Fatalf("%q", b)
	}
}

func TestDeviceStream(t *testing.T) {
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	if k := Classify("/dev/null"); k != KindDevice {
		t.Fatalf("/dev/null is %v", k)
	}
	s, err := Open("/dev/null", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(record(DefaultRecordSize, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestHandleSIGPIPE(t *testing.T) {
	stop := HandleSIGPIPE()
	stop()
	stop()
}

func TestClassify(t *testing.T) {
	for name, want := range map[string]Kind{
		"-":                  KindStdio,
		"tape:/tmp/x?a=b":    KindEmulated,
		"/dev/nst0":          KindTape,
		"/dev/st1":           KindTape,
		"backup.tar":         KindFile,
		"/dev/shm/nope/x":    KindFile,
		"/var/backups/x.tar": KindFile,
	} {
		if got := Classify(name); got != want {
			t.Errorf("Classify(%q) = %v, want %v", name, got, want)
		}
	}
}

// InterruptibleStdin's reader gives back the stream exactly, through
// short and empty reads, and a read blocked on a silent pipe returns
// when its context ends.
func TestCtxReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 10 {
		want := make([]byte, rng.IntN(3<<20))
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		pr, pw := io.Pipe()
		go func() {
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(300<<10))
				pw.Write(rest[:n])
				rest = rest[n:]
			}
			pw.Close()
		}()
		r := &ctxReader{ctx: context.Background(), src: pr}
		got, err := io.ReadAll(iotest.HalfReader(r))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: %d bytes back of %d, err %v", round, len(got), len(want), err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	r := &ctxReader{ctx: ctx, src: pr}
	done := make(chan error)
	go func() { _, err := r.Read(make([]byte, 10)); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a read on a silent pipe after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read on a silent pipe did not return when its context ended")
	}
}
