package restore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat"
)

// The links between log-only sets are checked from their labels, before
// anything is written: a gap names the missing generations, an overlap is
// accepted (the copies are compared as they are read), a set ending before
// the one it follows is out of order, and labels without a range (fulls,
// older sets) are checked later from the manifests.
func TestValidateLabelRanges(t *testing.T) {
	lbl := func(id, typ string, lo, hi uint32) tapeformat.Label {
		l := tapeformat.Label{SetID: id, SetType: typ, Extra: map[string]string{}}
		if lo != 0 {
			l.Extra[tapeformat.ExtraLogFirst], l.Extra[tapeformat.ExtraLogLast] = fmt.Sprint(lo), fmt.Sprint(hi)
		}
		return l
	}
	full := lbl("F", tapeformat.SetFull, 0, 0)
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
	for _, extra := range []map[string]string{{"log_first_generation": "x", "log_last_generation": "9"}, {"log_first_generation": "9", "log_last_generation": "3"}, {"log_first_generation": "0", "log_last_generation": "3"}} {
		if _, _, ok := LabelLogRange(tapeformat.Label{Extra: extra}); ok {
			t.Errorf("label extra %v parsed as a range", extra)
		}
	}
}
