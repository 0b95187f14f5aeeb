package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
)

// Local is a Source over an embedded engine in this process.
type Local struct {
	srv   *engine.Server
	owned bool
}

// OpenLocal opens the store at dir in this process (recovering its groups).
// A store another process has open is refused with an error naming it.
func OpenLocal(dir string, opts engine.Options) (*Local, error) {
	srv, err := engine.OpenServer(dir, opts)
	if err != nil {
		var le *engine.LockError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("cannot back up %s in process: %w; back it up through its server (--server) instead", dir, err)
		}
		return nil, err
	}
	return &Local{srv: srv, owned: true}, nil
}

// NewLocal wraps an already open server (it is not closed by Close).
func NewLocal(srv *engine.Server) *Local { return &Local{srv: srv} }

// Server is the underlying engine server.
func (l *Local) Server() *engine.Server { return l.srv }

// Prepare implements Source.
func (l *Local) Prepare(ctx context.Context) ([]engine.GroupInfo, error) {
	return l.srv.Prepare(), nil
}

// Begin implements Source.
func (l *Local) Begin(ctx context.Context, group string, typ ese.BackupType, databases []string) (Session, error) {
	g, err := l.srv.Group(group)
	if err != nil {
		return nil, err
	}
	s, err := g.BackupSetup(typ, databases)
	if err != nil {
		return nil, err
	}
	return &localSession{s: s, g: g, info: g.Info()}, nil
}

// Close implements Source.
func (l *Local) Close() error {
	if l.owned {
		return l.srv.Close()
	}
	return nil
}

type localSession struct {
	s    *engine.Session
	g    *engine.Group
	info engine.GroupInfo
}

// Pressure implements PressureReader.
func (ls *localSession) Pressure(context.Context) (engine.Pressure, error) {
	return ls.g.Pressure(), nil
}

func (ls *localSession) Type() ese.BackupType    { return ls.s.Type() }
func (ls *localSession) Group() engine.GroupInfo { return ls.info }
func (ls *localSession) Databases() []string     { return ls.s.Databases() }
func (ls *localSession) LowGen() uint32          { return ls.s.LowGen() }
func (ls *localSession) HighGen() uint32         { return ls.s.HighGen() }
func (ls *localSession) Abort(reason error)      { ls.s.Abort(reason) }
func (ls *localSession) DatabaseFiles(context.Context) ([]engine.BackupFile, error) {
	if err := ls.s.Err(); err != nil {
		return nil, err
	}
	return ls.s.DatabaseFiles(), nil
}

func (ls *localSession) OpenFile(ctx context.Context, name string) (File, error) {
	if err := ctx.Err(); err != nil {
		ls.s.Abort(err)
		return nil, err
	}
	r, err := ls.s.OpenFile(name)
	if err != nil {
		return nil, err
	}
	return &localFile{r: r, ctx: ctx, s: ls.s}, nil
}

func (ls *localSession) LogFiles(ctx context.Context) ([]engine.BackupFile, error) {
	logs, _, err := ls.s.GetLogAndPatchFiles()
	return logs, err
}

func (ls *localSession) End(ctx context.Context, setID string, truncate bool) ([]string, error) {
	names, err := ls.s.Complete(setID, truncate)
	if err != nil {
		return names, err
	}
	return names, ls.s.End()
}

type localFile struct {
	r   *engine.FileReader
	ctx context.Context
	s   *engine.Session
}

func (f *localFile) Info() engine.BackupFile { return f.r.Info() }
func (f *localFile) Size() int64             { return f.r.Size() }
func (f *localFile) HeaderSnapshot() []byte  { return f.r.HeaderSnapshot() }
func (f *localFile) Close() error            { return f.r.Close() }
func (f *localFile) Verified() bool          { return true }

// Read aborts the session when the caller's context is done: a client
// that goes away never leaves the group frozen.
func (f *localFile) Read(p []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		f.s.Abort(err)
		return 0, err
	}
	return f.r.Read(p)
}

func (ls *localSession) PreviousSetID() string { return ls.s.PreviousSetID() }
