package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/ese"
)

// FileReader reads one file of a backup in sequential chunks of 64 KiB.
type FileReader struct {
	s      *Session
	file   BackupFile
	pf     *pagefile
	f      vfs.File // logs
	header []byte   // pages 0-1 snapshot
	size   int64
	off    int64
	ver    *verify.File
	closed bool
}

// ChunkSize is the size of every read but a file's last (16 pages).
const ChunkSize = page.PagesPerChunk * page.Size

// verifyRetries is how often a page that fails verification is re-read
// before the backup fails: a page may be caught mid-write by the OS even
// though our range lock excludes our own writers (ESE retries 16 times).
const verifyRetries = 16

// OpenFile opens a database, streaming or log file of the session
// (HrESEBackupOpenFile). A database's size is fixed here: pages added
// later are not copied, the logs cover them; pages 0-1 come from a header
// snapshot taken now.
func (s *Session) OpenFile(name string) (*FileReader, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	g := s.g
	for _, bf := range s.DatabaseFiles() {
		if bf.Name != name {
			continue
		}
		g.mu.Lock()
		d, _ := g.database(bf.Database)
		kind := fileEDB
		if bf.Kind == ese.KindStreaming {
			kind = fileSTM
		}
		pf := d.files[kind]
		hdr := d.hdr
		if kind == fileSTM {
			hdr = d.stmHdr
		}
		snap := make([]byte, 2*page.Size)
		h := cloneHeader(hdr)
		h.DBTime = max(h.DBTime, d.dbtime)
		err := encodeHeader(h, snap[:page.Size], 0)
		if err == nil {
			err = encodeHeader(h, snap[page.Size:], 1)
		}
		g.mu.Unlock()
		if err != nil {
			return nil, err
		}
		bf.Size = pf.size()
		return &FileReader{s: s, file: bf, pf: pf, header: snap, size: bf.Size, ver: verify.New(pf.name, bf.Kind, [16]byte{})}, nil
	}
	s.mu.Lock()
	logs := s.logs
	s.mu.Unlock()
	for _, lf := range logs {
		if lf.Name != name {
			continue
		}
		f, err := g.fs.OpenFile(filepath.Join(g.dir, lf.Name), os.O_RDONLY, 0)
		if err != nil {
			err = g.eseErr(CodeMissingLogFile, err, "log generation %d (%s) is gone", lf.Gen, lf.Name)
			s.abort(err)
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		lf.Size = st.Size()
		return &FileReader{s: s, file: lf, f: f, size: st.Size(), ver: verify.New(lf.Name, ese.KindLog, g.cfg.sig())}, nil
	}
	return nil, fmt.Errorf("storage group %s: %q is not a file of this %s backup session", g.name, name, s.typ)
}

// Info describes the open file; Size is fixed.
func (r *FileReader) Info() BackupFile { return r.file }

// Size is the number of bytes the reader returns.
func (r *FileReader) Size() int64 { return r.size }

// HeaderSnapshot returns the pages 0-1 snapshot of a database file.
func (r *FileReader) HeaderSnapshot() []byte { return r.header }

// Read fills p with the next chunk: 64 KiB (len(p) must be at least
// ChunkSize) except the file's last, which may be short. Every page read
// is verified (checksum, page number); a page that still fails after
// retries ends the session with -1018/-1118 naming file and page. Log
// files are verified record by record (-612).
func (r *FileReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if err := r.s.check(); err != nil {
		return 0, err
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(p) < ChunkSize {
		return 0, fmt.Errorf("backup read buffer of %d bytes; need %d", len(p), ChunkSize)
	}
	n := int(min(int64(ChunkSize), r.size-r.off))
	buf := p[:n]
	if r.f != nil {
		if _, err := r.f.ReadAt(buf, r.off); err != nil {
			return 0, r.fail(err)
		}
		if err := r.ver.Write(r.off, buf); err != nil {
			return 0, r.fail(r.s.g.eseErr(CodeLogReadVerifyFailure, err, "log %s failed verification", r.file.Name))
		}
		r.off += int64(n)
		if r.off == r.size {
			if err := r.finishLog(); err != nil {
				return 0, r.fail(err)
			}
		}
		return n, nil
	}
	if err := r.readPages(buf, uint32(r.off/page.Size)); err != nil {
		return 0, r.fail(err)
	}
	r.off += int64(n)
	return n, nil
}

// readPages reads pages under the range lock and verifies them.
func (r *FileReader) readPages(buf []byte, first uint32) error {
	pf := r.pf
	for attempt := 0; ; attempt++ {
		s := pf.stripe(first)
		s.RLock()
		_, err := pf.f.ReadAt(buf, int64(first)*page.Size)
		s.RUnlock()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: reading pages at %d: %w", pf.name, first, err)
		}
		if first == 0 {
			copy(buf, r.header[:min(len(buf), len(r.header))])
		}
		verr := r.ver.Write(int64(first)*page.Size, buf)
		if verr == nil {
			return nil
		}
		if attempt+1 >= verifyRetries {
			return verr
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

func (r *FileReader) finishLog() error {
	info, err := r.ver.Finish()
	if err != nil {
		return r.s.g.eseErr(CodeLogReadVerifyFailure, err, "log %s failed verification", r.file.Name)
	}
	s := r.s
	if info.Header.Gen != r.file.Gen {
		return s.g.eseErr(CodeLogReadVerifyFailure, nil, "log %s holds generation %d", r.file.Name, info.Header.Gen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.chain.Add(r.file.Name, info); err != nil {
		return s.g.eseErr(CodeLogReadVerifyFailure, err, "log %s failed verification", r.file.Name)
	}
	s.logRead[r.file.Gen] = true
	return nil
}

func (r *FileReader) fail(err error) error {
	r.s.abort(err)
	return err
}

// Close ends the file's read sequence (HrESEBackupCloseFile).
func (r *FileReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}
