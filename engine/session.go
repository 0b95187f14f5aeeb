package engine

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/internal/failpoint"
)

// Session is a backup session of one storage group.
type Session struct {
	g     *Group
	typ   ese.BackupType
	dbs   []*database
	start time.Time
	low   uint32 // first log generation the set needs
	high  uint32 // last generation, known after GetLogAndPatchFiles
	floor uint32 // the session's own log floor, once truncation computed it

	mu       sync.Mutex
	done     bool
	failed   error
	logs     []BackupFile
	logRead  map[uint32]bool
	chain    verify.Chain // the logs read follow each other
	frozen   bool
	origHdrs map[*database]*DBHeader
}

// BackupSetup starts a backup session (HrESEBackupSetup). For full and
// copy it flushes the cache, freezes the checkpoint and records the first
// needed generation in each database header's Current Full Backup section.
// databases selects a subset for full and copy (nil = all).
func (g *Group) BackupSetup(typ ese.BackupType, databases []string) (*Session, error) {
	if !typ.Valid() {
		return nil, fmt.Errorf("invalid backup type %q", typ)
	}
	g.mu.Lock()
	if err := g.err(); err != nil {
		g.mu.Unlock()
		return nil, err
	}
	if g.backup != nil {
		busy := g.backup.typ // read under g.mu: the session may end once it is released
		g.mu.Unlock()
		return nil, g.eseErr(CodeBackupInProgress, nil, "a %s backup is already in progress", busy)
	}
	s := &Session{g: g, typ: typ, start: g.opts.Now(), logRead: map[uint32]bool{}, origHdrs: map[*database]*DBHeader{}}
	if !typ.CopiesDatabases() {
		if g.cfg.CircularLogging {
			g.mu.Unlock()
			return nil, g.eseErr(CodeInvalidBackup, nil, "%s backup is not possible with circular logging", typ)
		}
		if len(databases) > 0 {
			g.mu.Unlock()
			return nil, fmt.Errorf("storage group %s: a %s backup copies the logs of the whole group; it cannot name databases", g.name, typ)
		}
		for _, d := range g.dbs {
			if d.mounted && !d.hdr.PreviousFull.IsSet() {
				g.mu.Unlock()
				return nil, g.eseErr(CodeNoBackup, nil, "no full backup of database %s: take a full backup before a %s", d.name, typ)
			}
		}
	}
	sel := map[string]bool{}
	for _, n := range databases {
		if _, err := g.database(n); err != nil {
			g.mu.Unlock()
			return nil, err
		}
		sel[n] = true
	}
	for _, d := range g.dbs {
		if d.mounted && (len(sel) == 0 || sel[d.name]) {
			s.dbs = append(s.dbs, d)
		}
	}
	g.backup = s // mount/dismount are refused from here on
	g.mu.Unlock()

	// A log-only set that cannot continue its chain is refused before
	// anything is read (-528, naming the missing generations).
	if !typ.CopiesDatabases() {
		oldest, err := g.oldestGen()
		if err == nil {
			err = s.checkChain(oldest)
		}
		if err != nil {
			s.release()
			return nil, err
		}
	}

	// Flush and move the checkpoint as far as it goes: a full freezes it
	// here, and truncation after an incremental frees logs up to it.
	if err := g.flush(true); err != nil {
		s.release()
		return nil, err
	}
	if typ.CopiesDatabases() {
		g.mu.Lock()
		g.frozen++
		s.frozen = true
		s.low = g.checkpoint.Gen
		if s.low == 0 {
			s.low = g.log.CurrentGen()
		}
		var werr error
		for _, d := range s.dbs {
			s.origHdrs[d] = cloneHeader(d.hdr)
			d.hdr.CurrentFull = &BackupInfo{LowGen: s.low, Time: s.start}
			if werr == nil {
				werr = g.writeDBHeaders(d)
			}
		}
		g.mu.Unlock()
		if werr != nil {
			s.abort(werr)
			return nil, werr
		}
	}
	return s, nil
}

func cloneHeader(h *DBHeader) *DBHeader {
	c := *h
	return &c
}

// writeDBHeaders writes the in-memory headers of d (edb and stm); called
// with g.mu held. Header writes are rare (backup start/end, checkpoint).
func (g *Group) writeDBHeaders(d *database) error {
	d.hdr.DBTime = max(d.hdr.DBTime, d.dbtime)
	if err := writeHeader(d.files[fileEDB].f, d.hdr); err != nil {
		return err
	}
	if d.stmHdr != nil {
		d.stmHdr.CurrentFull = d.hdr.CurrentFull
		d.stmHdr.PreviousFull, d.stmHdr.PreviousIncremental = d.hdr.PreviousFull, d.hdr.PreviousIncremental
		d.stmHdr.PreviousDifferential, d.stmHdr.PreviousCopy = d.hdr.PreviousDifferential, d.hdr.PreviousCopy
		d.stmHdr.LogFloor, d.stmHdr.PendingLogFloor = d.hdr.LogFloor, d.hdr.PendingLogFloor
		return writeHeader(d.files[fileSTM].f, d.stmHdr)
	}
	return nil
}

// Type is the session's backup type.
func (s *Session) Type() ese.BackupType { return s.typ }

// Group is the session's storage group.
func (s *Session) Group() *Group { return s.g }

// LowGen is the first log generation the backup needs (full/copy: the
// frozen checkpoint's; incremental/differential: known after
// GetLogAndPatchFiles).
func (s *Session) LowGen() uint32 { return s.low }

// Databases names the databases the session backs up.
func (s *Session) Databases() []string {
	var out []string
	for _, d := range s.dbs {
		out = append(out, d.name)
	}
	return out
}

// DatabaseFiles lists the files to copy: each database, then its
// streaming file, in database order. Empty for incremental/differential.
func (s *Session) DatabaseFiles() []BackupFile {
	if !s.typ.CopiesDatabases() {
		return nil
	}
	var out []BackupFile
	for _, d := range s.dbs {
		out = append(out, BackupFile{Name: d.name + ".edb", Kind: ese.KindDatabase, Database: d.name, Size: d.files[fileEDB].size()})
		if pf := d.files[fileSTM]; pf != nil {
			out = append(out, BackupFile{Name: d.name + ".stm", Kind: ese.KindStreaming, Database: d.name, Size: pf.size()})
		}
	}
	return out
}

func (s *Session) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return fmt.Errorf("backup session of %s ended: %w", s.g.name, s.failed)
	}
	if s.done {
		return fmt.Errorf("backup session of %s is closed", s.g.name)
	}
	return nil
}

// InstanceEnd ends the session's work on the group (HrESEBackupInstanceEnd).
// Success records the backup in the headers of the databases it covered
// (Previous Full/Incremental/Differential/Copy; a new full clears previous
// incremental and differential); failure records nothing and truncates
// nothing. Both unfreeze the checkpoint and release the group.
func (s *Session) InstanceEnd(success bool, setID string) error {
	if !success {
		s.abort(errors.New("aborted by the backup client"))
		return nil
	}
	if err := s.recordEnd(setID, false); err != nil {
		return err
	}
	s.release()
	return nil
}

// Complete ends a successful session in the order that survives a crash
// at any point: the headers record the backup first (Previous Full,
// Incremental, ...), then, when truncate is set and the type truncates,
// the logs it made unnecessary are deleted, then the group is released.
// A crash between the two leaves logs the next backup truncates; never
// truncated logs with headers that still name the previous backup (every
// later incremental would be refused with -528). The caller passes
// truncate only once the set is known durable.
func (s *Session) Complete(setID string, truncate bool) ([]string, error) {
	var names []string
	if truncate && s.typ.Truncates() {
		var err error
		if names, err = s.GetTruncateLogFiles(); err != nil {
			s.abort(err)
			return nil, err
		}
	}
	if err := s.recordEnd(setID, !truncate && s.typ.Truncates()); err != nil {
		return nil, err
	}
	failpoint.Hit("backup/after-headers")
	deleted, err := s.g.removeLogs(names)
	s.release()
	return deleted, err
}

// recordEnd checks that every listed log was read and records the backup
// in the headers of the databases it covered. A failure aborts the session.
// pending: a full or incremental whose set is not known durable (a pipe)
// records its log floor as pending: no other backup truncates by it until
// TruncateAfter, once the set was read back, makes it the floor.
func (s *Session) recordEnd(setID string, pending bool) error {
	if err := s.check(); err != nil {
		return err
	}
	g := s.g
	if s.high == 0 {
		err := g.eseErr(CodeInvalidBackupSequence, nil, "InstanceEnd(success) before the logs were listed")
		s.abort(err)
		return err
	}
	s.mu.Lock()
	var unread string
	for _, lf := range s.logs {
		if !s.logRead[lf.Gen] && unread == "" {
			unread = lf.Name
		}
	}
	s.mu.Unlock()
	if unread != "" {
		err := g.eseErr(CodeLogFileNotCopied, nil, "log %s was not read in full in this session", unread)
		s.abort(err)
		return err
	}
	info := &BackupInfo{LowGen: s.low, HighGen: s.high, Time: s.start, SetID: setID}
	var floor uint32 // what the next backup needs to truncate (truncate.go)
	if s.typ.Truncates() {
		s.mu.Lock()
		floor = s.floor
		s.mu.Unlock()
		if floor == 0 {
			floor = s.ownFloor()
		}
	}
	dbs := s.dbs
	if !s.typ.CopiesDatabases() {
		dbs = nil
		g.mu.Lock()
		for _, d := range g.dbs {
			if d.mounted {
				dbs = append(dbs, d)
			}
		}
		g.mu.Unlock()
	}
	g.mu.Lock()
	var werr error
	for _, d := range dbs {
		h := d.hdr
		switch s.typ {
		case ese.Full:
			h.PreviousFull, h.PreviousIncremental, h.PreviousDifferential = info, nil, nil
			h.CurrentFull = nil
			h.setFloor(floor, pending)
		case ese.Copy:
			h.PreviousCopy = info
			h.CurrentFull = nil
		case ese.Incremental:
			h.PreviousIncremental = info
			h.setFloor(floor, pending)
		case ese.Differential:
			h.PreviousDifferential = info
		}
		if werr == nil {
			werr = g.writeDBHeaders(d)
		}
	}
	if werr != nil {
		g.fail(werr)
	}
	g.mu.Unlock()
	if werr != nil {
		s.abort(werr)
	}
	return werr
}

// abort ends the session without recording anything: Current Full Backup
// is cleared again, nothing is truncated, the checkpoint unfreezes.
func (s *Session) abort(err error) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.abortLocked(err)
}

func (s *Session) abortLocked(err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	for d, orig := range s.origHdrs {
		d.hdr.CurrentFull = orig.CurrentFull
		if s.g.fatal == nil && !s.g.closed {
			_ = s.g.writeDBHeaders(d)
		}
	}
	s.releaseLocked()
}

func (s *Session) release() {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.releaseLocked()
}

func (s *Session) releaseLocked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	g := s.g
	if s.frozen {
		g.frozen--
		s.frozen = false
	}
	if g.backup == s {
		g.backup = nil
	}
	g.kickFlusher()
}

// Abort ends the session as failed (the client went away, or the pipeline
// failed). It is safe to call at any time and more than once.
func (s *Session) Abort(reason error) {
	if reason == nil {
		reason = errors.New("backup aborted")
	}
	s.abort(reason)
}

// End closes the session (HrESEBackupEnd); an unfinished session aborts.
func (s *Session) End() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if !done {
		s.abort(errors.New("session ended before InstanceEnd"))
	}
	return nil
}

// Err returns why the session failed, if it did.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// PreviousSetID names the set this backup continues: for an incremental
// the newest full or incremental, for a differential the full (the set ids
// recorded in the headers by InstanceEnd). Empty for full and copy.
func (s *Session) PreviousSetID() string {
	if s.typ.CopiesDatabases() {
		return ""
	}
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.dbs {
		if b := chainTip(d.hdr, s.typ == ese.Differential); d.mounted && b.IsSet() {
			return b.SetID
		}
	}
	return ""
}

// chainTip is the backup a new incremental continues: the newer (by time)
// of Previous Full and Previous Incremental; with fullOnly (differential)
// Previous Full alone. checkChain, logFloor and PreviousSetID all ask
// this one question.
func chainTip(h *DBHeader, fullOnly bool) *BackupInfo {
	b := h.PreviousFull
	if !fullOnly && h.PreviousIncremental.IsSet() && (!b.IsSet() || !h.PreviousIncremental.Time.Before(b.Time)) {
		b = h.PreviousIncremental
	}
	return b
}
