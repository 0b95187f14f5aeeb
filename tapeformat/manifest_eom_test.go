package tapeformat

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/agestream"
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
	for _, c := range []string{"zstd", "none", "zstd+age"} {
		opts := smallOpts(t, strings.TrimSuffix(c, "+age"))
		var ids []*agestream.Identity
		if strings.HasSuffix(c, "+age") {
			// encrypted: the manifest rebuilt on the next volume seals
			// its digests again
			k := x25519TestKey(t)
			opts.Recipients, ids = recipients(k), k.ids
		}
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
					res, err := readSet(t, &volReader{vols: tape.vols}, ReaderOptions{Strict: true, RecordSize: opts.RecordSize, Identities: ids})
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

// TestTearInFileInfoFrame puts the end of the medium inside the file-info
// frame that opens a file's first segment (codecs other than none): the
// member is cut there and rewritten whole on the next volume, and the set
// must read back strictly complete.
//
// Before the fix the Reader took the cut frame for damage ("damaged data:
// no valid chunk record"): a frame is not a unit header, so the check for
// a unit cut at the tear did not apply (seen on an emulated tape of
// 1536 KiB, an incremental whose log's member kept 512 bytes of data on
// volume 1).
func TestTearInFileInfoFrame(t *testing.T) {
	opts := smallOpts(t, "zstd")
	rs := int64(opts.RecordSize)
	hits := 0
	for extra := 0; extra < 4*opts.RecordSize; extra += BlockSize {
		var files []testFile
		for i, n := range []int{50_000 + extra, 30_000, 40_000, 20_000, 35_000} {
			// a database header snapshot makes the frame span blocks,
			// as in a real set's
			fi := FileInfo{Name: fmt.Sprintf("Mailbox%d.edb", i), Kind: KindDatabase, Size: int64(n), DBHeader: mail(1500, uint64(60+i))}
			files = append(files, testFile{fi, mail(n, uint64(50+i))})
		}
		// On one volume, where each file's first member has its
		// file-info frame: volume 1 of a multi-volume set is the same
		// up to the tear.
		var evs []layoutEvent
		w, err := NewWriter(&bytes.Buffer{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		w.layout = func(e layoutEvent) { evs = append(evs, e) }
		writeFiles(t, w, files)
		for _, e := range evs {
			if len(e.units) == 0 || !e.units[0].info {
				continue
			}
			b := (e.data/rs + 1) * rs // the record boundary after the frame's start
			if b >= e.data+int64(e.units[0].n) || b/rs < 8 {
				continue // not inside the frame, or a volume too small for a segment
			}
			hits++
			name := fmt.Sprintf("extra%d/%s", extra, e.name)
			tape := &fakeTape{t: t, rec: opts.RecordSize, capRecs: int(b / rs), maxVols: 20}
			w, err := NewWriter(tape, opts)
			if err != nil {
				t.Fatal(err)
			}
			writeFiles(t, w, files)
			res, err := readSet(t, &volReader{vols: tape.vols}, ReaderOptions{Strict: true, RecordSize: opts.RecordSize})
			if err != nil {
				t.Errorf("%s: cut %d bytes into its %d-byte file-info frame: %v", name, b-e.data, e.units[0].n, err)
				continue
			}
			for _, f := range files {
				if !bytes.Equal(res.files[f.fi.Name], f.data) {
					t.Errorf("%s: %s differs", name, f.fi.Name)
				}
			}
		}
	}
	if hits == 0 {
		t.Fatal("no end of medium fell in a file-info frame: the sweep tests nothing")
	}
	t.Logf("%d sets cut inside a file-info frame", hits)
}
