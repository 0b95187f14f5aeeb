package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the engine, in one place (as bbolt lists its own). Page
// verification failures are package page's *PageError (-1018, -1118,
// -1019); log damage is package wal's *LogError.

// ESE error codes of the backup API.
const (
	CodeBackupInProgress      = -505
	CodeNoBackup              = -520
	CodeInvalidBackupSequence = -521
	CodeInvalidBackup         = -526 // incremental/differential under circular logging
	CodeMissingLogFile        = -528
	CodeLogReadVerifyFailure  = -612
	CodeLogFileNotCopied      = -616
)

// ESEError is a backup API failure with its ESE error code.
type ESEError struct {
	Code  int
	Group string
	Msg   string
	Err   error
}

func (e *ESEError) Error() string {
	s := fmt.Sprintf("storage group %s: %s (%d)", e.Group, e.Msg, e.Code)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ESEError) Unwrap() error { return e.Err }

// Is matches the sentinel of e's code.
func (e *ESEError) Is(target error) bool {
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}

var (
	ErrNoBackup              = errors.New("engine: no full backup (-520)")
	ErrInvalidBackupSequence = errors.New("engine: invalid backup sequence (-521)")
	ErrInvalidBackup         = errors.New("engine: incremental/differential backup with circular logging (-526)")
	ErrMissingLogFile        = errors.New("engine: missing log file (-528)")
	ErrLogReadVerifyFailure  = errors.New("engine: log read verify failure (-612)")
	ErrLogFileNotCopied      = errors.New("engine: log file not copied (-616)")
)

var codeSentinels = map[int]error{
	CodeBackupInProgress:      ErrBackupInProgress,
	CodeNoBackup:              ErrNoBackup,
	CodeInvalidBackupSequence: ErrInvalidBackupSequence,
	CodeInvalidBackup:         ErrInvalidBackup,
	CodeMissingLogFile:        ErrMissingLogFile,
	CodeLogReadVerifyFailure:  ErrLogReadVerifyFailure,
	CodeLogFileNotCopied:      ErrLogFileNotCopied,
}

func (g *Group) eseErr(code int, err error, format string, args ...any) error {
	return &ESEError{Code: code, Group: g.name, Msg: fmt.Sprintf(format, args...), Err: err}
}

// ErrBackupInProgress is returned when a backup session already holds the
// group (ESE -505).
var ErrBackupInProgress = errors.New("engine: backup in progress (-505)")

// ErrLocked is returned when another process holds the store.
var ErrLocked = errors.New("engine: store in use by another process")

// ErrReadOnly is returned for a write in a View transaction.
var ErrReadOnly = errors.New("engine: write in read-only transaction")

// Errors of the data API.
var (
	// ErrKeyTooLong is returned for keys over MaxKeyLen bytes.
	ErrKeyTooLong = errors.New("engine: key too long")
	// ErrValueTooLong is returned for values over MaxValueLen bytes.
	ErrValueTooLong = errors.New("engine: value too long")
	// ErrNoTable is returned when a table does not exist.
	ErrNoTable = errors.New("engine: no such table")
)

// ErrNotStore: a directory given as a store is not one.
var ErrNotStore = errors.New("engine: not a store")

// NotStoreError says why Root is not a store and how to make one.
type NotStoreError struct {
	Root   string
	Reason string // "no such directory", "no storage group in it", ...
}

func (e *NotStoreError) Error() string {
	return fmt.Sprintf("%s is not a store (%s); create one with: tapestream store init --dir %s", e.Root, e.Reason, e.Root)
}

func (e *NotStoreError) Unwrap() error { return ErrNotStore }

// ErrNoGroup: a store has no storage group of the name given.
var ErrNoGroup = errors.New("engine: no such storage group")

// NoGroupError names the storage group a store does not have, and the
// ones it has.
type NoGroupError struct {
	Root, Group string
	Have        []string
}

func (e *NoGroupError) Error() string {
	return fmt.Sprintf("store %s has no storage group %q (have %s)", e.Root, e.Group, strings.Join(e.Have, ", "))
}

func (e *NoGroupError) Unwrap() error { return ErrNoGroup }
