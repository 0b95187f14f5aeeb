package tapeformat

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/agestream"
)

// fakeTape is an in-memory VolumeWriter with a capacity of capRecs records
// per volume, reporting early warning from record ewRec on.
type fakeTape struct {
	t       *testing.T
	rec     int
	capRecs int
	ewRec   int // 0: never
	maxVols int
	vols    [][]byte
	ew, eom int
}

func (f *fakeTape) Write(p []byte) (int, error) {
	if len(p) != f.rec {
		f.t.Fatalf("write of %d bytes, record size %d", len(p), f.rec)
	}
	if len(f.vols) == 0 {
		f.vols = append(f.vols, nil)
	}
	v := &f.vols[len(f.vols)-1]
	n := len(*v) / f.rec
	if n >= f.capRecs {
		f.eom++
		return 0, fmt.Errorf("st0: write: %w", ErrEndOfMedium)
	}
	*v = append(*v, p...)
	if f.ewRec > 0 && n+1 >= f.ewRec {
		f.ew++
		return len(p), fmt.Errorf("st0: %w", ErrEarlyWarning)
	}
	return len(p), nil
}

func (f *fakeTape) NextVolume() error {
	if len(f.vols) >= f.maxVols {
		return errors.New("no more tapes")
	}
	f.vols = append(f.vols, nil)
	return nil
}

type volReader struct {
	vols [][]byte
	i    int
	r    *bytes.Reader
}

func (v *volReader) Read(p []byte) (int, error) {
	if v.r == nil {
		v.r = bytes.NewReader(v.vols[0])
	}
	return v.r.Read(p)
}

func (v *volReader) NextVolume() error {
	if v.i+1 >= len(v.vols) {
		return errors.New("no more volumes")
	}
	v.i++
	v.r = bytes.NewReader(v.vols[v.i])
	return nil
}

func TestMultiVolume(t *testing.T) {
	files := []testFile{
		{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 900_000}, mail(900_000, 31)},
		{FileInfo{Name: "Mailbox1.stm", Kind: KindStreaming, Size: 300_000}, mail(300_000, 32)},
		{FileInfo{Name: "E0000000A3.log", Kind: KindLog, Size: 70_000}, mail(70_000, 33)},
	}
	for _, tc := range []struct {
		name           string
		capRecs, ewRec int
		wantEW, wantEM bool
	}{
		{"early-warning", 30, 20, true, false},
		{"end-of-medium", 20, 0, false, true},
		{"warning-then-end", 20, 19, true, true},
	} {
		for _, c := range []string{"zstd", "none", "zstd+age", "none+age"} {
			t.Run(tc.name+"/"+c, func(t *testing.T) {
				var ids []*agestream.Identity
				opts := smallOpts(t, strings.TrimSuffix(c, "+age"))
				if strings.HasSuffix(c, "+age") {
					// encrypted: a member cut at the end of a volume is
					// rewritten from the same sealed bytes
					k := x25519TestKey(t)
					opts.Recipients, ids = recipients(k), k.ids
				}
				tape := &fakeTape{t: t, rec: opts.RecordSize, capRecs: tc.capRecs, ewRec: tc.ewRec, maxVols: 50}
				w, err := NewWriter(tape, opts)
				if err != nil {
					t.Fatal(err)
				}
				writeFiles(t, w, files)
				if (tape.ew > 0) != tc.wantEW || (tape.eom > 0) != tc.wantEM || len(tape.vols) < 2 {
					t.Fatalf("%d volumes, %d early warnings, %d EOM", len(tape.vols), tape.ew, tape.eom)
				}
				for i, v := range tape.vols {
					checkVolume(t, v, i+1, i == len(tape.vols)-1, tape.eom == 0 || i == len(tape.vols)-1)
				}
				res, err := readSet(t, &volReader{vols: tape.vols}, ReaderOptions{Strict: true, RecordSize: opts.RecordSize, Identities: ids})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.losses) != 0 || res.manifest == nil || len(res.manifest.Volumes) != len(tape.vols) {
					t.Fatalf("losses %v manifest %v", res.losses, res.manifest)
				}
				for _, f := range files {
					if !bytes.Equal(res.files[f.fi.Name], f.data) {
						t.Fatalf("%s differs", f.fi.Name)
					}
				}
				// every member listed in the manifest is on the volume it says
				for _, vi := range res.manifest.Volumes {
					for _, m := range vi.Members {
						if !bytes.Contains(tape.vols[vi.Volume-1], []byte(m+"\x00")) {
							t.Fatalf("member %s not on volume %d", m, vi.Volume)
						}
					}
				}
				t.Logf("%d volumes, %d early warnings, %d EOM", len(tape.vols), tape.ew, tape.eom)
			})
		}
	}
}

// checkVolume checks that a volume starts with its label, ends with the
// manifest if it is the last, and (if complete) is a valid archive for Go
// and GNU tar.
func checkVolume(t *testing.T, v []byte, n int, last, complete bool) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(v))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if complete {
				t.Fatalf("volume %d: %v", n, err)
			}
			break
		}
		names = append(names, h.Name)
		if len(names) == 1 {
			var l Label
			b, _ := io.ReadAll(tr)
			if h.Name != LabelName || json.Unmarshal(b, &l) != nil || l.Volume != n {
				t.Fatalf("volume %d starts with %s %+v", n, h.Name, l)
			}
		}
	}
	if last != (names[len(names)-1] == ManifestName) {
		t.Fatalf("volume %d (last %v) ends with %s", n, last, names[len(names)-1])
	}
	if complete {
		if _, err := exec.LookPath("tar"); err == nil {
			p := filepath.Join(t.TempDir(), "vol.tar")
			os.WriteFile(p, v, 0o644)
			out, err := exec.Command("tar", "-tf", p).CombinedOutput()
			if err != nil || bytes.Count(out, []byte("\n")) != len(names) {
				t.Fatalf("volume %d: tar -tf: %v %s", n, err, out)
			}
		}
	}
}
