package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine/vfs"
)

var testSig = [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

const testDir = "/grp/logs"

func testOpts(logSize int64) Options {
	return Options{Dir: testDir, Prefix: "E00", Signature: testSig, LogSize: logSize}
}

type rec struct {
	data       []byte
	start, end Pos
}

// payload returns deterministic content for record i.
func payload(i, size int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(i), uint64(size)))
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	if size >= 4 {
		binary.LittleEndian.PutUint32(b, uint32(i))
	}
	return b
}

func scanAll(t *testing.T, fsys vfs.FS, dirs ...string) ([]rec, ScanResult, error) {
	t.Helper()
	if len(dirs) == 0 {
		dirs = []string{testDir}
	}
	var out []rec
	res, err := Scan(fsys, ScanOptions{Dirs: dirs, Signature: testSig}, func(b []byte, s, e Pos) error {
		out = append(out, rec{append([]byte(nil), b...), s, e})
		return nil
	})
	return out, res, err
}

func mustOpen(t *testing.T, fsys vfs.FS, o Options) *Writer {
	t.Helper()
	w, err := Open(fsys, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func checkRecs(t *testing.T, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i].data) || got[i].start != want[i].start || got[i].end != want[i].end {
			t.Fatalf("record %d: got %d bytes %v-%v, want %d bytes %v-%v", i, len(got[i].data), got[i].start, got[i].end, len(want[i].data), want[i].start, want[i].end)
		}
	}
}

func asLogError(t *testing.T, err error, code Code) *LogError {
	t.Helper()
	var le *LogError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LogError", err, err)
	}
	if le.Code != code || !errors.Is(err, code) {
		t.Fatalf("error %v: code %v, want %v", err, le.Code, code)
	}
	return le
}

func readFileBytes(t *testing.T, fsys vfs.FS, path string) []byte {
	t.Helper()
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func writeFileBytes(t *testing.T, fsys vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	fsys.SyncDir(filepath.Dir(path))
}

func randSize(r *rand.Rand) int {
	switch r.IntN(10) {
	case 0:
		return 0
	case 1:
		return r.IntN(100<<10 + 1)
	case 2, 3:
		return r.IntN(40 << 10)
	default:
		return r.IntN(2 << 10)
	}
}

func TestNamesAndPos(t *testing.T) {
	if got := GenName("E00", 0x1a); got != "E000000001A.log" {
		t.Fatal(got)
	}
	if g, ok := ParseGenName("E00", "E000000001A.log"); !ok || g != 0x1a {
		t.Fatal(g, ok)
	}
	for _, bad := range []string{"E00.log", "E000000001a.log", "E010000001A.log", "E0000000000.log", "E000000001A.lo"} {
		if _, ok := ParseGenName("E00", bad); ok {
			t.Fatal(bad)
		}
	}
	if !(Pos{1, 9}).Less(Pos{2, 0}) || !(Pos{2, 0}).Less(Pos{2, 1}) || (Pos{2, 1}).Less(Pos{2, 1}) {
		t.Fatal("Less")
	}
	if ValidPrefix("E0G") || !ValidPrefix("E0F") {
		t.Fatal("prefix")
	}
	if m := MaxRecordSize(DefaultLogSize); m < DefaultLogSize-HeaderSize-40*ChunkHeaderSize || !fits(HeaderSize, m, DefaultLogSize) || fits(HeaderSize, m+1, DefaultLogSize) {
		t.Fatal("MaxRecordSize", m)
	}
}

func TestRoundTripManyGenerations(t *testing.T) {
	fsys := vfs.NewCrashFS()
	o := testOpts(256 << 10)
	var rolled []uint32
	o.OnRollover = func(g uint32) { rolled = append(rolled, g) }
	w := mustOpen(t, fsys, o)
	r := rand.New(rand.NewPCG(1, 2))
	var want []rec
	appendN := func(w *Writer, n int) {
		for i := 0; i < n; i++ {
			p := payload(len(want), randSize(r))
			s, e, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) > 0 && s.Less(want[len(want)-1].end) {
				t.Fatalf("start %v before previous end %v", s, want[len(want)-1].end)
			}
			want = append(want, rec{p, s, e})
			if r.IntN(8) == 0 {
				if err := w.SyncTo(e); err != nil {
					t.Fatal(err)
				}
				if w.Durable().Less(e) {
					t.Fatal("durable")
				}
			}
		}
	}
	appendN(w, 400)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen (Open finds the end itself) and continue.
	w = mustOpen(t, fsys, o)
	appendN(w, 200)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, res, err := scanAll(t, fsys)
	if err != nil {
		t.Fatal(err)
	}
	checkRecs(t, got, want)
	if len(res.Gens) < 10 || !res.Current || res.End != want[len(want)-1].end {
		t.Fatalf("gens %d current %v end %v", len(res.Gens), res.Current, res.End)
	}
	if len(rolled) != len(res.Gens)-1 {
		t.Fatalf("OnRollover called %d times for %d generations", len(rolled), len(res.Gens))
	}
	closed, hasCur, err := ListGenerations(fsys, testDir, "E00")
	if err != nil || !hasCur || len(closed) != len(res.Gens)-1 {
		t.Fatal(closed, hasCur, err)
	}
	// Per-generation readers and verifiers agree with Scan.
	n := 0
	for i, g := range closed {
		if g != uint32(i+1) {
			t.Fatalf("closed gens %v", closed)
		}
		var k int
		info, err := ReadGeneration(fsys, testDir, "E00", g, func(b []byte, s, e Pos) error {
			if !bytes.Equal(b, want[n+k].data) || s != want[n+k].start {
				t.Fatalf("ReadGeneration %d record %d", g, k)
			}
			k++
			return nil
		})
		if err != nil || !info.Complete || info.Records != k || info.Header.Gen != g {
			t.Fatal(info, err)
		}
		n += k
		path := filepath.Join(testDir, GenName("E00", g))
		vinfo, err := VerifyGeneration(fsys, path)
		if err != nil || vinfo.Records != info.Records || vinfo.Bytes != info.Bytes || vinfo.End != info.End {
			t.Fatal(vinfo, err)
		}
		b := readFileBytes(t, fsys, path)
		for _, chunk := range []int{64 << 10, 1, 7, 5000, len(b)} {
			sv := NewStreamVerifier(testSig)
			for off := 0; off < len(b); off += chunk {
				if _, err := sv.Write(b[off:min(off+chunk, len(b))]); err != nil {
					t.Fatal(err)
				}
			}
			sinfo, err := sv.Finish()
			if err != nil || sinfo.Records != info.Records || sinfo.Bytes != info.Bytes || sinfo.Header.Gen != g {
				t.Fatal(sinfo, err)
			}
		}
	}
	info, err := VerifyGeneration(fsys, filepath.Join(testDir, "E00.log"))
	if err != nil || info.Complete || n+info.Records != len(want) {
		t.Fatal(info, err)
	}
}

func TestBlockTailPadding(t *testing.T) {
	// A first record that leaves k bytes in block 0, for k around the chunk
	// header and end-of-generation sizes, then another record or a rollover.
	for k := 0; k <= 20; k++ {
		for _, next := range []string{"record", "rollover", "both"} {
			fsys := vfs.NewCrashFS()
			w := mustOpen(t, fsys, testOpts(MinLogSize))
			var want []rec
			add := func(n int) {
				p := payload(len(want), n)
				s, e, err := w.Append(p)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, rec{p, s, e})
			}
			add(BlockSize - ChunkHeaderSize - k)
			if e := want[0].end; int(e.Off) != HeaderSize+BlockSize-k {
				t.Fatalf("k=%d: end %v", k, e)
			}
			if next != "rollover" {
				add(3)
			}
			if next != "record" {
				if _, err := w.Rollover(); err != nil {
					t.Fatal(err)
				}
				add(5)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _, err := scanAll(t, fsys)
			if err != nil {
				t.Fatalf("k=%d %s: %v", k, next, err)
			}
			checkRecs(t, got, want)
		}
	}
}

// A short record lost at a block tail (where EOG padding would be) must not
// let the tolerant reader skip to a surviving record in the next block.
func TestLostShortRecordAtBlockTail(t *testing.T) {
	for k := ChunkHeaderSize; k < eogChunkSize; k++ {
		fsys := vfs.NewCrashFS()
		o := testOpts(MinLogSize)
		w := mustOpen(t, fsys, o)
		_, e0, _ := w.Append(payload(0, BlockSize-ChunkHeaderSize-k))
		s1, e1, _ := w.Append(payload(1, k-ChunkHeaderSize)) // fills the tail exactly
		if int64(e1.Off) != HeaderSize+BlockSize || s1 != e0 {
			t.Fatalf("k=%d: %v %v", k, s1, e1)
		}
		w.Append(payload(2, 100))
		w.Close()
		cur := filepath.Join(testDir, "E00.log")
		b := readFileBytes(t, fsys, cur)
		clear(b[s1.Off:e1.Off])
		writeFileBytes(t, fsys, cur, b)
		got, res, err := scanAll(t, fsys)
		if err != nil || len(got) != 1 || res.End != e0 {
			t.Fatalf("k=%d: %d records, end %v, %v", k, len(got), res.End, err)
		}
	}
}

func TestRecordTooLarge(t *testing.T) {
	fsys := vfs.NewCrashFS()
	o := testOpts(MinLogSize)
	w := mustOpen(t, fsys, o)
	m := MaxRecordSize(o.LogSize)
	if _, _, err := w.Append(make([]byte, m+1)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatal(err)
	}
	var want []rec
	for i := 0; i < 3; i++ {
		p := payload(i, m)
		s, e, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.Gen != uint32(i+1) || s.Off != HeaderSize {
			t.Fatalf("max record %d at %v", i, s)
		}
		want = append(want, rec{p, s, e})
	}
	w.Close()
	got, _, err := scanAll(t, fsys)
	if err != nil {
		t.Fatal(err)
	}
	checkRecs(t, got, want)
}

// buildLog writes n records with a rollover every perGen records and returns
// them; the writer is closed.
func buildLog(t *testing.T, fsys vfs.FS, o Options, n, perGen int) []rec {
	t.Helper()
	w := mustOpen(t, fsys, o)
	var want []rec
	for i := 0; i < n; i++ {
		p := payload(i, 100+i*37%3000)
		s, e, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rec{p, s, e})
		if (i+1)%perGen == 0 {
			if _, err := w.Rollover(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func TestTornTailEveryTruncationPoint(t *testing.T) {
	base := vfs.NewCrashFS()
	o := testOpts(MinLogSize)
	// Gen 1 closed; E00.log (gen 2) has one full block and a partial last block.
	w := mustOpen(t, base, o)
	var want []rec
	add := func(n int) {
		p := payload(len(want), n)
		s, e, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rec{p, s, e})
	}
	add(1000)
	if _, err := w.Rollover(); err != nil {
		t.Fatal(err)
	}
	add(BlockSize + 500) // spans blocks 0 and 1 of gen 2
	for i := 0; i < 12; i++ {
		add(1 + i*25)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(testDir, "E00.log")
	img := readFileBytes(t, base, cur)
	lastBlock := int(blockEnd(int64(want[len(want)-1].start.Off), o.LogSize)) - BlockSize
	dataEnd := int(want[len(want)-1].end.Off)
	if lastBlock <= HeaderSize {
		t.Fatal("setup")
	}
	gen1 := readFileBytes(t, base, filepath.Join(testDir, GenName("E00", 1)))
	r := rand.New(rand.NewPCG(3, 4))
	// One file system whose E00.log tail is rewritten for every cut.
	fsys := vfs.NewCrashFS()
	fsys.MkdirAll(testDir, 0o755)
	writeFileBytes(t, fsys, filepath.Join(testDir, GenName("E00", 1)), gen1)
	writeFileBytes(t, fsys, cur, img)
	f, err := fsys.OpenFile(cur, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tail := make([]byte, dataEnd+64-lastBlock)
	for cut := lastBlock; cut <= dataEnd; cut++ {
		for _, garbage := range []bool{false, true} {
			if garbage && cut%7 != 0 {
				continue
			}
			copy(tail, img[lastBlock:])
			for i := cut - lastBlock; i < len(tail); i++ {
				if garbage {
					tail[i] = byte(r.Uint32())
				} else {
					tail[i] = 0
				}
			}
			if _, err := f.WriteAt(tail, int64(lastBlock)); err != nil {
				t.Fatal(err)
			}
			f.Sync()
			// expected: every record whose end <= cut
			k := 0
			for k < len(want) && (want[k].end.Gen == 1 || int(want[k].end.Off) <= cut) {
				k++
			}
			wantEnd := want[k-1].end
			if wantEnd.Gen == 1 {
				wantEnd = Pos{2, HeaderSize}
			}
			n := 0
			info, err := ReadGeneration(fsys, testDir, "E00", 2, func(b []byte, s, e Pos) error {
				if w := want[1+n]; !bytes.Equal(b, w.data) || s != w.start || e != w.end {
					t.Fatalf("cut %d: record %d differs", cut, n)
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			if info.End != wantEnd || n != k-1 || info.Complete {
				t.Fatalf("cut %d: end %v want %v, %d records want %d", cut, info.End, wantEnd, n, k-1)
			}
			if cut%13 != 0 && !(garbage && cut%91 == 0) {
				continue
			}
			// Recover on a crashed copy and continue the log at the valid
			// end: the stale tail is zeroed, the new record follows.
			c := fsys.CrashClone()
			got, res, err := scanAll(t, c)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			checkRecs(t, got, want[:k])
			if res.End != wantEnd {
				t.Fatalf("cut %d: end %v want %v", cut, res.End, wantEnd)
			}
			w, err := OpenAt(c, o, res.End)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			p := payload(9999, 10)
			s, e, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _, err = scanAll(t, c)
			if err != nil {
				t.Fatalf("cut %d after append: %v", cut, err)
			}
			checkRecs(t, got, append(append([]rec(nil), want[:k]...), rec{p, s, e}))
		}
	}
}

func TestOpenAtEarlierBoundaryAndBadPos(t *testing.T) {
	fsys := vfs.NewCrashFS()
	o := testOpts(MinLogSize)
	want := buildLog(t, fsys, o, 10, 100)
	if _, err := OpenAt(fsys, o, Pos{1, want[3].end.Off + 1}); !errors.Is(err, ErrBadPos) {
		t.Fatal(err)
	}
	if _, err := OpenAt(fsys, o, Pos{2, HeaderSize}); !errors.Is(err, ErrBadPos) {
		t.Fatal(err)
	}
	w, err := OpenAt(fsys, o, want[3].end)
	if err != nil {
		t.Fatal(err)
	}
	if w.Current() != want[3].end {
		t.Fatal(w.Current())
	}
	w.Close()
	got, _, err := scanAll(t, fsys)
	if err != nil {
		t.Fatal(err)
	}
	checkRecs(t, got, want[:4])
}

func TestCorruptClosedGeneration(t *testing.T) {
	o := testOpts(MinLogSize)
	base := vfs.NewCrashFS()
	buildLog(t, base, o, 40, 8) // gens 1..5 closed, 6 current
	path3 := filepath.Join(testDir, GenName("E00", 3))
	img := readFileBytes(t, base, path3)
	info, err := VerifyGeneration(base, path3)
	if err != nil {
		t.Fatal(err)
	}
	eog := int(info.End.Off) // EOG chunk starts here (no padding needed here)
	cases := []struct {
		name string
		off  int
		code Code
		val  byte
	}{
		{"payload", HeaderSize + 100, LogReadVerifyFailure, 0},
		{"chunk header", HeaderSize + 2, LogReadVerifyFailure, 0},
		{"second record", int(info.End.Off) - 10, LogReadVerifyFailure, 0},
		{"eog marker", eog + 9, LogReadVerifyFailure, 0},
		{"header", 20, LogFileCorrupt, 0},
	}
	for _, c := range cases {
		b := append([]byte(nil), img...)
		b[c.off] ^= 0x40
		fsys := base.CrashClone()
		writeFileBytes(t, fsys, path3, b)
		_, _, err := scanAll(t, fsys)
		le := asLogError(t, err, c.code)
		if c.code == LogReadVerifyFailure && le.Gen != 3 || !strings.Contains(le.File, GenName("E00", 3)) || !strings.Contains(err.Error(), GenName("E00", 3)) {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = VerifyGeneration(fsys, path3)
		asLogError(t, err, c.code)
		sv := NewStreamVerifier(testSig)
		for off := 0; off < len(b); off += 64 << 10 {
			if _, err = sv.Write(b[off:min(off+64<<10, len(b))]); err != nil {
				break
			}
		}
		_, err = sv.Finish()
		asLogError(t, err, c.code)
	}
	// Zero the end-of-generation marker: a zero region before the marker.
	b := append([]byte(nil), img...)
	clear(b[eog : eog+eogChunkSize])
	fsys := base.CrashClone()
	writeFileBytes(t, fsys, path3, b)
	_, _, err = scanAll(t, fsys)
	if le := asLogError(t, err, LogReadVerifyFailure); le.Gen != 3 {
		t.Fatal(err)
	}
	// Truncated closed file.
	fsys = base.CrashClone()
	writeFileBytes(t, fsys, path3, img[:len(img)-4096])
	_, _, err = scanAll(t, fsys)
	asLogError(t, err, LogFileSizeMismatch)
	sv := NewStreamVerifier(testSig)
	sv.Write(img[:len(img)-1])
	if _, err := sv.Finish(); !errors.Is(err, LogFileSizeMismatch) {
		t.Fatal(err)
	}
}

func TestMissingGeneration(t *testing.T) {
	o := testOpts(MinLogSize)
	base := vfs.NewCrashFS()
	buildLog(t, base, o, 40, 8)
	fsys := base.CrashClone()
	fsys.Remove(filepath.Join(testDir, GenName("E00", 3)))
	_, res, err := scanAll(t, fsys)
	le := asLogError(t, err, MissingLogFile)
	if le.Gen != 3 || filepath.Base(le.File) != GenName("E00", 3) || len(res.Gens) != 2 {
		t.Fatal(err, len(res.Gens))
	}
	if _, err := ReadGeneration(fsys, testDir, "E00", 3, nil); !errors.Is(err, MissingLogFile) {
		t.Fatal(err)
	}
	// FromGen not present (e.g. the checkpoint's generation was deleted).
	fsys = base.CrashClone()
	fsys.Remove(filepath.Join(testDir, GenName("E00", 1)))
	fsys.Remove(filepath.Join(testDir, GenName("E00", 2)))
	_, err = Scan(fsys, ScanOptions{Dirs: []string{testDir}, Signature: testSig, FromGen: 2}, nil)
	if le := asLogError(t, err, MissingLogFile); le.Gen != 2 {
		t.Fatal(err)
	}
	res, err = Scan(fsys, ScanOptions{Dirs: []string{testDir}, Signature: testSig}, nil)
	if err != nil || res.Gens[0].Header.Gen != 3 {
		t.Fatal(err)
	}
	// The last closed generation missing while E00.log is there.
	fsys = base.CrashClone()
	fsys.Remove(filepath.Join(testDir, GenName("E00", 5)))
	_, err = Scan(fsys, ScanOptions{Dirs: []string{testDir}, Signature: testSig}, nil)
	if le := asLogError(t, err, MissingLogFile); le.Gen != 5 {
		t.Fatal(err)
	}
	// ToGen beyond what exists.
	_, err = Scan(base, ScanOptions{Dirs: []string{testDir}, Signature: testSig, ToGen: 9}, nil)
	if le := asLogError(t, err, MissingLogFile); le.Gen != 7 {
		t.Fatal(err)
	}
	res, err = Scan(base, ScanOptions{Dirs: []string{testDir}, Signature: testSig, FromGen: 2, ToGen: 4}, nil)
	if err != nil || len(res.Gens) != 3 || res.Current || res.End.Gen != 4 {
		t.Fatal(res, err)
	}
}

func TestForeignAndReorderedLogs(t *testing.T) {
	o := testOpts(MinLogSize)
	base := vfs.NewCrashFS()
	buildLog(t, base, o, 40, 8)
	name2, name3 := GenName("E00", 2), GenName("E00", 3)

	// A log of another storage group.
	other := vfs.NewCrashFS()
	oo := o
	oo.Signature[0] ^= 1
	buildLog(t, other, oo, 40, 8)
	fsys := base.CrashClone()
	writeFileBytes(t, fsys, filepath.Join(testDir, name3), readFileBytes(t, other, filepath.Join(testDir, name3)))
	_, _, err := scanAll(t, fsys)
	if le := asLogError(t, err, BadLogSignature); le.Gen != 3 || filepath.Base(le.File) != name3 {
		t.Fatal(err)
	}
	if _, err := Open(fsys, o); err != nil { // Open reads only the last closed header and E00.log
		t.Fatal(err)
	}
	sv := NewStreamVerifier(testSig)
	sv.Write(readFileBytes(t, other, filepath.Join(testDir, name3)))
	if _, err := sv.Finish(); !errors.Is(err, BadLogSignature) {
		t.Fatal(err)
	}
	// A foreign E00.log refuses Open.
	fsys = base.CrashClone()
	writeFileBytes(t, fsys, filepath.Join(testDir, "E00.log"), readFileBytes(t, other, filepath.Join(testDir, "E00.log")))
	if _, err := Open(fsys, o); !errors.Is(err, BadLogSignature) {
		t.Fatal(err)
	}

	// Two generations swapped.
	fsys = base.CrashClone()
	b2 := readFileBytes(t, fsys, filepath.Join(testDir, name2))
	b3 := readFileBytes(t, fsys, filepath.Join(testDir, name3))
	writeFileBytes(t, fsys, filepath.Join(testDir, name2), b3)
	writeFileBytes(t, fsys, filepath.Join(testDir, name3), b2)
	_, _, err = scanAll(t, fsys)
	if le := asLogError(t, err, LogGenerationMismatch); le.Gen != 2 || filepath.Base(le.File) != name2 {
		t.Fatal(err)
	}
	if _, err := VerifyGeneration(fsys, filepath.Join(testDir, name2)); !errors.Is(err, LogGenerationMismatch) {
		t.Fatal(err)
	}

	// Same group, same generation number, but from another log stream (a
	// replaced log): the previous-creation-time chain breaks.
	twin := vfs.NewCrashFS()
	buildLog(t, twin, o, 40, 8)
	fsys = base.CrashClone()
	writeFileBytes(t, fsys, filepath.Join(testDir, name3), readFileBytes(t, twin, filepath.Join(testDir, name3)))
	_, _, err = scanAll(t, fsys)
	if le := asLogError(t, err, InvalidLogSequence); le.Gen != 3 || filepath.Base(le.File) != name3 {
		t.Fatal(err)
	}
	// E00.log from the twin stream after base's closed generations.
	fsys = base.CrashClone()
	writeFileBytes(t, fsys, filepath.Join(testDir, "E00.log"), readFileBytes(t, twin, filepath.Join(testDir, "E00.log")))
	if _, _, err = scanAll(t, fsys); !errors.Is(err, InvalidLogSequence) {
		t.Fatal(err)
	}
	if _, err := Open(fsys, o); !errors.Is(err, InvalidLogSequence) {
		t.Fatal(err)
	}
}

func TestRestoreDirs(t *testing.T) {
	// Logs of a backup in a temporary directory continue into the live
	// directory's logs (point of failure).
	o := testOpts(MinLogSize)
	fsys := vfs.NewCrashFS()
	want := buildLog(t, fsys, o, 40, 8) // gens 1..5 closed, 6 current
	tmp := "/restore/tmp"
	fsys.MkdirAll(tmp, 0o755)
	for g := uint32(1); g <= 3; g++ {
		src := filepath.Join(testDir, GenName("E00", g))
		writeFileBytes(t, fsys, filepath.Join(tmp, GenName("E00", g)), readFileBytes(t, fsys, src))
		fsys.Remove(src)
	}
	got, res, err := scanAll(t, fsys, tmp, testDir)
	if err != nil {
		t.Fatal(err)
	}
	checkRecs(t, got, want)
	if !res.Current || res.End != (Pos{6, HeaderSize}) {
		t.Fatal(res)
	}
	// Replay only the backup's logs into an empty group directory: the new
	// log continues the numbering.
	res, err = Scan(fsys, ScanOptions{Dirs: []string{tmp}, Signature: testSig}, nil)
	if err != nil || res.End.Gen != 3 {
		t.Fatal(res, err)
	}
	o2 := o
	o2.Dir = "/other/group"
	w, err := OpenAt(fsys, o2, res.End)
	if err != nil {
		t.Fatal(err)
	}
	if w.CurrentGen() != 4 {
		t.Fatal(w.CurrentGen())
	}
	if _, err := w.Rollover(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := Scan(fsys, ScanOptions{Dirs: []string{tmp, o2.Dir}, Signature: testSig}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestForcedRollover(t *testing.T) {
	fsys := vfs.NewCrashFS()
	o := testOpts(MinLogSize)
	var hook []uint32
	o.OnRollover = func(g uint32) { hook = append(hook, g) }
	w := mustOpen(t, fsys, o)
	_, e, _ := w.Append([]byte("a"))
	g, err := w.Rollover()
	if err != nil || g != 1 || w.CurrentGen() != 2 || w.Durable().Less(e) {
		t.Fatal(g, err, w.CurrentGen(), w.Durable())
	}
	// an empty generation can be closed too
	g, err = w.Rollover()
	if err != nil || g != 2 {
		t.Fatal(g, err)
	}
	if fmt.Sprint(hook) != "[1 2]" {
		t.Fatal(hook)
	}
	// durable without Close: crash now
	fsys.Crash()
	info, err := ReadGeneration(fsys, testDir, "E00", 2, nil)
	if err != nil || !info.Complete || info.Records != 0 {
		t.Fatal(info, err)
	}
	info, err = ReadGeneration(fsys, testDir, "E00", 1, nil)
	if err != nil || info.Records != 1 {
		t.Fatal(info, err)
	}
	info, err = ReadGeneration(fsys, testDir, "E00", 3, nil)
	if err != nil || info.Complete || info.Records != 0 || info.Header.PrevCreated == 0 {
		t.Fatal(info, err)
	}
	st := w.Stats()
	if st.Rollovers != 2 || st.Appends != 1 {
		t.Fatal(st)
	}
}

func TestInterruptedRolloverStates(t *testing.T) {
	// E00.log sealed (end-of-generation marker durable) but not renamed:
	// Open finishes the rollover.
	o := testOpts(MinLogSize)
	fsys := vfs.NewCrashFS()
	w := mustOpen(t, fsys, o)
	_, e, _ := w.Append([]byte("x"))
	w.mu.Lock()
	w.encode(nil, true)
	if err := w.flushSyncHeld(); err != nil {
		t.Fatal(err)
	}
	w.mu.Unlock()
	fsys.Crash()
	got, res, err := scanAll(t, fsys)
	if err != nil || len(got) != 1 || res.End != e || !res.Gens[0].Complete {
		t.Fatal(got, res, err)
	}
	w, err = OpenAt(fsys, o, res.End)
	if err != nil {
		t.Fatal(err)
	}
	if w.CurrentGen() != 2 {
		t.Fatal(w.CurrentGen())
	}
	w.Append([]byte("y"))
	w.Close()
	got, _, err = scanAll(t, fsys)
	if err != nil || len(got) != 2 {
		t.Fatal(got, err)
	}
	// E00.log missing after the rename: Open starts the next generation.
	fsys.Remove(filepath.Join(testDir, "E00.log"))
	fsys.SyncDir(testDir)
	w = mustOpen(t, fsys, o)
	if w.CurrentGen() != 2 {
		t.Fatal(w.CurrentGen())
	}
	w.Close()
	if _, _, err := scanAll(t, fsys); err != nil {
		t.Fatal(err)
	}
}

func TestStickyError(t *testing.T) {
	ff := vfs.NewFaultFS(vfs.NewCrashFS())
	w := mustOpen(t, ff, testOpts(MinLogSize))
	ff.FailAt(ff.Count()+2, false) // the sync after a write
	_, e, err := w.Append([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SyncTo(e); !errors.Is(err, vfs.ErrInjected) || !errors.Is(err, LogWriteFail) {
		t.Fatal(err)
	}
	if _, _, err := w.Append([]byte("b")); !errors.Is(err, LogWriteFail) {
		t.Fatal(err)
	}
	if _, err := w.Rollover(); !errors.Is(err, LogWriteFail) {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, LogWriteFail) {
		t.Fatal(err)
	}
	if _, _, err := w.Append([]byte("c")); err == nil {
		t.Fatal("append after close")
	}
}
