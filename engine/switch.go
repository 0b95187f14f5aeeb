package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestream/tapestream/internal/failpoint"
	"github.com/tapestream/tapestream/internal/pidlock"
)

// A restore builds a storage group in a staging directory beside the live
// one and then switches it into place. The switch is crash-atomic: a crash
// at any step leaves the target holding the old group or the new one, and
// the next locker of the store or of the group (ResolveSwitches) finishes
// or undoes it:
//
//	1. STAGE/.switch-id       the switch's id, in the staged group (fsync)
//	2. ROOT/.switch-NAME.json the intent: stage, target, where the old group
//	                          goes (fsync, rename, fsync dir)
//	3. exchange STAGE and ROOT/NAME in one renameat2(RENAME_EXCHANGE)
//	   (a plain rename when there is no old group)
//	4. the old group, now at STAGE, becomes ROOT/.NAME.replaced-TIME-ID
//	5. remove the id and the intent
//
// Resolving an intent: the target holds the id → the exchange happened:
// finish steps 4-5 (roll forward); otherwise the target is the old group:
// remove the staged copy and the intent (roll back). The old group is
// never deleted: it may hold logs the restore did not replay.

const (
	switchIDFile  = ".switch-id"
	stagingPrefix = ".restore-"
	// A staging directory DIR is locked by DIR.lock beside it, taken before
	// DIR is made: a directory without a held lock is a crash's leftover,
	// never another restore's that is just starting.
	stagingLockSuffix = ".lock"
)

// switchIntent is ROOT/.switch-NAME.json.
type switchIntent struct {
	ID       string `json:"id"`
	Stage    string `json:"stage"`
	Target   string `json:"target"`
	Replaced string `json:"replaced"`
}

func intentPath(target string) string {
	return filepath.Join(filepath.Dir(target), ".switch-"+filepath.Base(target)+".json")
}

// Staging is a staging directory beside a store's groups, locked while a
// restore uses it (so that a concurrent opener does not take it for a
// crash's leftover).
type Staging struct {
	Dir  string
	lock *pidlock.Lock
}

// NewStaging makes a locked staging directory under root.
func NewStaging(root string) (*Staging, error) {
	for {
		dir := filepath.Join(root, stagingPrefix+newSwitchID()[:12])
		l, err := pidlock.Acquire(dir + stagingLockSuffix)
		if err != nil {
			return nil, err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			l.Release()
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return nil, err
		}
		return &Staging{Dir: dir, lock: l}, nil
	}
}

// Release drops the staging directory's lock (it is then a leftover unless
// it was switched into place or removed).
func (s *Staging) Release() {
	os.Remove(s.Dir + stagingLockSuffix)
	s.lock.Release()
}

// Remove removes the staging directory.
func (s *Staging) Remove() error {
	err := os.RemoveAll(s.Dir)
	s.Release()
	return err
}

// SwitchGroupDir puts the staged group in s into place at target, crash-
// atomically (see above), and returns where the old group went ("" if
// there was none).
func SwitchGroupDir(s *Staging, target string) (replaced string, err error) {
	root := filepath.Dir(target)
	id := newSwitchID()
	in := switchIntent{ID: id, Stage: s.Dir, Target: target}
	_, statErr := os.Lstat(target)
	exists := statErr == nil
	if exists {
		in.Replaced = filepath.Join(root, fmt.Sprintf(".%s.replaced-%s-%s", filepath.Base(target), time.Now().UTC().Format("20060102T150405"), id[:8]))
	}
	if err := writeFileSync(filepath.Join(s.Dir, switchIDFile), []byte(id)); err != nil {
		return "", err
	}
	if err := syncDir(s.Dir); err != nil {
		return "", err
	}
	b, _ := json.Marshal(in)
	if err := writeFileAtomicOS(intentPath(target), b); err != nil {
		return "", err
	}
	failpoint.Hit("restore/switch/after-intent")
	if exists {
		err = unix.Renameat2(unix.AT_FDCWD, s.Dir, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE)
	} else {
		err = unix.Renameat2(unix.AT_FDCWD, s.Dir, unix.AT_FDCWD, target, unix.RENAME_NOREPLACE)
	}
	if err != nil {
		os.Remove(intentPath(target))
		os.Remove(filepath.Join(s.Dir, switchIDFile))
		return "", fmt.Errorf("switching the restored group into %s: %w", target, err)
	}
	if err := syncDir(root); err != nil {
		return "", err
	}
	failpoint.Hit("restore/switch/after-exchange")
	if err := finishSwitch(in); err != nil {
		return "", err
	}
	s.Release()
	return in.Replaced, nil
}

// finishSwitch does steps 4-5 of a switch whose exchange happened.
func finishSwitch(in switchIntent) error {
	root := filepath.Dir(in.Target)
	if in.Replaced != "" {
		if _, err := os.Lstat(in.Stage); err == nil {
			if err := os.Rename(in.Stage, in.Replaced); err != nil {
				return fmt.Errorf("moving the replaced group to %s: %w", in.Replaced, err)
			}
		}
	}
	if err := os.Remove(filepath.Join(in.Target, switchIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := syncDir(root); err != nil {
		return err
	}
	failpoint.Hit("restore/switch/before-intent-removed")
	if err := os.Remove(intentPath(in.Target)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(root)
}

// ResolveSwitches finishes or undoes the switches a crash interrupted
// under root (of whole groups, above, and of some databases of a group,
// dbswitch.go) and removes staging directories nobody holds. It returns one
// line per thing it did, for the caller to report. The caller holds the
// store's lock, exclusive or shared; held names the groups whose locks it
// holds (LockGroup). A group another process holds is left alone: its
// restore is alive.
func ResolveSwitches(root string, held ...string) ([]string, error) {
	root = filepath.Clean(root) // as the intents name it
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var done []string
	for _, e := range ents {
		name := e.Name()
		group := intentGroup(name)
		if group == "" {
			continue
		}
		release, ok, err := lockForResolve(root, group, held)
		if err != nil {
			return done, err
		}
		if !ok {
			continue
		}
		var msg string
		if strings.HasPrefix(name, dbIntentPrefix) {
			msg, err = resolveDatabaseRestore(filepath.Join(root, name))
		} else {
			msg, err = resolveGroupSwitch(root, name)
		}
		release()
		if err != nil {
			return done, err
		}
		done = append(done, msg)
	}
	return resolveStaging(root, done)
}

// resolveGroupSwitch finishes or undoes the group switch of intent file
// name (see above).
func resolveGroupSwitch(root, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, name))
	var in switchIntent
	if err == nil {
		err = json.Unmarshal(b, &in)
	}
	if err != nil || in.ID == "" || filepath.Dir(in.Target) != root || filepath.Dir(in.Stage) != root {
		return "", fmt.Errorf("unreadable restore switch intent %s (%v): check %s by hand", filepath.Join(root, name), err, root)
	}
	id, _ := os.ReadFile(filepath.Join(in.Target, switchIDFile))
	if string(id) == in.ID {
		if err := finishSwitch(in); err != nil {
			return "", err
		}
		msg := fmt.Sprintf("finished the interrupted switch of a restored storage group into %s", in.Target)
		if in.Replaced != "" {
			msg += "; the group it replaced is kept in " + in.Replaced
		}
		return msg, nil
	}
	if err := os.RemoveAll(in.Stage); err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(root, name)); err != nil {
		return "", err
	}
	if err := syncDir(root); err != nil {
		return "", err
	}
	return fmt.Sprintf("undid an interrupted restore into %s: the group there is unchanged (the staged copy was removed; restore again)", in.Target), nil
}

// resolveStaging removes the staging directories whose restore is gone.
func resolveStaging(root string, done []string) ([]string, error) {
	// Staging directories whose restore is gone (killed before its switch).
	ents, err := os.ReadDir(root)
	if err != nil {
		return done, err
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix) && strings.HasSuffix(e.Name(), stagingLockSuffix) {
			// The lock of a staging directory that is gone.
			lock := filepath.Join(root, e.Name())
			if _, err := os.Lstat(strings.TrimSuffix(lock, stagingLockSuffix)); errors.Is(err, os.ErrNotExist) {
				if l, err := pidlock.Acquire(lock); err == nil {
					os.Remove(lock)
					l.Release()
				}
			}
			continue
		}
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagingPrefix) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		l, err := pidlock.Acquire(dir + stagingLockSuffix)
		if err != nil {
			var held *pidlock.HeldError
			if errors.As(err, &held) {
				continue // a restore in progress
			}
			return done, err
		}
		err = os.RemoveAll(dir)
		os.Remove(dir + stagingLockSuffix)
		l.Release()
		if err != nil {
			return done, err
		}
		done = append(done, fmt.Sprintf("removed %s, the staging directory of a restore that was killed before its switch (its target was not touched)", dir))
	}
	return done, nil
}

func newSwitchID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func writeFileSync(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFileAtomicOS replaces name durably: a temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomicOS(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := writeFileSync(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
