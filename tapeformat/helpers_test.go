package tapeformat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/tapeformat/internal/testgen"
)

type testFile struct {
	fi   FileInfo
	data []byte
}

var testCreated = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func mustCodec(t testing.TB, s string) codec.Codec {
	c, err := codec.ParseCodec(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func smallOpts(t testing.TB, c string) WriterOptions {
	return WriterOptions{Codec: mustCodec(t, c), RecordSize: 10240, SegmentSize: 64 << 10, FrameSize: 16 << 10}
}

func testLabel() Label {
	return Label{SetID: "0123456789abcdef0123456789abcdef", SetType: ese.Full, StorageGroup: "First Storage Group",
		Databases: []string{"Mailbox1"}, Created: testCreated, Host: "exch01",
		GroupSignature: "7a1c5e0f3b2d4c6e8a9b0c1d2e3f4a5b", LogPrefix: "E00", GroupID: 1, DatabaseIDs: []int{0, 1}}
}

func writeFiles(t testing.TB, w *Writer, files []testFile) {
	t.Helper()
	if err := w.Begin(testLabel()); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fw, err := w.CreateFile(f.fi)
		if err != nil {
			t.Fatal(err)
		}
		// write in odd pieces
		for p := f.data; len(p) > 0; {
			n := min(len(p), 7777)
			if _, err := fw.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	w.SetManifestInfo(ManifestInfo{LogFirst: 0xA0, LogLast: 0xA3})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeSet(t testing.TB, opts WriterOptions, files []testFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, w, files)
	if buf.Len()%w.opts.RecordSize != 0 {
		t.Fatalf("set size %d not a multiple of the record size", buf.Len())
	}
	return buf.Bytes()
}

// readAll reads a set in salvage mode, returning file contents (lost bytes
// left zero), the loss report and the manifest.
type readResult struct {
	files    map[string][]byte
	got      map[string][][2]int64 // delivered ranges
	order    []string
	losses   []Loss
	warnings []Warning
	headers  map[string]FileHeader
	manifest *Manifest
	label    Label
}

func readSet(t testing.TB, r io.Reader, opts ReaderOptions) (*readResult, error) {
	rd, err := NewReader(r, opts)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	res := &readResult{files: map[string][]byte{}, got: map[string][][2]int64{}, headers: map[string]FileHeader{}}
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		res.order = append(res.order, h.Name)
		res.headers[h.Name] = *h
		var data []byte
		for {
			c, err := rd.NextChunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				return res, err
			}
			if codec.Checksum(c.Data) != c.Meta.CRC32C || len(c.Data) != int(c.Meta.Length) {
				t.Fatalf("chunk returned with bad CRC")
			}
			if c.Meta.End() > 64<<20 { // hostile offsets (fuzzing): do not materialise
				continue
			}
			if end := int(c.Meta.End()); end > len(data) {
				data = append(data, make([]byte, end-len(data))...)
			}
			copy(data[c.Meta.Offset:], c.Data)
			res.got[h.Name] = append(res.got[h.Name], [2]int64{c.Meta.Offset, c.Meta.End()})
		}
		res.files[h.Name] = data
	}
	res.losses = rd.Damage()
	res.warnings = rd.Warnings()
	res.manifest, _ = rd.Manifest()
	res.label = rd.Label()
	return res, nil
}

// drain reads every file and chunk of rd without keeping them and returns
// the number of files and chunks read.
func drain(t testing.TB, rd *Reader) (files, chunks int) {
	t.Helper()
	for {
		if _, err := rd.Next(); err == io.EOF {
			return files, chunks
		} else if err != nil {
			t.Fatal(err)
		}
		files++
		for {
			if _, err := rd.NextChunk(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			chunks++
		}
	}
}

func needCLI(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed", name)
		}
		t.Fatalf("%s required in CI: %v", name, err)
	}
}

func mail(n int, seed uint64) []byte { return testgen.MailData(n, seed) }

// units lists the position and metadata of every unit in a set.
type unitPos struct {
	pos, n int
	meta   codec.ChunkMeta
}

func findUnits(set []byte) []unitPos {
	var out []unitPos
	for p := 0; p < len(set); {
		i := codec.FindUnit(set[p:])
		if i < 0 {
			break
		}
		h, err := codec.ParseHeader(set[p+i:])
		if err != nil { // a file-info frame
			_, n, _ := codec.ParseInfo(set[p+i:])
			p += i + n
			continue
		}
		out = append(out, unitPos{p + i, h.UnitLen, h.Meta})
		p += i + h.UnitLen
	}
	return out
}

func isErr(err, target error) bool { return errors.Is(err, target) }

// putRec rewrites a chunk record's length and fixes its checksum.
func putRec(rec []byte, h codec.Header) {
	binary.LittleEndian.PutUint32(rec[20:], h.Meta.Length)
	binary.LittleEndian.PutUint32(rec[40:], codec.Checksum(rec[:40]))
}
