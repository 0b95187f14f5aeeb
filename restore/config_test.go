package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/tapeformat"
)

// TestHeaderSnapshotNameIsNotAPath: the database name inside a set's
// header snapshot becomes a file path; a name that escapes, or does not
// match the staged file, is refused.
func TestHeaderSnapshotNameIsNotAPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "SG1")
	if err := engine.CreateGroup(dir, engine.GroupConfig{Name: "SG1", Databases: []engine.DBConfig{{Name: "Mailbox1"}}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Mailbox1.edb")
	snapshot := func(name string) []byte {
		if err := engine.UpdateHeaderFile(nil, path, func(h *engine.DBHeader) error { h.Name = name; return nil }); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		return b[:2*page.Size]
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"Mailbox1", true}, {"../SG1/Mailbox1", false}, {"Public", false}} {
		info := &SetInfo{
			Label: tapeformat.Label{SetID: "s", GroupSignature: "00", GroupID: 0},
			Manifest: &tapeformat.Manifest{Files: []tapeformat.ManifestFile{
				{Name: "Mailbox1.edb", Kind: tapeformat.KindDatabase, DBHeader: snapshot(tc.name)},
				{Name: "E0000000001.log", Kind: tapeformat.KindLog, Size: 1 << 20},
			}},
		}
		_, err := groupConfigFor("R", info, &stagingSink{dbFiles: []string{"Mailbox1.edb"}})
		if tc.ok != (err == nil) {
			t.Fatalf("header name %q: %v", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("header name %q: unclear error %v", tc.name, err)
		}
	}
}
