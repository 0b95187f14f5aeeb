package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/tapestream/tapestream/internal/pidlock"
)

// MaxGroups is the number of storage groups (ESE instances) a server holds.
const MaxGroups = 16

// Server is a store root directory holding up to 16 storage groups, each in
// its own subdirectory. Only one process may have a store open.
type Server struct {
	root    string
	opts    Options
	release func()

	mu     sync.Mutex
	groups map[string]*Group
	order  []string
	notes  []string
}

// Notes says what opening the store repaired (an interrupted restore
// finished or undone, leftovers removed), for the operator.
func (s *Server) Notes() []string { return s.notes }

// LockError names the process holding a store.
type LockError struct {
	Root string
	PID  int
}

func (e *LockError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("store %s is in use by process %d (lock file %s)", e.Root, e.PID, filepath.Join(e.Root, lockFile))
	}
	return fmt.Sprintf("store %s is in use by another process (lock file %s)", e.Root, filepath.Join(e.Root, lockFile))
}

func (e *LockError) Unwrap() error { return ErrLocked }

const lockFile = "LOCK"

// LockStore takes the store's exclusive lock; release it with the returned
// function. The holder's pid is written into the lock file so a second
// opener can name it.
func LockStore(root string) (release func(), err error) {
	return lockStore(root, pidlock.Acquire)
}

// GroupSpec describes a storage group to create.
type GroupSpec struct {
	Name            string
	Databases       []string
	Streaming       bool // give every database a .stm streaming file
	LogSize         int64
	CircularLogging bool
}

// InitStore creates a store root and its storage groups.
func InitStore(root string, specs []GroupSpec, opts Options) error {
	opts.fill()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	release, err := LockStore(root)
	if err != nil {
		return err
	}
	defer release()
	existing, err := ListGroups(root)
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for _, c := range existing {
		used[c.ID] = true
	}
	if len(existing)+len(specs) > MaxGroups {
		return fmt.Errorf("store %s would hold %d storage groups; the limit is %d", root, len(existing)+len(specs), MaxGroups)
	}
	for _, s := range specs {
		if err := validName(s.Name); err != nil {
			return fmt.Errorf("storage group: %w", err)
		}
		id := 0
		for used[id] {
			id++
		}
		used[id] = true
		cfg := GroupConfig{Name: s.Name, ID: id, LogSize: s.LogSize, CircularLogging: s.CircularLogging}
		for _, db := range s.Databases {
			cfg.Databases = append(cfg.Databases, DBConfig{Name: db, Streaming: s.Streaming})
		}
		if err := CreateGroup(filepath.Join(root, s.Name), cfg, opts); err != nil {
			return err
		}
	}
	return nil
}

// ListGroups reads the configuration of every storage group under root.
func ListGroups(root string) ([]GroupConfig, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []GroupConfig
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := readGroupConfig(osFS(), filepath.Join(root, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CheckStore returns a *NotStoreError unless root is a directory holding
// at least one storage group. It writes nothing: opening a store takes its
// lock, which creates the LOCK file, and a mistyped path must not turn into
// a directory with a LOCK file in it.
func CheckStore(root string) error {
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &NotStoreError{Root: root, Reason: "no such directory"}
	case err != nil:
		return err
	case !st.IsDir():
		return &NotStoreError{Root: root, Reason: "not a directory"}
	}
	if len(groupDirs(root)) == 0 {
		return &NotStoreError{Root: root, Reason: "no storage group in it"}
	}
	return nil
}

// groupDirs names the directories under root that hold a group.json,
// whether or not it parses: a damaged configuration of one group must not
// keep the repair tools away from the others.
func groupDirs(root string) []string {
	ents, _ := os.ReadDir(root)
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), groupConfigFile)); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// CheckGroup is CheckStore, and then a *NoGroupError unless the store has
// a storage group of that name (a directory with a group.json; its
// content is the opener's to judge). It writes nothing.
func CheckGroup(root, group string) error {
	if err := CheckStore(root); err != nil {
		return err
	}
	have := groupDirs(root)
	if slices.Contains(have, group) {
		return nil
	}
	return &NoGroupError{Root: root, Group: group, Have: have}
}

// OpenServer locks root and opens (recovering) every storage group in it.
func OpenServer(root string, opts Options) (*Server, error) {
	opts.fill()
	if err := CheckStore(root); err != nil {
		return nil, err
	}
	release, err := LockStore(root)
	if err != nil {
		return nil, err
	}
	// A restore that a crash interrupted in its switch is finished or
	// undone before anything looks at the groups.
	notes, err := ResolveSwitches(root)
	if err != nil {
		release()
		return nil, err
	}
	cfgs, err := ListGroups(root)
	if err != nil {
		release()
		return nil, err
	}
	s := &Server{root: root, opts: opts, groups: map[string]*Group{}, notes: notes}
	for _, c := range cfgs {
		g, err := OpenGroup(filepath.Join(root, c.Name), opts)
		if err != nil {
			s.closeGroups()
			release()
			return nil, err
		}
		s.groups[c.Name] = g
		s.order = append(s.order, c.Name)
	}
	s.release = release
	return s, nil
}

// Root is the store directory.
func (s *Server) Root() string { return s.root }

// Group returns an open storage group by name.
func (s *Server) Group(name string) (*Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.groups[name]; ok {
		return g, nil
	}
	return nil, &NoGroupError{Root: s.root, Group: name, Have: slices.Clone(s.order)}
}

// Groups returns the open storage groups in id order.
func (s *Server) Groups() []*Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Group, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.groups[n])
	}
	return out
}

func (s *Server) closeGroups() error {
	var first error
	for _, n := range s.order {
		if err := s.groups[n].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close shuts every group down cleanly and releases the lock.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeGroups()
	if s.release != nil {
		s.release()
		s.release = nil
	}
	return err
}

// DetachGroup closes a storage group cleanly and removes it from the
// server (a dismount of the whole group, for a restore into it). It is
// refused while a backup session holds the group.
func (s *Server) DetachGroup(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if !ok {
		return &NoGroupError{Root: s.root, Group: name, Have: slices.Clone(s.order)}
	}
	g.mu.Lock()
	busy := g.backup != nil
	g.mu.Unlock()
	if busy {
		return g.eseErr(CodeBackupInProgress, nil, "cannot dismount the group during a backup")
	}
	if err := g.Close(); err != nil {
		return err
	}
	delete(s.groups, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	return nil
}

// AttachGroup opens (recovering) the storage group in root/name and
// serves it again.
func (s *Server) AttachGroup(name string) (*Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[name]; ok {
		return nil, fmt.Errorf("storage group %s is already mounted", name)
	}
	g, err := OpenGroup(filepath.Join(s.root, name), s.opts)
	if err != nil {
		return nil, err
	}
	s.groups[name] = g
	s.order = append(s.order, name)
	return g, nil
}
