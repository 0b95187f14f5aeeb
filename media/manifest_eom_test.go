package media

import (
	"bytes"
	"fmt"
	"io"
	"os"
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
			var stderr bytes.Buffer
			setID := tapeformat.NewSetID()
			s, err := Open(h.target, Options{RecordSize: rs, Append: true, Labeler: tl.labeler("p", setID), Stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			tw, err := tapeformat.NewWriter(s, tapeformat.WriterOptions{RecordSize: rs, SegmentSize: 256 << 10, Codec: codec.Codec{Kind: codec.None}})
			if err != nil {
				t.Fatal(err)
			}
			if err := tw.Begin(tapeformat.Label{SetID: setID, SetType: "full", StorageGroup: "SG1"}); err != nil {
				t.Fatal(err)
			}
			// 40 files make a manifest of about 20 KiB: a third of a block
			files := map[string][]byte{}
			for i := range 40 {
				n := 20_000
				if i == 0 {
					n = 90_000 + extra
				}
				name := fmt.Sprintf("E%08X.log", i)
				data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, n/3+1)[:n]
				files[name] = data
				fw, err := tw.CreateFile(tapeformat.FileInfo{Name: name, Kind: tapeformat.KindLog, Size: int64(n)})
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
			vols := s.Volumes()
			labels := make([]string, len(vols))
			for i, v := range vols {
				labels[i] = v.Label
				img, err := os.ReadFile(EmulatedTape{Dir: h.dir}.VolumePath(v.Cartridge))
				if err != nil {
					t.Fatal(err)
				}
				if i < len(vols)-1 && bytes.Contains(img, []byte(tapeformat.ManifestName+"\x00")) {
					cut++
				}
			}
			r, err := OpenReader(h.target+"&volume=1", Options{RecordSize: rs, FileNumber: 1, Expect: ExpectedSet{SetID: setID, Labels: labels}, Stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rd, err := tapeformat.NewReader(r, tapeformat.ReaderOptions{RecordSize: rs, Strict: true})
			if err != nil {
				t.Fatal(err)
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
		})
	}
	if cut == 0 {
		t.Fatal("no size cut the manifest at the end of a volume: the sweep tests nothing")
	}
	t.Logf("the manifest was cut at the end of a volume in %d of %d sets", cut, rs/(4<<10))
}
