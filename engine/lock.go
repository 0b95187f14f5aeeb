package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tapestream/tapestream/internal/pidlock"
)

// Locks of a store, per storage group (seed 003: "restore multiple
// instances in parallel … the entire server can be restored at the same
// time"):
//
//	ROOT/LOCK             exclusive: a process that opens the whole store
//	                      (OpenServer: a store server, an in-process backup;
//	                      InitStore). Shared: every command that works on
//	                      one group, so that none runs beside a server.
//	ROOT/NAME.lock        exclusive: the one command working on group NAME
//	                      (a restore into it, store check/dump/load/mount…)
//	ROOT/.instance-N.lock a restore creating a new group with instance id N,
//	                      until the group is in place (ReserveInstance)
//
// So restores of different groups run at the same time, in one process or
// in several, and a second command on the same group is refused naming the
// process that holds it.

// GroupLockError names the process working on a storage group.
type GroupLockError struct {
	Root, Group string
	PID         int
}

func (e *GroupLockError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("storage group %s of store %s is in use by %s (lock file %s)", e.Group, e.Root, who, groupLockPath(e.Root, e.Group))
}

func (e *GroupLockError) Unwrap() error { return ErrLocked }

func groupLockPath(root, name string) string { return filepath.Join(root, name+".lock") }

// LockStoreShared takes the store's lock shared: no process has the whole
// store open, and none can open it until release; commands on its groups
// (LockGroup) may run beside each other.
func LockStoreShared(root string) (release func(), err error) {
	return lockStore(root, pidlock.AcquireShared)
}

// lockStore takes the store's LOCK file with acquire (exclusive or
// shared); a holder is named by a *LockError.
func lockStore(root string, acquire func(string) (*pidlock.Lock, error)) (release func(), err error) {
	l, err := acquire(filepath.Join(root, lockFile))
	var held *pidlock.HeldError
	if errors.As(err, &held) {
		return nil, &LockError{Root: root, PID: held.PID}
	}
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// LockGroup takes what a command working on storage group name needs: the
// store's lock shared and the group's own lock. Resolve the group's
// interrupted restores with ResolveSwitches(root, name) before looking at
// it.
func LockGroup(root, name string) (release func(), err error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("storage group: %w", err)
	}
	relStore, err := LockStoreShared(root)
	if err != nil {
		return nil, err
	}
	l, err := lockGroupFile(root, name)
	if err != nil {
		relStore()
		return nil, err
	}
	return func() { l.Release(); relStore() }, nil
}

// LockGroupOnly takes the lock of one storage group in a store whose lock
// the caller holds (a server working on one of its groups, a restore
// that learns its target's name from a set's label).
func LockGroupOnly(root, name string) (release func(), err error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("storage group: %w", err)
	}
	l, err := lockGroupFile(root, name)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

func lockGroupFile(root, name string) (*pidlock.Lock, error) {
	l, err := pidlock.Acquire(groupLockPath(root, name))
	var held *pidlock.HeldError
	if errors.As(err, &held) {
		return nil, &GroupLockError{Root: root, Group: name, PID: held.PID}
	}
	return l, err
}

const instancePrefix = ".instance-"

// ReserveInstance picks the instance id (0-15: log prefix E00-E0F) of a
// storage group a restore is about to create under root: preferred (the
// id of the group the sets came from) when no group of the store has it
// and no other restore reserved it, else the lowest free one. A store has
// at most MaxGroups groups, so when every id is taken the restore is
// refused. The reservation is held until release, which the caller calls
// once the new group is in place (its group.json then carries the id) or
// given up. The caller holds the store's lock (shared or exclusive).
func ReserveInstance(root string, preferred int) (id int, release func(), err error) {
	cands := []int{}
	if preferred >= 0 && preferred < MaxGroups {
		cands = append(cands, preferred)
	}
	for i := range MaxGroups {
		if i != preferred {
			cands = append(cands, i)
		}
	}
	used := func() (map[int]string, error) {
		cfgs, err := ListGroups(root)
		if err != nil {
			return nil, err
		}
		m := map[int]string{}
		for _, c := range cfgs {
			m[c.ID] = c.Name
		}
		return m, nil
	}
	ids, err := used()
	if err != nil {
		return 0, nil, err
	}
	busy := 0
	for _, id := range cands {
		if _, ok := ids[id]; ok {
			continue
		}
		l, err := pidlock.Acquire(filepath.Join(root, fmt.Sprintf("%s%X.lock", instancePrefix, id)))
		if err != nil {
			var held *pidlock.HeldError
			if errors.As(err, &held) {
				busy++ // another restore is creating a group with it
				continue
			}
			return 0, nil, err
		}
		// A group may have taken it between the listing and the lock.
		if ids, err = used(); err != nil {
			l.Release()
			return 0, nil, err
		}
		if _, ok := ids[id]; ok {
			l.Release()
			continue
		}
		return id, l.Release, nil
	}
	return 0, nil, fmt.Errorf("store %s holds %d storage groups and %d more are being restored: the limit is %d (instance ids E00-E0F); restore into another store or remove a group", root, len(ids), busy, MaxGroups)
}

// intentGroup is the group an intent file names (.switch-NAME.json,
// .dbswitch-NAME.json), "" for any other file.
func intentGroup(file string) string {
	for _, p := range []string{".switch-", dbIntentPrefix} {
		if rest, ok := strings.CutPrefix(file, p); ok && strings.HasSuffix(rest, ".json") {
			return strings.TrimSuffix(rest, ".json")
		}
	}
	return ""
}

// lockForResolve takes the lock of group name unless the caller holds it
// (held); a group another process holds is not resolved (its restore is
// alive): ok false.
func lockForResolve(root, name string, held []string) (release func(), ok bool, err error) {
	if slices.Contains(held, name) {
		return func() {}, true, nil
	}
	if validName(name) != nil {
		return nil, false, fmt.Errorf("restore intent for %q in %s: not a storage group name; check %s by hand", name, root, root)
	}
	l, err := lockGroupFile(root, name)
	var gl *GroupLockError
	if errors.As(err, &gl) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return l.Release, true, nil
}

// removeIfExists removes name, ignoring its absence.
func removeIfExists(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
