package vfs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func mustWrite(t *testing.T, f File, p []byte, off int64) {
	t.Helper()
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, fs FS, name string) []byte {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, fi.Size())
	if n, err := f.ReadAt(b, 0); err != nil && !(err == io.EOF && n == len(b)) {
		t.Fatal(err)
	}
	return b
}

// exerciseFS runs the same basic contract against any FS.
func exerciseFS(t *testing.T, fs FS, dir string) {
	if err := fs.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "a", "f")
	if _, err := fs.OpenFile(name, os.O_RDWR, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("excl: %v", err)
	}
	mustWrite(t, f, []byte("hello"), 0)
	mustWrite(t, f, []byte("world"), 10)
	if err := f.Preallocate(4096); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != 4096 {
		t.Fatalf("size after preallocate: %v %v", fi, err)
	}
	if err := f.Preallocate(100); err != nil { // never shrinks
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(15); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 20)
	n, err := f.ReadAt(buf, 0)
	if n != 15 || err != io.EOF {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if want := []byte("hello\x00\x00\x00\x00\x00world"); !bytes.Equal(buf[:n], want) {
		t.Fatalf("got %q", buf[:n])
	}
	if f.Name() != name {
		t.Fatalf("Name = %q", f.Name())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename(name, filepath.Join(dir, "a", "g")); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat old: %v", err)
	}
	ents, err := fs.ReadDir(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name() != "b" || !ents[0].IsDir() || ents[1].Name() != "g" || ents[1].IsDir() {
		t.Fatalf("ReadDir = %v", ents)
	}
	if err := fs.SyncDir(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs, filepath.Join(dir, "a", "g")); len(got) != 15 {
		t.Fatalf("len %d", len(got))
	}
	if err := fs.Remove(filepath.Join(dir, "a", "g")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(filepath.Join(dir, "a", "g")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestOS(t *testing.T) {
	exerciseFS(t, OS, t.TempDir())
}

func TestCrashFSContract(t *testing.T) {
	exerciseFS(t, NewCrashFS(), "/data")
}

func TestOSPreallocateLarge(t *testing.T) {
	dir := t.TempDir()
	f, err := OS.OpenFile(filepath.Join(dir, "x"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Preallocate(1 << 20); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if fi.Size() != 1<<20 {
		t.Fatalf("size %d", fi.Size())
	}
	if err := OS.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

func TestCrashFSDurability(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	// synced file + synced dir entry: survives.
	a, _ := c.OpenFile("/d/a", os.O_RDWR|os.O_CREATE, 0o644)
	mustWrite(t, a, []byte("durable"), 0)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, []byte("LOST"), 0)   // unsynced overwrite
	mustWrite(t, a, []byte("tail"), 100) // unsynced extension
	// rename of a durable file without SyncDir: undone.
	cf, _ := c.OpenFile("/d/c", os.O_RDWR|os.O_CREATE, 0o644)
	mustWrite(t, cf, []byte("c"), 0)
	cf.Sync()
	c.SyncDir("/d")
	// synced data, unsynced dir entry: lost.
	b, _ := c.OpenFile("/d/b", os.O_RDWR|os.O_CREATE, 0o644)
	mustWrite(t, b, []byte("b"), 0)
	b.Sync()
	if err := c.Rename("/d/c", "/d/c2"); err != nil {
		t.Fatal(err)
	}
	// remove without SyncDir: undone.
	if err := c.Remove("/d/a"); err != nil {
		t.Fatal(err)
	}

	clone := c.CrashClone()
	// the original is untouched by CrashClone
	if _, err := c.Stat("/d/c2"); err != nil {
		t.Fatal(err)
	}
	c.Crash()
	for _, fs := range []FS{c, clone} {
		if got := readAll(t, fs, "/d/a"); string(got) != "durable" {
			t.Fatalf("a = %q", got)
		}
		if _, err := fs.Stat("/d/b"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("b survived: %v", err)
		}
		if got := readAll(t, fs, "/d/c"); string(got) != "c" {
			t.Fatalf("c = %q", got)
		}
		if _, err := fs.Stat("/d/c2"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("c2 survived: %v", err)
		}
	}
	// old handles are dead
	if _, err := a.WriteAt([]byte("x"), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old handle: %v", err)
	}
	// rename + SyncDir is durable, and the inode is shared by name
	if err := c.Rename("/d/c", "/d/c3"); err != nil {
		t.Fatal(err)
	}
	c.SyncDir("/d")
	c.Crash()
	if got := readAll(t, c, "/d/c3"); string(got) != "c" {
		t.Fatalf("c3 = %q", got)
	}
	// truncation without sync is undone
	f, _ := c.OpenFile("/d/c3", os.O_RDWR|os.O_TRUNC, 0)
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Fatal("O_TRUNC")
	}
	c.Crash()
	if got := readAll(t, c, "/d/c3"); string(got) != "c" {
		t.Fatalf("after trunc crash c3 = %q", got)
	}
}

func TestCrashFSTorn(t *testing.T) {
	sawPartial := false
	for seed := int64(0); seed < 20; seed++ {
		c := NewCrashFS()
		c.SetTornWrites(true, seed)
		f, _ := c.OpenFile("/x", os.O_RDWR|os.O_CREATE, 0o644)
		base := bytes.Repeat([]byte{'a'}, 8*sectorSize)
		mustWrite(t, f, base, 0)
		f.Sync()
		c.SyncDir("/")
		mustWrite(t, f, bytes.Repeat([]byte{'b'}, 8*sectorSize), 0)
		c.Crash()
		got := readAll(t, c, "/x")
		if len(got) != len(base) {
			t.Fatalf("len %d", len(got))
		}
		nb := 0
		for s := 0; s < 8; s++ {
			sec := got[s*sectorSize : (s+1)*sectorSize]
			if !bytes.Equal(sec, bytes.Repeat(sec[:1], sectorSize)) || (sec[0] != 'a' && sec[0] != 'b') {
				t.Fatalf("sector %d torn inside", s)
			}
			if sec[0] == 'b' {
				nb++
			}
		}
		if nb > 0 && nb < 8 {
			sawPartial = true
		}
		// reproducible
		c2 := NewCrashFS()
		c2.SetTornWrites(true, seed)
		f2, _ := c2.OpenFile("/x", os.O_RDWR|os.O_CREATE, 0o644)
		mustWrite(t, f2, base, 0)
		f2.Sync()
		c2.SyncDir("/")
		mustWrite(t, f2, bytes.Repeat([]byte{'b'}, 8*sectorSize), 0)
		c2.Crash()
		if !bytes.Equal(readAll(t, c2, "/x"), got) {
			t.Fatal("not reproducible")
		}
	}
	if !sawPartial {
		t.Fatal("torn mode never tore")
	}
}

func TestCrashFSConcurrent(t *testing.T) {
	c := NewCrashFS()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := filepath.Join("/", string(rune('a'+i)))
			f, err := c.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			for j := 0; j < 100; j++ {
				f.WriteAt([]byte{byte(j)}, int64(j))
				if j%10 == 0 {
					f.Sync()
					c.SyncDir("/")
				}
			}
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			_ = c.CrashClone()
			c.ReadDir("/")
		}
	}()
	wg.Wait()
}

func TestFaultFS(t *testing.T) {
	run := func(fs FS) error {
		f, err := fs.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644) // 1
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("x"), 0); err != nil { // 2
			return err
		}
		if err := f.Preallocate(10); err != nil { // 3
			return err
		}
		if err := f.Truncate(5); err != nil { // 4
			return err
		}
		if err := f.Sync(); err != nil { // 5
			return err
		}
		if err := fs.Rename("/f", "/g"); err != nil { // 6
			return err
		}
		if err := fs.SyncDir("/"); err != nil { // 7
			return err
		}
		if _, err := fs.OpenFile("/g", os.O_RDONLY, 0); err != nil { // not counted
			return err
		}
		return fs.Remove("/g") // 8
	}
	ff := NewFaultFS(NewCrashFS())
	if err := run(ff); err != nil {
		t.Fatal(err)
	}
	n := ff.Count()
	kinds := []OpKind{OpCreate, OpWriteAt, OpPreallocate, OpTruncate, OpSync, OpRename, OpSyncDir, OpRemove}
	ops := ff.Ops()
	if n != int64(len(kinds)) || len(ops) != len(kinds) {
		t.Fatalf("count %d ops %v", n, ops)
	}
	for i, op := range ops {
		if op.Kind != kinds[i] || op.N != int64(i+1) || op.Failed {
			t.Fatalf("op %d = %v", i, op)
		}
	}
	for i := int64(1); i <= n; i++ {
		for _, sticky := range []bool{false, true} {
			ff := NewFaultFS(NewCrashFS())
			ff.FailAt(i, sticky)
			err := run(ff)
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("fail at %d: err %v", i, err)
			}
			if ff.Injected() != 1 || ff.Count() != i {
				t.Fatalf("fail at %d: injected %d count %d", i, ff.Injected(), ff.Count())
			}
			if ops := ff.Ops(); !ops[i-1].Failed || ops[i-1].Kind != kinds[i-1] {
				t.Fatalf("ops %v", ops)
			}
		}
	}
	// sticky: all later ops fail too
	ff = NewFaultFS(NewCrashFS())
	ff.FailAt(2, true)
	f, _ := ff.OpenFile("/h", os.O_RDWR|os.O_CREATE, 0o644)
	for i := 0; i < 3; i++ {
		if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrInjected) {
			t.Fatalf("sticky %d: %v", i, err)
		}
	}
	if ff.Injected() != 3 {
		t.Fatalf("injected %d", ff.Injected())
	}
	ff.Reset()
	if _, err := f.WriteAt([]byte("x"), 0); err != nil || ff.Count() != 1 {
		t.Fatalf("after reset: %v %d", err, ff.Count())
	}
}
