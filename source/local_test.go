package source

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
)

func TestOpenLocalRefusesStoreInUse(t *testing.T) {
	root := t.TempDir()
	if err := engine.InitStore(root, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1"}}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLocal(root, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := OpenLocal(root, engine.Options{}); err == nil || !strings.Contains(err.Error(), "in use by process") {
		t.Fatalf("second in-process source on the same store: %v", err)
	}
}

// TestLocalSessionReadsEveryChunk drives a session through the interface
// the pipeline uses: 64 KiB chunks, the last short, every log listed.
func TestLocalSessionReadsEveryChunk(t *testing.T) {
	root := t.TempDir()
	if err := engine.InitStore(root, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1", "Public"}}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLocal(root, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	groups, _ := l.Prepare(ctx)
	if len(groups) != 1 || len(groups[0].Databases) != 2 || groups[0].Databases[0].GUID == "" {
		t.Fatalf("prepare: %+v", groups)
	}
	s, err := l.Begin(ctx, "SG1", ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := s.DatabaseFiles(ctx)
	buf := make([]byte, engine.ChunkSize)
	read := func(name string) int64 {
		f, err := s.OpenFile(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var n int64
		for {
			k, err := f.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n += int64(k)
		}
		if n != f.Size() {
			t.Fatalf("%s: read %d of %d bytes", name, n, f.Size())
		}
		return n
	}
	for _, f := range files {
		read(f.Name)
	}
	logs, err := s.LogFiles(ctx)
	if err != nil || len(logs) == 0 {
		t.Fatalf("logs: %v %v", logs, err)
	}
	for _, lf := range logs {
		read(lf.Name)
	}
	if _, err := s.End(ctx, "test-set", true); err != nil {
		t.Fatal(err)
	}
	// Canceled context: the session aborts instead of hanging the group.
	cctx, cancel := context.WithCancel(ctx)
	s2, err := l.Begin(cctx, "SG1", ese.Copy, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s2.OpenFile(cctx, files[0].Name)
	cancel()
	if _, err := f.Read(buf); err == nil {
		t.Fatal("read after cancel succeeded")
	}
	if s3, err := l.Begin(ctx, "SG1", ese.Copy, nil); err != nil {
		t.Fatalf("group still held after the canceled session: %v", err)
	} else {
		s3.Abort(nil)
	}
}
