// Package verify is the one check of a backed-up file's bytes, used by
// every path that sees them: the engine as it reads a file for a backup,
// the pipeline when the bytes crossed a process boundary (a store server's
// stream), restore and verify as they read a set back.
//
//	database, streaming file: every 4 KiB page's checksum and page number
//	    (ESE -1018 ReadVerifyFailure, -1118 wrong page number, -1019 a page
//	    never written); pages are independent, so a failed Write changes
//	    nothing and may be retried (the engine re-reads a page caught
//	    mid-write by the OS before it gives up);
//	log file: the header (generation, signature of the storage group), every
//	    record's checksum, the block layout and the end-of-generation marker,
//	    in file order (-612 LogReadVerifyFailure and wal's codes);
//	a sequence of logs (Chain): each generation's "previous creation time"
//	    is the creation time of the generation before it.
//
// Bytes arrive as (offset, chunk). A log is checked only as one
// contiguous stream: a chunk at another offset than the next expected one
// (a range a damaged set lost) makes the log unverifiable, and Finish says
// so with ErrIncomplete instead of checking what is left.
package verify

import (
	"errors"
	"fmt"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
)

// ErrIncomplete is returned by Finish for a log whose bytes did not all
// arrive in order (a damaged set lost some): nothing more can be said of it.
var ErrIncomplete = errors.New("verify: log incomplete, not verified")

// File checks one file as its bytes pass.
type File struct {
	name  string
	kind  ese.FileKind
	log   *wal.StreamVerifier
	next  int64 // logs: offset of the next byte expected
	gap   bool
	fails error // logs: the first failure (sticky)
}

// New returns the check of file name of the given kind. sig is the
// storage group's log signature (engine.ParseSignature of its hex form);
// zero accepts a log of any group.
func New(name string, kind ese.FileKind, sig [16]byte) *File {
	f := &File{name: name, kind: kind}
	if kind == ese.KindLog {
		f.log = wal.NewStreamVerifier(sig)
		f.log.SetName(name)
	}
	return f
}

// Name is the file's name.
func (f *File) Name() string { return f.name }

// Write checks p, the file's bytes at off. Database pages must start on a
// page boundary and come whole (a partial page fails). Log bytes are
// checked as one stream; a chunk that does not continue it ends the check
// of that log (see ErrIncomplete).
func (f *File) Write(off int64, p []byte) error {
	switch {
	case f.kind.IsDatabase():
		if off%page.Size != 0 {
			return fmt.Errorf("%s: chunk at byte %d does not start on a page boundary", f.name, off)
		}
		return page.VerifyChunk(f.name, p, uint32(off/page.Size))
	case f.log != nil:
		if f.gap || f.fails != nil {
			return f.fails
		}
		if off != f.next {
			f.gap = true
			return nil
		}
		f.next += int64(len(p))
		if _, err := f.log.Write(p); err != nil {
			f.fails = err
			return err
		}
	}
	return nil
}

// Finish ends the check. For a log it verifies the end of the generation
// and returns what its header and records said (the zero GenInfo for other
// kinds).
func (f *File) Finish() (wal.GenInfo, error) {
	if f.log == nil {
		return wal.GenInfo{}, nil
	}
	if f.fails != nil {
		return wal.GenInfo{}, f.fails
	}
	if f.gap {
		return wal.GenInfo{}, fmt.Errorf("%s: %w", f.name, ErrIncomplete)
	}
	return f.log.Finish()
}

// Chain checks that log generations follow each other: a generation's
// header names the creation time of the one before it. Generations may
// be added in any order (a backup reads them in order; a set read back
// may have lost some).
type Chain struct {
	created map[uint32]int64 // generation -> its creation time
	prevOf  map[uint32]int64 // generation -> the creation time it names for gen-1
}

// Add records a verified generation (from File.Finish) and checks it
// against its neighbours already added.
func (c *Chain) Add(name string, gi wal.GenInfo) error {
	if c.created == nil {
		c.created, c.prevOf = map[uint32]int64{}, map[uint32]int64{}
	}
	gen := gi.Header.Gen
	if prev, ok := c.created[gen-1]; ok && gi.Header.PrevCreated != 0 && prev != gi.Header.PrevCreated {
		return fmt.Errorf("log %s (generation %d) does not follow generation %d: previous creation time differs", name, gen, gen-1)
	}
	if p, ok := c.prevOf[gen+1]; ok && p != 0 && p != gi.Header.Created {
		return fmt.Errorf("generation %d does not follow log %s (generation %d): previous creation time differs", gen+1, name, gen)
	}
	c.created[gen] = gi.Header.Created
	c.prevOf[gen] = gi.Header.PrevCreated
	return nil
}
