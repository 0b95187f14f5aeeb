package engine

import (
	"path/filepath"
	"testing"

	"github.com/tapestream/tapestream/ese"
)

// Once hard recovery has run, Patch Current Full Backup is gone from every
// restored header (it used to stay beside "Clean Shutdown", reading as
// "recovery still to run").
func TestRecoveryClearsPatchCurrentFull(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	writeN(t, g, 300, "a")
	full := takeBackup(t, g, ese.Full, nil, t.TempDir(), nil)
	g.Close()
	dst := filepath.Join(t.TempDir(), "R")
	r := restoreSets(t, dir, dst, full)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Mailbox1.edb", "Mailbox1.stm", "Public.edb"} {
		h, err := ReadHeader(nil, filepath.Join(dst, f))
		if err != nil {
			t.Fatal(err)
		}
		if h.PatchCurrentFull != nil || h.State != StateCleanShutdown {
			t.Fatalf("%s after recovery: state %s, Patch Current Full Backup %+v", f, h.State, h.PatchCurrentFull)
		}
	}
}
