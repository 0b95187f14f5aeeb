// Package source reads backup sessions from a store: in process over the
// embedded engine (Local) or, with the same interface, over the network
// from a store server. The pipeline consumes only these interfaces.
//
// A session follows ESE's call order:
//
//	Begin(group, type) ─► DatabaseFiles ─► OpenFile/Read…/Close per file
//	                  ─► LogFiles (forced rollover) ─► OpenFile/Read…/Close per log
//	                  ─► End(set, truncate): headers, then the logs it made
//	                     unnecessary (full, incremental; once the set is durable)
//	                  ─► or Abort, at any time
package source

import (
	"context"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
)

// Source is a store that can be backed up.
type Source interface {
	// Prepare lists the storage groups and their databases.
	Prepare(ctx context.Context) ([]engine.GroupInfo, error)
	// Begin opens a backup session of one storage group. databases selects
	// a subset for full and copy backups (nil = all).
	Begin(ctx context.Context, group string, typ ese.BackupType, databases []string) (Session, error)
	// Close releases the source (an in-process store is shut down cleanly).
	Close() error
}

// Session is one backup session of a storage group.
type Session interface {
	Type() ese.BackupType
	Group() engine.GroupInfo
	// PreviousSetID names the set an incremental or differential
	// continues (from the database headers).
	PreviousSetID() string
	// Databases names the databases backed up.
	Databases() []string
	// DatabaseFiles lists the database and streaming files to copy (none
	// for incremental and differential).
	DatabaseFiles(ctx context.Context) ([]engine.BackupFile, error)
	// OpenFile opens a database, streaming or log file for reading.
	OpenFile(ctx context.Context, name string) (File, error)
	// LogFiles forces a log rollover and lists the generations the set
	// needs. The list is taken once per session: asking again returns it
	// (a log-only set's label carries its range, written before the logs).
	LogFiles(ctx context.Context) ([]engine.BackupFile, error)
	// LowGen and HighGen are the set's log range (after LogFiles).
	LowGen() uint32
	HighGen() uint32
	// End finishes a successful session: the database headers record the
	// backup (tagged with setID) and then, if truncate (the set is durable)
	// and the type truncates, the logs it made unnecessary are deleted;
	// their names are returned. A failed backup calls Abort instead.
	End(ctx context.Context, setID string, truncate bool) ([]string, error)
	// Abort ends the session as failed; safe at any time, idempotent.
	Abort(reason error)
}

// PressureReader is a Session that can report its storage group's commit
// pressure (the latency its clients wait for), which an adaptive pace
// (package pace) reads while the backup runs. Local and storeapi.Remote
// sessions implement it; a store server too old to measure answers with
// an error.
type PressureReader interface {
	Pressure(ctx context.Context) (engine.Pressure, error)
}

// File is one file of a backup being read in 64 KiB chunks.
type File interface {
	Info() engine.BackupFile
	// Size is fixed when the file is opened.
	Size() int64
	// HeaderSnapshot is pages 0-1 as of OpenFile (database files only).
	HeaderSnapshot() []byte
	// Verified reports whether every chunk Read returns was verified in
	// this process, in the caller's buffer (the embedded engine's reader
	// does that as ESE does, re-reading a page caught mid-write): the
	// pipeline does not check those bytes again. Bytes that crossed a
	// process boundary are not (a store server's stream).
	Verified() bool
	// Read returns the next chunk (64 KiB but the last); p must hold
	// engine.ChunkSize bytes. io.EOF after the last chunk.
	Read(p []byte) (int, error)
	Close() error
}
