// Package pidlock is a non-blocking lock on a file that names its
// exclusive holder (a shared holder names none): flock(2) plus the holder's pid written into the file, so a
// refused caller can say who holds it. flock locks belong to the open file
// description, so two opens in one process exclude each other too.
package pidlock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock is a held lock.
type Lock struct{ f *os.File }

// HeldError reports a lock held by another process (or open file).
type HeldError struct {
	Path string
	PID  int // 0 when the holder did not write it
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is held by process %d", e.Path, e.PID)
	}
	return e.Path + " is held by another process"
}

// Acquire takes the lock at path without waiting; a held lock returns a
// *HeldError.
func Acquire(path string) (*Lock, error) {
	f, err := acquire(path, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// AcquireShared takes the lock at path shared, without waiting: shared
// holders exclude an exclusive one (Acquire) and are excluded by it. A held
// exclusive lock returns a *HeldError naming its holder. A shared holder
// writes no pid (there may be several): it clears the one a former
// exclusive holder left, so that an exclusive opener it refuses does not
// name a process that is gone.
func AcquireShared(path string) (*Lock, error) {
	f, err := acquire(path, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	_ = f.Truncate(0)
	return &Lock{f: f}, nil
}

// acquire opens path and flocks it (how: LOCK_EX or LOCK_SH). A holder
// may remove its lock file while it holds it (a staging directory's lock
// goes with the directory): a lock taken on a file whose path was removed
// or replaced meanwhile is no lock, so the open is retried until the file
// locked is the one at path.
func acquire(path string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &HeldError{Path: path, PID: pid}
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err1 != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err1)
		}
		if err2 != nil && !errors.Is(err2, os.ErrNotExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err2)
		}
	}
}

// Release drops the lock; safe on nil and more than once.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
