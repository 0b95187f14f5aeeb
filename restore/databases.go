package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/internal/failpoint"
	"github.com/tapestream/tapestream/tapeformat"
)

// A restore of some of a group's databases, the way an Exchange
// administrator restores one database while the others stay mounted
// (seed 002 #7: databases are backed up individually):
//
//	stage    the set's files and logs in a staging directory, as for a group
//	config   the restore environment: STAGE/group.json lists the restored
//	         databases only (the group's identity, the others absent), as
//	         ESE's restore.env does; the intent (engine.BeginDatabaseRestore),
//	         then the databases are dismounted (in the group's state, or
//	         through the open group of a server: the others keep running)
//	logs     the group's later logs, which continue the set's, are linked
//	         into STAGE/live-logs (a server's group first closes its current
//	         generation: the dismounted databases have no record after it)
//	recover  hard recovery of the restored databases only, through the set's
//	         logs and then the group's: the point of failure. The others'
//	         records are skipped, their files never opened
//	switch   the recovered files replace the old ones in the group directory,
//	         which are kept beside the store (crash-safe: engine/dbswitch.go);
//	         the databases are mounted again
//
// A recovered file records where its life in the group's log begins
// (DBHeader.Attach): the end of the log it was recovered through. No later
// recovery of the group applies an earlier record to it, which is what
// makes a rollback of one database (--accept-data-loss) safe; without
// that flag a restore that does not reach the point of failure is refused
// (RollbackError), per database as for a group.

// chooseMode decides, once the first set's label is read, whether the
// restore replaces the whole target group or some of its databases.
func (r *run) chooseMode(l tapeformat.Label) error {
	tc, err := engine.ReadGroupConfig(r.target)
	if errors.Is(err, os.ErrNotExist) {
		if len(r.o.DropDatabases) > 0 {
			return fmt.Errorf("--drop-database: there is no storage group %s in %s to drop databases of", r.name, r.o.To)
		}
		if r.o.Live != nil {
			return fmt.Errorf("storage group %s is not in %s", r.name, r.o.To)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage group directory %s: %w", r.target, err)
	}
	r.targetCfg = tc
	var missing, extra []string
	for _, d := range tc.Databases {
		if !slices.Contains(l.Databases, d.Name) {
			missing = append(missing, d.Name)
		}
	}
	for _, n := range l.Databases {
		if !slices.ContainsFunc(tc.Databases, func(d engine.DBConfig) bool { return d.Name == n }) {
			extra = append(extra, n)
		}
	}
	for _, n := range r.o.DropDatabases {
		if !slices.Contains(missing, n) {
			return fmt.Errorf("--drop-database %s: storage group %s has no database %s that the sets do not hold (it has %s; the sets hold %s)", n, r.name, n, dbNames(tc), strings.Join(l.Databases, ", "))
		}
	}
	switch {
	case len(missing) == 0 && (r.o.Live == nil || tc.Signature != l.GroupSignature || len(extra) > 0):
		return nil // the whole group
	case len(missing) == 0:
		// Every database of a group a server keeps open: they are
		// restored as some are, and the group (its log) runs on.
	case len(r.o.DropDatabases) > 0:
		if len(r.o.DropDatabases) != len(missing) {
			return fmt.Errorf("refusing to restore: replacing storage group %s by the sets' databases (%s) drops %s; name each database to drop with --drop-database", r.name, strings.Join(l.Databases, ", "), strings.Join(missing, ", "))
		}
		return nil // asked for by name: the whole group, without them
	case tc.Signature != l.GroupSignature:
		return fmt.Errorf("refusing to restore: the sets hold databases %s of a storage group with another log stream (%s) than %s (%s): they cannot join it, and replacing the group would drop %s; restore into another group (--group), or replace the group without them by naming each with --drop-database", strings.Join(l.Databases, ", "), l.GroupSignature, r.target, tc.Signature, strings.Join(missing, ", "))
	case len(extra) > 0:
		return fmt.Errorf("refusing to restore: storage group %s has no database %s (it has %s); restore into another group (--group)", r.name, strings.Join(extra, ", "), dbNames(tc))
	case r.o.NoRecover:
		return fmt.Errorf("refusing to restore: --no-recover lays down a whole group for a later recovery; a restore of some of %s's databases (%s) recovers them at once while the others keep running", r.name, strings.Join(l.Databases, ", "))
	}
	r.databases = slices.Clone(l.Databases)
	if len(missing) > 0 {
		r.logf("restoring %s of storage group %s; the others (%s) stay as they are", strings.Join(r.databases, ", "), r.name, strings.Join(missing, ", "))
	}
	return nil
}

func dbNames(c *engine.GroupConfig) string {
	var out []string
	for _, d := range c.Databases {
		out = append(out, d.Name)
	}
	return strings.Join(out, ", ")
}

// restoreDatabases runs the steps above after the sets were staged.
func (r *run) restoreDatabases(ctx context.Context) error {
	if err := r.configureDatabases(); err != nil {
		return err
	}
	if err := r.recoverDatabases(ctx); err != nil {
		return err
	}
	failpoint.Hit("restore/after-recover")
	r.root.Close()
	r.root = nil
	replaced, err := r.dbr.Switch(r.mountDatabases)
	if err != nil {
		if r.dbr.Committed() {
			// The files are recovered and the intent says so: the next
			// locker of the group finishes the switch (never undoes it).
			r.dbr, r.staging = nil, nil
			return fmt.Errorf("%w (the next open of storage group %s finishes putting the restored files in place)", err, r.name)
		}
		return err
	}
	r.dbr, r.staging = nil, nil
	r.res.Replaced, r.res.Databases = replaced, r.databases
	r.logf("the replaced files of %s are kept in %s; remove them once the restore is proven", strings.Join(r.databases, ", "), replaced)
	return nil
}

// configureDatabases writes the restore environment, marks the restored
// files, records the intent, dismounts the databases and brings in the
// group's later logs.
func (r *run) configureDatabases() error {
	tc := r.targetCfg
	set, err := groupConfigFor(r.name, r.infos[0], r.sink)
	if err != nil {
		return err
	}
	env := engine.GroupConfig{Name: tc.Name, ID: tc.ID, Signature: tc.Signature, LogSize: tc.LogSize, CircularLogging: tc.CircularLogging}
	for _, sd := range set.Databases {
		i := slices.IndexFunc(tc.Databases, func(d engine.DBConfig) bool { return d.Name == sd.Name })
		td := tc.Databases[i]
		if td.ID != sd.ID || td.GUID != sd.GUID || td.Streaming != sd.Streaming {
			return fmt.Errorf("refusing to restore: set %s holds database %s (id %d, GUID %s, streaming file %t), which is not database %s of storage group %s (id %d, GUID %s, streaming file %t)",
				r.infos[0].Label.SetID, sd.Name, sd.ID, sd.GUID, sd.Streaming, td.Name, r.name, td.ID, td.GUID, td.Streaming)
		}
		td.Dismounted = false
		env.Databases = append(env.Databases, td)
	}
	for _, td := range tc.Databases {
		if !slices.Contains(r.databases, td.Name) {
			env.AbsentIDs = append(env.AbsentIDs, td.ID)
		}
	}
	if set.LogSize != tc.LogSize {
		return fmt.Errorf("refusing to restore: the sets' logs are %d bytes, storage group %s's %d", set.LogSize, r.name, tc.LogSize)
	}
	r.cfg = &env
	if err := r.renameLogs(env.Prefix()); err != nil {
		return err
	}
	if err := engine.WriteGroupConfig(r.stage, &env); err != nil {
		return err
	}
	if err := r.markRestored(); err != nil {
		return err
	}
	replay, err := r.laterDatabaseLogs()
	if err != nil {
		return err
	}
	// The intent first: from here a crash is undone (or, once the files
	// are recovered, finished) by the next open of the group.
	var mounted []string
	if r.o.Live != nil {
		for _, d := range r.o.Live.Info().Databases {
			if d.Mounted && slices.Contains(r.databases, d.Name) {
				mounted = append(mounted, d.Name)
			}
		}
	} else {
		for _, d := range env.Databases {
			if i := slices.IndexFunc(tc.Databases, func(c engine.DBConfig) bool { return c.Name == d.Name }); !tc.Databases[i].Dismounted {
				mounted = append(mounted, d.Name)
			}
		}
	}
	if r.dbr, err = engine.BeginDatabaseRestore(r.staging, r.target, env.Databases, mounted); err != nil {
		return err
	}
	if err := r.dismountDatabases(mounted); err != nil {
		return err
	}
	failpoint.Hit("restore/db/after-dismount")
	return r.databaseLogs(replay)
}

// laterDatabaseLogs decides, before anything is written, whether the
// group's own logs continue the sets' (point of failure: replay is true)
// and refuses a restore that would roll the databases back, unless told
// to (then replay is false: the databases stop where the sets do).
func (r *run) laterDatabaseLogs() (replay bool, err error) {
	var l laterLogs
	if r.o.Live != nil {
		// The group writes on: look at closed generations by name only.
		gens, _, err := wal.ListGenerations(vfs.OS, r.target, r.cfg.Prefix())
		if err != nil {
			return false, err
		}
		cur := r.o.Live.CurrentGen()
		l = laterLogs{exists: true, sameStream: true, newest: cur}
		next := r.res.HighGen + 1
		for _, g := range gens {
			if g == next {
				l.continuing = append(l.continuing, g)
				next++
			}
		}
		l.current = cur == next
	} else if l, err = inspectTarget(r.target, r.cfg, r.res.HighGen); err != nil {
		return false, err
	}
	pointInTime := r.o.UntilGen != 0 || !r.o.UntilTime.IsZero()
	if pointInTime {
		l.continuing, l.current = nil, false
	}
	reached := l.reached(r.res.HighGen)
	dbs := strings.Join(r.databases, ", ")
	lost := ""
	switch {
	case l.newest > reached && pointInTime:
		lost = fmt.Sprintf("%s holds log generations up to %d, and a point-in-time restore of %s stops before them", r.target, l.newest, dbs)
	case l.newest > reached:
		lost = fmt.Sprintf("%s holds log generations up to %d, but the chain ends at %d and the group's own logs continue it only to %d (the generations between are missing): %s would lose their commits since", r.target, l.newest, r.res.HighGen, reached, dbs)
	}
	if lost != "" {
		if !r.o.AcceptDataLoss {
			return false, &RollbackError{Target: r.target + " (databases " + dbs + ")", Why: lost}
		}
		r.logf("restoring %s of %s although %s (--accept-data-loss); the files they replace are kept beside the store", dbs, r.target, lost)
		return false, nil
	}
	return !pointInTime, nil
}

// databaseLogs, once the databases are dismounted, links the group's logs
// that continue the sets' into STAGE/live-logs (replay) and records where
// the recovered files join the group's log.
func (r *run) databaseLogs(replay bool) error {
	var l laterLogs
	if r.o.Live != nil {
		// Close the current generation: the dismounted databases have no
		// record after it. The group goes on writing the next ones, so
		// only closed generations, which never change, are read.
		closed, err := r.o.Live.Rollover()
		if err != nil {
			return err
		}
		r.attach = wal.Pos{Gen: closed + 1}
		if !replay {
			return nil
		}
		for g := r.res.HighGen + 1; g <= closed; g++ {
			if _, err := os.Stat(filepath.Join(r.target, wal.GenName(r.cfg.Prefix(), g))); err != nil {
				return fmt.Errorf("storage group %s: log generation %d, which the restore of %s replays, is gone: %w", r.name, g, strings.Join(r.databases, ", "), err)
			}
			l.continuing = append(l.continuing, g)
		}
	} else {
		var err error
		if r.attach, err = logEnd(r.target, r.cfg.Prefix()); err != nil {
			return err
		}
		if !replay {
			return nil
		}
		if l, err = inspectTarget(r.target, r.cfg, r.res.HighGen); err != nil {
			return err
		}
	}
	if len(l.continuing) == 0 && !l.current {
		return nil
	}
	r.liveLogsDir = filepath.Join(r.stage, "live-logs")
	if err := os.Mkdir(r.liveLogsDir, 0o755); err != nil {
		return err
	}
	n, err := laterLogsInto(r.target, r.liveLogsDir, r.cfg.Prefix(), l, true)
	if err != nil {
		return err
	}
	r.logf("replaying %d later log files of %s into %s (point of failure)", n, r.target, strings.Join(r.databases, ", "))
	return nil
}

// logEnd is where the log of a closed group ends: the next record goes
// after it.
func logEnd(dir, prefix string) (wal.Pos, error) {
	gens, hasCur, err := wal.ListGenerations(vfs.OS, dir, prefix)
	if err != nil {
		return wal.Pos{}, err
	}
	if !hasCur {
		if len(gens) == 0 {
			return wal.Pos{}, nil
		}
		return wal.Pos{Gen: gens[len(gens)-1] + 1}, nil
	}
	h, err := wal.ReadHeader(vfs.OS, filepath.Join(dir, wal.CurrentName(prefix)))
	if err != nil {
		return wal.Pos{}, err
	}
	info, err := wal.ReadGeneration(vfs.OS, dir, prefix, h.Gen, nil)
	if err != nil {
		return wal.Pos{}, err
	}
	if info.End.IsZero() {
		return wal.Pos{Gen: h.Gen}, nil
	}
	return info.End, nil
}

// recoverDatabases runs hard recovery of the restored databases in the
// restore environment and records where the recovered files join the
// group's log.
func (r *run) recoverDatabases(ctx context.Context) error {
	dirs := []string{filepath.Join(r.stage, "restore-logs")}
	if r.liveLogsDir != "" {
		dirs = append(dirs, r.liveLogsDir)
	}
	if err := recoverStaged(ctx, r.stage, dirs, r.o, r.res); err != nil {
		return fmt.Errorf("%w (the files of %s in %s were not touched)", err, strings.Join(r.databases, ", "), r.target)
	}
	at := &engine.LogPosition{Gen: r.attach.Gen, Off: r.attach.Off}
	for _, f := range r.dbr.Files() {
		if err := engine.UpdateHeaderFile(nil, filepath.Join(r.stage, f), func(h *engine.DBHeader) error {
			h.Attach = at
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// mountDatabases mounts the restored databases again (the intent's
// remount list after a failure, all of them after the switch).
func (r *run) mountDatabases(names []string) error {
	if r.o.Live == nil {
		return engine.SetDismounted(r.target, names, false)
	}
	mounted := map[string]bool{}
	for _, d := range r.o.Live.Info().Databases {
		mounted[d.Name] = d.Mounted
	}
	var errs []error
	for _, n := range names {
		if !mounted[n] {
			errs = append(errs, r.o.Live.Mount(n))
		}
	}
	return errors.Join(errs...)
}

func (r *run) dismountDatabases(names []string) error {
	if r.o.Live == nil {
		return engine.SetDismounted(r.target, names, true)
	}
	for _, n := range names {
		if err := r.o.Live.Dismount(n); err != nil {
			return err
		}
	}
	return nil
}

// renameLogs gives the staged logs the target group's log prefix when it
// differs from the sets' (a group restored under another instance id), as
// ESE's restore environment renames them for its target.
func (r *run) renameLogs(prefix string) error {
	from := r.sink.prefix
	if from == prefix || from == "" {
		return nil
	}
	dir := filepath.Join(r.stage, "restore-logs")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if gen, ok := wal.ParseGenName(from, e.Name()); ok {
			if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, wal.GenName(prefix, gen))); err != nil {
				return err
			}
		}
	}
	return nil
}
