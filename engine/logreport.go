package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
)

// LogReport answers "why are my logs not truncated?": for each log
// generation on disk, what keeps it by the truncation rule (truncate.go),
// and which backup taken now would let GetTruncateLogFiles list it.
type LogReport struct {
	Group      string      `json:"group"`
	Checkpoint uint32      `json:"checkpoint_gen"`
	Current    uint32      `json:"current_gen"`
	Databases  []LogFloor  `json:"databases"`
	Gens       []GenReport `json:"generations"`
	// Backups are the backups that could be taken now and what each would
	// truncate.
	Backups []BackupFrees `json:"backups"`
}

// LogFloor is one database's part in the rule.
type LogFloor struct {
	Database string `json:"database"`
	Mounted  bool   `json:"mounted"`
	// Floor is the first generation its last full or incremental backup
	// needs on disk (0: never backed up); Pending a floor that waits for
	// `tapestream truncate` to read a set back.
	Floor   uint32 `json:"floor,omitempty"`
	Pending uint32 `json:"pending_floor,omitempty"`
	// Last is that backup ("full" or "incremental") and its section.
	Last     string      `json:"last_backup,omitempty"`
	LastInfo *BackupInfo `json:"last_backup_info,omitempty"`
}

// Hold is one reason a generation stays.
type Hold struct {
	// Reason: "checkpoint" (crash recovery replays from it), "backup" (a
	// database's last backup needs it: Database, Floor), "dismounted" or
	// "never-backed-up" (Database: then nothing is truncated at all).
	Reason   string `json:"reason"`
	Database string `json:"database,omitempty"`
	Floor    uint32 `json:"floor,omitempty"`
}

// GenReport is one generation on disk.
type GenReport struct {
	Gen     uint32 `json:"gen"`
	File    string `json:"file"`
	Current bool   `json:"current,omitempty"`
	KeptBy  []Hold `json:"kept_by"`
	// FreedBy names the backups now (BackupFrees.Name) that would delete it.
	FreedBy []string `json:"freed_by,omitempty"`
}

// BackupFrees is what one backup taken now would truncate.
type BackupFrees struct {
	// Name: "full", "incremental", or "full of NAME" (that database alone).
	Name string `json:"name"`
	// Below: generations below it are deleted (0: none).
	Below uint32 `json:"below"`
	// Refused says why this backup would be refused now (ESE code inside).
	Refused string `json:"refused,omitempty"`
}

// LogReport explains the truncation of the group's logs now.
func (g *Group) LogReport() (*LogReport, error) {
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	dbs := make([]*database, 0, len(g.dbs))
	for _, d := range g.dbs {
		c := &database{id: d.id, name: d.name, mounted: d.mounted, hdr: cloneHeader(d.hdr)}
		dbs = append(dbs, c)
	}
	chk, cur := g.checkpoint.Gen, g.log.CurrentGen()
	g.mu.Unlock()
	return logReport(g.name, g.cfg, chk, cur, dbs, gens)
}

// ReadLogReport explains the truncation of the logs of the group in dir
// from its files (group.json, checkpoint, database headers), without
// opening it: a group a server has open is read as its files are.
func ReadLogReport(dir string) (*LogReport, error) {
	cfg, err := ReadGroupConfig(dir)
	if err != nil {
		return nil, err
	}
	g := &Group{fs: vfs.OS, dir: dir, name: cfg.Name, cfg: *cfg}
	var chk uint32
	c, err := readCheckpoint(g)
	switch {
	case err == nil:
		chk = c.Pos.Gen
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	gens, hasCur, err := wal.ListGenerations(vfs.OS, dir, cfg.Prefix())
	if err != nil {
		return nil, err
	}
	var cur uint32
	if hasCur {
		h, err := wal.ReadHeader(vfs.OS, filepath.Join(dir, wal.CurrentName(cfg.Prefix())))
		if err != nil {
			return nil, err
		}
		cur = h.Gen
	}
	if chk == 0 && len(gens) > 0 {
		chk = gens[0] // no checkpoint yet: recovery replays from the oldest
	}
	var dbs []*database
	for _, dc := range cfg.Databases {
		d := &database{id: dc.ID, name: dc.Name, mounted: !dc.Dismounted}
		h, err := ReadHeader(vfs.OS, filepath.Join(dir, dc.Name+".edb"))
		if err != nil {
			if d.mounted {
				return nil, err
			}
			h = &DBHeader{Name: dc.Name}
		}
		d.hdr = h
		dbs = append(dbs, d)
	}
	return logReport(cfg.Name, *cfg, chk, cur, dbs, gens)
}

func logReport(name string, cfg GroupConfig, chk, cur uint32, dbs []*database, gens []uint32) (*LogReport, error) {
	r := &LogReport{Group: name, Checkpoint: chk, Current: cur}
	for _, d := range dbs {
		lf := LogFloor{Database: d.name, Mounted: d.mounted, Floor: logFloor(d.hdr), Pending: d.hdr.PendingLogFloor}
		if b := chainTip(d.hdr, false); b.IsSet() {
			lf.Last, lf.LastInfo = ese.Full.String(), b
			if b == d.hdr.PreviousIncremental {
				lf.Last = ese.Incremental.String()
			}
		}
		r.Databases = append(r.Databases, lf)
	}
	// The backups now: a full of every mounted database freezes the
	// checkpoint it finds, an incremental truncates below min(checkpoint,
	// one past its set): both below the checkpoint for what they cover.
	all := func(*database) bool { return true }
	r.Backups = append(r.Backups, BackupFrees{Name: ese.Full.String(), Below: floorOf(chk, dbs, all, chk)})
	inc := BackupFrees{Name: ese.Incremental.String(), Below: floorOf(chk, dbs, all, chk)}
	if why := incrementalRefusal(name, cfg, dbs, gens, cur); why != "" {
		inc.Below, inc.Refused = 0, why
	}
	r.Backups = append(r.Backups, inc)
	for _, d := range dbs {
		if !d.mounted {
			continue
		}
		only := func(x *database) bool { return x == d }
		r.Backups = append(r.Backups, BackupFrees{Name: "full of " + d.name, Below: floorOf(chk, dbs, only, chk)})
	}
	add := func(gen uint32, current bool) {
		gr := GenReport{Gen: gen, File: wal.GenName(cfg.Prefix(), gen), Current: current, KeptBy: []Hold{}}
		if current {
			gr.File = wal.CurrentName(cfg.Prefix())
		}
		if gen >= chk {
			gr.KeptBy = append(gr.KeptBy, Hold{Reason: "checkpoint"})
		}
		for _, d := range dbs {
			f := logFloor(d.hdr)
			switch {
			case !d.mounted:
				gr.KeptBy = append(gr.KeptBy, Hold{Reason: "dismounted", Database: d.name})
			case f == 0:
				gr.KeptBy = append(gr.KeptBy, Hold{Reason: "never-backed-up", Database: d.name})
			case gen >= f:
				gr.KeptBy = append(gr.KeptBy, Hold{Reason: "backup", Database: d.name, Floor: f})
			}
		}
		for _, b := range r.Backups {
			if b.Refused == "" && gen < b.Below && !current {
				gr.FreedBy = append(gr.FreedBy, b.Name)
			}
		}
		r.Gens = append(r.Gens, gr)
	}
	for _, gen := range gens {
		add(gen, false)
	}
	if cur != 0 {
		add(cur, true)
	}
	return r, nil
}

// incrementalRefusal says why an incremental would be refused now, as
// BackupSetup and GetLogAndPatchFiles would (empty: it would run).
func incrementalRefusal(name string, cfg GroupConfig, dbs []*database, gens []uint32, cur uint32) string {
	if cfg.CircularLogging {
		return fmt.Sprintf("circular logging (%d)", CodeInvalidBackup)
	}
	for _, d := range dbs {
		if d.mounted && !d.hdr.PreviousFull.IsSet() {
			return fmt.Sprintf("no full backup of database %s (%d)", d.name, CodeNoBackup)
		}
	}
	oldest := cur
	if len(gens) > 0 {
		oldest = gens[0]
	}
	s := &Session{g: &Group{name: name, dbs: dbs}, typ: ese.Incremental}
	if err := s.checkChain(oldest); err != nil {
		var e *ESEError
		if errors.As(err, &e) {
			return fmt.Sprintf("%s (%d)", e.Msg, e.Code)
		}
		return err.Error()
	}
	return ""
}
