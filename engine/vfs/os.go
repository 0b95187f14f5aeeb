package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// OS is the FS of the real operating system. File.Sync is fdatasync(2),
// File.Preallocate is fallocate(2) (mode 0, so the file size grows to at least
// size) falling back to ftruncate(2) where the file system does not support
// fallocate, and SyncDir opens the directory and fsyncs it.
var OS FS = osFS{}

type osFS struct{}

type osFile struct {
	*os.File
}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// control runs fn on the file descriptor without switching the file to
// blocking mode (as Fd would) and retries EINTR.
func (f osFile) control(op string, fn func(fd int) error) error {
	rc, err := f.File.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = fn(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: op, Path: f.Name(), Err: serr}
	}
	return nil
}

// Sync makes the file's data and size durable with fdatasync(2).
func (f osFile) Sync() error {
	return f.control("fdatasync", unix.Fdatasync)
}

// Preallocate reserves [0, size) with fallocate(2); the file size becomes at
// least size. Where fallocate is unsupported (EOPNOTSUPP, ENOSYS) the file is
// extended with ftruncate instead (sparse, so ENOSPC may still happen later).
func (f osFile) Preallocate(size int64) error {
	if size <= 0 {
		return nil
	}
	err := f.control("fallocate", func(fd int) error {
		return unix.Fallocate(fd, 0, 0, size)
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		fi, serr := f.File.Stat()
		if serr != nil {
			return serr
		}
		if fi.Size() >= size {
			return nil
		}
		return f.File.Truncate(size)
	}
	return err
}
