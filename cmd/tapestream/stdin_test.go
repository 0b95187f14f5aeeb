package main

import (
	"context"
	"testing"
)

// Standard input is wrapped only for a "-" source: a tape drive's
// next-volume prompt reads the terminal only when Stdin is unset (review
// of 86f6b68: every multi-volume read from /dev/nstN failed at volume 2).
func TestReadOptionsStdinOnlyForDash(t *testing.T) {
	var m readMediaFlags
	for _, c := range []struct {
		sources []string
		want    bool
	}{
		{[]string{"/dev/nst0"}, false},
		{[]string{"full.tar", "incr.tar"}, false},
		{[]string{"-"}, true},
	} {
		o, err := m.options(context.Background(), c.sources...)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Stdin != nil; got != c.want {
			t.Errorf("sources %v: Stdin set %v, want %v", c.sources, got, c.want)
		}
	}
}
