//go:build !linux

package media

import (
	"errors"
	"os"
	"syscall"
)

func renameNoReplace(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrExist}
	}
	return os.Rename(from, to)
}

func isSyncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)
}

// writeFullFile writes p with os.File.Write (which loops on short writes).
// Outside Linux a broken pipe on fd 1 kills the process unless
// HandleSIGPIPE was called.
func writeFullFile(f *os.File, p []byte) (int, error) {
	n, err := f.Write(p)
	if err != nil && errors.Is(err, syscall.EPIPE) {
		return n, errBrokenPipe
	}
	return n, err
}

func raisePipeSize(f *os.File, size int) int { return 0 }

func pipeSize(f *os.File) int { return 0 }

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func pipeMaxSize() int { return 0 }

// startWriteback is a no-op where sync_file_range does not exist; the
// fsync at commit writes everything.
func startWriteback(f *os.File, off, n int64) {}

var errLocked = errors.New("locked by another process")

// lockFile cannot lock where flock is not available: every existing
// partial file looks held, and is refused unless --force.
func lockFile(f *os.File) error { return errLocked }
