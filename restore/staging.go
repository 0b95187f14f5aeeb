package restore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/tapeformat"
)

// stagingSink writes a set's files into the staging directory through an
// os.Root: databases only from the first (full) set, logs into logDir.
//
// Each log generation of a chain is written once. The sets of a chain may
// overlap (an incremental repeats the generations the checkpoint had not
// passed when the set before it truncated; a full's own logs stay on disk
// for the next set): a log an earlier set restored is compared, byte for
// byte as it streams in, with that copy and never rewritten, and a copy
// that differs fails the restore. Bytes, not a digest over the stream:
// a salvage can deliver chunks out of order. The one exception is a copy
// the earlier set reported damaged (a salvage), which the later, verified
// copy replaces.
//
// The writes, and each file's closing truncate+fsync, are done by one
// goroutine in the order they were queued, so that decoding and checking
// the next chunks overlaps the write(2) calls and the fsyncs (they were
// the restore's serial path). Chunk buffers are taken from the set reader
// (no copy) and come back through recycle.
type stagingSink struct {
	root     *os.Root
	onLabel  func(l tapeformat.Label, first bool) error
	sets     int
	logDir   string // relative to root
	prefix   string
	allowDBs bool
	salvage  bool // a salvage keeps what it can
	open     map[int]*stagedFile
	dbFiles  []string
	logs     map[string]*stagedLog // every log restored so far, by name
	setID    string                // the set being read
	inSet    map[string]bool       // the logs of the set being read
	bytes    int64

	ops  chan stagingOp
	done chan struct{}
	back chan []byte // buffers written, for the reader to reuse
	mu   sync.Mutex
	werr error // the writer's first error
}

type stagedFile struct {
	name string
	f    *os.File
	w    *media.FileWriter
	// same is the copy of this log an earlier set restored: the bytes
	// are compared with it (f is that file, read only), not written.
	same *stagedLog
	buf  []byte
}

// stagedLog is a log generation already in the staging directory.
type stagedLog struct {
	set     string // the set it was restored from
	damaged bool   // that set reported it damaged (salvage)
}

// stagingOp is a write of data at off, or (finish) the file's completion:
// truncate to size (if >= 0), fsync, close; or (abandon) just the close.
type stagingOp struct {
	sf      *stagedFile
	data    []byte
	off     int64
	finish  bool
	abandon bool
	size    int64
}

func (s *stagingSink) begin(l tapeformat.Label) error {
	s.sets++
	s.setID, s.inSet = l.SetID, map[string]bool{}
	return s.onLabel(l, s.sets == 1)
}

// damaged marks the logs a set reported problems in: a later set's copy
// may replace them.
func (s *stagingSink) damaged(problems []Problem) {
	for _, p := range problems {
		if l := s.logs[p.File]; l != nil {
			l.damaged = true
		}
	}
}

func (s *stagingSink) create(fh *tapeformat.FileHeader, kind string) (bool, error) {
	name := fh.Name
	if err := tapeformat.ValidateName(name); err != nil || strings.ContainsAny(name, `/\`) || name != filepath.Base(name) {
		return false, fmt.Errorf("set holds a file named %q, which a restore does not write", name)
	}
	var rel string
	switch kind {
	case tapeformat.KindDatabase, tapeformat.KindStreaming:
		ext := filepath.Ext(name)
		if !s.allowDBs || (ext != ".edb" && ext != ".stm") {
			return false, fmt.Errorf("database file %q where only logs belong (an incremental or differential set holds logs)", name)
		}
		rel = name
		s.dbFiles = append(s.dbFiles, name)
	case tapeformat.KindLog:
		if _, ok := wal.ParseGenName(s.prefix, name); !ok {
			return false, fmt.Errorf("log file %q is not a %s log generation", name, s.prefix)
		}
		rel = filepath.Join(s.logDir, name)
	default:
		return false, fmt.Errorf("file %q of kind %q is not part of a storage group backup", name, kind)
	}
	if err := s.failed(); err != nil {
		return false, err
	}
	if s.open == nil {
		s.open = map[int]*stagedFile{}
	}
	if s.ops == nil {
		s.ops, s.done, s.back = make(chan stagingOp, 4), make(chan struct{}), make(chan []byte, 8)
		go s.writer()
	}
	if kind == tapeformat.KindLog {
		if s.logs == nil {
			s.logs = map[string]*stagedLog{}
		}
		if s.inSet == nil {
			s.inSet = map[string]bool{}
		}
		if s.inSet[name] {
			return false, fmt.Errorf("set %s holds log %s twice", s.setID, name)
		}
		s.inSet[name] = true
		if prev := s.logs[name]; prev != nil && !prev.damaged {
			f, err := s.root.Open(rel)
			if err != nil {
				return false, err
			}
			s.open[fh.Index] = &stagedFile{name: rel, f: f, same: prev}
			return true, nil
		}
		s.logs[name] = &stagedLog{set: s.setID}
	}
	f, err := s.root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	s.open[fh.Index] = &stagedFile{name: rel, f: f, w: media.NewFileWriter(f)}
	return true, nil
}

// compare checks data, a chunk of a log an earlier set restored, against
// that copy.
func (s *stagingSink) compare(sf *stagedFile, data []byte, off int64) error {
	if cap(sf.buf) < len(data) {
		sf.buf = make([]byte, len(data))
	}
	have := sf.buf[:len(data)]
	n, err := sf.f.ReadAt(have, off)
	if n == len(data) && bytes.Equal(have, data) {
		return nil
	}
	at := off + int64(n)
	for i := range n {
		if have[i] != data[i] {
			at = off + int64(i)
			break
		}
	}
	if err != nil && n < len(data) {
		return fmt.Errorf("restore: log %s of set %s is longer than the copy set %s restored (%d bytes): the sets disagree, refusing to restore", filepath.Base(sf.name), s.setID, sf.same.set, at)
	}
	return fmt.Errorf("restore: log %s of set %s differs from the copy set %s restored, at byte %d: the sets disagree on this generation, refusing to restore", filepath.Base(sf.name), s.setID, sf.same.set, at)
}

// write queues data (which the sink now owns) for file fh at off.
func (s *stagingSink) write(fh *tapeformat.FileHeader, data []byte, off int64) error {
	if err := s.failed(); err != nil {
		return err
	}
	sf := s.open[fh.Index]
	if sf.same != nil {
		err := s.compare(sf, data, off)
		select {
		case s.back <- data:
		default:
		}
		return err
	}
	s.bytes += int64(len(data))
	s.ops <- stagingOp{sf: sf, data: data, off: off}
	return nil
}

// recycle hands the buffers already written back to the reader.
func (s *stagingSink) recycle(put func([]byte)) {
	for {
		select {
		case b := <-s.back:
			put(b)
		default:
			return
		}
	}
}

func (s *stagingSink) finish(fh *tapeformat.FileHeader) error {
	sf := s.open[fh.Index]
	if sf == nil {
		return nil
	}
	delete(s.open, fh.Index)
	if sf.same != nil {
		st, err := sf.f.Stat()
		if cerr := sf.f.Close(); err == nil {
			err = cerr
		}
		if err == nil && fh.Size >= 0 && st.Size() != fh.Size {
			err = fmt.Errorf("restore: log %s is %d bytes in set %s, %d in set %s: the sets disagree on this generation, refusing to restore", filepath.Base(sf.name), fh.Size, s.setID, st.Size(), sf.same.set)
		}
		if err != nil {
			return err
		}
		return s.failed()
	}
	// Queued even after a failure: the writer closes the file.
	s.ops <- stagingOp{sf: sf, finish: true, size: fh.Size}
	return s.failed()
}

func (s *stagingSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.werr
}

// writer performs the queued operations in order. After the first error
// it only closes files (and the error is reported to the next caller).
func (s *stagingSink) writer() {
	defer close(s.done)
	fail := func(err error) {
		s.mu.Lock()
		if s.werr == nil {
			s.werr = err
		}
		s.mu.Unlock()
	}
	for op := range s.ops {
		ok := s.failed() == nil && !op.abandon
		if op.finish {
			if ok && op.size >= 0 {
				if err := op.sf.f.Truncate(op.size); err != nil {
					fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
				}
			}
			if ok && s.failed() == nil {
				if err := op.sf.f.Sync(); err != nil {
					fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
				}
			}
			if err := op.sf.f.Close(); err != nil {
				fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
			}
			continue
		}
		if ok {
			if _, err := op.sf.w.WriteAt(op.data, op.off); err != nil {
				fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
			}
		}
		select {
		case s.back <- op.data:
		default: // the reader's pool is full: let it go
		}
	}
}

// closeAll waits for the queued operations, closes the files still open
// (a set that ended early: the staging directory is not used) and returns
// the writer's first error.
func (s *stagingSink) closeAll() error {
	for _, sf := range s.open {
		s.ops <- stagingOp{sf: sf, finish: true, abandon: true}
	}
	clear(s.open)
	if s.ops == nil {
		return nil
	}
	close(s.ops)
	<-s.done
	err := s.werr
	s.ops, s.done, s.back, s.werr = nil, nil, nil, nil
	return err
}
