package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// PipeBufferSize is the kernel pipe buffer requested (F_SETPIPE_SZ) when
// stdout or stdin is a pipe: one default record, so a `| mbuffer` or
// `| dd` consumer gets whole records per wake-up.
const PipeBufferSize = 1 << 20

var errBrokenPipe error = syscall.EPIPE

// HandleSIGPIPE must be called by the CLI before writing a set to stdout.
//
// Go's runtime kills the process with SIGPIPE when a write to fd 1 or 2
// through os.File fails with EPIPE, unless the program called signal.Notify
// for SIGPIPE (or ignores it). HandleSIGPIPE registers a drained
// notification channel, so a reader that goes away (`| head`, a dropped
// ssh) turns into a Write error wrapping ErrBrokenPipe ("stdout closed by
// reader (EPIPE)"), the set is aborted cleanly and the exit status tells
// what happened. signal.Notify (rather than signal.Ignore) keeps SIGPIPE at
// its default for child processes such as the next-volume command.
//
// On Linux the stdout sink writes with write(2) directly and is safe even
// without this call; other code writing to stdout is not. The returned
// function stops the notification.
func HandleSIGPIPE() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}

// streamSink writes a set to a byte stream: stdout, a pipe, a non-tape
// device such as /dev/null, or an io.Writer. A stream has one volume and
// nothing can be removed from it: Abort only stops writing; the stream then
// ends without the manifest member, which readers report as incomplete.
type streamSink struct {
	mu    sync.Mutex // serializes Write and Commit
	name  string
	f     *os.File  // fd-backed stream, or nil
	w     io.Writer // io.Writer-backed stream when f == nil
	close bool      // close f on Commit/Abort (opened by us)
	rs    int

	aborted   atomic.Bool
	committed atomic.Bool
	failed    atomic.Bool
	bytes     atomic.Int64
	records   atomic.Int64
}

func newStreamSink(name string, f *os.File, w io.Writer, closeIt bool, opts Options) *streamSink {
	s := &streamSink{name: name, f: f, w: w, close: closeIt, rs: opts.recordSize()}
	if f != nil {
		raisePipeSize(f, PipeBufferSize)
	}
	return s
}

func (s *streamSink) state() error {
	switch {
	case s.aborted.Load():
		return ErrAborted
	case s.committed.Load():
		return ErrCommitted
	}
	return nil
}

// Write writes one record, looping on short writes.
func (s *streamSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.state(); err != nil {
		return 0, newErr("write", s.name, err)
	}
	if err := checkRecord(p, s.rs); err != nil {
		return 0, newErr("write", s.name, err)
	}
	var n int
	var err error
	if s.f != nil {
		n, err = writeFullFile(s.f, p)
	} else {
		n, err = writeFull(s.w, p)
	}
	s.bytes.Add(int64(n))
	if err != nil {
		s.failed.Store(true)
		if errors.Is(err, syscall.EPIPE) {
			return n, &BrokenPipeError{Target: s.name}
		}
		return n, newErr("write", s.name, err)
	}
	s.records.Add(1)
	return n, nil
}

// writeFull loops on short writes of a generic io.Writer.
func writeFull(w io.Writer, p []byte) (int, error) {
	off := 0
	for off < len(p) {
		n, err := w.Write(p[off:])
		off += n
		if err != nil {
			return off, err
		}
		if n == 0 {
			return off, io.ErrShortWrite
		}
	}
	return off, nil
}

func (s *streamSink) NextVolume() error {
	return newErr("next volume", s.name, fmt.Errorf("%w: a stream is a single volume", ErrNoMoreVolumes))
}

// Commit flushes the stream: fsync when it is a regular file (a pipe or
// terminal cannot be synced), Flush/Sync on an io.Writer that has them.
func (s *streamSink) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.state(); err != nil {
		return newErr("commit", s.name, err)
	}
	if s.failed.Load() {
		return newErr("commit", s.name, errors.New("an earlier write failed"))
	}
	var err error
	if s.f != nil {
		if fi, serr := s.f.Stat(); serr == nil && fi.Mode().IsRegular() {
			err = s.f.Sync()
		}
		if s.close {
			if cerr := s.f.Close(); err == nil {
				err = cerr
			}
		}
	} else {
		if fl, ok := s.w.(interface{ Flush() error }); ok {
			err = fl.Flush()
		}
		if sy, ok := s.w.(interface{ Sync() error }); ok && err == nil {
			if serr := sy.Sync(); serr != nil && !isSyncUnsupported(serr) {
				err = serr
			}
		}
	}
	if err != nil {
		s.failed.Store(true)
		return newErr("commit", s.name, err)
	}
	s.committed.Store(true)
	return nil
}

// Abort marks the sink aborted without waiting for an in-flight Write (a
// stalled pipe reader must not block Abort); later Writes fail with
// ErrAborted. A stream cannot be unwritten.
func (s *streamSink) Abort() error {
	if s.committed.Load() {
		return nil
	}
	if s.aborted.Swap(true) {
		return nil
	}
	if s.close && s.f != nil {
		// Closing unblocks nothing reliably, but releases the device; do it
		// once the in-flight write (if any) is done.
		go func() {
			s.mu.Lock()
			s.f.Close()
			s.mu.Unlock()
		}()
	}
	return nil
}

func (s *streamSink) Volumes() []VolumeInfo {
	return []VolumeInfo{{Number: 1, Name: s.name, Bytes: s.bytes.Load(), Records: s.records.Load(), FileNumber: -1}}
}

// streamReader reads a set from stdin, a pipe or a non-tape device: one
// volume; io.EOF at its end.
type streamReader struct {
	name  string
	r     io.Reader
	f     *os.File
	close bool
}

func newStreamReader(name string, f *os.File, r io.Reader, closeIt bool) *streamReader {
	if f != nil {
		raisePipeSize(f, PipeBufferSize)
		r = f
	}
	return &streamReader{name: name, r: r, f: f, close: closeIt}
}

func (r *streamReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = newErr("read", r.name, err)
	}
	return n, err
}

func (r *streamReader) NextVolume() error {
	return newErr("next volume", r.name, fmt.Errorf("%w: a stream is a single volume", ErrNoMoreVolumes))
}

func (r *streamReader) Volume() int { return 1 }

func (r *streamReader) Close() error {
	if r.close && r.f != nil {
		return r.f.Close()
	}
	return nil
}

// Durable: a stream's consumer (a pipe, a device) is out of sight.
func (s *streamSink) Durable() bool { return false }

// InterruptibleStdin is the process's standard input for the "-" source,
// read on its own goroutine so that a Read waiting on a silent pipe
// returns ctx's error when ctx ends: a read(2) blocked on fd 0 cannot be
// cancelled, and a restore stopped by Ctrl-C must get back to undo what
// it wrote. The goroutine starts with the first Read; one left blocked in
// read(2) after ctx ended goes with the process.
func InterruptibleStdin(ctx context.Context) io.Reader {
	return &ctxReader{ctx: ctx, src: os.Stdin}
}

type ctxReader struct {
	ctx  context.Context
	src  io.Reader
	once sync.Once
	ch   chan readChunk
	cur  readChunk
	off  int
}

type readChunk struct {
	buf *[]byte
	n   int
	err error
}

var stdinBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (r *ctxReader) start() {
	if f, ok := r.src.(*os.File); ok {
		raisePipeSize(f, PipeBufferSize)
	}
	r.ch = make(chan readChunk, 4)
	go func() {
		defer close(r.ch)
		for {
			bp := stdinBuffers.Get().(*[]byte)
			n, err := r.src.Read(*bp)
			select {
			case r.ch <- readChunk{bp, n, err}:
			case <-r.ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

func (r *ctxReader) Read(p []byte) (int, error) {
	r.once.Do(r.start)
	for r.cur.buf == nil || r.off == r.cur.n {
		if r.cur.err != nil {
			return 0, r.cur.err
		}
		if r.cur.buf != nil {
			stdinBuffers.Put(r.cur.buf)
			r.cur.buf = nil
		}
		select {
		case c, ok := <-r.ch:
			if !ok {
				return 0, r.ctx.Err()
			}
			r.cur, r.off = c, 0
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, (*r.cur.buf)[r.off:r.cur.n])
	r.off += n
	return n, nil
}
