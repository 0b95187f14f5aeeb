package main

import (
	"context"
	"strings"
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

// A split set named by its base name is found by catalog rebuild as by
// verify and restore (NAME means NAME.001 on); it failed on 'stat NAME'.
func TestRebuildSplitSetByName(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"store", "init", "--dir", "store", "--log-size", "256KiB"},
		{"store", "load", "--dir", "store", "--size", "3MiB"},
		{"backup", "--store", "store", "-o", "s.tar", "--volume-size", "1MiB", "--compress", "none", "--segment-size", "256KiB", "--frame-size", "64KiB", "--block-size", "64KiB", "--progress", "never"},
		{"verify", "s.tar", "--block-size", "64KiB"},
		{"catalog", "rebuild", "--catalog", "c.db", "--block-size", "64KiB", "s.tar"},
	} {
		if code, out, errs := cli(t, dir, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if _, out, _ := cli(t, dir, "catalog", "list", "--catalog", "c.db"); strings.Count(out, "complete") != 1 {
		t.Fatalf("catalog list after rebuilding s.tar:\n%s", out)
	}
}
