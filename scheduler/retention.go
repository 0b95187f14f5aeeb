package scheduler

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
)

// applyRetention expires the chains of a job's group beyond
// keep_full_chains. The rules:
//
//   - chains are a full and everything depending on it (incrementals by
//     parent link, differentials); a chain whose full is not usable
//     (missing, expired) is not valid;
//   - the newest keep_full_chains valid chains are kept, so the newest
//     valid chain is never expired;
//   - every chain (valid or broken) that started before the oldest kept
//     chain expires with all its sets; so do failed attempts from before
//     it, and copies taken before it. Broken chains newer than the oldest
//     kept one are left alone;
//   - expiring a file set removes its files; a tape set is marked expired,
//     and a volume whose sets have all expired becomes recyclable.
//
// keep_full_chains = 0 keeps everything.
func (r *Runner) applyRetention(cat *catalog.Catalog, j *Job, group, sig string) ([]string, error) {
	keep := j.Retention.KeepFullChains
	if keep <= 0 {
		return nil, nil
	}
	all, err := cat.List(catalog.Filter{Job: j.Name, Group: group})
	if err != nil {
		return nil, err
	}
	sets := catalog.SameGroup(all, group, sig)
	chains := catalog.Chains(sets)
	var valid []*catalog.Chain
	for _, c := range chains {
		if c.Valid() {
			valid = append(valid, c)
		}
	}
	if len(valid) <= keep {
		if len(valid) == 0 {
			return nil, nil
		}
	}
	kept := valid
	if len(valid) > keep {
		kept = valid[len(valid)-keep:]
	}
	cutoff := kept[0].Start()
	keepSet := map[*catalog.Chain]bool{}
	for _, c := range kept {
		keepSet[c] = true
	}
	expire := map[string]*catalog.Set{}
	for _, c := range chains {
		if keepSet[c] || !c.Start().Before(cutoff) {
			continue
		}
		for _, s := range c.Sets() {
			if s.Status != catalog.StatusExpired {
				expire[s.ID] = s
			}
		}
	}
	for _, s := range sets {
		if (s.Status == catalog.StatusFailed || s.Type == ese.Copy && s.Status != catalog.StatusExpired) && s.Created.Before(cutoff) {
			expire[s.ID] = s
		}
	}
	if len(expire) == 0 {
		return nil, nil
	}
	var firstErr error
	var bucket *media.Bucket
	for id, s := range expire {
		switch s.Location.Kind {
		case "file":
			for _, p := range s.Location.Paths {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
					firstErr = err
				}
			}
		case "s3":
			if bucket == nil {
				b, err := media.OpenBucket(context.Background(), j.Destination.S3, j.s3Options(r.now()))
				if err != nil {
					return nil, err
				}
				bucket = b
			}
			// The last volume first: the first one present means the set is.
			for i := len(s.Location.Paths) - 1; i >= 0; i-- {
				if err := bucket.Delete(context.Background(), s.Location.Paths[i]); err != nil {
					// An Object Lock retention keeps it: the set stays
					// cataloged until a later run can delete it.
					delete(expire, id)
					if firstErr == nil {
						firstErr = err
					}
					break
				}
			}
		}
	}
	now := r.now().UTC()
	var ids []string
	err = cat.UpdateSets(func(s *catalog.Set) bool {
		if expire[s.ID] == nil {
			return false
		}
		s.Status, s.ExpiredAt = catalog.StatusExpired, now
		ids = append(ids, s.ID)
		return true
	})
	if err != nil {
		return ids, err
	}
	catalog.SortIDsByTime(ids, expire)
	if err := markRecyclable(cat); err != nil && firstErr == nil {
		firstErr = err
	}
	return ids, firstErr
}

// markRecyclable marks volumes all of whose sets have expired.
func markRecyclable(cat *catalog.Catalog) error {
	vols, err := cat.Volumes()
	if err != nil || len(vols) == 0 {
		return err
	}
	sets, err := cat.List(catalog.Filter{})
	if err != nil {
		return err
	}
	live := map[string]bool{}
	used := map[string]bool{}
	for _, s := range sets {
		for _, tv := range s.Location.Tape {
			if tv.Label == "" {
				continue
			}
			used[tv.Label] = true
			if s.Status != catalog.StatusExpired {
				live[tv.Label] = true
			}
		}
	}
	for _, v := range vols {
		if used[v.Label] && !live[v.Label] && v.Status != "recyclable" {
			v.Status = "recyclable"
			if err := cat.PutVolume(v); err != nil {
				return err
			}
		}
	}
	return nil
}
