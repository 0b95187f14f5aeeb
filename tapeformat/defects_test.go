package tapeformat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Issue 14, the reader's defects, each as an attacker found it.

// defectFiles: a database of several segments, then a second database.
func defectFiles() []testFile {
	return []testFile{
		{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 400_000, DBHeader: []byte("ESE header 1")}, mail(400_000, 51)},
		{FileInfo{Name: "Public.edb", Kind: KindDatabase, Size: 150_000, DBHeader: []byte("ESE header 2")}, mail(150_000, 52)},
		{FileInfo{Name: "E0000000A3.log", Kind: KindLog, Size: 20_000}, mail(20_000, 53)},
	}
}

// memberSpans lists the members of a set: header start, data start, end
// (after padding), name.
type memberSpan struct {
	hdr, data, end int
	name           string
}

func memberSpans(t testing.TB, set []byte) []memberSpan {
	t.Helper()
	var out []memberSpan
	for p := 0; p+BlockSize <= len(set); {
		blk := set[p : p+BlockSize]
		if bytes.Equal(blk, zeroBlock[:]) {
			break
		}
		if !validHeaderBlock(blk) {
			t.Fatalf("no header at %d", p)
		}
		// pax header: size in the 'x' block, then the ustar block
		paxSize := octal(blk[124:136])
		u := p + BlockSize + int((paxSize+511)&^511)
		size := octal(set[u+124 : u+136])
		name := string(bytes.TrimRight(set[u:u+100], "\x00"))
		if i := bytes.Index(set[p+BlockSize:u], []byte(" path=")); i >= 0 {
			rest := set[p+BlockSize+i+6 : u]
			name = string(rest[:bytes.IndexByte(rest, '\n')])
		}
		d := u + BlockSize
		end := d + int((size+511)&^511)
		out = append(out, memberSpan{p, d, end, name})
		p = end
	}
	return out
}

func octal(b []byte) int64 {
	var n int64
	for _, c := range bytes.Trim(b, " \x00") {
		n = n*8 + int64(c-'0')
	}
	return n
}

// Defect 1: a flipped digit of the size in a member record (the pax
// comment, which no checksum covered) changed the restored file's size
// and the strict reader said nothing.
func TestDefectRecordSizeFlip(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := defectFiles()
			set := writeSet(t, smallOpts(t, c), files)
			i := bytes.Index(set, []byte(`"size":400000,"last":true`))
			if i < 0 {
				t.Fatal("record not found")
			}
			set[i+len(`"size":40000`)] = '8' // 400008: same length, same pax framing
			rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true, RecordSize: 10240})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			err = rd.ExtractAll(dir)
			rd.Close()
			if err != nil {
				t.Logf("detected: %v", err)
				return
			}
			for _, f := range files {
				got, _ := os.ReadFile(filepath.Join(dir, f.fi.Name))
				if !bytes.Equal(got, f.data) {
					t.Fatalf("strict extract succeeded but %s has %d bytes, want %d", f.fi.Name, len(got), len(f.data))
				}
			}
		})
	}
}

// Defect 2: members out of file order (the last member of Mailbox1.edb
// swapped with the first of Public.edb) were consumed, counted as
// delivered and never handed on: no error, no loss, a hole of zeros.
func TestDefectMembersOutOfOrder(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := defectFiles()
			set := writeSet(t, smallOpts(t, c), files)
			ms := memberSpans(t, set)
			var a, b int
			for i, m := range ms {
				if strings.HasPrefix(m.name, "databases/Public.edb") && b == 0 {
					a, b = i-1, i
				}
			}
			x, y := ms[a], ms[b]
			if !strings.HasPrefix(x.name, "databases/Mailbox1.edb") || strings.HasSuffix(x.name, "part000001") {
				t.Fatalf("need the last of several members of Mailbox1.edb, got %s", x.name)
			}
			var sw []byte
			sw = append(sw, set[:x.hdr]...)
			sw = append(sw, set[y.hdr:y.end]...)
			sw = append(sw, set[x.hdr:x.end]...)
			sw = append(sw, set[y.end:]...)
			if _, err := readSet(t, bytes.NewReader(sw), ReaderOptions{Strict: true, RecordSize: 10240}); err == nil {
				t.Fatal("strict read of a set with members out of order succeeded")
			}
			res, err := readSet(t, bytes.NewReader(sw), ReaderOptions{RecordSize: 10240})
			if err != nil {
				t.Fatal(err)
			}
			checkCoverage(t, res, files)
		})
	}
}

// Defect 4: the label had no checksum: a changed byte in it passed.
func TestDefectLabelUnchecked(t *testing.T) {
	files := defectFiles()
	set := writeSet(t, smallOpts(t, "zstd"), files)
	i := bytes.Index(set, []byte(`"storage_group": "First`))
	set[i+len(`"storage_group": "`)] = 'W'
	if _, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true, RecordSize: 10240}); err == nil {
		t.Fatal("strict read of a set with a changed label succeeded")
	}
}

// Defect 5: one bad byte in a member's ustar header cost the whole file
// when it was the file's only member (its units were found but dropped,
// the file never announced).
func TestDefectHeaderCostsFile(t *testing.T) {
	for _, c := range []string{"zstd", "lz4", "gzip"} {
		t.Run(c, func(t *testing.T) {
			files := defectFiles()
			set := writeSet(t, smallOpts(t, c), files)
			for _, m := range memberSpans(t, set) {
				if strings.HasPrefix(m.name, "logs/E0000000A3.log") {
					set[m.data-BlockSize+3] ^= 0x20 // the ustar header's name
				}
			}
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{RecordSize: 10240})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.files["E0000000A3.log"], files[2].data) {
				t.Fatalf("log lost to a header byte: losses %s", lossesString(res.losses))
			}
		})
	}
}

// Defect 6: a second set concatenated after an intact first one fed its
// chunks into the first set's files.
func TestDefectConcatenatedSets(t *testing.T) {
	files := defectFiles()
	set1 := writeSet(t, smallOpts(t, "zstd"), files)
	opts := smallOpts(t, "zstd")
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, opts)
	l := testLabel()
	l.SetID = "fedcba9876543210fedcba9876543210"
	w.Begin(l)
	fw, _ := w.CreateFile(FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 100_000})
	fw.Write(mail(100_000, 99))
	fw.Close()
	w.Close()
	cat := append(bytes.Clone(set1), buf.Bytes()...)
	res, err := readSet(t, bytes.NewReader(cat), ReaderOptions{RecordSize: 10240})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.losses) != 0 {
		t.Fatalf("intact first set reported damaged: %s", lossesString(res.losses))
	}
	if len(res.warnings) != 1 || !strings.Contains(res.warnings[0].What, `another set ("fedcba9876543210fedcba9876543210") follows`) {
		t.Fatalf("the second set is not named: %v", res.warnings)
	}
	checkCoverage(t, res, files)
	// strict: the first set is intact; what follows is not damage
	if _, err := readSet(t, bytes.NewReader(cat), ReaderOptions{Strict: true, RecordSize: 10240}); err != nil {
		t.Fatalf("strict read of an intact set followed by another: %v", err)
	}
	// trailing garbage after an intact set: not damage
	tr := append(bytes.Clone(set1), bytes.Repeat([]byte("garbage!"), 1000)...)
	res, err = readSet(t, bytes.NewReader(tr), ReaderOptions{Strict: true, RecordSize: 10240})
	if err != nil {
		t.Fatalf("strict read of an intact set followed by garbage: %v", err)
	}
	if len(res.warnings) != 1 || !strings.Contains(res.warnings[0].What, "8000 bytes after the end of the set") {
		t.Fatalf("trailing data: %v", res.warnings)
	}
}

// Defect 7: read-ahead of 2 x GOMAXPROCS units of up to 16 MiB each: a
// small set of hostile units declaring 16 MiB made the reader allocate
// about a GiB at GOMAXPROCS=32.
func TestDefectReadAheadMemory(t *testing.T) {
	// 8 units of 16 MiB each, each a few hundred bytes.
	var units [][]byte
	enc := mustEncoder(t, "zstd", 16<<20)
	zero := make([]byte, 16<<20)
	for i := range 8 {
		u, _ := enc.Encode(nil, chunkAt(0, int64(i)<<24), zero)
		units = append(units, u)
	}
	set := unitsSet(t, units)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Workers: 32, RecordSize: 10240})
	if err != nil {
		t.Fatal(err)
	}
	_, n := drain(t, rd)
	rd.Close()
	runtime.ReadMemStats(&ms1)
	if n != 8 { // (the digest in unitsSet is a dummy: the file is reported)
		t.Fatalf("%d chunks, damage %v", n, rd.Damage())
	}
	alloc := ms1.TotalAlloc - ms0.TotalAlloc
	t.Logf("reading a %d-byte set of 8 chunks of 16 MiB with Workers=32 allocated %d MiB", len(set), alloc>>20)
	if alloc > 100<<20 {
		t.Fatalf("reading a %d-byte set allocated %d MiB", len(set), alloc>>20)
	}
}

func mustEncoder(t testing.TB, c string, frame int) *codec.Encoder {
	enc, err := codec.NewEncoder(mustCodec(t, c), frame)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func chunkAt(file uint32, off int64) codec.ChunkMeta {
	return codec.ChunkMeta{FileIndex: file, Offset: off}
}

// unitsSet writes one file of size -1 made of the given zstd units.
func unitsSet(t testing.TB, units [][]byte) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, smallOpts(t, "zstd"))
	if err != nil {
		t.Fatal(err)
	}
	w.Begin(testLabel())
	w.BeginFile(FileInfo{Name: "big.edb", Kind: KindDatabase, Size: -1})
	for _, u := range units {
		h, err := codec.ParseHeader(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(u, h.Meta); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.EndFile(FileSummary{Digest: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Defect 7, first half: every file's digest state (8 KiB for BLAKE3) was
// kept to the end of the set. The Reader's memory must not grow with the
// number of files beyond a small per-file record.
func TestDefectPerFileMemory(t *testing.T) {
	const n = 20_000
	files := make([]testFile, n)
	for i := range files {
		files[i] = testFile{FileInfo{Name: fmt.Sprintf("E%08X.log", i), Kind: KindLog, Size: 1}, []byte{byte(i)}}
	}
	set := writeSet(t, WriterOptions{Codec: mustCodec(t, "lz4"), RecordSize: 1 << 20, SegmentSize: 64 << 10, FrameSize: 16 << 10}, files)
	rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	drain(t, rd)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	per := (int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc)) / n
	t.Logf("%d files: %d bytes of heap per file after reading (manifest included)", n, per)
	if per > 2048 {
		t.Fatalf("reader keeps %d bytes per file", per)
	}
	runtime.KeepAlive(rd)
}

// Defects 3 and 4: a damaged label costs only itself. Salvage takes the
// whole label (typed group fields included) from the first file's
// file-info before NewReader returns, and each file's header snapshot
// and size from its file-info, without the manifest.
func TestLabelAndHeadersFromFileInfo(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := defectFiles()
			set := writeSet(t, smallOpts(t, c), files)
			i := bytes.Index(set, []byte(`"storage_group": "First`))
			set[i+len(`"storage_group": "`)] = 'W' // the label's SHA-256 fails
			j := bytes.LastIndex(set, []byte(`"log_last_generation"`))
			set[j+3] ^= 1 // and the manifest's
			rd, err := NewReader(bytes.NewReader(set), ReaderOptions{RecordSize: 10240})
			if err != nil {
				t.Fatal(err)
			}
			l, want := rd.Label(), testLabel()
			if l.StorageGroup != want.StorageGroup || l.GroupSignature != want.GroupSignature || l.LogPrefix != want.LogPrefix ||
				l.GroupID != want.GroupID || !slices.Equal(l.DatabaseIDs, want.DatabaseIDs) || l.SetType != want.SetType {
				t.Fatalf("label from the file-info: %+v", l)
			}
			rd.Close()
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{RecordSize: 10240})
			if err != nil {
				t.Fatal(err)
			}
			checkCoverage(t, res, files)
			for _, f := range files {
				h := res.headers[f.fi.Name]
				if h.Size != f.fi.Size || !bytes.Equal(h.DBHeader, f.fi.DBHeader) {
					t.Fatalf("%s: header %+v", f.fi.Name, h)
				}
			}
			if res.manifest != nil || len(res.losses) != 1 || res.losses[0].FileIndex != -1 {
				t.Fatalf("losses %v", res.losses)
			}
		})
	}
}
