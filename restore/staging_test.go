package restore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat"
)

// The staging sink writes on its own goroutine: what it wrote must be the
// chunks at their offsets, and a write that fails must fail the restore
// with the file's name, not be lost on the other goroutine.
func TestStagingSinkWrites(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s := &stagingSink{root: root, allowDBs: true}
	fh := &tapeformat.FileHeader{Index: 0, Name: "Mailbox1.edb", Size: 3 << 20}
	if keep, err := s.create(fh, tapeformat.KindDatabase); err != nil || !keep {
		t.Fatal(keep, err)
	}
	want := make([]byte, 3<<20)
	for i := range want {
		want[i] = byte(i / 4096)
	}
	// Out of order, as a salvage can deliver them.
	for _, off := range []int{2 << 20, 0, 1 << 20} {
		if err := s.write(fh, bytes.Clone(want[off:off+1<<20]), int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.finish(fh); err != nil {
		t.Fatal(err)
	}
	if err := s.closeAll(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "Mailbox1.edb"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored file differs (%d bytes, %v)", len(got), err)
	}

	fh2 := &tapeformat.FileHeader{Index: 1, Name: "Public.edb", Size: 1 << 20}
	if _, err := s.create(fh2, tapeformat.KindDatabase); err != nil {
		t.Fatal(err)
	}
	s.open[1].f.Close() // every write to it now fails
	err = s.write(fh2, make([]byte, 1<<20), 0)
	if err == nil {
		err = s.finish(fh2)
	}
	if cerr := s.closeAll(); err == nil {
		err = cerr
	}
	if err == nil || !strings.Contains(err.Error(), "Public.edb") {
		t.Fatalf("a failed write gave %v, want an error naming Public.edb", err)
	}
}
