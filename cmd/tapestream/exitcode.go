package main

import (
	"context"
	"errors"
	"strings"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/scheduler"
)

// Exit codes (documented in README "Exit codes"). Every command's error is
// mapped here and nowhere else.
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
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var ce *corruptionError
	var se *sinkError
	var le *wal.LogError
	var sinkErr *media.Error
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue) || isCobraUsage(err):
		return exitUsage
	case errors.Is(err, scheduler.ErrJobRunning):
		return exitLocked
	case errors.Is(err, wal.LogWriteFail):
		return exitFailure // an I/O error writing the log (disk full), not damage
	case errors.As(err, &ce) || page.IsCorruption(err) || errors.As(err, &le):
		return exitCorruption
	case errors.Is(err, engine.ErrBackupInProgress) || errors.Is(err, engine.ErrLocked):
		return exitBusy
	case errors.As(err, &se) || errors.As(err, &sinkErr):
		return exitSink
	}
	return exitFailure
}

func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.Contains(s, "flag needs an argument") ||
		strings.HasPrefix(s, "invalid argument") || strings.HasPrefix(s, "required flag") ||
		strings.Contains(s, "accepts ") && strings.Contains(s, "arg(s)")
}
