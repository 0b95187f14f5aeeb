package restore_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

const recordSize = 64 << 10

// makeSet loads a small store and writes a full set of it.
func makeSet(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := engine.InitStore(dir, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1", "Public"}}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g, _ := srv.Group("SG1")
	if _, err := workload.Run(context.Background(), mailstore.New(g), workload.RunOptions{
		Workload: workload.Workload{Seed: 5, Streams: 2, Databases: g.Databases()}, StopAfterBytes: size,
	}); err != nil {
		t.Fatal(err)
	}
	set := filepath.Join(t.TempDir(), "full.tar")
	if _, err := backup.Run(context.Background(), source.NewLocal(srv), "SG1", set, backup.Options{
		Type: ese.Full, Media: media.Options{RecordSize: recordSize}, Pipeline: pipeline.Options{Codec: codec.Codec{Kind: codec.Zstd}},
	}); err != nil {
		t.Fatal(err)
	}
	return set
}

func opts() restore.Options { return restore.Options{Sink: media.Options{RecordSize: recordSize}} }

// TestDamagedSet zeroes 1 MiB in the middle of a set: verify names the
// lost ranges, a restore refuses and writes nothing, --salvage restores
// the rest and never claims a clean result.
func TestDamagedSet(t *testing.T) {
	set := makeSet(t, 12<<20)
	b, _ := os.ReadFile(set)
	mid := len(b) / 3
	clear(b[mid : mid+1<<20])
	os.WriteFile(set, b, 0o644)

	infos, _, err := restore.Verify(context.Background(), []restore.SetSource{{Path: set}}, opts())
	if err != nil {
		t.Fatal(err)
	}
	var lost int64
	for _, p := range infos[0].Problems {
		if strings.HasPrefix(p.What, "lost") {
			if p.File == "" || p.Length <= 0 {
				t.Fatalf("loss report does not name a file and range: %+v", p)
			}
			lost += p.Length
		}
	}
	if lost == 0 {
		t.Fatalf("verify found no loss in a zeroed region: %v", infos[0].Problems)
	}
	// The loss is bounded by what the zeroed region covers (compressed
	// ~3x, plus the chunks straddling its edges).
	if lost > 8<<20 {
		t.Fatalf("1 MiB of damage lost %d bytes", lost)
	}

	to := filepath.Join(t.TempDir(), "r")
	if _, err := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: set}}, restore.GroupOptions{Options: opts(), To: to}); err == nil {
		t.Fatal("restore of a damaged set succeeded")
	}
	if _, err := os.Stat(filepath.Join(to, "SG1")); err == nil {
		t.Fatal("failed restore left a group directory")
	}
	o := opts()
	o.Salvage = true
	res, err := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: set}}, restore.GroupOptions{Options: o, To: to})
	if err == nil {
		t.Fatal("salvage claimed a clean result")
	}
	if res == nil || len(res.Problems) == 0 {
		t.Fatalf("salvage reported no problems: %v", err)
	}
	if _, err := os.Stat(filepath.Join(to, "SG1", "Mailbox1.edb")); err != nil {
		t.Fatalf("salvage restored nothing: %v", err)
	}
}

// craft rewrites a valid set, renaming the first database member (and its
// record) or adding an extra member, to build hostile sets.
func craft(t *testing.T, set string, mutate func(h *tar.Header, rec map[string]any) bool) string {
	t.Helper()
	in, _ := os.Open(set)
	defer in.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(in)
	done := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		var rec map[string]any
		json.Unmarshal([]byte(h.PAXRecords["comment"]), &rec)
		if !done && strings.HasPrefix(h.Name, "databases/") {
			done = mutate(h, rec)
			b, _ := json.Marshal(rec)
			h.PAXRecords["comment"] = string(b)
			if h.Typeflag == tar.TypeSymlink {
				data = nil
				h.Size = 0
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	out := filepath.Join(t.TempDir(), "crafted.tar")
	// Pad to whole records as the format requires.
	b := buf.Bytes()
	if r := len(b) % recordSize; r != 0 {
		b = append(b, make([]byte, recordSize-r)...)
	}
	os.WriteFile(out, b, 0o644)
	return out
}

func TestHostileSetsWriteNothingOutside(t *testing.T) {
	set := makeSet(t, 2<<20)
	cases := map[string]func(h *tar.Header, rec map[string]any) bool{
		"dotdot": func(h *tar.Header, rec map[string]any) bool {
			h.Name = "databases/../../../escaped.edb.zst.part000001"
			rec["name"] = "../../../escaped.edb"
			return true
		},
		"absolute": func(h *tar.Header, rec map[string]any) bool {
			h.Name = "/tmp/escaped-abs.edb.zst.part000001"
			rec["name"] = "/tmp/escaped-abs.edb"
			return true
		},
		"symlink": func(h *tar.Header, rec map[string]any) bool {
			h.Typeflag = tar.TypeSymlink
			h.Linkname = "/etc/passwd"
			return true
		},
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			bad := craft(t, set, mut)
			base := t.TempDir()
			to := filepath.Join(base, "target", "store")
			_, err := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: bad}}, restore.GroupOptions{Options: opts(), To: to})
			if err == nil {
				t.Fatal("hostile set restored")
			}
			filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
				if err == nil && strings.Contains(fi.Name(), "escaped") {
					t.Fatalf("%s written", p)
				}
				return nil
			})
			if _, err := os.Stat("/tmp/escaped-abs.edb"); err == nil {
				t.Fatal("absolute member name written")
			}
			if _, err := os.Stat(filepath.Join(to, "SG1")); err == nil {
				t.Fatal("group directory created from a hostile set")
			}
		})
	}
}
