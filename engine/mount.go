package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tapestream/tapestream/engine/wal"
)

// Mounting and dismounting a database, as an Exchange administrator does
// it: the group keeps running on its other databases. The state is kept in
// group.json (DBConfig.Dismounted), so a dismount survives the group's
// reopening. Both are refused while a backup session holds the group
// (-505, seed 003).
//
// A dismounted database's pages are all written, its header says Clean
// Shutdown and its files are closed: they may be copied or replaced (a
// restore of that database puts its restored files in their place). No log
// is truncated while a database is dismounted (truncate.go: its header is
// not read). Recovery skips its log records: its file holds every change
// up to the dismount.
//
// Mount opens the files again and checks them (the group's log signature,
// a consistent state), and records where their life in the log begins
// (DBHeader.Attach): records before it are never applied to this file.

// ErrDismounted is returned for a transaction or dismount that names a
// dismounted database.
var ErrDismounted = errors.New("engine: database dismounted")

// Dismount takes a database offline (see above).
func (g *Group) Dismount(name string) error {
	g.mu.Lock()
	if err := g.err(); err != nil {
		g.mu.Unlock()
		return err
	}
	if g.backup != nil {
		g.mu.Unlock()
		return g.eseErr(CodeBackupInProgress, nil, "cannot dismount %s during a backup", name)
	}
	d := g.dbByName(name)
	switch {
	case d == nil:
		g.mu.Unlock()
		return fmt.Errorf("storage group %s has no database %q", g.name, name)
	case !d.mounted:
		g.mu.Unlock()
		return fmt.Errorf("%w already: %s of storage group %s", ErrDismounted, name, g.name)
	}
	// From here no transaction reaches it (commits apply and log under
	// g.mu), and no backup selects it.
	d.mounted = false
	g.mu.Unlock()
	err := g.flush(true)
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		err = g.err()
	}
	if err == nil && g.cache.dirtyOf(d.id) {
		err = fmt.Errorf("database %s still has unwritten pages", name)
	}
	if err == nil {
		now := g.opts.Now()
		for _, h := range []*DBHeader{d.hdr, d.stmHdr} {
			if h != nil {
				h.DBTime = max(h.DBTime, d.dbtime)
				h.State, h.LogRequired, h.LastConsistent = StateCleanShutdown, GenRange{}, now
			}
		}
		err = g.writeDBHeaders(d)
	}
	if err == nil {
		err = g.setDismounted(d, true)
	}
	if err != nil {
		d.mounted = true
		return fmt.Errorf("dismounting %s of storage group %s: %w", name, g.name, err)
	}
	g.cache.drop(d.id)
	for i, pf := range d.files {
		if pf != nil {
			pf.close()
			d.files[i] = nil
		}
	}
	clear(d.tables)
	return nil
}

// Mount brings a dismounted database back online (see above). Refused
// during a backup.
func (g *Group) Mount(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(); err != nil {
		return err
	}
	if g.backup != nil {
		return g.eseErr(CodeBackupInProgress, nil, "cannot mount %s during a backup", name)
	}
	d := g.dbByName(name)
	switch {
	case d == nil:
		return fmt.Errorf("storage group %s has no database %q", g.name, name)
	case d.mounted:
		return fmt.Errorf("database %s of storage group %s is mounted already", name, g.name)
	}
	if err := g.openDBFiles(d); err != nil {
		return fmt.Errorf("mounting %s: %w", name, err)
	}
	fail := func(err error) error {
		g.closeDB(d)
		return fmt.Errorf("mounting %s of storage group %s: %w", name, g.name, err)
	}
	for _, h := range []*DBHeader{d.hdr, d.stmHdr} {
		if h == nil {
			continue
		}
		switch {
		case h.GUID != d.cfg.GUID:
			return fail(fmt.Errorf("%s.%s is database %s (GUID %s), not this group's (GUID %s)", name, h.File, h.Name, h.GUID, d.cfg.GUID))
		case h.State == StateRestored:
			return fail(fmt.Errorf("%s.%s was restored and needs hard recovery (Patch Current Full Backup %d-%d)", name, h.File, h.PatchCurrentFull.lowGen(), h.PatchCurrentFull.HighGen))
		case h.State != StateCleanShutdown:
			return fail(fmt.Errorf("%s.%s is in state %s: only a consistent (Clean Shutdown) database can be mounted", name, h.File, h.State))
		}
	}
	// Its life in the log starts here: no earlier record applies to it.
	at := logPosition(g.log.Current())
	now := g.opts.Now()
	cur := g.log.CurrentGen()
	for _, h := range []*DBHeader{d.hdr, d.stmHdr} {
		if h != nil {
			h.Attach, h.LastAttach = at, now
			h.State, h.LogRequired = StateDirtyShutdown, GenRange{Min: g.checkpoint.Gen, Max: cur}
			if h.LogRequired.Min == 0 {
				h.LogRequired.Min = cur
			}
		}
	}
	d.dbtime = max(d.dbtime, d.hdr.DBTime)
	clear(d.tables)
	if err := g.writeDBHeaders(d); err != nil {
		return fail(err)
	}
	if err := g.setDismounted(d, false); err != nil {
		return fail(err)
	}
	d.mounted = true
	return nil
}

// closeDB closes a database's files (a failed mount).
func (g *Group) closeDB(d *database) {
	for i, pf := range d.files {
		if pf != nil {
			pf.close()
			d.files[i] = nil
		}
	}
}

// setDismounted records d's state in group.json; called with g.mu held.
func (g *Group) setDismounted(d *database, v bool) error {
	cfg := g.cfg
	cfg.Databases = slices.Clone(g.cfg.Databases)
	for i := range cfg.Databases {
		if cfg.Databases[i].ID == d.id {
			cfg.Databases[i].Dismounted = v
		}
	}
	if err := writeGroupConfig(g.fs, g.dir, &cfg); err != nil {
		return err
	}
	g.cfg = cfg
	d.cfg.Dismounted = v
	return nil
}

// SetDismounted records in the group.json of a closed group (its store or
// group lock held) that databases are dismounted or mounted; a restore of
// some of a group's databases uses it on a group no process has open. It
// does not touch the database files.
func SetDismounted(dir string, names []string, dismounted bool) error {
	cfg, err := ReadGroupConfig(dir)
	if err != nil {
		return err
	}
	changed := false
	for _, n := range names {
		i := slices.IndexFunc(cfg.Databases, func(d DBConfig) bool { return d.Name == n })
		if i < 0 {
			return fmt.Errorf("storage group %s has no database %q", cfg.Name, n)
		}
		if cfg.Databases[i].Dismounted != dismounted {
			cfg.Databases[i].Dismounted, changed = dismounted, true
		}
	}
	if !changed {
		return nil
	}
	return WriteGroupConfig(dir, cfg)
}

func (g *Group) dbByName(name string) *database {
	for _, d := range g.dbs {
		if d.name == name {
			return d
		}
	}
	return nil
}

// BackupInProgress reports whether a backup session holds the group.
func (g *Group) BackupInProgress() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.backup != nil
}

// LogDir is the directory of the group's log files.
func (g *Group) LogDir() string { return g.dir }

// Header returns a copy of a database's in-memory header (of a dismounted
// database: as its file's header read when the group opened or when it
// was dismounted).
func (g *Group) Header(db string) (*DBHeader, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := g.dbByName(db); d != nil {
		return cloneHeader(d.hdr), nil
	}
	return nil, fmt.Errorf("storage group %s has no database %q", g.name, db)
}

// Checkpoint returns the current checkpoint position.
func (g *Group) CheckpointPos() wal.Pos {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checkpoint
}

// Rollover forces the current log to close as the next generation.
func (g *Group) Rollover() (uint32, error) { return g.log.Rollover() }

// CurrentGen is the generation of the current log E0n.log.
func (g *Group) CurrentGen() uint32 { return g.log.CurrentGen() }
