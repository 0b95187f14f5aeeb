package tapeformat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/agestream"
)

var updateAge = flag.Bool("update-age", false, "rewrite the golden encrypted sets in testdata/")

// goldenAgeKey is the test identity of the golden encrypted sets.
func goldenAgeKey(t testing.TB) *testKey {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "golden-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := agestream.ParseIdentities(text, "golden-age-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	return newTestKey(t, text, ids[0].Description().Recipient)
}

var goldenAgeCodecs = []string{"zstd", "none"}

// TestGoldenEncrypted: the golden encrypted sets, written once by
//
//	go test ./tapeformat -run TestGoldenEncrypted -update-age
//
// (the goldenFiles, encrypted to testdata/golden-age-key.txt), read back
// exactly with the key, and sealed without it.
func TestGoldenEncrypted(t *testing.T) {
	k := goldenAgeKey(t)
	if *updateAge {
		for _, c := range goldenAgeCodecs {
			opts := smallOpts(t, c)
			opts.Recipients = recipients(k)
			set := writeSet(t, opts, goldenFiles())
			os.WriteFile(filepath.Join("testdata", fmt.Sprintf("golden-v%d-%s-age.tar", FormatVersion, c)), set, 0o644)
		}
	}
	for _, c := range goldenAgeCodecs {
		set, err := os.ReadFile(filepath.Join("testdata", "golden-v3-"+c+"-age.tar"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true, Identities: k.ids})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.losses) != 0 || len(res.warnings) != 0 || res.label.Encryption == nil || res.label.Encryption.Recipients[0] != k.rcpt.Description() {
			t.Fatalf("%s: losses %v warnings %v label %+v", c, res.losses, res.warnings, res.label.Encryption)
		}
		for _, f := range goldenFiles() {
			if !bytes.Equal(res.files[f.fi.Name], f.data) || !bytes.Equal(res.headers[f.fi.Name].DBHeader, f.fi.DBHeader) {
				t.Fatalf("%s: %s differs", c, f.fi.Name)
			}
		}
		names, losses, warnings := readSealed(t, set)
		if len(names) != len(goldenFiles()) || len(losses) != 0 || len(warnings) != 0 {
			t.Fatalf("%s sealed: files %v, losses %v, warnings %v", c, names, losses, warnings)
		}
	}
}

// FuzzReaderEncrypted feeds damaged encrypted sets to the Reader, with
// the identity and without (sealed): it must not panic, must stay within
// its limits and must never return a chunk that fails its CRC.
func FuzzReaderEncrypted(f *testing.F) {
	k := goldenAgeKey(f)
	for _, c := range goldenAgeCodecs {
		b, err := os.ReadFile(filepath.Join("testdata", "golden-v3-"+c+"-age.tar"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range codecs {
		opts := WriterOptions{Codec: mustCodec(f, c), RecordSize: 512, SegmentSize: 64 << 10, FrameSize: 256, Recipients: recipients(k)}
		f.Add(writeSet(f, opts, []testFile{
			{FileInfo{Name: "a.edb", Kind: KindDatabase, Size: 600, DBHeader: []byte("hdr")}, mail(600, 1)},
			{FileInfo{Name: "b.log", Kind: KindLog, Size: 10}, mail(10, 2)},
		}))
	}
	f.Fuzz(func(t *testing.T, set []byte) {
		o := ReaderOptions{Strict: len(set)%2 == 1, MaxMemberSize: 1 << 20, MaxManifestSize: 1 << 20, MaxFrameSize: 1 << 20, RecordSize: 10240}
		readSet(t, bytes.NewReader(set), o)
		o.Identities = k.ids
		readSet(t, bytes.NewReader(set), o)
	})
}

// TestEncryptedRecoveryWithStandardTools recovers every file of an
// encrypted set of every codec with nothing but tar, Debian's age CLI and
// the codec's CLI, with each of two recipients' keys alone, as FORMAT.md
// and the README describe: tar -xf, age -d each part in order,
// concatenate, decompress.
func TestEncryptedRecoveryWithStandardTools(t *testing.T) {
	needCLI(t, "tar")
	needCLI(t, "age")
	dir := t.TempDir()
	x, ed := x25519TestKey(t), ed25519TestKey(t)
	keyFiles := map[string][]byte{"x25519.key": x.text, "ed25519.key": ed.text}
	for name, text := range keyFiles {
		if err := os.WriteFile(filepath.Join(dir, name), text, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dec := map[string]string{"zstd": "zstd -d -q", "lz4": "lz4 -d -q", "gzip": "gzip -d", "none": "cat"}
	for _, c := range codecs {
		if tool := strings.Fields(dec[c])[0]; tool != "cat" {
			needCLI(t, tool)
		}
		opts := smallOpts(t, c)
		opts.Recipients = recipients(x, ed)
		files := sizesFiles()
		set := filepath.Join(dir, c+".tar")
		if err := os.WriteFile(set, writeSet(t, opts, files), 0o644); err != nil {
			t.Fatal(err)
		}
		ext := mustCodec(t, c).Ext()
		for key := range keyFiles {
			out := filepath.Join(dir, c+"-"+key)
			os.MkdirAll(out, 0o755)
			if b, err := exec.Command("tar", "-xf", set, "-C", out).CombinedOutput(); err != nil || len(b) > 0 {
				t.Fatalf("tar -xf: %v %s", err, b)
			}
			for _, f := range files {
				parts, _ := filepath.Glob(filepath.Join(out, kindDir(f.fi.Kind), f.fi.Name+ext+".part*.age"))
				sort.Strings(parts)
				if len(parts) == 0 {
					t.Fatalf("%s: no parts of %s", c, f.fi.Name)
				}
				script := fmt.Sprintf(`for p in %s; do age -d -i %s "$p" || exit 1; done | %s`,
					strings.Join(parts, " "), filepath.Join(dir, key), dec[c])
				got, err := exec.Command("sh", "-c", script).Output()
				if err != nil {
					t.Fatalf("%s, %s: %s: %v", c, key, script, err)
				}
				if !bytes.Equal(got, f.data) {
					s1, s2 := sha256.Sum256(got), sha256.Sum256(f.data)
					t.Fatalf("%s, %s: %s recovered as %d bytes %s, want %d %s", c, key, f.fi.Name, len(got), hex.EncodeToString(s1[:4]), len(f.data), hex.EncodeToString(s2[:4]))
				}
			}
		}
	}
}
