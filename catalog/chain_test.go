package catalog

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapestream/tapestream/ese"
)

func mk(id, typ, parent string, day int, status string) *Set {
	return &Set{ID: id, Type: ese.BackupType(typ), ParentID: parent, Group: "SG1", Status: status,
		Created: time.Date(2026, 11, 1+day, 2, 0, 0, 0, time.UTC), Location: Location{Kind: "tape"}}
}

func ids(sets []*Set) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s.ID)
	}
	return out
}

func TestChainsAndRestoreChain(t *testing.T) {
	ok := StatusComplete
	sets := []*Set{
		mk("F1", "full", "", 0, ok), mk("D1", "differential", "F1", 1, ok), mk("I1", "incremental", "F1", 2, ok),
		mk("I2", "incremental", "I1", 3, ok), mk("X", "incremental", "I2", 4, StatusFailed), mk("F2", "full", "", 5, ok),
		mk("I3", "incremental", "F2", 6, StatusMissing), mk("I4", "incremental", "I3", 7, ok),
		// Full + differentials, then an incremental (of the full: a
		// differential truncates nothing, so it copies every log since).
		mk("F3", "full", "", 8, ok), mk("D3", "differential", "F3", 9, ok), mk("D4", "differential", "F3", 10, ok), mk("I5", "incremental", "F3", 11, ok),
	}
	cs := Chains(sets)
	if len(cs) != 3 || !slices.Equal(ids(cs[0].Sets()), []string{"F1", "D1", "I1", "I2"}) || !slices.Equal(ids(cs[1].Sets()), []string{"F2", "I3", "I4"}) {
		t.Fatalf("chains: %v / %v", ids(cs[0].Sets()), ids(cs[len(cs)-1].Sets()))
	}
	for _, c := range []struct {
		day  int
		want []string
	}{
		{0, []string{"F1"}}, {1, []string{"F1", "D1"}}, {2, []string{"F1", "I1"}}, {4, []string{"F1", "I1", "I2"}},
		{5, []string{"F2"}}, {7, []string{"F2"}}, // I4 depends on the missing I3
		// The fewest sets: the full and the newest differential alone.
		{9, []string{"F3", "D3"}}, {10, []string{"F3", "D4"}}, {11, []string{"F3", "I5"}},
	} {
		at := time.Date(2026, 11, 1+c.day, 3, 0, 0, 0, time.UTC)
		got, err := RestoreChain(sets, "SG1", at)
		if err != nil || !slices.Equal(ids(got), c.want) {
			t.Errorf("day %d: %v %v, want %v", c.day, ids(got), err, c.want)
		}
	}
	if _, err := RestoreChain(sets, "SG1", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("a restore before the first set found a chain")
	}
}

func TestCatalogStore(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "sub", "cat.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := mk("0123456789abcdef", "full", "", 0, StatusComplete)
	if err := c.PutSet(s); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSet("0123456")
	if err != nil || got.ID != s.ID || !got.Created.Equal(s.Created) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := c.GetSet("ffffff"); err == nil {
		t.Fatal("found a set that is not there")
	}
	if err := c.UpdateJob("j", func(st *JobState) { st.Runs++ }); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Job("j"); st.Runs != 1 {
		t.Fatalf("job state %+v", st)
	}
	if err := c.PutVolume(&Volume{Label: "TS0001", Status: "append"}); err != nil {
		t.Fatal(err)
	}
	if vs, _ := c.Volumes(); len(vs) != 1 {
		t.Fatalf("volumes %v", vs)
	}
}
