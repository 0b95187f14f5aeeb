package tapeformat

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

var codecs = []string{"zstd", "lz4", "gzip", "none"}

func sizesFiles() []testFile {
	return []testFile{
		{FileInfo{Name: "empty.edb", Kind: KindDatabase, Size: 0}, nil},
		{FileInfo{Name: "one.stm", Kind: KindStreaming, Size: 1}, []byte{'x'}},
		{FileInfo{Name: "chunk.log", Kind: KindLog, Size: 16 << 10}, mail(16<<10, 2)},
		{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 400_000, DBHeader: []byte("ESE header")}, mail(400_000, 3)},
		{FileInfo{Name: "odd/E0000000A3.log", Kind: KindLog, Size: 8192*10 + 123}, mail(8192*10+123, 4)},
		{FileInfo{Name: "unknown.dat", Kind: KindOther, Size: -1}, mail(5000, 5)},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := sizesFiles()
			set := writeSet(t, smallOpts(t, c), files)
			for _, strict := range []bool{false, true} {
				res, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: strict, RecordSize: 10240})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.losses) != 0 {
					t.Fatalf("losses: %v", res.losses)
				}
				if len(res.order) != len(files) {
					t.Fatalf("files %v", res.order)
				}
				for i, f := range files {
					if res.order[i] != f.fi.Name || !bytes.Equal(res.files[f.fi.Name], f.data) {
						t.Fatalf("file %s differs", f.fi.Name)
					}
				}
				m := res.manifest
				if m == nil || len(m.Files) != len(files) || m.Info.LogLast != 0xA3 || m.Totals.Bytes == 0 {
					t.Fatalf("manifest %+v", m)
				}
				sum := blake3.Sum256(files[3].data)
				if m.Files[3].BLAKE3 != hex.EncodeToString(sum[:]) || m.Files[3].SHA256 != "" || res.label.Digest != DigestBLAKE3 ||
					string(m.Files[3].DBHeader) != "ESE header" ||
					m.Files[3].Segments < 2 || m.Files[3].Size != 400_000 {
					t.Fatalf("manifest file %+v", m.Files[3])
				}
				if res.label.Codec != c && !strings.HasPrefix(res.label.Codec, c) {
					t.Fatalf("label %+v", res.label)
				}
			}
			// sequential Read
			rd, err := NewReader(bytes.NewReader(set), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if _, err := rd.Next(); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rd)
				if err != nil || !bytes.Equal(got, f.data) {
					t.Fatalf("Read %s: %v", f.fi.Name, err)
				}
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Fatal(err)
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, smallOpts(t, "zstd"))
	if _, err := w.BeginFile(FileInfo{Name: "a"}); !isErr(err, ErrNotBegun) {
		t.Fatal(err)
	}
	w.Begin(testLabel())
	if _, err := w.BeginFile(FileInfo{Name: "../a"}); !isErr(err, ErrBadName) {
		t.Fatal(err)
	}
	if _, err := w.BeginFile(FileInfo{Name: "a", Size: 5}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(nil, codec.ChunkMeta{Offset: 3}); !isErr(err, ErrOrder) {
		t.Fatal(err)
	}
	if err := w.EndFile(FileSummary{}); !isErr(err, ErrOrder) { // sticky
		t.Fatal(err)
	}
	if err := w.Close(); !isErr(err, ErrOrder) {
		t.Fatal(err)
	}
	w2, _ := NewWriter(io.Discard, smallOpts(t, "lz4"))
	w2.Begin(testLabel())
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.BeginFile(FileInfo{Name: "a"}); !isErr(err, ErrWriteAfterClose) {
		t.Fatal(err)
	}
	if _, err := NewWriter(io.Discard, WriterOptions{RecordSize: 1000}); err == nil {
		t.Fatal("record size 1000 accepted")
	}
}

// TestCLIRecovery checks that GNU tar and bsdtar list the set without a
// word on stderr, and that tar -xf + cat + the codec CLI gives the files back.
func TestCLIRecovery(t *testing.T) {
	needCLI(t, "tar")
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			cd := mustCodec(t, c)
			cli := map[string]string{"zstd": "zstd", "lz4": "lz4", "gzip": "gzip"}[c]
			if cli != "" {
				needCLI(t, cli)
			}
			files := sizesFiles()
			dir := t.TempDir()
			setPath := filepath.Join(dir, "set.tar")
			os.WriteFile(setPath, writeSet(t, smallOpts(t, c), files), 0o644)
			for _, lister := range []string{"tar", "bsdtar"} {
				if lister == "bsdtar" {
					needCLI(t, "bsdtar")
				}
				var stdout, stderr bytes.Buffer
				cmd := exec.Command(lister, "-tvf", setPath)
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil || stderr.Len() != 0 {
					t.Fatalf("%s -tvf: %v %q", lister, err, stderr.String())
				}
				if n := strings.Count(stdout.String(), "\n"); n < len(files)+2 {
					t.Fatalf("%s lists %d members", lister, n)
				}
			}
			out := filepath.Join(dir, "x")
			os.Mkdir(out, 0o755)
			if b, err := exec.Command("tar", "-xf", setPath, "-C", out).CombinedOutput(); err != nil || len(b) != 0 {
				t.Fatalf("tar -xf: %v %s", err, b)
			}
			for _, f := range files {
				glob := filepath.Join(out, SegmentName(f.fi, cd, 1))
				glob = glob[:len(glob)-6] + "*"
				script := "cat " + glob
				if cli != "" {
					script += " | " + cli + " -d -c"
				}
				cmd := exec.Command("sh", "-c", script)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				got, err := cmd.Output()
				if err != nil || !bytes.Equal(got, f.data) || stderr.Len() != 0 {
					t.Fatalf("%s: %v, %d bytes, want %d, stderr %q", script, err, len(got), len(f.data), stderr.String())
				}
			}
		})
	}
}

func lossesString(ls []Loss) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s[%d,+%d) ", l.File, l.Offset, l.Length)
	}
	return b.String()
}

// checkCoverage checks that delivered chunks are correct and that delivered
// plus lost ranges cover every file exactly.
func checkCoverage(t *testing.T, res *readResult, files []testFile) {
	t.Helper()
	for _, f := range files {
		var rs [][2]int64
		for _, g := range res.got[f.fi.Name] {
			if !bytes.Equal(res.files[f.fi.Name][g[0]:g[1]], f.data[g[0]:g[1]]) {
				t.Fatalf("%s: wrong data delivered at %v", f.fi.Name, g)
			}
			rs = append(rs, g)
		}
		for _, l := range res.losses {
			if l.File == f.fi.Name {
				rs = append(rs, [2]int64{l.Offset, l.Offset + l.Length})
			}
		}
		slices.SortFunc(rs, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		var pos int64
		for _, r := range rs {
			if r[0] != pos {
				t.Fatalf("%s: coverage hole or overlap at %d: %v (losses %s)", f.fi.Name, pos, rs, lossesString(res.losses))
			}
			pos = r[1]
		}
		if pos != int64(len(f.data)) {
			t.Fatalf("%s: covered to %d of %d", f.fi.Name, pos, len(f.data))
		}
	}
}

func corruptionFiles() []testFile {
	return []testFile{
		{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 300_000}, mail(300_000, 11)},
		{FileInfo{Name: "E00.log", Kind: KindLog, Size: 50_000}, mail(50_000, 12)},
	}
}

func TestCorruptFrame(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := corruptionFiles()
			set := writeSet(t, smallOpts(t, c), files)
			var pos int
			if c == "none" {
				pos = bytes.Index(set, files[0].data[5*16384:5*16384+100]) + 50
			} else {
				for _, u := range findUnits(set) {
					if u.meta.FileIndex == 0 && u.meta.Offset == 5*16384 {
						pos = u.pos + u.n/2
					}
				}
			}
			set[pos] ^= 0x10
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.losses) != 1 || res.losses[0].File != "Mailbox1.edb" || res.losses[0].Offset != 5*16384 ||
				res.losses[0].Length != 16384 || !strings.Contains(res.losses[0].Reason, "member \"databases/Mailbox1.edb") {
				t.Fatalf("losses %+v", res.losses)
			}
			checkCoverage(t, res, files)
			// strict mode: typed error naming the member and offset
			_, err = readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true})
			var fe *FormatError
			if !errorsAs(err, &fe) || !strings.HasPrefix(fe.Member, "databases/Mailbox1.edb") || fe.Offset == 0 {
				t.Fatalf("strict: %v", err)
			}
		})
	}
}

func TestCorruptHeader(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := corruptionFiles()
			cd := mustCodec(t, c)
			set := writeSet(t, smallOpts(t, c), files)
			name := SegmentName(files[0].fi, cd, 2)
			// the ustar header block follows the pax header of part 2
			i := bytes.Index(set, []byte(name+"\x00"))
			for i%BlockSize != 0 {
				i = bytes.Index(set[i+1:], []byte(name)) + i + 1
			}
			set[i+3] ^= 0x20
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkCoverage(t, res, files)
			if c == "none" {
				// the chunk table is lost with the header: the whole segment
				if len(res.losses) != 1 || res.losses[0].Offset != 65536 || res.losses[0].Length != 65536 ||
					!strings.Contains(res.losses[0].Reason, "invalid tar header") {
					t.Fatalf("losses %+v", res.losses)
				}
			} else if len(res.losses) != 0 { // units are self-describing: nothing lost
				t.Fatalf("losses %+v", res.losses)
			}
		})
	}
}

func TestCorruptManifest(t *testing.T) {
	files := corruptionFiles()
	set := writeSet(t, smallOpts(t, "zstd"), files)
	i := bytes.LastIndex(set, []byte(`"log_last_generation"`))
	set[i+3] ^= 1
	res, err := readSet(t, bytes.NewReader(set), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.manifest != nil || len(res.losses) != 1 || res.losses[0].FileIndex != -1 ||
		!strings.Contains(res.losses[0].Reason, "manifest") {
		t.Fatalf("losses %+v", res.losses)
	}
	checkCoverage(t, res, files)
	if _, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true}); !isErr(err, ErrChecksum) {
		t.Fatalf("strict: %v", err)
	}
}

func TestTruncated(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := corruptionFiles()
			set := writeSet(t, smallOpts(t, c), files)
			cut := len(set) / 2
			res, err := readSet(t, bytes.NewReader(set[:cut]), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// exact: every unit entirely before the cut is delivered
			var want int64
			if c != "none" {
				for _, u := range findUnits(set) {
					if u.pos+u.n <= cut && u.meta.FileIndex == 0 {
						want = u.meta.End()
					}
				}
			} else {
				// the chunks of the torn member wholly read are
				// delivered (its chunk table is in its header)
				want = res.got["Mailbox1.edb"][len(res.got["Mailbox1.edb"])-1][1]
				if want%(16<<10) != 0 || want%65536 == 0 {
					t.Fatalf("none: torn member's chunks not delivered (to %d)", want)
				}
			}
			l := res.losses
			if len(l) != 2 || l[0].File != "Mailbox1.edb" || l[0].Offset != want || l[0].Length != 300_000-want ||
				l[1].FileIndex != -1 {
				t.Fatalf("want loss from %d; losses %+v", want, l)
			}
			if _, err := readSet(t, bytes.NewReader(set[:cut]), ReaderOptions{Strict: true}); !isErr(err, ErrTruncated) {
				t.Fatalf("strict: %v", err)
			}
		})
	}
}

func TestZeroedRegion(t *testing.T) {
	for _, c := range []string{"zstd", "gzip", "lz4"} {
		t.Run(c, func(t *testing.T) {
			data := make([]byte, 4<<20)
			copy(data, mail(len(data), 21))
			files := []testFile{{FileInfo{Name: "big.edb", Kind: KindDatabase, Size: int64(len(data))}, data}}
			opts := WriterOptions{Codec: mustCodec(t, c), SegmentSize: 256 << 10, FrameSize: 64 << 10}
			set := writeSet(t, opts, files)
			z0 := len(set)/2 - 512<<10 + 777
			z1 := z0 + 1<<20
			var want []Loss
			for _, u := range findUnits(set) {
				if u.pos < z1 && u.pos+u.n > z0 {
					if n := len(want); n > 0 && want[n-1].Offset+want[n-1].Length == u.meta.Offset {
						want[n-1].Length += int64(u.meta.Length)
					} else {
						want = append(want, Loss{File: "big.edb", Offset: u.meta.Offset, Length: int64(u.meta.Length)})
					}
				}
			}
			clear(set[z0:z1])
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkCoverage(t, res, files)
			if lossesString(res.losses) != lossesString(want) {
				t.Fatalf("losses %s, want %s", lossesString(res.losses), lossesString(want))
			}
			t.Logf("zeroed [%d,%d): lost %s", z0, z1, lossesString(res.losses))
		})
	}
}

func errorsAs(err error, target **FormatError) bool {
	for err != nil {
		if fe, ok := err.(*FormatError); ok {
			*target = fe
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// evilSet writes a label then hand-made members.
func evilSet(t *testing.T, members func(tw *tar.Writer, comment func(rec memberRecord, size int64) map[string]string)) []byte {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, smallOpts(t, "zstd"))
	w.label, w.mtime = testLabel(), testCreated
	w.label.FormatVersion, w.label.Codec = FormatVersion, "zstd"
	js, _ := json.Marshal(w.label)
	sum := sha256.Sum256(js)
	hdr, _ := w.header(LabelName, int64(len(js)), &memberRecord{Type: mtLabel, Vol: 1, File: -1, SHA256: hex.EncodeToString(sum[:])})
	buf.Write(hdr)
	buf.Write(js)
	buf.Write(make([]byte, -len(js)&511))
	tw := tar.NewWriter(&buf)
	members(tw, func(rec memberRecord, size int64) map[string]string {
		rec.Set, rec.Stored = testLabel().SetID, size
		js, _ := encodeRecord(&rec)
		return map[string]string{"comment": string(js)}
	})
	tw.Close()
	return buf.Bytes()
}

func TestUnsafeSets(t *testing.T) {
	enc, _ := codec.NewEncoder(mustCodec(t, "zstd"), 16<<10)
	unit := enc.EncodeFrame(nil, codec.ChunkMeta{}, []byte("root::0:0::/root:/bin/sh\n"))
	cases := map[string]func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string){
		"dotdot": func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string) {
			rec := memberRecord{Type: mtSegment, File: 0, Name: "../../etc/passwd", Kind: KindOther, Part: 1, Length: 26, Chunks: 1, Size: 26, Last: true}
			tw.WriteHeader(&tar.Header{Name: "files/../../etc/passwd.zst.part000001", Size: int64(len(unit)), Mode: 0o644, Format: tar.FormatPAX, PAXRecords: cm(rec, int64(int64(len(unit))))})
			tw.Write(unit)
		},
		"absolute": func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string) {
			rec := memberRecord{Type: mtSegment, File: 0, Name: "/etc/passwd", Kind: KindOther, Part: 1, Length: 26, Chunks: 1, Size: 26, Last: true}
			tw.WriteHeader(&tar.Header{Name: "/etc/passwd.zst.part000001", Size: int64(len(unit)), Mode: 0o644, Format: tar.FormatPAX, PAXRecords: cm(rec, int64(int64(len(unit))))})
			tw.Write(unit)
		},
		"symlink": func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string) {
			rec := memberRecord{Type: mtSegment, File: 0, Name: "x", Kind: KindOther, Part: 1, Size: 0, Last: true}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "files/x.zst.part000001", Linkname: "/etc", Format: tar.FormatPAX, PAXRecords: cm(rec, 0)})
		},
		"name-mismatch": func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string) {
			rec := memberRecord{Type: mtSegment, File: 0, Name: "x", Kind: KindOther, Part: 1, Length: 26, Chunks: 1, Size: 26, Last: true}
			tw.WriteHeader(&tar.Header{Name: "files/y.zst.part000001", Size: int64(len(unit)), Mode: 0o644, Format: tar.FormatPAX, PAXRecords: cm(rec, int64(int64(len(unit))))})
			tw.Write(unit)
		},
		"huge-member": func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string) {
			rec := memberRecord{Type: mtSegment, File: 0, Name: "x", Kind: KindOther, Part: 1, Length: 26, Chunks: 1, Size: 26, Last: true}
			tw.WriteHeader(&tar.Header{Name: "files/x.zst.part000001", Size: 1 << 40, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: cm(rec, int64(1<<40))})
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			set := evilSet(t, mk)
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.order) != 0 {
				t.Fatalf("unsafe file returned: %v", res.order)
			}
			_, err = readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true})
			var fe *FormatError
			if !errorsAs(err, &fe) {
				t.Fatalf("strict: %v", err)
			}
			t.Log(err)
		})
	}
}

func TestBomb(t *testing.T) {
	// A unit whose record declares 1000 bytes but whose frame expands to
	// 64 MiB, and one declaring 64 MiB.
	enc, _ := codec.NewEncoder(mustCodec(t, "zstd"), 16<<20)
	big := enc.EncodeFrame(nil, codec.ChunkMeta{}, make([]byte, 16<<20))
	for _, declared := range []uint32{1000, 16 << 20} {
		unit := bytes.Clone(big)
		// rewrite the record's length and checksum
		rec := unit[8 : 8+codec.ChunkRecordLen]
		h, _ := codec.ParseHeader(unit)
		h.Meta.Length = declared
		putRec(rec, h)
		set := evilSet(t, func(tw *tar.Writer, cm func(memberRecord, int64) map[string]string) {
			r := memberRecord{Type: mtSegment, File: 0, Name: "x", Kind: KindOther, Part: 1, Length: int64(declared), Chunks: 1, Size: int64(declared), Last: true}
			tw.WriteHeader(&tar.Header{Name: "files/x.zst.part000001", Size: int64(len(unit)), Mode: 0o644, Format: tar.FormatPAX, PAXRecords: cm(r, int64(int64(len(unit))))})
			tw.Write(unit)
		})
		res, err := readSet(t, bytes.NewReader(set), ReaderOptions{MaxFrameSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.got["x"]) != 0 || len(res.losses) == 0 {
			t.Fatalf("bomb accepted: %+v", res.losses)
		}
		t.Log(res.losses)
	}
}

func TestExtractAll(t *testing.T) {
	files := sizesFiles()
	set := writeSet(t, smallOpts(t, "zstd"), files)
	rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rd.ExtractAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dir, f.fi.Name))
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("%s: %v", f.fi.Name, err)
		}
	}
}

func TestCorruptLabel(t *testing.T) {
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := corruptionFiles()
			set := writeSet(t, smallOpts(t, c), files)
			i := bytes.Index(set, []byte(`"set_type"`))
			set[i+2] ^= 4 // label data: JSON broken
			set[3] ^= 1   // label pax header: checksum broken
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.losses) != 0 || res.label.SetID != testLabel().SetID || res.manifest == nil {
				t.Fatalf("losses %v label %+v", res.losses, res.label)
			}
			checkCoverage(t, res, files)
			if _, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: true}); !isErr(err, ErrHeader) {
				t.Fatalf("strict: %v", err)
			}
		})
	}
}
