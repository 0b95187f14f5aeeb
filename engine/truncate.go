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

// GetLogAndPatchFiles forces a rollover of the current log and returns the
// contiguous list of generations the set needs: full/copy from the frozen
// checkpoint's generation, incremental/differential from the oldest on
// disk, through the one just closed. The patch list is always empty (see
// the package comment).
func (s *Session) GetLogAndPatchFiles() (logs []BackupFile, patches []string, err error) {
	if err := s.check(); err != nil {
		return nil, nil, err
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
		// The set must continue the chain: nothing may be missing between
		// the last backup and the oldest log on disk.
		if prev := s.lastChainHigh(); prev != 0 && low > prev+1 {
			err := g.eseErr(CodeMissingLogFile, nil, "log generations %d-%d since the last %s are missing (oldest on disk is %d); take a full backup", prev+1, low-1, map[bool]string{true: "full or incremental backup", false: "full backup (an incremental truncated them)"}[s.typ == ese.Incremental], low)
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

// lastChainHigh is the high generation of the newest backup the chain
// continues from (full or incremental for incremental, full for
// differential), across the group's databases.
func (s *Session) lastChainHigh() uint32 {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	var high uint32
	for _, d := range g.dbs {
		if !d.mounted {
			continue
		}
		if b := chainTip(d.hdr, s.typ != ese.Incremental); b.IsSet() && (high == 0 || b.HighGen < high) {
			high = b.HighGen
		}
	}
	return high
}

// HighGen is the last generation of the set (after GetLogAndPatchFiles).
func (s *Session) HighGen() uint32 { return s.high }

// truncFloor computes the generation below which logs may be deleted,
// exactly as ESE states it: min(checkpoint generation, for every database
// of the group the low generation of its most recent full or incremental
// backup). This session counts as each backed-up database's most recent.
// An incremental's low generation is the oldest log on disk when it ran,
// so incrementals never delete the logs since the last full: a later
// differential of that full (and a point-of-failure restore of it) still
// finds them. A database never backed up, or dismounted (its header can't
// be read), means nothing is truncated (0).
func (s *Session) truncFloor() uint32 {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	floor := g.checkpoint.Gen
	inSession := map[*database]bool{}
	for _, d := range s.dbs {
		inSession[d] = true
	}
	for _, d := range g.dbs {
		if !d.mounted {
			return 0
		}
		var f uint32
		switch {
		case s.typ == ese.Full && inSession[d], s.typ == ese.Incremental:
			f = s.low
		default:
			b := chainTip(d.hdr, false)
			if !b.IsSet() {
				return 0
			}
			f = b.LowGen
		}
		floor = min(floor, f)
	}
	return floor
}

// GetTruncateLogFiles lists the logs TruncateLog would delete.
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
	floor := s.truncFloor()
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
	for _, d := range g.dbs {
		if !d.mounted {
			g.mu.Unlock()
			return nil, fmt.Errorf("storage group %s: database %s is dismounted: no log is truncated until it is mounted and backed up", g.name, d.name)
		}
		b := chainTip(d.hdr, false)
		if !b.IsSet() {
			g.mu.Unlock()
			return nil, fmt.Errorf("storage group %s: database %s was never backed up: no log can be truncated", g.name, d.name)
		}
		if b.SetID == setID {
			found, high = true, b.HighGen
		}
		floor = min(floor, b.LowGen)
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
