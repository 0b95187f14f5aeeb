package verify_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
)

func pages(n int, first uint32) []byte {
	b := make([]byte, n*page.Size)
	for i := 0; i < n; i++ {
		p := b[i*page.Size : (i+1)*page.Size]
		page.Init(p, page.KindLeaf)
		page.Seal(p, first+uint32(i))
	}
	return b
}

func TestDatabasePages(t *testing.T) {
	f := verify.New("Mailbox1.edb", ese.KindDatabase, [16]byte{})
	good := pages(16, 16)
	if err := f.Write(16*page.Size, good); err != nil {
		t.Fatalf("good pages: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[3*page.Size+100] ^= 1
	err := f.Write(16*page.Size, bad)
	var pe *page.PageError
	if !errors.As(err, &pe) || pe.Page != 19 || pe.Code != page.CodeReadVerifyFailure {
		t.Fatalf("flipped byte in page 19: %v", err)
	}
	// A failed write changes nothing: the engine retries the same read.
	if err := f.Write(16*page.Size, good); err != nil {
		t.Fatalf("retry after a failure: %v", err)
	}
	if err := f.Write(0, pages(2, 16)); !errors.As(err, &pe) || pe.Code != page.CodeBadPageNumber {
		t.Fatalf("pages at the wrong place: %v", err)
	}
	if err := f.Write(page.Size/2, good[:page.Size]); err == nil || !strings.Contains(err.Error(), "page boundary") {
		t.Fatalf("unaligned chunk: %v", err)
	}
	if err := f.Write(16*page.Size, good[:page.Size+10]); err == nil || !strings.Contains(err.Error(), "whole number of pages") {
		t.Fatalf("partial page: %v", err)
	}
	if err := f.Write(0, make([]byte, page.Size)); !errors.As(err, &pe) || pe.Code != page.CodeBlankPage {
		t.Fatalf("zero page: %v", err)
	}
	if _, err := f.Finish(); err != nil {
		t.Fatal(err)
	}
}

// closedLogs makes a group, commits across two rollovers and returns the
// bytes of its closed generations and the group's signature.
func closedLogs(t *testing.T) ([][]byte, [16]byte, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := engine.GroupConfig{Name: "SG1", LogSize: 256 << 10, Databases: []engine.DBConfig{{Name: "Mailbox1"}}}
	if err := engine.CreateGroup(dir, cfg, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	g, err := engine.OpenGroup(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var out [][]byte
	for i := 0; i < 3; i++ {
		if err := g.Update(func(tx *engine.Tx) error {
			return tx.Put("Mailbox1", "t", []byte{byte(i)}, []byte(strings.Repeat("x", 5000)))
		}); err != nil {
			t.Fatal(err)
		}
		gen, err := g.Rollover()
		if err != nil {
			t.Fatal(err)
		}
		c := g.Config()
		b, err := os.ReadFile(filepath.Join(dir, wal.GenName(c.Prefix(), gen)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	c := g.Config()
	return out, engine.ParseSignature(c.Signature), c.Prefix()
}

func feed(f *verify.File, b []byte, chunk int) error {
	for off := 0; off < len(b); off += chunk {
		if err := f.Write(int64(off), b[off:min(off+chunk, len(b))]); err != nil {
			return err
		}
	}
	return nil
}

func TestLogs(t *testing.T) {
	logs, sig, _ := closedLogs(t)
	var chain verify.Chain
	for i, b := range logs {
		f := verify.New("E0000000X.log", ese.KindLog, sig)
		if err := feed(f, b, 64<<10); err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
		gi, err := f.Finish()
		if err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
		if err := chain.Add("log", gi); err != nil {
			t.Fatalf("chain at %d: %v", i, err)
		}
	}

	// A flipped byte in a record fails, and stays failed.
	bad := append([]byte(nil), logs[0]...)
	bad[wal.HeaderSize+600] ^= 0x40
	f := verify.New("E00.log", ese.KindLog, sig)
	err := feed(f, bad, 4096)
	if err == nil {
		_, err = f.Finish()
	}
	if err == nil {
		t.Fatal("a flipped byte in a log record passed")
	}
	if _, ferr := f.Finish(); ferr == nil {
		t.Fatal("Finish after a failure passed")
	}

	// Another group's log.
	f = verify.New("E00.log", ese.KindLog, [16]byte{1, 2, 3})
	if err := feed(f, logs[0], 64<<10); err == nil {
		t.Fatal("a log of another storage group passed")
	}

	// A chunk missing in the middle: not checked further, and Finish says so.
	f = verify.New("E00.log", ese.KindLog, sig)
	if err := f.Write(0, logs[1][:4096]); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(8192, logs[1][8192:12288]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Finish(); !errors.Is(err, verify.ErrIncomplete) {
		t.Fatalf("log with a gap: %v", err)
	}

	// A short log fails at Finish.
	f = verify.New("E00.log", ese.KindLog, sig)
	if err := feed(f, logs[2][:len(logs[2])-4096], 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Finish(); err == nil {
		t.Fatal("a truncated log passed")
	}
}

func TestChainRefusesAForeignGeneration(t *testing.T) {
	a, sigA, _ := closedLogs(t)
	b, sigB, _ := closedLogs(t)
	info := func(raw []byte, sig [16]byte) wal.GenInfo {
		f := verify.New("x.log", ese.KindLog, sig)
		if err := feed(f, raw, 64<<10); err != nil {
			t.Fatal(err)
		}
		gi, err := f.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return gi
	}
	var c verify.Chain
	if err := c.Add("a1", info(a[0], sigA)); err != nil {
		t.Fatal(err)
	}
	// Generation 2 of another log stream does not follow a's generation 1
	// (its creation times differ), whichever is added first.
	if err := c.Add("b2", info(b[1], sigB)); err == nil {
		t.Fatal("a generation of another stream followed")
	}
	var c2 verify.Chain
	if err := c2.Add("b2", info(b[1], sigB)); err != nil {
		t.Fatal(err)
	}
	if err := c2.Add("a1", info(a[0], sigA)); err == nil {
		t.Fatal("a generation of another stream preceded")
	}
}
