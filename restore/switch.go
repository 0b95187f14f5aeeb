package restore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
)

// copyContinuingLogs copies the target's closed generations from high+1
// on, and its current log, into dst when they belong to the same log
// stream and continue without a gap.
func copyContinuingLogs(target, dst string, cfg *engine.GroupConfig, high uint32) (int, error) {
	tc, err := engine.ReadGroupConfig(target)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil || tc.Signature != cfg.Signature {
		return 0, nil
	}
	prefix := cfg.Prefix()
	gens, hasCur, err := wal.ListGenerations(vfs.OS, target, prefix)
	if err != nil {
		return 0, err
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	next := high + 1
	n := 0
	for _, g := range gens {
		if g < next {
			continue
		}
		if g != next {
			break
		}
		if err := copyFile(filepath.Join(target, wal.GenName(prefix, g)), filepath.Join(dst, wal.GenName(prefix, g))); err != nil {
			return n, err
		}
		next++
		n++
	}
	if hasCur {
		cur := filepath.Join(target, wal.CurrentName(prefix))
		if h, err := wal.ReadHeader(vfs.OS, cur); err == nil && h.Gen == next {
			if err := copyFile(cur, filepath.Join(dst, wal.CurrentName(prefix))); err != nil {
				return n, err
			}
			n++
		}
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

// switchIntoPlace replaces target with stage: two renames in one
// directory. A replaced group is kept beside it (its name is returned), not
// deleted: it may hold logs the restore did not replay, and a restore
// never deletes logs a set did not capture.
func switchIntoPlace(stage, target string) (replaced string, err error) {
	if _, err := os.Stat(target); err == nil {
		replaced = filepath.Join(filepath.Dir(target), fmt.Sprintf(".%s.replaced-%s", filepath.Base(target), time.Now().UTC().Format("20060102T150405")))
		if err := os.Rename(target, replaced); err != nil {
			return "", err
		}
	}
	if err := os.Rename(stage, target); err != nil {
		if replaced != "" {
			os.Rename(replaced, target)
		}
		return "", err
	}
	if d, err := os.Open(filepath.Dir(target)); err == nil {
		d.Sync()
		d.Close()
	}
	return replaced, nil
}
