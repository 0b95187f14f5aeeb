//go:build linux

package media

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to, failing with EEXIST if to exists
// (renameat2 RENAME_NOREPLACE; falls back to check-then-rename where the
// file system does not support the flag).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		if _, serr := os.Lstat(to); serr == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrExist}
		}
		return os.Rename(from, to)
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}

func isSyncUnsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EROFS)
}

// writeFullFile writes p to f with write(2) calls, looping on short writes,
// EINTR and EAGAIN (through the runtime poller). It does not go through
// os.File.Write, whose EPIPE handling on fd 1 and 2 kills the process with
// SIGPIPE when the program has not called signal.Notify for SIGPIPE.
func writeFullFile(f *os.File, p []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	off := 0
	for off < len(p) {
		var n int
		var werr error
		cerr := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Write(int(fd), p[off:])
			return werr != unix.EAGAIN
		})
		if cerr != nil {
			return off, cerr
		}
		if n > 0 {
			off += n
		}
		switch {
		case werr == nil && n == 0:
			return off, errors.New("write returned 0 bytes")
		case werr == unix.EINTR || werr == nil:
			continue
		case werr == unix.EPIPE:
			return off, errBrokenPipe
		default:
			return off, werr
		}
	}
	return off, nil
}

// pipeMaxSize is read from /proc/sys/fs/pipe-max-size (the limit for
// unprivileged processes).
func pipeMaxSize() int {
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// raisePipeSize raises the kernel buffer of f to size bytes with
// F_SETPIPE_SZ if f is a pipe; if refused (EPERM above pipe-max-size, or
// EBUSY), it tries pipe-max-size and otherwise keeps the current size. It
// returns the resulting pipe size (0 if f is not a pipe).
func raisePipeSize(f *os.File, size int) int {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return 0
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	got := 0
	rc.Control(func(fd uintptr) {
		cur, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
		if err == nil && cur >= size {
			got = cur
			return
		}
		if n, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size); err == nil {
			got = n
			return
		}
		if max := pipeMaxSize(); max > cur && max < size {
			if n, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, max); err == nil {
				got = n
				return
			}
		}
		got = cur
	})
	return got
}

// pipeSize reports the kernel buffer size of a pipe (0 if not a pipe).
func pipeSize(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
	})
	return n
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		ok = err == nil
	})
	return ok
}

// startWriteback asks the kernel to begin writing [off, off+n) of f to
// disk now (sync_file_range, SYNC_FILE_RANGE_WRITE: it does not wait).
// Disk writes then overlap the backup instead of piling up for the final
// fsync, which is what makes a durable file sink as fast as an unsynced
// `> file`. Errors are ignored: the fsync at commit still decides.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive flock on f without waiting (errLocked when
// another open file description holds it). It lasts until f is closed.
func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
