package media

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat"
)

// TestAppendToFullCartridge appends a set to a cartridge that the previous
// set filled into its early-warning reserve, with less than a block left:
// the set must start on another cartridge (labelled as a first one when
// cartridges are labelled), leave the full one untouched, and read back
// from where the sink says it starts.
//
// Before the fix the set's first block met the end of the medium, the
// Writer asked for the next volume, and the set's volume 1 was a tape
// file holding only a filemark on the full cartridge: the catalog recorded
// the set there ("M0002 file 2"), and verify and catalog rebuild failed it
// ("volume 1 offset 0: not a tapestream member: empty volume").
func TestAppendToFullCartridge(t *testing.T) {
	const rs = 64 << 10
	for _, tc := range []struct {
		name     string
		query    string
		labelled bool
		why      string
	}{
		// the drive reports early warning at the end of data (the
		// default 64 KiB reserve, part of it taken by the volume label)
		{"early-warning", "capacity=1MiB", true, "past the early-warning mark"},
		{"early-warning/unlabelled", "capacity=1MiB", false, "past the early-warning mark"},
		// a reserve smaller than the free space: the end of data is
		// before early warning, but no block fits
		{"end-of-medium", "capacity=1000KiB&early-warning=4KiB", true, "first block did not fit"},
		{"end-of-medium/unlabelled", "capacity=1000KiB&early-warning=4KiB", false, "first block did not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := emulatedFactory(t, tc.query)
			var tl testLabeler
			lb := func(set string) *Labeler { return nil }
			if tc.labelled {
				if err := WriteVolumeLabel(h.target+"&volume=1", VolumeLabel{Label: "P0000", Pool: "p"}, rs, false); err != nil {
					t.Fatal(err)
				}
				lb = func(set string) *Labeler { return tl.labeler("p", set) }
			}
			// set A fills cartridge 1 until no block fits
			s, err := Open(h.target, Options{RecordSize: rs, Append: tc.labelled, Labeler: lb("setA")})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				if _, err := s.Write(record(rs, 1, i)); err != nil && !strings.Contains(err.Error(), "early warning") {
					break
				}
			}
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			full, err := os.ReadFile(h.dir + "/vol001.img")
			if err != nil {
				t.Fatal(err)
			}

			setID := tapeformat.NewSetID()
			files := map[string][]byte{"E00000001.log": bytes.Repeat([]byte("log "), 30_000), "Mailbox1.edb": bytes.Repeat([]byte("page"), 100_000)}
			var stderr bytes.Buffer
			vols := writeTestSetOpts(t, h.target, Options{RecordSize: rs, Append: true, Labeler: lb(setID), Stderr: &stderr}, setID, files)
			if len(vols) != 1 || vols[0].Cartridge != 2 || vols[0].Records == 0 {
				t.Fatalf("volumes %+v, want the set whole on cartridge 2\n%s", vols, stderr.String())
			}
			if now, _ := os.ReadFile(h.dir + "/vol001.img"); !bytes.Equal(now, full) {
				t.Fatal("the full cartridge was written on")
			}
			if tc.labelled {
				p0 := cartridgeFile0(t, h, 2)
				if vols[0].Label != "P0001" || vols[0].FileNumber != 1 || p0.label == nil || p0.label.Label != "P0001" || p0.label.SetID != "" {
					t.Fatalf("volume 1 %+v on a cartridge labelled %+v, want P0001 naming no set", vols[0], p0.label)
				}
				if !strings.Contains(stderr.String(), "P0000 is full") {
					t.Fatalf("the full cartridge is not named:\n%s", stderr.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.why) {
				t.Fatalf("not moved because %q:\n%s", tc.why, stderr.String())
			}
			readTestSet(t, h.target, rs, setID, vols, files)
		})
	}
}
