package media

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLabeler hands out P0001, P0002, ... and records what was labelled.
type testLabeler struct {
	next     int
	labelled []VolumeLabel
	carts    []int
}

func (tl *testLabeler) labeler(pool, set string) *Labeler {
	return &Labeler{Pool: pool, SetID: set,
		Next: func() (string, error) { return fmt.Sprintf("P%04d", tl.next+1), nil },
		Labelled: func(l VolumeLabel, c int) error {
			tl.next++
			tl.labelled = append(tl.labelled, l)
			tl.carts = append(tl.carts, c)
			return nil
		},
		Now: func() time.Time { return time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC) }}
}

// cartridgeFile0 reads the volume label of cartridge n of an emulated tape.
func cartridgeFile0(t *testing.T, h tapeHarness, n int) probed {
	t.Helper()
	p0, _, err := probeCartridge(EmulatedTape{Dir: h.dir}, n, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	return p0
}

// TestLabelledContinuation: with a Labeler every continuation cartridge
// gets a volume label naming the set and its volume number, a cartridge of
// another pool (and one holding sets) is refused before anything is
// written on it, and a reader skips the labels: the records read back are
// the ones written.
func TestLabelledContinuation(t *testing.T) {
	h := emulatedFactory(t, "capacity=1MiB&early-warning=128KiB")
	rs := 64 << 10
	// Cartridge 1: labelled for pool p; cartridge 3: pool q; cartridge 4:
	// pool p but holding a set.
	if err := WriteVolumeLabel(h.target+"&volume=3", VolumeLabel{Label: "Q0001", Pool: "q"}, rs, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteVolumeLabel(h.target+"&volume=4", VolumeLabel{Label: "P0009", Pool: "p"}, rs, false); err != nil {
		t.Fatal(err)
	}
	s4, err := Open(h.target+"&volume=4", Options{RecordSize: rs, Append: true})
	if err != nil {
		t.Fatal(err)
	}
	s4.Write(record(rs, 9, 0))
	if err := s4.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := WriteVolumeLabel(h.target+"&volume=1", VolumeLabel{Label: "P0000", Pool: "p"}, rs, false); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEmulated(h.target, "1", rs); err != nil {
		t.Fatal(err)
	}

	// A first cartridge of another pool is refused before writing.
	var tl testLabeler
	var stderr bytes.Buffer
	if _, err := LoadEmulated(h.target, "Q0001", rs); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(h.dir, "vol003.img"))
	if _, err := Open(h.target, Options{RecordSize: rs, Append: true, Labeler: tl.labeler("p", "set1"), Stderr: &stderr}); !errors.Is(err, ErrWrongCartridge) || !strings.Contains(err.Error(), `Q0001 (pool q) belongs to pool "q", not "p"`) {
		t.Fatalf("first cartridge of pool q: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(h.dir, "vol003.img")); !bytes.Equal(before, after) {
		t.Fatal("the refused cartridge was written on")
	}
	if _, err := LoadEmulated(h.target, "1", rs); err != nil {
		t.Fatal(err)
	}

	s, err := Open(h.target, Options{RecordSize: rs, Append: true, Labeler: tl.labeler("p", "set1"), Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	fillWriter(t, s, rs, 40) // three volumes
	vols := s.Volumes()
	if len(vols) != 3 || vols[0].Label != "P0000" || vols[0].FileNumber != 1 {
		t.Fatalf("volumes %+v", vols)
	}
	// Volume 2 on blank cartridge 2; cartridges 3 (pool q) and 4 (holds a
	// set) refused; volume 3 on blank cartridge 5.
	want := []struct {
		label string
		cart  int
	}{{"P0001", 2}, {"P0002", 5}}
	for i, w := range want {
		v := vols[i+1]
		if v.Label != w.label || v.Cartridge != w.cart || v.FileNumber != 1 || v.Number != i+2 {
			t.Fatalf("volume %d: %+v, want %s on cartridge %d at file 1", i+2, v, w.label, w.cart)
		}
		p0 := cartridgeFile0(t, h, w.cart)
		if p0.content != ContentLabel || p0.label.Label != w.label || p0.label.Pool != "p" || p0.label.SetID != "set1" || p0.label.SetVolume != i+2 {
			t.Fatalf("cartridge %d file 0: %+v %+v", w.cart, p0, p0.label)
		}
	}
	if len(tl.labelled) != 2 || tl.carts[1] != 5 {
		t.Fatalf("labelled %+v on %v", tl.labelled, tl.carts)
	}
	for _, refusal := range []string{"it is Q0001 of pool \"q\", not \"p\"", "it is P0009 (pool p), which holds sets"} {
		if !strings.Contains(stderr.String(), refusal) {
			t.Fatalf("no refusal %q in:\n%s", refusal, stderr.String())
		}
	}
	if p0 := cartridgeFile0(t, h, 3); p0.label == nil || p0.label.Label != "Q0001" || p0.label.SetID != "" {
		t.Fatalf("cartridge 3 was written on: %+v", p0)
	}

	// Reading back: the volume labels are skipped, the records are the
	// ones written, and the continuations are found by label in the
	// library (the catalog's expectation) without a next-volume command.
	opts := Options{RecordSize: rs, FileNumber: 1, Expect: ExpectedSet{SetID: "set1", Labels: []string{"P0000", "P0001", "P0002"}}, Stderr: &stderr}
	got := readAllVolumes(t, h.target+"&volume=1", opts, rs, 3)
	n := 0
	for _, v := range got {
		for _, id := range v {
			if id[0] == 1 {
				n++
			}
		}
	}
	if n != 40 {
		t.Fatalf("read back %d of 40 records: %v", n, got)
	}

	// The wrong first cartridge in the drive is named and refused; the
	// library gets the right one.
	stderr.Reset()
	got = readAllVolumes(t, h.target+"&volume=2", opts, rs, 3)
	if len(got[0]) == 0 || got[0][0] != [2]int{1, 0} || !strings.Contains(stderr.String(), "refused the cartridge in tape:"+h.dir+": it is P0001 (pool p, volume 2 of set set1), not P0000 (volume 1 of set set1)") {
		t.Fatalf("first volume from the wrong cartridge: %v\n%s", got[0], stderr.String())
	}

	// A cartridge the library does not hold is named, and reading fails.
	opts.Expect.Labels[2] = "P0077"
	r, err := OpenReader(h.target+"&volume=1", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for v := 2; v <= 3; v++ {
		readVolume(t, r, rs)
		err = r.NextVolume()
	}
	if !errors.Is(err, ErrWrongCartridge) || !strings.Contains(err.Error(), "P0077 (volume 3 of set set1)") {
		t.Fatalf("missing cartridge: %v", err)
	}
}
