package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/ese"
)

func TestLevelAtShorthand(t *testing.T) {
	s := Schedule{At: "02:00", Full: []string{"sun"}, Differential: []string{"wed"}}
	if err := s.compile(); err != nil {
		t.Fatal(err)
	}
	sun := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	for i, want := range []ese.BackupType{ese.Full, ese.Incremental, ese.Incremental, ese.Differential, ese.Incremental, ese.Incremental, ese.Incremental} {
		now := sun.Add(time.Duration(i)*24*time.Hour + 10*time.Minute)
		lvl, slot, ok := s.LevelAt(now)
		if !ok || lvl != want || !slot.Equal(sun.Add(time.Duration(i)*24*time.Hour)) {
			t.Errorf("day %d: %s at %s, want %s", i, lvl, slot, want)
		}
	}
	// A timer firing a minute early still finds its slot.
	lvl, slot, _ := s.LevelAt(sun.Add(-time.Minute))
	if lvl != ese.Full || !slot.Equal(sun) {
		t.Errorf("early timer: %s at %s", lvl, slot)
	}
	// Before the day's slot, the level is yesterday's.
	lvl, slot, _ = s.LevelAt(sun.Add(-3 * time.Hour))
	if lvl != ese.Incremental || !slot.Equal(sun.Add(-24*time.Hour)) {
		t.Errorf("before the slot: %s at %s", lvl, slot)
	}
}

func TestLevelAtCronTies(t *testing.T) {
	// On the first of the month both fire: full wins.
	s := Schedule{Cron: []string{"0 3 * * * incremental", "0 3 1 * * full"}}
	if err := s.compile(); err != nil {
		t.Fatal(err)
	}
	lvl, _, _ := s.LevelAt(time.Date(2026, 12, 1, 3, 30, 0, 0, time.UTC))
	if lvl != ese.Full {
		t.Fatalf("first of month: %s", lvl)
	}
	lvl, _, _ = s.LevelAt(time.Date(2026, 12, 2, 3, 30, 0, 0, time.UTC))
	if lvl != ese.Incremental {
		t.Fatalf("second of month: %s", lvl)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{`[[job]]`, "catalog"},
		{"catalog='c'\n[[job]]\nname='a'\n[job.destination]\ndir='d'", "store"},
		{"catalog='c'\n[[job]]\nname='a'\nstore='s'\n[job.destination]\ndir='d'\nname='x.tar'", "{group}"},
		{"catalog='c'\n[[job]]\nname='a'\nstore='s'\n[job.schedule]\nfull=['sun']\ndifferential=['sun']\n[job.destination]\ndir='d'", "both"},
		{"catalog='c'\n[[job]]\nname='a'\nstore='s'\n[job.schedule]\ncron=['0 2 * * * weekly']\n[job.destination]\ndir='d'", "unknown backup type"},
		{"catalog='c'\n[[job]]\nname='a'\nstore='s'\ncodec='rar'\n[job.destination]\ndir='d'", "rar"},
		{"catalog='c'\n[[job]]\nname='a'\nstore='s'\npace='fast'\n[job.destination]\ndir='d'", `pace "fast": want auto or off`},
	} {
		_, err := ParseConfig(c.text, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error about %q", c.text, err, c.want)
		}
	}
	c, err := ParseConfig("catalog='c'\n[[job]]\nname='a'\nserver='http://h:1'\ngroups=['SG1','SG2']\n[job.destination]\ntape='tape:vt'\n", "/etc/ts")
	if err != nil {
		t.Fatal(err)
	}
	if j := c.Jobs[0]; j.Destination.Tape != "tape:/etc/ts/vt" || c.Catalog != "/etc/ts/c" || c.LockDir != "/etc/ts/locks" || !j.IsTape() {
		t.Fatalf("paths: %+v %+v", c, j.Destination)
	}
	// Online backups are paced unless a job says otherwise.
	if j := c.Jobs[0]; j.Pace != "auto" {
		t.Errorf("default pace %q, want auto", j.Pace)
	}
}

func set(id, typ, parent string, day int, status string) *catalog.Set {
	return &catalog.Set{ID: id, Type: ese.BackupType(typ), ParentID: parent, Group: "SG1", Status: status,
		Created: time.Date(2026, 11, 1+day, 2, 0, 0, 0, time.UTC), Location: catalog.Location{Kind: "tape"}}
}

func TestPlanLevel(t *testing.T) {
	ok := catalog.StatusComplete
	f := set("F1", "full", "", 0, ok)
	d := set("D1", "differential", "F1", 1, ok)
	f.HighGen = 5
	i := set("I1", "incremental", "F1", 2, ok)
	i.LowGen, i.HighGen = 5, 9
	i2 := set("I2", "incremental", "I1", 3, ok)
	i2.LowGen, i2.HighGen = 8, 12
	d2 := set("D2", "differential", "F1", 2, ok)
	d2.LowGen, d2.HighGen = 8, 12
	for _, c := range []struct {
		sets   []*catalog.Set
		want   ese.BackupType
		lvl    ese.BackupType
		reason string
	}{
		{nil, ese.Incremental, ese.Full, "no full"},
		{[]*catalog.Set{f}, ese.Incremental, ese.Incremental, ""},
		{[]*catalog.Set{f, d}, ese.Differential, ese.Differential, ""},
		{[]*catalog.Set{f, d, i}, ese.Differential, ese.Full, "incremental set I1 (logs 5-9) truncated"}, // an incremental of the full truncated what it copied
		{[]*catalog.Set{f, d, i, i2}, ese.Differential, ese.Full, "-528"},
		{[]*catalog.Set{f, d, d2}, ese.Differential, ese.Full, "logs 6-7 since full set F1 were truncated"}, // deleted behind the catalog's back
		{[]*catalog.Set{f, d, i}, ese.Incremental, ese.Incremental, ""},
		{[]*catalog.Set{set("F1", "full", "", 0, catalog.StatusExpired), i}, ese.Incremental, ese.Full, "broken"},
		{[]*catalog.Set{f, set("F2", "full", "", 3, catalog.StatusFailed)}, ese.Incremental, ese.Incremental, ""},
	} {
		lvl, reason := planLevel(c.sets, c.want)
		if lvl != c.lvl || !strings.Contains(reason, c.reason) || (c.reason == "") != (reason == "") {
			t.Errorf("%d sets, want %s: got %s %q; want %s ~%q", len(c.sets), c.want, lvl, reason, c.lvl, c.reason)
		}
	}
}

func TestContribConfigLoads(t *testing.T) {
	c, err := LoadConfig("../contrib/tapestream.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Jobs) != 2 || c.Jobs[0].Retention.KeepFullChains != 2 || !c.Jobs[1].IsTape() {
		t.Fatalf("%+v", c)
	}
}

// TestNextRuns: the next slots in order, the highest level winning when
// entries coincide; ResolveGroups: "*" and missing groups.
func TestNextRuns(t *testing.T) {
	c, err := ParseConfig("catalog='c'\n[[job]]\nname='a'\nstore='s'\ngroups=['*']\n[job.schedule]\ncron=['0 2 * * * incremental', '0 2 * * 0 full', '30 3 1 * * differential']\n[job.destination]\ndir='d'", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := c.Jobs[0]
	got := j.Schedule.NextRuns(time.Date(2026, 10, 30, 12, 0, 0, 0, time.Local), 4) // a Friday
	want := []struct {
		day   int
		hour  int
		level ese.BackupType
	}{{31, 2, ese.Incremental}, {1, 2, ese.Full}, {1, 3, ese.Differential}, {2, 2, ese.Incremental}}
	if len(got) != len(want) {
		t.Fatalf("next runs %+v", got)
	}
	for i, w := range want {
		if got[i].Time.Day() != w.day || got[i].Time.Hour() != w.hour || got[i].Level != w.level {
			t.Fatalf("run %d: %s %s, want day %d %02d:xx %s", i, got[i].Time, got[i].Level, w.day, w.hour, w.level)
		}
	}
	if g, err := j.ResolveGroups([]string{"SG1", "SG2"}); err != nil || len(g) != 2 {
		t.Fatalf("groups *: %v %v", g, err)
	}
	j.Groups = []string{"SG1", "SG3"}
	if _, err := j.ResolveGroups([]string{"SG1", "SG2"}); err == nil || !strings.Contains(err.Error(), "groups: storage group SG3 is not in store") {
		t.Fatalf("missing group: %v", err)
	}
}
