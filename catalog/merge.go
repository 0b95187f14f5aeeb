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
			keepDigests(s, o)
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

// keepDigests keeps the file digests of a cataloged set that a scan could
// not read: an encrypted set's are sealed, and a scan without its key
// finds the same files without them.
func keepDigests(s, o *Set) {
	if len(s.Files) != len(o.Files) {
		return
	}
	for i := range s.Files {
		f, of := &s.Files[i], o.Files[i]
		if f.BLAKE3 == "" && f.SHA256 == "" && f.Name == of.Name && f.Size == of.Size {
			f.BLAKE3, f.SHA256 = of.BLAKE3, of.SHA256
		}
	}
}
