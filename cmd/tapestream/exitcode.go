package main

import (
	"context"
	"errors"
	"syscall"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/agestream"
)

// Exit codes (documented in README "Exit codes"). Every command's error is
// mapped here, by its type, and nowhere else; exitcode_test.go runs the
// binary into each.
const (
	exitOK          = 0
	exitFailure     = 1 // anything not listed below
	exitUsage       = 2 // bad flags or arguments
	exitCorruption  = 3 // a page, log or set failed verification; check found problems
	exitSink        = 4 // the destination failed or is full
	exitBusy        = 5 // backup in progress on the group (-505) or store locked by another process
	exitInterrupted = 6 // SIGINT/SIGTERM
	exitLocked      = 7 // run/daemon: the job's storage group is being backed up by another run
)

// usageError marks bad command-line input.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(msg string) error { return &usageError{msg} }

// corruptionError marks a verification failure found by a command (check,
// verify) rather than raised by a library.
type corruptionError struct{ msg string }

func (e *corruptionError) Error() string { return e.msg }

// sinkError marks a failure of the backup destination.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

func exitCode(ctx context.Context, err error) int {
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted
	case isUsage(err), errors.Is(err, media.ErrNoSet), errors.Is(err, engine.ErrNotStore), errors.Is(err, engine.ErrNoGroup), errors.Is(err, catalog.ErrNoCatalog):
		return exitUsage // a set, a store, a group or a catalog that is not there is a wrong argument
	case errors.Is(err, agestream.ErrNoIdentity), errors.Is(err, agestream.ErrIdentity), errors.Is(err, agestream.ErrRecipient):
		return exitUsage // an encrypted set without (or with a wrong) key, a key file that is no key
	case errors.Is(err, scheduler.ErrJobRunning):
		return exitLocked
	case errors.Is(err, wal.LogWriteFail):
		return exitFailure // an I/O error writing the log (disk full), not damage
	case isDestination(err):
		return exitSink
	case isCorruption(err):
		return exitCorruption
	case errors.Is(err, engine.ErrBackupInProgress) || errors.Is(err, engine.ErrLocked):
		return exitBusy
	}
	return exitFailure
}

func isUsage(err error) bool {
	var ue *usageError
	var ce *scheduler.ConfigError
	return errors.As(err, &ue) || errors.As(err, &ce)
}

// isDestination: the medium a set goes to (or a restore writes into)
// failed, is full, or is too small for one member.
func isDestination(err error) bool {
	var se *sinkError
	var me *media.Error
	return errors.As(err, &se) || errors.As(err, &me) || errors.Is(err, tapeformat.ErrVolumeTooSmall) || errors.Is(err, media.ErrWrongCartridge) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EPIPE)
}

// isCorruption: something read back failed its check (a page, a log, a set).
func isCorruption(err error) bool {
	var ce *corruptionError
	var le *wal.LogError
	var fe *tapeformat.FormatError
	var pe *restore.ProblemError
	var de *scheduler.DamagedError
	switch {
	case errors.As(err, &ce), page.IsCorruption(err), errors.As(err, &le), errors.As(err, &fe), errors.As(err, &pe), errors.As(err, &de):
		return true
	}
	for _, s := range []error{engine.ErrLogReadVerifyFailure, verify.ErrIncomplete, tapeformat.ErrChecksum, tapeformat.ErrDamaged,
		tapeformat.ErrTruncated, tapeformat.ErrHeader, tapeformat.ErrBadName, tapeformat.ErrMemberTooLarge,
		tapeformat.ErrNotTapestream, tapeformat.ErrSetMismatch, tapeformat.ErrNoManifest} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
