package catalog

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/tapestream/tapestream/ese"
)

// Present reports whether a set's data is still where the catalog says,
// at its location or one of its copies (see Available).
func Present(s *Set) bool {
	_, ok := Available(s)
	return ok
}

// Available returns the first place that holds the set: its location, else
// a copy. A file set is there when every file exists; tape and S3 sets are
// trusted (reading a tape or an object to check it is a verify, not a
// lookup).
func Available(s *Set) (Location, bool) {
	for _, l := range append([]Location{s.Location}, s.Copies...) {
		if l.Kind != "file" {
			return l, true
		}
		ok := len(l.Paths) > 0
		for _, p := range l.Paths {
			if _, err := os.Stat(p); err != nil {
				ok = false
			}
		}
		if ok {
			return l, true
		}
	}
	return Location{}, false
}

// Usable reports whether a set can take part in a restore: complete and
// present.
func Usable(s *Set) error {
	switch {
	case s.Status != StatusComplete:
		return fmt.Errorf("set %s (%s of %s) is %s", s.ID, s.Type, s.Created.Format(time.RFC3339), s.Status)
	case !Present(s):
		return fmt.Errorf("set %s (%s of %s) is missing: %v", s.ID, s.Type, s.Created.Format(time.RFC3339), s.Location.Paths)
	}
	return nil
}

// ErrBrokenChain reports a chain that cannot be restored.
var ErrBrokenChain = errors.New("broken chain")

// Index maps set ids to sets.
type Index map[string]*Set

// NewIndex indexes sets by id.
func NewIndex(sets []*Set) Index {
	ix := Index{}
	for _, s := range sets {
		ix[s.ID] = s
	}
	return ix
}

// Path follows parent links from set id back to its full and returns the
// restore order (full first). Every set on the way must be usable.
func (ix Index) Path(id string) ([]*Set, error) {
	var rev []*Set
	seen := map[string]bool{}
	for cur := id; ; {
		s := ix[cur]
		if s == nil {
			return nil, fmt.Errorf("%w: set %s is not in the catalog", ErrBrokenChain, cur)
		}
		if seen[cur] {
			return nil, fmt.Errorf("%w: parent loop at set %s", ErrBrokenChain, cur)
		}
		seen[cur] = true
		if err := Usable(s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBrokenChain, err)
		}
		rev = append(rev, s)
		if s.Type == ese.Full || s.Type == ese.Copy {
			break
		}
		if s.ParentID == "" {
			return nil, fmt.Errorf("%w: %s set %s names no parent set", ErrBrokenChain, s.Type, s.ID)
		}
		cur = s.ParentID
	}
	slices.Reverse(rev)
	return rev, nil
}

// FullOf returns the id of the full a set's chain starts with, following
// parent links through the index ("" if unknown).
func (ix Index) FullOf(s *Set) string {
	seen := map[string]bool{}
	for cur := s; cur != nil && !seen[cur.ID]; cur = ix[cur.ParentID] {
		seen[cur.ID] = true
		if cur.Type == ese.Full {
			return cur.ID
		}
		if cur.ParentID == "" {
			break
		}
	}
	return s.FullID
}

// Chain is a full set and every set that depends on it.
type Chain struct {
	Full    *Set   // nil when the full is not in the catalog at all
	FullID  string //
	Members []*Set // dependents (incrementals, differentials), oldest first
}

// Valid reports whether the chain's full is usable.
func (c *Chain) Valid() bool { return c.Full != nil && Usable(c.Full) == nil }

// Sets returns the full (if known) and its members.
func (c *Chain) Sets() []*Set {
	var out []*Set
	if c.Full != nil {
		out = append(out, c.Full)
	}
	return append(out, c.Members...)
}

// Start is the chain's start time (its full's, else its oldest member's).
func (c *Chain) Start() time.Time {
	if c.Full != nil {
		return c.Full.Created
	}
	if len(c.Members) > 0 {
		return c.Members[0].Created
	}
	return time.Time{}
}

// Chains groups the full backups of one storage group and their
// dependents, oldest chain first. Failed sets, which belong to no chain,
// and copies are left out.
func Chains(sets []*Set) []*Chain {
	ix := NewIndex(sets)
	byFull := map[string]*Chain{}
	var order []*Chain
	get := func(id string) *Chain {
		if c := byFull[id]; c != nil {
			return c
		}
		c := &Chain{FullID: id}
		byFull[id] = c
		order = append(order, c)
		return c
	}
	ordered := append([]*Set(nil), sets...)
	SortSets(ordered)
	for _, s := range ordered {
		if s.Status == StatusFailed || s.Type == ese.Copy {
			continue
		}
		if s.Type == ese.Full {
			get(s.ID).Full = s
			continue
		}
		fid := ix.FullOf(s)
		if fid == "" {
			fid = "?" + s.ID // orphan: a chain of its own without a full
		}
		c := get(fid)
		c.Members = append(c.Members, s)
	}
	slices.SortStableFunc(order, func(a, b *Chain) int { return a.Start().Compare(b.Start()) })
	return order
}

// SameGroup selects the sets of storage group group (and signature, when
// both sides know it: two stores may have groups of the same name).
func SameGroup(sets []*Set, group, signature string) []*Set {
	var out []*Set
	for _, s := range sets {
		if s.Group != group {
			continue
		}
		if signature != "" && s.GroupSignature != "" && s.GroupSignature != signature {
			continue
		}
		out = append(out, s)
	}
	return out
}

// RestoreChain picks the sets to restore group as of time at (zero: the
// newest): the newest usable set created at or before at whose whole path
// back to its full is usable, and that path (full, then incrementals, or
// full and one differential).
func RestoreChain(sets []*Set, group string, at time.Time) ([]*Set, error) {
	gs := SameGroup(sets, group, "")
	if len(gs) == 0 {
		return nil, fmt.Errorf("%w: no set of storage group %s in the catalog", ErrNotFound, group)
	}
	ix := NewIndex(gs)
	cands := append([]*Set(nil), gs...)
	SortSets(cands)
	var firstErr error
	for i := len(cands) - 1; i >= 0; i-- {
		s := cands[i]
		if s.Status != StatusComplete {
			continue
		}
		if !at.IsZero() && s.Created.After(at) {
			continue
		}
		path, err := ix.Path(s.ID)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return path, nil
	}
	when := "now"
	if !at.IsZero() {
		when = at.Format(time.RFC3339)
	}
	if firstErr != nil {
		return nil, fmt.Errorf("no restorable chain of storage group %s as of %s (newest problem: %v)", group, when, firstErr)
	}
	return nil, fmt.Errorf("%w: no complete set of storage group %s created at or before %s", ErrNotFound, group, when)
}

// SortIDsByTime orders set ids by their sets' creation time.
func SortIDsByTime(ids []string, sets map[string]*Set) {
	var ss []*Set
	for _, id := range ids {
		if s := sets[id]; s != nil {
			ss = append(ss, s)
		}
	}
	SortSets(ss)
	if len(ss) != len(ids) {
		return
	}
	for i, s := range ss {
		ids[i] = s.ID
	}
}
