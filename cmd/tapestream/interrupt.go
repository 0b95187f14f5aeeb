package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/backup"
)

// interruptedError is a command stopped by SIGINT or SIGTERM. "context
// canceled" told an operator nothing; this says which command stopped and
// what it left, so they know whether anything needs cleaning up.
type interruptedError struct {
	cmd   string
	state string
	err   error
}

func (e *interruptedError) Error() string {
	return fmt.Sprintf("%s interrupted: %s", e.cmd, e.state)
}

func (e *interruptedError) Unwrap() error { return e.err }

// interruptedState is what each command leaves when a signal stops it, by
// command path: what the command's flow guarantees.
// TestInterruptedSaysWhatItLeft interrupts restore, copy, store load and
// the readers and checks the state; backup says its own
// (backup.InterruptedError). A command not listed only reads.
var interruptedState = map[string]string{
	"tapestream restore": "the restore was undone: the target's storage groups are as they were (the staged copy was removed)",
	"tapestream copy":    "the partial copy was removed; the source set is unchanged",
	"tapestream run":     "the running backup's session was aborted, its partial set removed and no log truncated",
	"tapestream truncate": "no log was truncated unless listed above: truncation follows the read-back " +
		"of the whole set",
	"tapestream store load": "every transaction committed before the signal is in the log and kept; none after it was acknowledged",
	"tapestream store recover": "recovery stopped before the end of the log; nothing is lost: the next open replays from the " +
		"checkpoint",
	"tapestream store init":     "the store may be partly created: remove the directory and run store init again",
	"tapestream tape label":     "the volume may hold a partial label: label it again",
	"tapestream store mount":    "the database may or may not be mounted now: store header shows its mount state",
	"tapestream store dismount": "the database may or may not be dismounted now: store header shows its mount state",
	"tapestream catalog rebuild": "the sets merged before the signal are in the catalog (each medium's are one " +
		"transaction); run the rebuild again: it merges, never duplicates",
	"tapestream demo": "the demo stopped; its directory holds what it had made so far",
}

// readOnlyState is what a command that only reads leaves.
const readOnlyState = "nothing was written; what was read so far is neither verified nor found bad"

// interrupted explains err when the command was stopped by a signal.
// A backup's own error already says what it left (backup.InterruptedError).
func interrupted(c *cobra.Command, err error) error {
	var be *backup.InterruptedError
	if errors.As(err, &be) {
		return err
	}
	state, ok := interruptedState[c.CommandPath()]
	if !ok {
		state = readOnlyState
	}
	return &interruptedError{cmd: strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" "), state: state, err: err}
}
