package restore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// Each log of a chain is written once: a later set's copy of a log an
// earlier set restored is compared with it as it streams in (in any chunk
// order) and never rewritten; a copy that differs, or a set that holds a
// log twice, fails; a copy the earlier set reported damaged is replaced.
func TestStagingSinkWritesEachLogOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s := &stagingSink{root: root, logDir: "logs", prefix: "E00", onLabel: func(tapeformat.Label, bool) error { return nil }}
	gen := func(fill byte) []byte { return bytes.Repeat([]byte{fill}, 256<<10) }
	const name = "E0000000007.log"
	path := filepath.Join(dir, "logs", name)
	// put streams one log of a set in 64 KiB chunks, in the order given.
	put := func(set string, index int, data []byte, order ...int) error {
		fh := &tapeformat.FileHeader{Index: index, Name: name, Kind: tapeformat.KindLog, Size: int64(len(data))}
		if _, err := s.create(fh, tapeformat.KindLog); err != nil {
			return err
		}
		for _, k := range order {
			if err := s.write(fh, bytes.Clone(data[k<<16:(k+1)<<16]), int64(k)<<16); err != nil {
				s.closeAll()
				return err
			}
		}
		return s.finish(fh)
	}
	set := func(id string) { s.begin(tapeformat.Label{SetID: id}) }

	set("A")
	if err := put("A", 3, gen(1), 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.closeAll(); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(path, old, old)

	set("B") // the same log again, chunks out of order: compared, not written
	if err := put("B", 0, gen(1), 2, 0, 3, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.closeAll(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
		t.Fatalf("log rewritten by the second set (mtime %v)", fi.ModTime())
	}

	set("C") // a copy that differs in its third chunk
	bad := gen(1)
	bad[2<<16+100] = 9
	err = put("C", 5, bad, 0, 1, 2, 3)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "set A") || !strings.Contains(err.Error(), fmt.Sprint(2<<16+100)) {
		t.Fatalf("a differing copy gave %v", err)
	}
	s.closeAll()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, gen(1)) {
		t.Fatal("the differing copy changed the restored log")
	}

	set("D") // a set holding the log twice
	if err := put("D", 1, gen(1), 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := put("D", 2, gen(1), 0, 1, 2, 3); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a log twice in one set: %v", err)
	}
	s.closeAll()

	// A salvage reported the first copy damaged: the next set's replaces it.
	s.damaged([]Problem{{File: name, What: "lost"}})
	set("E")
	if err := put("E", 0, gen(4), 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.closeAll(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, gen(4)) {
		t.Fatal("the damaged copy was not replaced")
	}
}
