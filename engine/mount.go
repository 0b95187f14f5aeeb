package engine

import (
	"fmt"

	"github.com/tapestream/tapestream/engine/wal"
)

// Dismount detaches a database (its header is written clean). Refused
// while a backup session holds the group.
func (g *Group) Dismount(name string) error {
	if err := g.flush(true); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.backup != nil {
		return g.eseErr(CodeBackupInProgress, nil, "cannot dismount %s during a backup", name)
	}
	d, err := g.database(name)
	if err != nil {
		return err
	}
	for _, f := range g.cache.frames {
		if f.valid && f.dirty && f.key.file.dbid() == d.id {
			return fmt.Errorf("database %s still has unwritten pages; retry", name)
		}
	}
	d.mounted = false
	return nil
}

// Mount reattaches a dismounted database. Refused during a backup.
func (g *Group) Mount(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.backup != nil {
		return g.eseErr(CodeBackupInProgress, nil, "cannot mount %s during a backup", name)
	}
	for _, d := range g.dbs {
		if d.name == name {
			d.mounted = true
			return nil
		}
	}
	return fmt.Errorf("storage group %s has no database %q", g.name, name)
}

// BackupInProgress reports whether a backup session holds the group.
func (g *Group) BackupInProgress() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.backup != nil
}

// LogDir is the directory of the group's log files.
func (g *Group) LogDir() string { return g.dir }

// Header returns a copy of a database's in-memory header.
func (g *Group) Header(db string) (*DBHeader, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.dbs {
		if d.name == db {
			return cloneHeader(d.hdr), nil
		}
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
