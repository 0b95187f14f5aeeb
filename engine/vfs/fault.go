package vfs

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// ErrInjected is the error FaultFS returns (wrapped, with the operation) at
// an injected failure point. Test with errors.Is(err, vfs.ErrInjected).
var ErrInjected = errors.New("vfs: injected fault")

// OpKind names a mutating operation counted by FaultFS.
type OpKind string

// The mutating operations FaultFS counts. Reads, Stat, ReadDir, MkdirAll,
// Close and OpenFile without O_CREATE are never counted and never fail.
const (
	OpCreate      OpKind = "create" // OpenFile with O_CREATE
	OpWriteAt     OpKind = "writeat"
	OpSync        OpKind = "sync"
	OpTruncate    OpKind = "truncate"
	OpPreallocate OpKind = "preallocate"
	OpRename      OpKind = "rename"
	OpRemove      OpKind = "remove"
	OpSyncDir     OpKind = "syncdir"
)

// Op is one counted operation of a FaultFS run.
type Op struct {
	N      int64  // 1-based sequence number of the operation in the run
	Kind   OpKind //
	Name   string // file or directory name (old name for Rename)
	Failed bool   // an error was injected
}

func (o Op) String() string {
	s := fmt.Sprintf("#%d %s %s", o.N, o.Kind, o.Name)
	if o.Failed {
		s += " (injected)"
	}
	return s
}

// FaultFS wraps an FS and fails mutating operations on demand. It counts
// every mutating operation (see OpKind) in the order they are issued; with
// FailAt(n, sticky) the n-th one returns an error wrapping ErrInjected
// without reaching the wrapped FS, and, if sticky, so does every later
// one (a dead disk). A typical test first runs a scenario with no fault to
// learn Count(), then reruns it for n = 1..Count() on fresh state.
//
// FaultFS is safe for concurrent use.
type FaultFS struct {
	fs FS

	mu       sync.Mutex
	n        int64
	failAt   int64
	sticky   bool
	injected int
	ops      []Op
	record   bool
}

// NewFaultFS returns a FaultFS over fs that injects nothing until FailAt is
// called. Operations are recorded (see Ops).
func NewFaultFS(fs FS) *FaultFS {
	return &FaultFS{fs: fs, record: true}
}

// FailAt makes the n-th counted operation (1-based, counted since the last
// Reset) fail; with sticky, every operation from the n-th on fails. n <= 0
// disables injection.
func (f *FaultFS) FailAt(n int64, sticky bool) {
	f.mu.Lock()
	f.failAt, f.sticky = n, sticky
	f.mu.Unlock()
}

// Reset zeroes the operation counter and the recorded operations and
// disables injection.
func (f *FaultFS) Reset() {
	f.mu.Lock()
	f.n, f.failAt, f.sticky, f.injected, f.ops = 0, 0, false, 0, nil
	f.mu.Unlock()
}

// SetRecord turns recording of operations for Ops on or off (on by default;
// counting is always on).
func (f *FaultFS) SetRecord(on bool) {
	f.mu.Lock()
	f.record = on
	f.mu.Unlock()
}

// Count returns the number of counted operations since the last Reset.
func (f *FaultFS) Count() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Injected returns how many errors were injected since the last Reset.
func (f *FaultFS) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// Ops returns a copy of the recorded operations since the last Reset.
func (f *FaultFS) Ops() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Op(nil), f.ops...)
}

// Unwrap returns the wrapped FS.
func (f *FaultFS) Unwrap() FS { return f.fs }

// op counts one operation and returns the injected error, if any.
func (f *FaultFS) op(kind OpKind, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	fail := f.failAt > 0 && (f.n == f.failAt || (f.sticky && f.n > f.failAt))
	if f.record {
		f.ops = append(f.ops, Op{N: f.n, Kind: kind, Name: name, Failed: fail})
	}
	if !fail {
		return nil
	}
	f.injected++
	return &os.PathError{Op: string(kind), Path: name, Err: fmt.Errorf("%w (op #%d)", ErrInjected, f.n)}
}

func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 {
		if err := f.op(OpCreate, name); err != nil {
			return nil, err
		}
	}
	file, err := f.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *FaultFS) Remove(name string) error {
	if err := f.op(OpRemove, name); err != nil {
		return err
	}
	return f.fs.Remove(name)
}

func (f *FaultFS) Rename(oldname, newname string) error {
	if err := f.op(OpRename, oldname); err != nil {
		return err
	}
	return f.fs.Rename(oldname, newname)
}

func (f *FaultFS) MkdirAll(path string, perm os.FileMode) error { return f.fs.MkdirAll(path, perm) }
func (f *FaultFS) ReadDir(name string) ([]os.DirEntry, error)   { return f.fs.ReadDir(name) }
func (f *FaultFS) Stat(name string) (os.FileInfo, error)        { return f.fs.Stat(name) }

func (f *FaultFS) SyncDir(dir string) error {
	if err := f.op(OpSyncDir, dir); err != nil {
		return err
	}
	return f.fs.SyncDir(dir)
}

type faultFile struct {
	File
	fs *FaultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.op(OpWriteAt, f.Name()); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.fs.op(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.op(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Preallocate(size int64) error {
	if err := f.fs.op(OpPreallocate, f.Name()); err != nil {
		return err
	}
	return f.File.Preallocate(size)
}
