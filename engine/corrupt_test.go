package engine

// Corruption detection: damaged database pages are reported with their ESE
// code and page number by Group.Check and by the backup API's read; damaged
// and missing log generations are reported by name by recovery and by
// wal.Scan.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
)

// fillCorruptGroup writes a few hundred keys (some long values) into both
// databases and closes the group cleanly.
func fillCorruptGroup(t *testing.T, dir string) {
	t.Helper()
	g := openMailGroup(t, dir, 128<<10, Options{CacheSize: 1 << 20})
	for round := 0; round < 20; round++ {
		err := g.Update(func(tx *Tx) error {
			for j := 0; j < 20; j++ {
				i := round*20 + j
				v := make([]byte, 100+(i*37)%400)
				if i%11 == 0 {
					v = make([]byte, 5000+i*10)
				}
				for k := range v {
					v[k] = byte(i + k)
				}
				if err := tx.Put("Mailbox1", "t", keyN(i), v); err != nil {
					return err
				}
				if err := tx.Put("Public", "t", keyN(i), v[:50]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func readPageAt(t *testing.T, path string, pgno uint32) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, page.Size)
	if _, err := f.ReadAt(b, int64(pgno)*page.Size); err != nil {
		t.Fatal(err)
	}
	return b
}

func writePageAt(t *testing.T, path string, pgno uint32, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(pgno)*page.Size); err != nil {
		t.Fatal(err)
	}
}

// TestPageCorruptionReported damages one page of Mailbox1.edb in three
// ways and expects Check and a backup read of the file to name the file,
// the page and the code.
func TestPageCorruptionReported(t *testing.T) {
	root := t.TempDir()
	pristine := filepath.Join(root, "pristine")
	fillCorruptGroup(t, pristine)
	const file = "Mailbox1.edb"
	st, err := os.Stat(filepath.Join(pristine, file))
	if err != nil {
		t.Fatal(err)
	}
	// A tree page well inside the used range.
	g, err := OpenGroup(pristine, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var victim uint32
	for pg := uint32(firstFree + 6); pg < uint32(st.Size()/page.Size); pg++ {
		if k := page.KindOf(readPageAt(t, filepath.Join(pristine, file), pg)); k == page.KindLeaf || k == page.KindInternal {
			victim = pg
			break
		}
	}
	g.Close()
	if victim == 0 {
		t.Fatal("no tree page found")
	}
	cases := []struct {
		name string
		code int
		sent error
		harm func(path string)
	}{
		{"flipped byte", page.CodeReadVerifyFailure, page.ErrChecksum, func(path string) {
			b := readPageAt(t, path, victim)
			b[page.Size/2] ^= 0x40
			writePageAt(t, path, victim, b)
		}},
		{"page at the wrong offset", page.CodeBadPageNumber, page.ErrPageNumber, func(path string) {
			writePageAt(t, path, victim, readPageAt(t, path, victim+1))
		}},
		{"zeroed page", page.CodeBlankPage, page.ErrBlank, func(path string) {
			writePageAt(t, path, victim, make([]byte, page.Size))
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(root, fmt.Sprintf("c%d", i))
			copyDir(t, pristine, dir)
			c.harm(filepath.Join(dir, file))
			g, err := OpenGroup(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()

			// The backup API's read of the file fails on that page.
			s, err := g.BackupSetup(ese.Copy, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.OpenFile(file)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, ChunkSize)
			var rerr error
			for rerr == nil {
				_, rerr = r.Read(buf)
			}
			r.Close()
			s.End()
			var pe *page.PageError
			if !errors.As(rerr, &pe) || pe.Code != c.code || pe.Page != victim || pe.DB != file || !errors.Is(rerr, c.sent) {
				t.Fatalf("backup read: got %v, want code %d on %s page %d", rerr, c.code, file, victim)
			}
			if s.Err() == nil {
				t.Fatal("backup session not failed after the verification error")
			}

			// Group.Check (store check) reports it.
			rep, err := g.Check()
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s: page %d: ", file, victim)
			found := false
			for _, p := range rep.Problems {
				if strings.Contains(p, want) && strings.Contains(p, fmt.Sprintf("(%d", c.code)) {
					found = true
				}
			}
			if !found {
				t.Fatalf("check did not report %q with code %d: %q", want, c.code, rep.Problems)
			}
		})
	}
}

// TestLogCorruptionReported damages or removes a closed generation that
// recovery needs (the checkpoint is in generation 1) and expects recovery
// and wal.Scan to name it.
func TestLogCorruptionReported(t *testing.T) {
	fs := vfs.NewCrashFS()
	const dir = "/store/SG1"
	if err := CreateGroup(dir, mailGroupConfig(128<<10), Options{FS: fs}); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGroup(dir, Options{FS: fs, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if err := g.Update(func(tx *Tx) error {
			v := make([]byte, 20000+i)
			for k := range v {
				v[k] = byte(i*k + k>>9)
			}
			return tx.Put("Mailbox1", "t", keyN(i), v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if chk := g.CheckpointPos(); chk.Gen != 1 {
		t.Fatalf("checkpoint moved to %v", chk)
	}
	if gen := g.CurrentGen(); gen < 5 {
		t.Fatalf("only %d generations", gen)
	}
	g.abandon()
	prefix := "E00"
	genPath := func(gen uint32) string { return filepath.Join(dir, wal.GenName(prefix, gen)) }
	flip := func(fs *vfs.CrashFS, path string, off int64) {
		f, err := fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x01
		f.WriteAt(b, off)
		f.Sync()
		f.Close()
	}
	cases := []struct {
		name string
		gen  uint32
		code wal.Code
		harm func(fs *vfs.CrashFS)
	}{
		{"damaged record", 2, wal.LogReadVerifyFailure, func(fs *vfs.CrashFS) { flip(fs, genPath(2), wal.HeaderSize+wal.BlockSize+100) }},
		{"damaged header", 3, wal.LogFileCorrupt, func(fs *vfs.CrashFS) { flip(fs, genPath(3), 20) }},
		{"missing generation", 3, wal.MissingLogFile, func(fs *vfs.CrashFS) {
			if err := fs.Remove(genPath(3)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	check := func(t *testing.T, what string, err error, gen uint32, code wal.Code) {
		t.Helper()
		var le *wal.LogError
		if !errors.As(err, &le) || le.Code != code || le.Gen != gen && code != wal.LogFileCorrupt || filepath.Base(le.File) != wal.GenName(prefix, gen) || !errors.Is(err, code) {
			t.Fatalf("%s: got %v, want %v naming %s", what, err, code, wal.GenName(prefix, gen))
		}
		if !strings.Contains(err.Error(), wal.GenName(prefix, gen)) {
			t.Fatalf("%s: message does not name %s: %v", what, wal.GenName(prefix, gen), err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfs := fs.CrashClone()
			c.harm(cfs)
			_, err := wal.Scan(cfs, wal.ScanOptions{Dirs: []string{dir}, Prefix: prefix, FromGen: 1}, nil)
			check(t, "wal.Scan", err, c.gen, c.code)
			_, err = OpenGroup(dir, Options{FS: cfs})
			check(t, "OpenGroup", err, c.gen, c.code)
		})
	}
	// Undamaged, the same state recovers.
	g, err = OpenGroup(dir, Options{FS: fs.CrashClone()})
	if err != nil {
		t.Fatal(err)
	}
	if info := g.Recovery(); info.Commits != 40 || info.FromGen != 1 {
		t.Fatalf("recovery replayed %+v", info)
	}
	g.Close()
}
