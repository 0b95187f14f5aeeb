package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine/vfs"
)

func newTestGroup(t testing.TB, fs vfs.FS, dir string, stm bool) *Group {
	t.Helper()
	cfg := GroupConfig{Name: "SG1", LogSize: 256 << 10, Databases: []DBConfig{{Name: "Mailbox1", Streaming: stm}, {Name: "Public"}}}
	if err := CreateGroup(dir, cfg, Options{FS: fs}); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGroup(dir, Options{FS: fs, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func keyN(i int) []byte { return []byte(fmt.Sprintf("key-%08d", i)) }

func valN(r *rand.Rand, i int) []byte {
	n := r.IntN(300)
	if i%17 == 0 {
		n = 2000 + r.IntN(20000) // long value
	}
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i + j)
	}
	return v
}

// checkModel compares the table with the expected map through Get and Scan.
func checkModel(t *testing.T, g *Group, model map[string][]byte) {
	t.Helper()
	n := 0
	var prev []byte
	err := g.View(func(tx *Tx) error {
		return tx.Scan("Mailbox1", "t", nil, func(k, v []byte) error {
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				return fmt.Errorf("scan out of order at %q", k)
			}
			prev = append(prev[:0], k...)
			want, ok := model[string(k)]
			if !ok {
				return fmt.Errorf("unexpected key %q", k)
			}
			if !bytes.Equal(want, v) {
				return fmt.Errorf("key %q: value differs (len %d vs %d)", k, len(v), len(want))
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(model) {
		t.Fatalf("scan saw %d keys, model has %d", n, len(model))
	}
	r, err := g.Check()
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("check: %v", r.Problems)
	}
}

func TestPutGetDeleteReopen(t *testing.T) {
	for _, stm := range []bool{false, true} {
		t.Run(fmt.Sprintf("stm=%v", stm), func(t *testing.T) {
			dir := t.TempDir()
			g := newTestGroup(t, vfs.OS, dir, stm)
			r := rand.New(rand.NewPCG(1, 2))
			model := map[string][]byte{}
			for round := 0; round < 30; round++ {
				err := g.Update(func(tx *Tx) error {
					for j := 0; j < 100; j++ {
						i := r.IntN(3000)
						if r.IntN(4) == 0 {
							delete(model, string(keyN(i)))
							if err := tx.Delete("Mailbox1", "t", keyN(i)); err != nil {
								return err
							}
							continue
						}
						v := valN(r, i)
						model[string(keyN(i))] = v
						if err := tx.Put("Mailbox1", "t", keyN(i), v); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			checkModel(t, g, model)
			// Delete almost everything: exercises merges and root collapse.
			for k := range model {
				if err := g.Update(func(tx *Tx) error { return tx.Delete("Mailbox1", "t", []byte(k)) }); err != nil {
					t.Fatal(err)
				}
				delete(model, k)
				if len(model) < 5 {
					break
				}
			}
			checkModel(t, g, model)
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			h, err := ReadHeader(nil, filepath.Join(dir, "Mailbox1.edb"))
			if err != nil {
				t.Fatal(err)
			}
			if h.State != StateCleanShutdown {
				t.Fatalf("state after close = %q", h.State)
			}
			g, err = OpenGroup(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if !g.Recovery().Clean {
				t.Fatalf("reopen after clean close replayed %+v", g.Recovery())
			}
			checkModel(t, g, model)
		})
	}
}

func TestRollbackInvisible(t *testing.T) {
	g := newTestGroup(t, vfs.OS, t.TempDir(), false)
	defer g.Close()
	tx := g.Begin()
	tx.Put("Mailbox1", "t", []byte("a"), []byte("1"))
	if v, ok, _ := tx.Get("Mailbox1", "t", []byte("a")); !ok || string(v) != "1" {
		t.Fatal("transaction does not see its own write")
	}
	tx.Rollback()
	g.View(func(tx *Tx) error {
		if _, ok, _ := tx.Get("Mailbox1", "t", []byte("a")); ok {
			t.Fatal("rolled back write visible")
		}
		return nil
	})
}

// TestCrashRecovery writes on a CrashFS, crashes (losing unsynced data),
// and checks that every acknowledged commit survives.
func TestCrashRecovery(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		fs := vfs.NewCrashFS()
		fs.SetTornWrites(seed%2 == 0, int64(seed))
		dir := "/store/SG1"
		g := newTestGroup(t, fs, dir, seed%3 == 0)
		r := rand.New(rand.NewPCG(seed, 7))
		model := map[string][]byte{}
		n := 20 + r.IntN(60)
		for round := 0; round < n; round++ {
			next := map[string][]byte{}
			err := g.Update(func(tx *Tx) error {
				for j := 0; j < 20; j++ {
					i := r.IntN(2000)
					v := valN(r, i)
					next[string(keyN(i))] = v
					if err := tx.Put("Mailbox1", "t", keyN(i), v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range next {
				model[k] = v
			}
			if round%10 == 0 {
				g.flush(true)
			}
		}
		fs.Crash()
		g2, err := OpenGroup(dir, Options{FS: fs})
		if err != nil {
			t.Fatalf("seed %d: reopen after crash: %v", seed, err)
		}
		checkModel(t, g2, model)
		g2.Close()
	}
}

func TestStoreLockNamesHolder(t *testing.T) {
	root := t.TempDir()
	if err := InitStore(root, []GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1"}}}, Options{}); err != nil {
		t.Fatal(err)
	}
	srv, err := OpenServer(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, err = OpenServer(root, Options{})
	var le *LockError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("error does not name the holder: %v", err)
	}
}
