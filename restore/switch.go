package restore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
)

// laterLogs is what a target group holds beyond a chain: the log
// generations that continue the chain's last one without a gap (replayed:
// point of failure), and the newest generation it has at all. Commits in
// a generation past the continuing ones are commits the restore would roll
// back.
type laterLogs struct {
	exists     bool     // the target is a storage group
	sameStream bool     // of the same log stream (signature) as the chain
	continuing []uint32 // closed generations high+1, high+2, ... without a gap
	current    bool     // its current log continues them
	newest     uint32   // its newest generation (current log included), 0 if none
}

// reached is the last generation a point-of-failure replay would reach.
func (l laterLogs) reached(high uint32) uint32 {
	r := high + uint32(len(l.continuing))
	if l.current {
		r++
	}
	return r
}

// inspectTarget looks at the group directory a restore would replace.
func inspectTarget(target string, cfg *engine.GroupConfig, high uint32) (laterLogs, error) {
	var l laterLogs
	tc, err := engine.ReadGroupConfig(target)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("storage group directory %s: %w", target, err)
	}
	l.exists, l.sameStream = true, tc.Signature == cfg.Signature
	gens, hasCur, err := wal.ListGenerations(vfs.OS, target, tc.Prefix())
	if err != nil {
		return l, err
	}
	slices.Sort(gens)
	if len(gens) > 0 {
		l.newest = gens[len(gens)-1]
	}
	var curGen uint32
	if hasCur {
		h, err := wal.ReadHeader(vfs.OS, filepath.Join(target, wal.CurrentName(tc.Prefix())))
		if err != nil {
			return l, fmt.Errorf("storage group %s: current log: %w", target, err)
		}
		curGen = h.Gen
		l.newest = max(l.newest, curGen)
	}
	if !l.sameStream {
		return l, nil
	}
	next := high + 1
	for _, g := range gens {
		if g < next {
			continue
		}
		if g != next {
			break
		}
		l.continuing = append(l.continuing, g)
		next++
	}
	l.current = hasCur && curGen == next
	return l, nil
}

// laterLogsInto puts the target's continuing generations and a copy of
// its current log (the group appends to it) into dst. Copied into the
// staged group's own directory, they are the group's logs after the
// restore, as they were the old group's (no log that is in no set is ever
// dropped). With link, closed generations are hard links instead (they
// never change): logs for a recovery of some databases, which the group
// keeps.
func laterLogsInto(target, dst, prefix string, l laterLogs, link bool) (int, error) {
	n := 0
	for _, g := range l.continuing {
		from, to := filepath.Join(target, wal.GenName(prefix, g)), filepath.Join(dst, wal.GenName(prefix, g))
		if !link || os.Link(from, to) != nil {
			if err := copyFile(from, to); err != nil {
				return n, err
			}
		}
		n++
	}
	if l.current {
		if err := copyFile(filepath.Join(target, wal.CurrentName(prefix)), filepath.Join(dst, wal.CurrentName(prefix))); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func moveLogs(from, to string) error {
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(from)
}
