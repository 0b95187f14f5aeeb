package catalog

import (
	"sort"
	"time"
)

// Cartridge statuses (Volume.Status and Cartridge.Status).
const (
	CartridgeAppend     = "append"     // sets are appended at its end of data
	CartridgeFull       = "full"       // a set continued from it on another cartridge
	CartridgeRecyclable = "recyclable" // every set on it expired by retention
)

// CartridgePart is one volume of a set on a cartridge.
type CartridgePart struct {
	SetID      string    `json:"set_id"`
	Group      string    `json:"group"`
	Type       string    `json:"type"`
	Status     string    `json:"status"` // the set's
	Created    time.Time `json:"created"`
	Volume     int       `json:"volume"`  // the set's volume number on this cartridge
	Volumes    int       `json:"volumes"` // how many volumes the set has
	FileNumber int64     `json:"file_number"`
	Bytes      int64     `json:"bytes"`
}

// Cartridge is a labelled tape cartridge as the catalog knows it: its
// volume record and what the set records say is on it. Everything but the
// label's own fields is derived from the sets, so a catalog rebuilt from
// the cartridges lists the same.
type Cartridge struct {
	Label    string    `json:"label"`
	Pool     string    `json:"pool,omitempty"`
	Target   string    `json:"target"`
	Number   int       `json:"cartridge,omitempty"` // emulated tape: the cartridge image number
	Labelled time.Time `json:"labelled"`
	// Status is full when a set continued from it on another cartridge,
	// recyclable when every set on it expired by retention, else append.
	Status      string          `json:"status"`
	Bytes       int64           `json:"bytes"`
	LastWritten time.Time       `json:"last_written,omitzero"`
	Sets        []CartridgePart `json:"sets"`
}

// Cartridges lists the cartridges of vols with the sets on them, by label.
// A label that sets name but no volume record knows (a catalog from before
// continuation cartridges were labelled) is listed too.
func Cartridges(vols []*Volume, sets []*Set) []Cartridge {
	byLabel := map[string]*Cartridge{}
	for _, v := range vols {
		byLabel[v.Label] = &Cartridge{Label: v.Label, Pool: v.Pool, Target: v.Target, Number: v.Number, Labelled: v.Created.UTC()}
	}
	live := map[string]bool{}
	full := map[string]bool{}
	for _, s := range sets {
		for _, loc := range append([]Location{s.Location}, s.Copies...) {
			for i, tv := range loc.Tape {
				if tv.Label == "" {
					continue
				}
				c := byLabel[tv.Label]
				if c == nil {
					c = &Cartridge{Label: tv.Label, Target: loc.Target, Number: tv.Loaded}
					byLabel[tv.Label] = c
				}
				c.Sets = append(c.Sets, CartridgePart{SetID: s.ID, Group: s.Group, Type: s.Type.String(), Status: s.Status, Created: s.Created.UTC(),
					Volume: tv.Number, Volumes: len(loc.Tape), FileNumber: tv.FileNumber, Bytes: tv.Bytes})
				c.Bytes += tv.Bytes
				if s.Created.After(c.LastWritten) {
					c.LastWritten = s.Created.UTC()
				}
				if s.Status != StatusExpired {
					live[tv.Label] = true
				}
				if i < len(loc.Tape)-1 {
					full[tv.Label] = true
				}
			}
		}
	}
	out := make([]Cartridge, 0, len(byLabel))
	for _, c := range byLabel {
		switch {
		case len(c.Sets) > 0 && !live[c.Label]:
			c.Status = CartridgeRecyclable
		case full[c.Label]:
			c.Status = CartridgeFull
		default:
			c.Status = CartridgeAppend
		}
		sort.Slice(c.Sets, func(i, j int) bool {
			if c.Sets[i].FileNumber != c.Sets[j].FileNumber {
				return c.Sets[i].FileNumber < c.Sets[j].FileNumber
			}
			return c.Sets[i].SetID < c.Sets[j].SetID
		})
		if c.Sets == nil {
			c.Sets = []CartridgePart{}
		}
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}
