package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/storeapi"
)

// streamBuffers recycles chunk buffers of file streams.
var streamBuffers = sync.Pool{New: func() any { b := make([]byte, 5+engine.ChunkSize); return &b }}

// handleStream sends one file as frames: Start, Data per 64 KiB chunk,
// then End or Error. The engine reads (and verifies) the next chunk while
// the previous one is on the wire. A client that goes away mid-stream
// aborts the session.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	name := r.PathValue("name")
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "invalid file name"))
		return
	}
	fr, err := se.es.OpenFile(r.Context(), name)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer fr.Close()
	start, _ := json.Marshal(storeapi.FileStart{File: fr.Info(), Size: fr.Size(), Header: fr.HeaderSnapshot()})
	w.Header().Set("Content-Type", "application/x-tapestream-frames")
	w.WriteHeader(http.StatusOK)
	// Frames go straight to the connection: a data frame is one write
	// of the pooled buffer (header and chunk contiguous), no copy.
	bw := bufio.NewWriterSize(w, 64)
	gm := s.metrics.group(se.group)

	// Read ahead: the engine reads into a small ring while the writer
	// sends.
	type chunk struct {
		buf *[]byte
		n   int
		err error
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	chunks := make(chan chunk, 4)
	go func() {
		defer close(chunks)
		for {
			bp := streamBuffers.Get().(*[]byte)
			n, err := fr.Read((*bp)[5:])
			select {
			case chunks <- chunk{bp, n, err}:
			case <-ctx.Done():
				streamBuffers.Put(bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// On return, wait for the reader goroutine before fr.Close runs.
	defer func() {
		cancel()
		for c := range chunks {
			streamBuffers.Put(c.buf)
		}
	}()

	// A client that stops reading (but keeps the connection) is silent
	// too: every write must make progress within the idle timeout.
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.SessionIdleTimeout)) }
	defer rc.SetWriteDeadline(time.Time{})
	deadline()
	clientGone := func(err error) {
		s.abortSession(se, fmt.Sprintf("backup client went away while reading %s: %v", name, err), "disconnected")
	}
	if err := storeapi.WriteFrame(bw, storeapi.FrameStart, start); err != nil {
		clientGone(err)
		return
	}
	var total int64
	for c := range chunks {
		if c.err == io.EOF {
			streamBuffers.Put(c.buf)
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(total))
			if err := storeapi.WriteFrame(bw, storeapi.FrameEnd, b[:]); err == nil {
				err = bw.Flush()
				if err != nil {
					clientGone(err)
				}
			} else {
				clientGone(err)
			}
			return
		}
		if c.err != nil {
			streamBuffers.Put(c.buf)
			_, e := storeapi.ToWire(c.err)
			if s.isClosing() {
				e.Kind = "shutdown"
				// The client reading this stream is told.
				defer s.toldIfSession(r)
			}
			body, _ := json.Marshal(storeapi.ErrorBody{Error: e})
			storeapi.WriteFrame(bw, storeapi.FrameError, body)
			bw.Flush()
			return
		}
		deadline()
		b := *c.buf
		b[0] = storeapi.FrameData
		binary.BigEndian.PutUint32(b[1:5], uint32(c.n))
		_, err := bw.Write(b[:5+c.n])
		streamBuffers.Put(c.buf)
		if err == nil {
			err = r.Context().Err()
		}
		if err != nil {
			clientGone(err)
			return
		}
		total += int64(c.n)
		gm.bytes.Add(int64(c.n))
		s.metrics.bytes.Add(int64(c.n))
		se.touch(0)
	}
	// The reader stopped without EOF or an error: the request's context
	// ended, i.e. the client went away while the reader waited for room
	// in the ring. That is the same disconnect as a failed write (a CI
	// run once left the session to the idle timeout here).
	clientGone(fmt.Errorf("connection closed: %w", context.Cause(r.Context())))
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
