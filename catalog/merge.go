package catalog

import (
	"errors"
	"os"
)

// Merge writes scanned sets (and a volume) into the catalog. A set already
// cataloged keeps its job, promotion reason and (if expired) status;
// its location and content are replaced by what the scan found. Chain
// roots (FullID) are recomputed over the whole catalog.
func (c *Catalog) Merge(sets []*Set, vol *Volume) (added, updated int, err error) {
	existing, err := c.List(Filter{})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	old := NewIndex(existing)
	all := NewIndex(existing)
	for _, s := range sets {
		if o := old[s.ID]; o != nil {
			if s.Job == "" {
				s.Job = o.Job
			}
			s.Promoted = o.Promoted
			if o.Status == StatusExpired && s.Status == StatusComplete {
				// still on the tape, but retention let it go
				s.Status, s.ExpiredAt = o.Status, o.ExpiredAt
			}
			updated++
		} else {
			added++
		}
		all[s.ID] = s
	}
	for _, s := range sets {
		s.FullID = all.FullOf(s)
		if err := c.PutSet(s); err != nil {
			return added, updated, err
		}
	}
	if vol != nil {
		if v, err := c.GetVolume(vol.Label); err == nil {
			vol.Full, vol.Status, vol.LastUsed = v.Full, v.Status, v.LastUsed
		}
		if err := c.PutVolume(vol); err != nil {
			return added, updated, err
		}
	}
	return added, updated, nil
}
