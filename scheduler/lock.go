package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrJobRunning is matched (errors.Is) by the error of a run refused
// because another run holds a storage group's lock.
var ErrJobRunning = errors.New("already running")

// LockedError names the group and the process holding its lock.
type LockedError struct {
	Job, Group, File string
	PID              int
}

func (e *LockedError) Error() string {
	who := "another run"
	if e.PID > 0 {
		who = fmt.Sprintf("another run (pid %d)", e.PID)
	}
	if e.Group == tapeLock {
		return fmt.Sprintf("job %s: the tape is being written by %s: %s (lock %s)", e.Job, who, ErrJobRunning, e.File)
	}
	return fmt.Sprintf("job %s: storage group %s is being backed up by %s: %s (lock %s)", e.Job, e.Group, who, ErrJobRunning, e.File)
}

func (e *LockedError) Is(target error) bool { return target == ErrJobRunning }

// tapeLock is the lock name of a tape drive (not a valid group name).
const tapeLock = "#tape"

// groupLock is a held per-group lock (flock on a file in the lock
// directory). flock locks belong to the open file description, so two
// runs in one process (the daemon) exclude each other too.
type groupLock struct{ f *os.File }

// lockName is the lock file of a group of a source: the source's identity
// (store directory or server URL) is hashed so that groups of the same
// name in different stores don't collide.
func lockName(dir, sourceID, group string) string {
	h := sha256.Sum256([]byte(sourceID))
	return filepath.Join(dir, group+"-"+hex.EncodeToString(h[:4])+".lock")
}

// LockGroup takes the lock of group of the source sourceID without
// waiting; a held lock is a *LockedError.
func LockGroup(dir, job, sourceID, group string) (*groupLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := lockName(dir, sourceID, group)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Job: job, Group: group, File: name, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &groupLock{f: f}, nil
}

// Release drops the lock.
func (l *groupLock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
