package media

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapestream/tapestream/tapeformat"
)

// ErrWrongCartridge is wrapped by the error of a volume change that got
// only cartridges other than the one wanted (each was named and refused).
var ErrWrongCartridge = errors.New("wrong cartridge")

// maxRefusals bounds how many wrong cartridges one volume change refuses
// before it gives up: a changer script that keeps loading the wrong one
// must not loop forever.
const maxRefusals = 16

// ExpectedSet is what a catalog says about a set read from tape: its id,
// and the label of the cartridge each of its volumes is on (Labels[k-1]
// for volume k; "" where it is not known). A tape reader given it asks for
// each cartridge by label, and refuses a cartridge that is not the one
// (named in the refusal) instead of reading it as if it were.
type ExpectedSet struct {
	SetID  string
	Labels []string
}

func (e ExpectedSet) label(n int) string {
	if n >= 1 && n <= len(e.Labels) {
		return e.Labels[n-1]
	}
	return ""
}

// Labeler labels the cartridges a tape sink continues a set on, like a
// Bareos pool: a blank cartridge gets the pool's next label (Next), one
// labelled for the pool that holds nothing but its label keeps it; either
// way file 0 becomes a volume label naming the set and its volume number
// (VolumeLabel.SetID, SetVolume) and the set continues in file 1. A
// cartridge of another pool, or one holding sets or foreign data, is
// refused before anything is written on it, and another is asked for.
// With a Labeler, the first volume's cartridge must be labelled for the
// pool too (the scheduler labels a blank one before it opens the sink).
type Labeler struct {
	Pool  string
	SetID string
	// Next returns the label a blank cartridge gets; it returns the same
	// label until Labelled has recorded it.
	Next func() (string, error)
	// Labelled records a cartridge labelled for volume l.SetVolume of the
	// set; cartridge is the emulated cartridge number (0 for a real drive).
	// An error fails the set.
	Labelled func(l VolumeLabel, cartridge int) error
	// Now stamps new labels (nil: time.Now).
	Now func() time.Time
}

func (l *Labeler) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC()
	}
	return time.Now().UTC()
}

// wantVolume is the cartridge a volume change asks for.
type wantVolume struct {
	n     int    // volume number within the set (1-based)
	label string // the cartridge's label, when known ("" otherwise)
	setID string // the set read or written ("" when not known)
	write bool   // for writing: a blank cartridge (label is what it will get)
	pool  string // for writing: the pool whose cartridges are accepted
}

func (w wantVolume) String() string {
	what := fmt.Sprintf("volume %d", w.n)
	if w.setID != "" {
		what += " of set " + shortID(w.setID)
	}
	switch {
	case w.write && w.label != "":
		return fmt.Sprintf("a blank cartridge (to be labelled %s) or one of pool %q holding only its label, for %s", w.label, w.pool, what)
	case w.write:
		return "a blank cartridge for " + what
	case w.label != "":
		return w.label + " (" + what + ")"
	}
	return what
}

// known reports whether the reader knows what to accept: otherwise any
// cartridge is read, as before cartridges were labelled.
func (w wantVolume) known() bool { return w.label != "" || w.setID != "" }

// mismatch says why the cartridge whose file 0 is p0 (and, for a
// continuation after a label, whose file 1 is p1) is not the one a reader
// wants; "" when it is.
func (w wantVolume) mismatch(p0, p1 probed) string {
	if !w.known() {
		return ""
	}
	switch p0.content {
	case ContentBlank:
		return "it is blank"
	case ContentForeign:
		return "it holds data that is not tapestream's"
	case ContentSet:
		// An unlabelled continuation (written before every cartridge was
		// labelled): its set label says which set and volume it is.
		if w.label != "" {
			return "it has no volume label"
		}
		if w.n == 1 {
			return ""
		}
		return w.setMismatch(p0.set)
	}
	l := p0.label
	if w.label != "" && l.Label != w.label {
		return "it is " + l.String()
	}
	if w.n == 1 || w.setID == "" {
		return ""
	}
	if l.SetID != w.setID || l.SetVolume != w.n {
		if l.SetID == "" {
			return "it is " + l.String() + ", which holds no continued set"
		}
		return "it is " + l.String()
	}
	return w.setMismatch(p1.set)
}

// setMismatch checks the set label at the start of the volume's file
// (nil when it did not parse: the set reader checks the set id then).
func (w wantVolume) setMismatch(s *tapeformat.Label) string {
	if s == nil || w.setID == "" {
		return ""
	}
	if s.SetID != w.setID || s.Volume != w.n {
		return fmt.Sprintf("it holds volume %d of set %s", s.Volume, shortID(s.SetID))
	}
	return ""
}
