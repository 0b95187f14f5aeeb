package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/ese"
)

// putIn commits n keys tag00000.. into one database.
func putIn(t *testing.T, g *Group, db string, n int, tag string) {
	t.Helper()
	overwrite(t, g, db, n, tag, tag)
}

// overwrite commits n keys key00000.. with values made of tag.
func overwrite(t *testing.T, g *Group, db string, n int, key, tag string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := g.Update(func(tx *Tx) error {
			return tx.Put(db, "t", []byte(fmt.Sprintf("%s%05d", key, i)), bytes.Repeat([]byte(tag), 1+i%300))
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func mountedOf(g *Group) map[string]bool {
	m := map[string]bool{}
	for _, d := range g.Info().Databases {
		m[d.Name] = d.Mounted
	}
	return m
}

func dumpDB(t *testing.T, g *Group, db string) string {
	t.Helper()
	var b strings.Builder
	if err := g.Dump(&b, db); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A dismount is kept in group.json: the group reopens with the database
// offline (its records skipped, its file untouched), nothing is truncated
// while it is (seed 002 #6), mount and dismount are refused during a
// backup (-505, seed 003), and a mount brings it back as it was.
func TestDismountSurvivesReopen(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	writeN(t, g, 300, "a")
	takeBackup(t, g, ese.Full, nil, t.TempDir(), nil)
	writeN(t, g, 300, "b")
	pub := dumpDB(t, g, "Public")
	if err := g.Dismount("Public"); err != nil {
		t.Fatal(err)
	}
	if err := g.Dismount("Public"); !errors.Is(err, ErrDismounted) {
		t.Fatalf("second dismount: %v", err)
	}
	putIn(t, g, "Mailbox1", 200, "c") // the group goes on with its other database
	if err := g.Update(func(tx *Tx) error { return tx.Put("Public", "t", []byte("x"), []byte("y")) }); !errors.Is(err, ErrDismounted) {
		t.Fatalf("a transaction on the dismounted database: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	h0, _ := os.ReadFile(filepath.Join(dir, "Public.edb"))
	g, err := OpenGroup(dir, Options{CacheSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if m := mountedOf(g); m["Public"] || !m["Mailbox1"] {
		t.Fatalf("after reopening: mounted %v", m)
	}
	if h, err := g.Header("Public"); err != nil || h.State != StateCleanShutdown {
		t.Fatalf("the dismounted database's header: %+v %v", h, err)
	}
	putIn(t, g, "Mailbox1", 200, "d")
	oldest, _ := g.oldestGen()
	s := takeBackup(t, g, ese.Full, []string{"Mailbox1"}, t.TempDir(), nil)
	if n, _ := g.oldestGen(); len(s.truncked) != 0 || n != oldest {
		t.Fatalf("a full with Public dismounted (persisted) truncated %v", s.truncked)
	}
	sess, err := g.BackupSetup(ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	asESE(t, g.Mount("Public"), CodeBackupInProgress)
	asESE(t, g.Dismount("Mailbox1"), CodeBackupInProgress)
	if got := sess.Databases(); len(got) != 1 || got[0] != "Mailbox1" {
		t.Fatalf("a backup with Public dismounted covers %v", got)
	}
	sess.Abort(nil)
	if h1, _ := os.ReadFile(filepath.Join(dir, "Public.edb")); !bytes.Equal(h0, h1) {
		t.Fatal("the dismounted database's file changed while the group ran without it")
	}
	if err := g.Mount("Public"); err != nil {
		t.Fatal(err)
	}
	if got := dumpDB(t, g, "Public"); got != pub {
		t.Fatal("Public mounted again does not hold what it held when it was dismounted")
	}
	putIn(t, g, "Public", 100, "e")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := ReadGroupConfig(dir)
	for _, d := range cfg.Databases {
		if d.Dismounted {
			t.Fatalf("group.json still says %s is dismounted", d.Name)
		}
	}
}

// A database replaced by an older copy of itself while dismounted (a
// restore rolling it back) must never meet the records its predecessor
// left in the log: recovery skips the records before its attach position,
// even when it replays from the oldest log (no checkpoint).
func TestMountedOlderFileIgnoresEarlierRecords(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	putIn(t, g, "Public", 200, "a")
	if err := g.Dismount("Public"); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, "Public.edb"))
	if err != nil {
		t.Fatal(err)
	}
	oldDump := ""
	if err := g.Mount("Public"); err != nil {
		t.Fatal(err)
	}
	oldDump = dumpDB(t, g, "Public")
	overwrite(t, g, "Public", 200, "a", "b") // records the old copy never saw
	if err := g.Dismount("Public"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Public.edb"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Mount("Public"); err != nil {
		t.Fatal(err)
	}
	if got := dumpDB(t, g, "Public"); got != oldDump {
		t.Fatal("the older copy mounted does not dump as it did")
	}
	overwrite(t, g, "Public", 20, "a", "c") // some of the same pages again
	putIn(t, g, "Mailbox1", 50, "c")
	want := dumpDB(t, g, "Public")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	// Replay everything from the oldest generation.
	if err := os.Remove(filepath.Join(dir, "E00.chk")); err != nil {
		t.Fatal(err)
	}
	g, err = OpenGroup(dir, Options{CacheSize: 2 << 20})
	if err != nil {
		t.Fatalf("reopening with a replay from the oldest log: %v", err)
	}
	defer g.Close()
	if got := dumpDB(t, g, "Public"); got != want {
		t.Fatal("the replay applied the replaced file's records to the older copy")
	}
	if r, err := g.Check(); err != nil || !r.OK() {
		t.Fatalf("check: %v %v", err, r.Problems)
	}
}

// A file from elsewhere, or one that still needs recovery, is not mounted.
func TestMountRefusesForeignOrUnrecoveredFiles(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	defer g.Close()
	putIn(t, g, "Public", 20, "a")
	if err := g.Dismount("Public"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Public.edb")
	orig, _ := os.ReadFile(path)
	if err := MarkRestored(nil, path, 3, 4, "x", g.opts.Now()); err != nil {
		t.Fatal(err)
	}
	if err := g.Mount("Public"); err == nil || !strings.Contains(err.Error(), "hard recovery") {
		t.Fatalf("mounting a database that needs recovery: %v", err)
	}
	os.WriteFile(path, orig, 0o644)
	if err := UpdateHeaderFile(nil, path, func(h *DBHeader) error { h.LogSignature = "00"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := g.Mount("Public"); err == nil || !strings.Contains(err.Error(), "another storage group") {
		t.Fatalf("mounting another group's file: %v", err)
	}
	os.WriteFile(path, orig, 0o644)
	if err := g.Mount("Public"); err != nil {
		t.Fatal(err)
	}
}
