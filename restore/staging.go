package restore

import (
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
	open     map[int]*stagedFile
	dbFiles  []string
	logs     []string
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
	return s.onLabel(l, s.sets == 1)
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
		s.logs = append(s.logs, name)
	default:
		return false, fmt.Errorf("file %q of kind %q is not part of a storage group backup", name, kind)
	}
	if err := s.failed(); err != nil {
		return false, err
	}
	f, err := s.root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	if s.open == nil {
		s.open = map[int]*stagedFile{}
	}
	s.open[fh.Index] = &stagedFile{name: rel, f: f, w: media.NewFileWriter(f)}
	if s.ops == nil {
		s.ops, s.done, s.back = make(chan stagingOp, 4), make(chan struct{}), make(chan []byte, 8)
		go s.writer()
	}
	return true, nil
}

// write queues data (which the sink now owns) for file fh at off.
func (s *stagingSink) write(fh *tapeformat.FileHeader, data []byte, off int64) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.bytes += int64(len(data))
	s.ops <- stagingOp{sf: s.open[fh.Index], data: data, off: off}
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
