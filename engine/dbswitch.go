package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapestream/tapestream/internal/failpoint"
)

// A restore of some of a storage group's databases replaces their files
// inside the group's directory while the group keeps its other databases
// (seed 002 #7; Exchange: dismount the database to restore, the others
// stay mounted). Its hard recovery runs in a staging directory (a restore
// environment listing the restored databases only); what reaches the group
// directory is recovered, consistent files. The replacement is crash-safe
// through an intent the next locker of the group (ResolveSwitches)
// finishes or undoes:
//
//	ROOT/.dbswitch-NAME.json   {id, stage, target, databases, files, remount, replaced, phase}
//
//	phase "staging"  written before the databases are dismounted; the
//	                 restore stages and recovers their files in STAGE.
//	                 Resolving it: remove STAGE and mount the databases
//	                 again (remount): their files were never touched.
//	phase "switch"   written once STAGE holds the recovered files. Then,
//	                 file by file, TARGET/F → REPLACED/F and STAGE/F →
//	                 TARGET/F; then the databases are mounted (all of them),
//	                 STAGE and the intent removed. Resolving it: the same, from where it
//	                 stopped (each step is a rename that happened or not).
//
// The files replaced are kept in REPLACED (ROOT/.NAME.replaced-TIME-ID), as
// a replaced group is: the restore is the administrator's to prove.

const dbIntentPrefix = ".dbswitch-"

type dbIntent struct {
	ID        string   `json:"id"`
	Stage     string   `json:"stage"`
	Target    string   `json:"target"`
	Databases []string `json:"databases"`
	Files     []string `json:"files"`
	// Remount are the databases the restore dismounted: mounted again when
	// it ends, whichever way.
	Remount  []string `json:"remount"`
	Replaced string   `json:"replaced"`
	Phase    string   `json:"phase"`
}

const (
	phaseStaging = "staging"
	phaseSwitch  = "switch"
)

func dbIntentPath(target string) string {
	return filepath.Join(filepath.Dir(target), dbIntentPrefix+filepath.Base(target)+".json")
}

// DatabaseRestore is a restore of some databases of the storage group in
// Target in progress (see above).
type DatabaseRestore struct {
	in dbIntent
	s  *Staging
}

// BeginDatabaseRestore records the intent to replace the files of dbs in
// the group directory target by files recovered in s. remount names those
// of dbs that are mounted now: the caller dismounts them next, and they
// are mounted again when the restore ends, whichever way. The caller holds
// the group's lock.
func BeginDatabaseRestore(s *Staging, target string, dbs []DBConfig, remount []string) (*DatabaseRestore, error) {
	id := newSwitchID()
	in := dbIntent{ID: id, Stage: s.Dir, Target: target, Remount: remount, Phase: phaseStaging,
		Replaced: filepath.Join(filepath.Dir(target), fmt.Sprintf(".%s.replaced-%s-%s", filepath.Base(target), time.Now().UTC().Format("20060102T150405"), id[:8]))}
	for _, d := range dbs {
		in.Databases = append(in.Databases, d.Name)
		in.Files = append(in.Files, d.Name+".edb")
		if d.Streaming {
			in.Files = append(in.Files, d.Name+".stm")
		}
	}
	if _, err := os.Lstat(dbIntentPath(target)); err == nil {
		return nil, fmt.Errorf("a restore of databases of %s is in progress or interrupted (%s)", target, dbIntentPath(target))
	}
	r := &DatabaseRestore{in: in, s: s}
	if err := r.write(); err != nil {
		return nil, err
	}
	failpoint.Hit("restore/db/after-intent")
	return r, nil
}

func (r *DatabaseRestore) write() error {
	b, _ := json.Marshal(r.in)
	return writeFileAtomicOS(dbIntentPath(r.in.Target), b)
}

// Files are the files the restore replaces (NAME.edb, NAME.stm).
func (r *DatabaseRestore) Files() []string { return r.in.Files }

// Committed reports whether the intent says "switch": from then on the
// restore is finished, never undone.
func (r *DatabaseRestore) Committed() bool { return r.in.Phase == phaseSwitch }

// Switch puts the recovered files in place (phase "switch", above), then
// calls mount with the restored databases (all of them: a database the
// administrator had dismounted to restore it is mounted too), then removes
// the staging directory and the intent. It returns where the replaced
// files went.
func (r *DatabaseRestore) Switch(mount func(names []string) error) (replaced string, err error) {
	for _, f := range r.in.Files {
		if err := syncFile(filepath.Join(r.in.Stage, f)); err != nil {
			return "", fmt.Errorf("restored file %s: %w", f, err)
		}
	}
	if err := syncDir(r.in.Stage); err != nil {
		return "", err
	}
	in := r.in
	in.Phase = phaseSwitch
	b, _ := json.Marshal(in)
	if err := writeFileAtomicOS(dbIntentPath(in.Target), b); err != nil {
		return "", err
	}
	r.in = in
	failpoint.Hit("restore/dbswitch/after-intent")
	if err := finishDatabaseRestore(r.in, mount); err != nil {
		return "", err
	}
	r.s.Release()
	return r.in.Replaced, nil
}

// Abandon ends a restore that failed before its switch: the staging
// directory goes, the databases are mounted again (their files were not
// touched), the intent goes.
func (r *DatabaseRestore) Abandon(mount func(names []string) error) error {
	err := r.s.Remove()
	if merr := mount(r.in.Remount); err == nil {
		err = merr
	}
	if err != nil {
		return err
	}
	if err := removeIfExists(dbIntentPath(r.in.Target)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(r.in.Target))
}

// finishDatabaseRestore does the switch phase from wherever it stopped.
func finishDatabaseRestore(in dbIntent, mount func(names []string) error) error {
	root := filepath.Dir(in.Target)
	if err := os.MkdirAll(in.Replaced, 0o755); err != nil {
		return err
	}
	for _, f := range in.Files {
		staged := filepath.Join(in.Stage, f)
		if _, err := os.Lstat(staged); err != nil {
			continue // moved in already
		}
		live, old := filepath.Join(in.Target, f), filepath.Join(in.Replaced, f)
		if _, err := os.Lstat(old); errors.Is(err, os.ErrNotExist) {
			if err := os.Rename(live, old); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("moving the replaced file %s to %s: %w", live, in.Replaced, err)
			}
			failpoint.Hit("restore/dbswitch/after-move-old")
		}
		if err := os.Rename(staged, live); err != nil {
			return fmt.Errorf("moving the restored file %s into %s: %w", f, in.Target, err)
		}
	}
	for _, d := range []string{in.Replaced, in.Target, root} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	failpoint.Hit("restore/dbswitch/after-move")
	if err := mount(in.Databases); err != nil {
		return fmt.Errorf("mounting the restored databases of %s: %w", in.Target, err)
	}
	failpoint.Hit("restore/dbswitch/after-mount")
	if err := os.RemoveAll(in.Stage); err != nil {
		return err
	}
	if err := removeIfExists(in.Stage + stagingLockSuffix); err != nil {
		return err
	}
	if err := removeIfExists(dbIntentPath(in.Target)); err != nil {
		return err
	}
	return syncDir(root)
}

// resolveDatabaseRestore finishes or undoes the database restore of the
// intent at path; the group is closed (its lock held).
func resolveDatabaseRestore(path string) (string, error) {
	root := filepath.Dir(path)
	b, err := os.ReadFile(path)
	var in dbIntent
	if err == nil {
		err = json.Unmarshal(b, &in)
	}
	if err != nil || in.ID == "" || filepath.Dir(in.Target) != root || filepath.Dir(in.Stage) != root || filepath.Dir(in.Replaced) != root {
		return "", fmt.Errorf("unreadable database restore intent %s (%v): check %s by hand", path, err, root)
	}
	for _, f := range in.Files {
		if f != filepath.Base(f) || !strings.HasSuffix(f, ".edb") && !strings.HasSuffix(f, ".stm") {
			return "", fmt.Errorf("database restore intent %s names file %q: check %s by hand", path, f, root)
		}
	}
	mount := func(names []string) error { return SetDismounted(in.Target, names, false) }
	dbs := strings.Join(in.Databases, ", ")
	if in.Phase == phaseSwitch {
		if err := finishDatabaseRestore(in, mount); err != nil {
			return "", err
		}
		return fmt.Sprintf("finished the interrupted restore of %s into %s (mounted; the files it replaced are kept in %s)", dbs, in.Target, in.Replaced), nil
	}
	if err := os.RemoveAll(in.Stage); err != nil {
		return "", err
	}
	if err := removeIfExists(in.Stage + stagingLockSuffix); err != nil {
		return "", err
	}
	if err := mount(in.Remount); err != nil {
		return "", err
	}
	if err := removeIfExists(path); err != nil {
		return "", err
	}
	if err := syncDir(root); err != nil {
		return "", err
	}
	return fmt.Sprintf("undid an interrupted restore of %s into %s: their files are unchanged and mounted again (restore again)", dbs, in.Target), nil
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
