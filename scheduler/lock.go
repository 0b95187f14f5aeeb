package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tapestream/tapestream/internal/pidlock"
)

// ErrJobRunning is matched (errors.Is) by the error of a run refused
// because another run holds a storage group's lock.
var ErrJobRunning = errors.New("already running")

// LockedError names the group and the process holding its lock.
type LockedError struct {
	Job, Group, File string
	PID              int
	// Held describes the holder of an S3 lease (another archiver host).
	Held string
}

func (e *LockedError) Error() string {
	who := "another run"
	if e.PID > 0 {
		who = fmt.Sprintf("another run (pid %d)", e.PID)
	}
	if e.Held != "" {
		who = "another archiver (" + e.Held + ")"
	}
	if e.Group == tapeLock {
		return fmt.Sprintf("job %s: the tape is being written by %s: %s (lock %s)", e.Job, who, ErrJobRunning, e.File)
	}
	return fmt.Sprintf("job %s: storage group %s is being backed up by %s: %s (lock %s)", e.Job, e.Group, who, ErrJobRunning, e.File)
}

func (e *LockedError) Is(target error) bool { return target == ErrJobRunning }

// tapeLock is the lock name of a tape drive (not a valid group name).
const tapeLock = "#tape"

// groupLock is a held per-group lock (see pidlock: two runs in one
// process, the daemon, exclude each other too).
type groupLock = pidlock.Lock

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
	l, err := pidlock.Acquire(name)
	var held *pidlock.HeldError
	if errors.As(err, &held) {
		return nil, &LockedError{Job: job, Group: group, File: name, PID: held.PID}
	}
	return l, err
}
