package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/internal/failpoint"
)

// The truncation rule, stated once (truncFloor applies it, InstanceEnd
// records what the next backup needs to apply it again).
//
// Seed 001: "During full and incremental backup operations, ESE truncates
// the log files on disk ... The lower of either the checkpoint log
// generation or the log generation listed in the database header for the
// current full backup determines which log files ESE truncates."
// Seed 002: "Log files that no database in the storage group needs to roll
// forward beyond the backup logs are truncated ... If any database in a
// storage group is dismounted, its header will not be read and Exchange
// will make no calculations about which log files can be safely deleted."
//
// So, once every listed log was read and the set is durable, a full or
// incremental deletes the logs below the floor
//
//	min(checkpoint generation, every database's log floor)
//
// where a database's log floor is the first generation it needs on disk
// to roll forward beyond its most recent full or incremental backup:
//
//   - full: the set's first generation, the checkpoint the full froze
//     (Current Full Backup);
//   - incremental: min(checkpoint generation, the first generation not in
//     the set): the set holds every earlier log, and crash recovery needs
//     none before the checkpoint.
//
// This session counts as the most recent backup of the databases it covers
// (all mounted ones for an incremental); a database it does not cover
// contributes the floor its own last backup recorded in its header
// (DBHeader.LogFloor: Tuesday's full keeps the logs since Tuesday when
// Thursday's full covers another database). A database never backed up,
// or dismounted, means nothing is truncated. A differential or copy never
// truncates, so an incremental holds the logs since the previous full or
// incremental, and a differential those since its full (which an
// incremental of that full has deleted: BackupSetup refuses it, -528).

// GetLogAndPatchFiles forces a rollover of the current log and returns the
// contiguous list of generations the set needs: full/copy from the frozen
// checkpoint's generation, incremental/differential from the oldest on
// disk, through the one just closed. The patch list is always empty (see
// the package comment). The list is taken once: a second call returns the
// same list (a caller may need it before writing anything, as the label of
// a log-only set carries its range).
func (s *Session) GetLogAndPatchFiles() (logs []BackupFile, patches []string, err error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	listed := s.logs
	s.mu.Unlock()
	if listed != nil {
		return listed, []string{}, nil
	}
	g := s.g
	closed, err := g.log.Rollover()
	if err != nil {
		s.abort(err)
		return nil, nil, err
	}
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		s.abort(err)
		return nil, nil, err
	}
	low := s.low
	if !s.typ.CopiesDatabases() {
		if len(gens) == 0 {
			err := g.eseErr(CodeMissingLogFile, nil, "no closed log generation on disk")
			s.abort(err)
			return nil, nil, err
		}
		low = gens[0]
		// BackupSetup checked the chain; logs deleted by hand since then
		// are found here.
		if err := s.checkChain(low); err != nil {
			s.abort(err)
			return nil, nil, err
		}
	}
	have := map[uint32]bool{}
	for _, n := range gens {
		have[n] = true
	}
	var out []BackupFile
	for n := low; n <= closed; n++ {
		if !have[n] {
			err := g.eseErr(CodeMissingLogFile, nil, "log generation %d (%s) is missing from the range %d-%d", n, wal.GenName(g.cfg.Prefix(), n), low, closed)
			s.abort(err)
			return nil, nil, err
		}
		out = append(out, BackupFile{Name: wal.GenName(g.cfg.Prefix(), n), Kind: ese.KindLog, Size: g.cfg.LogSize, Gen: n})
	}
	s.mu.Lock()
	s.low, s.high, s.logs = low, closed, out
	s.mu.Unlock()
	return out, []string{}, nil
}

// checkChain refuses an incremental or differential that cannot continue
// its chain because logs it needs are gone (-528): the set must start at
// or before the first generation the chain's last backup did not hold
// (the newest full or incremental for an incremental, the full for a
// differential). oldest is the oldest generation on disk.
func (s *Session) checkChain(oldest uint32) error {
	g := s.g
	g.mu.Lock()
	var tip, full, incr *BackupInfo
	for _, d := range g.dbs {
		if !d.mounted {
			continue
		}
		if b := chainTip(d.hdr, s.typ == ese.Differential); b.IsSet() && (tip == nil || b.HighGen < tip.HighGen) {
			tip, full, incr = b, d.hdr.PreviousFull, d.hdr.PreviousIncremental
		}
	}
	g.mu.Unlock()
	if tip == nil || oldest <= tip.HighGen+1 {
		return nil
	}
	need := tip.HighGen + 1
	if s.typ == ese.Differential {
		by := "they were deleted"
		if incr.IsSet() && !incr.Time.Before(full.Time) {
			by = fmt.Sprintf("incremental set %s (generations %d-%d) truncated them", incr.SetID, incr.LowGen, incr.HighGen)
		}
		return g.eseErr(CodeMissingLogFile, nil, "a differential copies every log since its full backup (set %s, generations %d-%d), but generations %d-%d are no longer on disk (oldest is %d): %s; a chain is a full + incrementals, or a full + one differential: take a full backup",
			full.SetID, full.LowGen, full.HighGen, need, oldest-1, oldest, by)
	}
	return g.eseErr(CodeMissingLogFile, nil, "log generations %d-%d since the last full or incremental backup (set %s, generations %d-%d) are missing (oldest on disk is %d); take a full backup",
		need, oldest-1, tip.SetID, tip.LowGen, tip.HighGen, oldest)
}

// oldestGen is the oldest generation on disk: the oldest closed one, or
// the current log's when every closed one was truncated.
func (g *Group) oldestGen() (uint32, error) {
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		return 0, err
	}
	if len(gens) > 0 {
		return gens[0], nil
	}
	return g.log.CurrentGen(), nil
}

// HighGen is the last generation of the set (after GetLogAndPatchFiles).
func (s *Session) HighGen() uint32 { return s.high }

// ownFloor is this session's log floor for the databases it covers (the
// rule above): a full's first generation, an incremental's min(checkpoint
// generation, high+1). Called once the logs are listed.
func (s *Session) ownFloor() uint32 {
	if s.typ == ese.Full {
		return s.low
	}
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	return min(g.checkpoint.Gen, s.high+1)
}

// truncFloor applies the rule above: the generation below which logs may
// be deleted, 0 for none.
func (s *Session) truncFloor(own uint32) uint32 {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	inSession := map[*database]bool{}
	for _, d := range s.dbs {
		inSession[d] = true
	}
	return floorOf(g.checkpoint.Gen, g.dbs, func(d *database) bool { return inSession[d] }, own)
}

// floorOf is the rule: chk is the checkpoint generation, own the floor of
// the backup for the databases it covers; every other database brings the
// floor its last backup recorded. 0: nothing may be truncated (a database
// dismounted, or never backed up and not covered).
func floorOf(chk uint32, dbs []*database, covers func(*database) bool, own uint32) uint32 {
	floor := chk
	for _, d := range dbs {
		if !d.mounted {
			return 0
		}
		f := own
		if !covers(d) {
			if f = logFloor(d.hdr); f == 0 {
				return 0
			}
		}
		floor = min(floor, f)
	}
	return floor
}

// logFloor is the floor a database's last full or incremental backup
// recorded in its header (0: never backed up). Headers written before the
// floor was recorded fall back to that backup's first generation, which
// keeps at least as many logs.
func logFloor(h *DBHeader) uint32 {
	if h.LogFloor != 0 {
		return h.LogFloor
	}
	return chainTip(h, false).lowGen()
}

// GetTruncateLogFiles lists the logs TruncateLog would delete. For an
// incremental it first flushes the cache, so that the checkpoint, which an
// incremental does not hold, is as far as it goes: the logs it copied that
// crash recovery no longer needs are freed now, not repeated by the next
// incremental.
func (s *Session) GetTruncateLogFiles() ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	g := s.g
	if !s.typ.Truncates() {
		return nil, g.eseErr(CodeInvalidBackupSequence, nil, "a %s backup never truncates logs", s.typ)
	}
	s.mu.Lock()
	if s.logs == nil {
		s.mu.Unlock()
		return nil, g.eseErr(CodeInvalidBackupSequence, nil, "truncation before GetLogAndPatchFiles")
	}
	for _, lf := range s.logs {
		if !s.logRead[lf.Gen] {
			s.mu.Unlock()
			return nil, g.eseErr(CodeLogFileNotCopied, nil, "log %s was not read in full in this session", lf.Name)
		}
	}
	s.mu.Unlock()
	if s.typ == ese.Incremental {
		if err := g.flush(true); err != nil {
			return nil, err
		}
	}
	own := s.ownFloor()
	s.mu.Lock()
	s.floor = own
	s.mu.Unlock()
	floor := s.truncFloor(own)
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range gens {
		if n < floor && n <= s.high {
			out = append(out, wal.GenName(g.cfg.Prefix(), n))
		}
	}
	return out, nil
}

// TruncateLog deletes the logs GetTruncateLogFiles lists. Call it only
// once the set is durable.
func (s *Session) TruncateLog() ([]string, error) {
	names, err := s.GetTruncateLogFiles()
	if err != nil {
		return nil, err
	}
	return s.g.removeLogs(names)
}

// removeLogs deletes log generations (oldest first) and syncs the
// directory.
func (g *Group) removeLogs(names []string) ([]string, error) {
	sort.Strings(names)
	for i, n := range names {
		if err := g.fs.Remove(filepath.Join(g.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return names[:i], fmt.Errorf("storage group %s: truncating %s: %w", g.name, n, err)
		}
		failpoint.Hit("backup/truncate-one")
	}
	if len(names) > 0 {
		if err := g.fs.SyncDir(g.dir); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// TruncateAfter truncates, later, the logs that a backup taken without
// truncation made unnecessary (a set written to a pipe, whose consumer's
// durability the backup could not know): the caller has read the stored
// set back and verified it. The set must be the group's most recent full
// or incremental, as the headers recorded it, and no backup may be in
// progress. The rule is the one a backup applies.
func (g *Group) TruncateAfter(setID string) ([]string, error) {
	g.mu.Lock()
	if g.backup != nil {
		g.mu.Unlock()
		return nil, g.eseErr(CodeBackupInProgress, nil, "cannot truncate logs during a backup")
	}
	floor, high := g.checkpoint.Gen, uint32(0)
	found := false
	// The set was read back: its pending floor becomes the floor.
	for _, d := range g.dbs {
		if b := chainTip(d.hdr, false); d.mounted && b.IsSet() && b.SetID == setID && d.hdr.PendingLogFloor != 0 {
			d.hdr.setFloor(d.hdr.PendingLogFloor, false)
			if err := g.writeDBHeaders(d); err != nil {
				g.mu.Unlock()
				return nil, err
			}
		}
	}
	for _, d := range g.dbs {
		if !d.mounted {
			g.mu.Unlock()
			return nil, fmt.Errorf("storage group %s: database %s is dismounted: no log is truncated until it is mounted and backed up", g.name, d.name)
		}
		b, f := chainTip(d.hdr, false), logFloor(d.hdr)
		if !b.IsSet() || f == 0 {
			g.mu.Unlock()
			return nil, fmt.Errorf("storage group %s: database %s was never backed up: no log can be truncated", g.name, d.name)
		}
		if b.SetID == setID {
			found, high = true, b.HighGen
		}
		floor = min(floor, f)
	}
	g.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("storage group %s: set %s is not the most recent full or incremental backup the database headers record; only that one's logs can be truncated", g.name, setID)
	}
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range gens {
		if n < floor && n <= high {
			names = append(names, wal.GenName(g.cfg.Prefix(), n))
		}
	}
	return g.removeLogs(names)
}
