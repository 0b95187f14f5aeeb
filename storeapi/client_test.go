package storeapi

import (
	"bytes"

	"github.com/tapestream/tapestream/ese"

	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/source"
)

// fakeServer answers begin with a session and streams whatever frames
// the test gives for every file.
func fakeServer(t *testing.T, frames func(w io.Writer)) *Remote {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/groups/{g}/backup", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("g") == "BUSY" {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(ErrorBody{Error: Error{Kind: "ese", Code: engine.CodeBackupInProgress, Group: "BUSY", Message: "storage group BUSY: a full backup is already in progress (-505)"}})
			return
		}
		json.NewEncoder(w).Encode(BeginResponse{Session: strings.Repeat("a", 32), Type: "full", Group: engine.GroupInfo{Name: "SG1"}, IdleTimeoutMS: 60000})
	})
	mux.HandleFunc("GET /v1/sessions/{id}/files/{name}", func(w http.ResponseWriter, r *http.Request) { frames(w) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) })
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	r, err := OpenRemote(hs.URL, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func startFrame(kind ese.FileKind, size int64) []byte {
	b, _ := json.Marshal(FileStart{File: engine.BackupFile{Name: "Mailbox1.edb", Kind: kind}, Size: size})
	return b
}

func open(t *testing.T, r *Remote) source.File {
	t.Helper()
	s, err := r.Begin(context.Background(), "SG1", ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Abort(nil) })
	f, err := s.OpenFile(context.Background(), "Mailbox1.edb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// The bytes of a remote file crossed the network after the server's engine
// verified them: the file must say so, so that the pipeline checks them.
func TestRemoteFileIsNotVerified(t *testing.T) {
	chunk := make([]byte, engine.ChunkSize)
	for i := range chunk {
		chunk[i] = byte(i * 7) // garbage: no valid page
	}
	r := fakeServer(t, func(w io.Writer) {
		WriteFrame(w, FrameStart, startFrame(ese.KindDatabase, engine.ChunkSize))
		WriteFrame(w, FrameData, chunk)
	})
	f := open(t, r)
	if f.Verified() {
		t.Fatal("a remote file claims its bytes were verified in this process")
	}
	got := make([]byte, engine.ChunkSize)
	if n, err := f.Read(got); err != nil || n != len(chunk) || !bytes.Equal(got, chunk) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
}

func TestRemoteStreamErrors(t *testing.T) {
	eseFrame := func(w io.Writer) {
		WriteFrame(w, FrameStart, startFrame(ese.KindLog, 2*engine.ChunkSize))
		WriteFrame(w, FrameData, make([]byte, engine.ChunkSize))
		b, _ := json.Marshal(ErrorBody{Error: Error{Kind: "ese", Code: engine.CodeLogReadVerifyFailure, Group: "SG1", Message: "log bad"}})
		WriteFrame(w, FrameError, b)
	}
	cut := func(w io.Writer) {
		WriteFrame(w, FrameStart, startFrame(ese.KindLog, 2*engine.ChunkSize))
		w.Write([]byte{FrameData, 0, 1, 0, 0, 1, 2, 3})
	}
	overrun := func(w io.Writer) {
		WriteFrame(w, FrameStart, startFrame(ese.KindLog, 100))
		WriteFrame(w, FrameData, make([]byte, 200))
	}
	short := func(w io.Writer) {
		WriteFrame(w, FrameStart, startFrame(ese.KindLog, 100))
		WriteFrame(w, FrameData, make([]byte, 50))
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], 50)
		WriteFrame(w, FrameEnd, b[:])
	}
	huge := func(w io.Writer) {
		WriteFrame(w, FrameStart, startFrame(ese.KindLog, 100))
		w.Write([]byte{FrameData, 0x7f, 0, 0, 0})
	}
	for name, tc := range map[string]struct {
		frames func(io.Writer)
		check  func(error) bool
	}{
		"ese":     {eseFrame, func(err error) bool { return errors.Is(err, engine.ErrLogReadVerifyFailure) }},
		"cut":     {cut, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		"overrun": {overrun, func(err error) bool { return strings.Contains(err.Error(), "overruns") }},
		"short":   {short, func(err error) bool { return strings.Contains(err.Error(), "expected 100") }},
		"huge":    {huge, func(err error) bool { return strings.Contains(err.Error(), "frame of") }},
	} {
		t.Run(name, func(t *testing.T) {
			f := open(t, fakeServer(t, tc.frames))
			buf := make([]byte, engine.ChunkSize)
			var err error
			for range 4 {
				if _, err = f.Read(buf); err != nil {
					break
				}
			}
			if err == nil || !tc.check(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestRemoteBusyIsESE505(t *testing.T) {
	r := fakeServer(t, func(io.Writer) {})
	_, err := r.Begin(context.Background(), "BUSY", ese.Full, nil)
	var ee *engine.ESEError
	if !errors.Is(err, engine.ErrBackupInProgress) || !errors.As(err, &ee) || ee.Group != "BUSY" || ee.Error() != "storage group BUSY: a full backup is already in progress (-505)" {
		t.Fatalf("busy: %v", err)
	}
}

func TestOpenRemoteRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "127.0.0.1:7420", "http://"} {
		if _, err := OpenRemote(u, RemoteOptions{}); err == nil {
			t.Errorf("OpenRemote(%q) accepted", u)
		}
	}
}
