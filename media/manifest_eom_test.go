package media

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// TestLabelledSetManifestAtVolumeEnd writes labelled two-volume sets to an
// emulated tape of 1 MiB with the default 64 KiB early-warning reserve and
// 64 KiB blocks: the volume label takes part of the reserve, so after the
// early warning no whole block fits, and the member being written is cut
// and rewritten on the next cartridge. The data's size is swept so that
// the cut falls in the manifest. Every set must read back strictly
// complete through the tape reader, its manifest naming the volumes the
// sink wrote.
//
// Before the fix the reader took a manifest cut at the end of a volume for
// a truncated set ("member tapestream/manifest.json: ... set truncated:
// member data ends after 7680 of 24014 bytes"): verify and catalog rebuild
// failed a set the job had reported complete, and a restore chose an
// older chain.
func TestLabelledSetManifestAtVolumeEnd(t *testing.T) {
	const rs = 64 << 10
	cut := 0
	for extra := 0; extra < rs; extra += 4 << 10 {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			h := emulatedFactory(t, "capacity=1MiB")
			if err := WriteVolumeLabel(h.target+"&volume=1", VolumeLabel{Label: "P0000", Pool: "p"}, rs, false); err != nil {
				t.Fatal(err)
			}
			var tl testLabeler
			setID := tapeformat.NewSetID()
			files := map[string][]byte{}
			// 40 files make a manifest of about 14 KiB: a fifth of a block
			for i := range 40 {
				n := 20_000
				if i == 0 {
					n = 90_000 + extra
				}
				files[fmt.Sprintf("E%08X.log", i)] = bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, n/3+1)[:n]
			}
			vols := writeTestSet(t, h.target, rs, tl.labeler("p", setID), setID, files)
			for i, v := range vols {
				img, err := os.ReadFile(EmulatedTape{Dir: h.dir}.VolumePath(v.Cartridge))
				if err != nil {
					t.Fatal(err)
				}
				if i < len(vols)-1 && bytes.Contains(img, []byte(tapeformat.ManifestName+"\x00")) {
					cut++
				}
			}
			readTestSet(t, h.target, rs, setID, vols, files)
		})
	}
	if cut == 0 {
		t.Fatal("no size cut the manifest at the end of a volume: the sweep tests nothing")
	}
	t.Logf("the manifest was cut at the end of a volume in %d of %d sets", cut, rs/(4<<10))
}

// writeTestSet writes files as a set with codec none to a labelled tape
// sink appending to target and returns the sink's volumes.
func writeTestSet(t *testing.T, target string, rs int, lb *Labeler, setID string, files map[string][]byte) []VolumeInfo {
	t.Helper()
	var stderr bytes.Buffer
	return writeTestSetOpts(t, target, Options{RecordSize: rs, Append: true, Labeler: lb, Stderr: &stderr}, setID, files)
}

func writeTestSetOpts(t *testing.T, target string, opts Options, setID string, files map[string][]byte) []VolumeInfo {
	t.Helper()
	s, err := Open(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := tapeformat.NewWriter(s, tapeformat.WriterOptions{RecordSize: opts.RecordSize, SegmentSize: 256 << 10, Codec: codec.Codec{Kind: codec.None}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Begin(tapeformat.Label{SetID: setID, SetType: "full", StorageGroup: "SG1"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		data := files[name]
		fw, err := tw.CreateFile(tapeformat.FileInfo{Name: name, Kind: tapeformat.KindLog, Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	return s.Volumes()
}

// readTestSet reads a set written by writeTestSet back strictly, through
// the tape reader asking for the cartridges by label as a restore by
// catalog does, and compares it with files.
func readTestSet(t *testing.T, target string, rs int, setID string, vols []VolumeInfo, files map[string][]byte) {
	t.Helper()
	var stderr bytes.Buffer
	labels := make([]string, len(vols))
	for i, v := range vols {
		labels[i] = v.Label
	}
	r, err := OpenReader(fmt.Sprintf("%s&volume=%d", target, vols[0].Cartridge), Options{RecordSize: rs, FileNumber: int(vols[0].FileNumber),
		Expect: ExpectedSet{SetID: setID, Labels: labels}, Stderr: &stderr})
	if err != nil {
		t.Fatalf("volumes %+v: %v", vols, err)
	}
	defer r.Close()
	rd, err := tapeformat.NewReader(r, tapeformat.ReaderOptions{RecordSize: rs, Strict: true})
	if err != nil {
		t.Fatalf("volumes %+v: %v", vols, err)
	}
	got := map[string][]byte{}
	for {
		fh, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%d volumes: %v", len(vols), err)
		}
		var b []byte
		for {
			c, err := rd.NextChunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", fh.Name, err)
			}
			b = append(b, c.Data...)
		}
		got[fh.Name] = b
	}
	m, err := rd.Manifest()
	if err != nil || m == nil || len(m.Volumes) != len(vols) || m.Totals.Volumes != len(vols) {
		t.Fatalf("manifest %v (%v) for %d volumes written", m, err, len(vols))
	}
	for name, data := range files {
		if !bytes.Equal(got[name], data) {
			t.Fatalf("%s differs", name)
		}
	}
}
