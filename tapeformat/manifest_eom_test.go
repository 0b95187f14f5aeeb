package tapeformat

import (
	"bytes"
	"fmt"
	"testing"
)

// TestManifestAtEndOfMedium sweeps the volume capacity so that the end of
// the medium falls on every record of a set's tail, the manifest and the
// archive trailer included, with no reserve (early warning on a volume's
// last record, as on an emulated tape whose reserve the volume label has
// eaten into): every set must read back strictly complete, its manifest
// naming the volumes really written and the members each holds, and no
// volume may hold only a label.
//
// Before the fix, a manifest cut at the end of a volume (and rewritten
// whole on the next, as the end-of-medium protocol does for every member)
// was reported as damage, "set truncated: member data ends after N of M
// bytes", so verify and catalog rebuild failed a complete set; and a
// manifest moved to the next volume still counted the volumes it was
// built for.
func TestManifestAtEndOfMedium(t *testing.T) {
	for _, c := range []string{"zstd", "none"} {
		opts := smallOpts(t, c)
		tornManifest := 0
		// the log's size moves the manifest across a record
		for logSize := 30_000; logSize < 30_000+opts.RecordSize; logSize += 1000 {
			files := []testFile{
				{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 200_000}, mail(200_000, 41)},
				{FileInfo{Name: "E0000000A3.log", Kind: KindLog, Size: int64(logSize)}, mail(logSize, 42)},
			}
			// how many records the set takes on one volume
			one := len(writeSet(t, opts, files)) / opts.RecordSize
			for capRecs := max(one/3-1, 10); capRecs <= one+1; capRecs++ {
				for _, reserve := range []int{0, 1} {
					name := fmt.Sprintf("%s/log%d/cap%d/reserve%d", c, logSize, capRecs, reserve)
					tape := &fakeTape{t: t, rec: opts.RecordSize, capRecs: capRecs, ewRec: capRecs - reserve, maxVols: 20}
					w, err := NewWriter(tape, opts)
					if err != nil {
						t.Fatal(err)
					}
					writeFiles(t, w, files)
					for i, v := range tape.vols {
						if i < len(tape.vols)-1 && bytes.Contains(v, []byte(ManifestName+"\x00")) {
							tornManifest++
						}
						if len(v) <= opts.RecordSize && i > 0 && !bytes.Contains(v, []byte(ManifestName+"\x00")) {
							t.Errorf("%s: volume %d of %d holds only its label", name, i+1, len(tape.vols))
						}
					}
					res, err := readSet(t, &volReader{vols: tape.vols}, ReaderOptions{Strict: true, RecordSize: opts.RecordSize})
					if err != nil {
						t.Errorf("%s: %d volumes: %v", name, len(tape.vols), err)
						continue
					}
					if len(res.losses) != 0 || res.manifest == nil {
						t.Errorf("%s: losses %v manifest %v", name, res.losses, res.manifest)
						continue
					}
					if got := len(res.manifest.Volumes); got != len(tape.vols) || res.manifest.Totals.Volumes != len(tape.vols) {
						t.Errorf("%s: manifest lists %d volumes (totals %d), %d written", name, got, res.manifest.Totals.Volumes, len(tape.vols))
					}
					for _, vi := range res.manifest.Volumes {
						for _, m := range vi.Members {
							if vi.Volume > len(tape.vols) || !bytes.Contains(tape.vols[vi.Volume-1], []byte(m+"\x00")) {
								t.Errorf("%s: member %s not on volume %d", name, m, vi.Volume)
							}
						}
					}
					for _, f := range files {
						if !bytes.Equal(res.files[f.fi.Name], f.data) {
							t.Errorf("%s: %s differs", name, f.fi.Name)
						}
					}
				}
			}
		}
		if tornManifest == 0 {
			t.Errorf("%s: no capacity cut the manifest at a volume end: the sweep tests nothing", c)
		}
		t.Logf("%s: the manifest was cut at a volume end %d times", c, tornManifest)
	}
}
