// Package fakesource is an in-memory source.Source for unit tests of the
// pipeline and the backup sequence: database "files" of sealed pages, a
// read failure on demand, and a record of how the session ended.
package fakesource

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/source"
)

// Pages returns n sealed pages numbered 0..n-1 with content derived from seed.
func Pages(n int, seed byte) []byte {
	b := make([]byte, n*page.Size)
	for i := 0; i < n; i++ {
		p := b[i*page.Size : (i+1)*page.Size]
		page.Init(p, page.KindLeaf)
		for j := page.HeaderLen; j < page.Size; j += 7 {
			p[j] = seed + byte(i*j)
		}
		page.Seal(p, uint32(i))
	}
	return b
}

// Session serves in-memory database files.
type Session struct {
	Files map[string][]byte
	Order []string
	// FailAt is the byte offset of Files[Order[0]] at which Read fails
	// (-1: never).
	FailAt int64
	Typ    ese.BackupType

	mu        sync.Mutex
	aborted   error
	ended     bool
	truncated bool
}

// New returns a copy session of two databases, A.edb (100 pages: not a
// whole number of frames) and B.edb (one page).
func New() *Session {
	return &Session{Files: map[string][]byte{"A.edb": Pages(100, 1), "B.edb": Pages(1, 2)}, Order: []string{"A.edb", "B.edb"}, FailAt: -1, Typ: ese.Copy}
}

// Aborted is the reason the session was aborted (nil if it was not).
func (s *Session) Aborted() error { s.mu.Lock(); defer s.mu.Unlock(); return s.aborted }

// Ended reports a successful End; Truncated a Truncate call.
func (s *Session) Ended() bool     { s.mu.Lock(); defer s.mu.Unlock(); return s.ended }
func (s *Session) Truncated() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.truncated }

func (s *Session) Type() ese.BackupType { return s.Typ }
func (s *Session) Group() engine.GroupInfo {
	return engine.GroupInfo{Name: "G", LogPrefix: "E00", Signature: "00"}
}
func (s *Session) Databases() []string                                   { return []string{"A", "B"} }
func (s *Session) PreviousSetID() string                                 { return "" }
func (s *Session) LowGen() uint32                                        { return 1 }
func (s *Session) HighGen() uint32                                       { return 1 }
func (s *Session) Abort(err error)                                       { s.mu.Lock(); s.aborted = err; s.mu.Unlock() }
func (s *Session) LogFiles(context.Context) ([]engine.BackupFile, error) { return nil, nil }

// End records a successful end, and a truncation when asked for one.
func (s *Session) End(_ context.Context, _ string, truncate bool) ([]string, error) {
	s.mu.Lock()
	s.ended, s.truncated = true, truncate
	s.mu.Unlock()
	return nil, nil
}
func (s *Session) DatabaseFiles(context.Context) ([]engine.BackupFile, error) {
	var out []engine.BackupFile
	for _, n := range s.Order {
		out = append(out, engine.BackupFile{Name: n, Kind: ese.KindDatabase, Size: int64(len(s.Files[n]))})
	}
	return out, nil
}
func (s *Session) OpenFile(_ context.Context, name string) (source.File, error) {
	return &file{s: s, name: name, data: s.Files[name]}, nil
}

type file struct {
	s    *Session
	name string
	data []byte
	off  int
}

func (f *file) Info() engine.BackupFile {
	return engine.BackupFile{Name: f.name, Kind: ese.KindDatabase, Size: int64(len(f.data))}
}
func (f *file) Size() int64            { return int64(len(f.data)) }
func (f *file) HeaderSnapshot() []byte { return nil }

// Verified is false: the pipeline checks the pages (as for a remote store).
func (f *file) Verified() bool { return false }
func (f *file) Close() error   { return nil }
func (f *file) Read(p []byte) (int, error) {
	if f.off >= len(f.data) {
		return 0, io.EOF
	}
	if f.name == f.s.Order[0] && f.s.FailAt >= 0 && int64(f.off) >= f.s.FailAt {
		return 0, errors.New("source went away")
	}
	n := copy(p[:min(len(p), engine.ChunkSize)], f.data[f.off:])
	f.off += n
	return n, nil
}

// Source hands out one Session.
type Source struct{ S *Session }

func (s Source) Prepare(context.Context) ([]engine.GroupInfo, error) {
	return []engine.GroupInfo{s.S.Group()}, nil
}
func (s Source) Begin(_ context.Context, group string, typ ese.BackupType, _ []string) (source.Session, error) {
	s.S.Typ = typ
	return s.S, nil
}
func (s Source) Close() error { return nil }
