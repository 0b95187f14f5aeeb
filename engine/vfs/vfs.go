// Package vfs is the file-system seam of the engine. Every byte the engine
// writes or reads goes through an FS, so tests can inject an error at any
// write or fsync point (FaultFS) or simulate a power loss that discards
// everything not yet fsynced (CrashFS). Production code uses OS.
package vfs

import (
	"io"
	"os"
)

// File is the subset of *os.File the engine uses. WriteAt/ReadAt are the
// only data paths: the engine never relies on a file offset.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data and size durable (fdatasync is enough).
	Sync() error
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
	// Preallocate reserves size bytes on disk (fallocate where the file
	// system supports it) so that later writes in range cannot fail with
	// ENOSPC and the log's write path never extends the file.
	Preallocate(size int64) error
	Name() string
}

// FS is the file-system interface of the engine.
type FS interface {
	// OpenFile opens name with os.OpenFile flags.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(path string, perm os.FileMode) error
	ReadDir(name string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory entries of dir durable (creates, renames
	// and removes inside it).
	SyncDir(dir string) error
}
