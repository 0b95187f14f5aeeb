package tapeformat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/ese"
)

var update = flag.Bool("update", false, "rewrite the golden sets in testdata/")

// Golden sets: written once by
//
//	go test ./tapeformat -run TestGolden -update
//
// and never regenerated: every future version must read them.
func goldenFiles() []testFile {
	return []testFile{
		{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 100_000, DBHeader: []byte{0xef, 0xcd, 0xab, 0x89}}, mail(100_000, 41)},
		{FileInfo{Name: "Mailbox1.stm", Kind: KindStreaming, Size: 1}, []byte{0}},
		{FileInfo{Name: "E0000000A3.log", Kind: KindLog, Size: 20_000}, mail(20_000, 42)},
		{FileInfo{Name: "E0000000A4.log", Kind: KindLog, Size: 0}, nil},
	}
}

type goldenExpect struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

func TestGolden(t *testing.T) {
	expPath := filepath.Join("testdata", "golden-expect.json")
	if *update {
		os.MkdirAll("testdata", 0o755)
		var exp []goldenExpect
		for _, f := range goldenFiles() {
			s := sha256.Sum256(f.data)
			exp = append(exp, goldenExpect{f.fi.Name, len(f.data), hex.EncodeToString(s[:])})
		}
		js, _ := json.MarshalIndent(exp, "", "  ")
		os.WriteFile(expPath, append(js, '\n'), 0o644)
		// The sets of earlier format versions (golden-v1-*: SHA-256
		// digests, golden-v2-*: BLAKE3) are never rewritten; -update
		// writes the current one's.
		for _, c := range codecs {
			set := writeSet(t, smallOpts(t, c), goldenFiles())
			os.WriteFile(filepath.Join("testdata", fmt.Sprintf("golden-v%d-%s.tar", FormatVersion, c)), set, 0o644)
		}
	}
	js, err := os.ReadFile(expPath)
	if err != nil {
		t.Fatal(err)
	}
	var exp []goldenExpect
	if err := json.Unmarshal(js, &exp); err != nil {
		t.Fatal(err)
	}
	for _, name := range goldenSets(t) {
		t.Run(name, func(t *testing.T) {
			set, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.order) != len(exp) || res.manifest == nil || res.label.SetID != testLabel().SetID {
				t.Fatalf("files %v", res.order)
			}
			for i, e := range exp {
				s := sha256.Sum256(res.files[e.Name])
				if res.order[i] != e.Name || len(res.files[e.Name]) != e.Size || hex.EncodeToString(s[:]) != e.SHA256 {
					t.Fatalf("golden %s: file %s differs", name, e.Name)
				}
			}
			if len(res.losses) != 0 || len(res.warnings) != 0 {
				t.Fatalf("golden %s: losses %v warnings %v", name, res.losses, res.warnings)
			}
			if strings.HasPrefix(name, "golden-v3-") {
				// the typed label, and each file's header as its
				// file-info has it, before the manifest is read
				l, want := res.label, testLabel()
				if l.FormatVersion != 3 || l.GroupSignature != want.GroupSignature || l.LogPrefix != want.LogPrefix ||
					l.GroupID != want.GroupID || !slices.Equal(l.DatabaseIDs, want.DatabaseIDs) {
					t.Fatalf("golden %s: label %+v", name, l)
				}
				for _, f := range goldenFiles() {
					h := res.headers[f.fi.Name]
					if h.Size != f.fi.Size || !bytes.Equal(h.DBHeader, f.fi.DBHeader) || h.Kind != f.fi.Kind {
						t.Fatalf("golden %s: header %+v", name, h)
					}
				}
				if res.manifest.Info.SetType != ese.Full || res.manifest.Info.GroupSignature != want.GroupSignature {
					t.Fatalf("golden %s: manifest info %+v", name, res.manifest.Info)
				}
			}
		})
	}
}

// goldenSets are the frozen sets: every codec, format version 1 (SHA-256
// file digests), 2 (BLAKE3) and 3 (checksummed metadata, file-info).
func goldenSets(t *testing.T) []string {
	var names []string
	for _, gen := range []string{"golden-v1-", "golden-v2-", "golden-v3-"} {
		for _, c := range codecs {
			names = append(names, gen+c+".tar")
		}
	}
	return names
}

// FuzzReader feeds arbitrary sets to the Reader: it must not panic, must
// stay within its limits and must never return a chunk that fails its CRC.
func FuzzReader(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.tar"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 2048)]) // the label; whole sets are in the corpus below
	}
	// small complete sets (the fuzzer is slow with large inputs)
	for _, c := range codecs {
		opts := WriterOptions{Codec: mustCodec(f, c), RecordSize: 512, SegmentSize: 64 << 10, FrameSize: 256}
		f.Add(writeSet(f, opts, []testFile{
			{FileInfo{Name: "a.edb", Kind: KindDatabase, Size: 600}, mail(600, 1)},
			{FileInfo{Name: "b.log", Kind: KindLog, Size: 10}, mail(10, 2)},
		}))
	}
	f.Fuzz(func(t *testing.T, set []byte) {
		readSet(t, bytes.NewReader(set), ReaderOptions{Strict: len(set)%2 == 1, MaxMemberSize: 1 << 20,
			MaxManifestSize: 1 << 20, MaxFrameSize: 1 << 20, RecordSize: 10240})
	})
}
