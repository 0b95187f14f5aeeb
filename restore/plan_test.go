package restore

import (
	"strings"
	"testing"

	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/tapeformat"
)

// The links between log-only sets are checked from their labels, before
// anything is written: a gap names the missing generations, an overlap is
// accepted (the copies are compared as they are read), a set ending before
// the one it follows is out of order, and labels without a range (fulls,
// older sets) are checked later from the manifests.
func TestValidateLabelRanges(t *testing.T) {
	lbl := func(id string, typ ese.BackupType, lo, hi uint32) tapeformat.Label {
		return tapeformat.Label{SetID: id, SetType: typ, LogFirst: lo, LogLast: hi}
	}
	full := lbl("F", ese.Full, 0, 0)
	for _, c := range []struct {
		sets []tapeformat.Label
		want string
	}{
		{[]tapeformat.Label{full, lbl("I1", "incremental", 3, 9), lbl("I2", "incremental", 10, 14)}, ""},
		{[]tapeformat.Label{full, lbl("I1", "incremental", 3, 9), lbl("I2", "incremental", 8, 14)}, ""}, // overlap
		{[]tapeformat.Label{full, lbl("I1", "incremental", 3, 9), lbl("I3", "incremental", 15, 20)}, "generations 10-14 are missing"},
		{[]tapeformat.Label{full, lbl("I1", "incremental", 3, 9), lbl("I0", "incremental", 2, 4)}, "wrong order"},
		{[]tapeformat.Label{full, lbl("I1", "incremental", 0, 0), lbl("I3", "incremental", 15, 20)}, ""}, // no range: the manifests decide
	} {
		err := validateLabelRanges(c.sets)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.sets, err, c.want)
		}
	}
	for _, r := range [][2]uint32{{9, 3}, {0, 3}} {
		if _, _, ok := LabelLogRange(tapeformat.Label{LogFirst: r[0], LogLast: r[1]}); ok {
			t.Errorf("label range %v taken as a range", r)
		}
	}
}
