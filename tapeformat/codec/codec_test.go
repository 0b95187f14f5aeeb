package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/internal/testgen"
)

var allCodecs = []string{"zstd", "lz4", "gzip", "none"}

func TestParseCodec(t *testing.T) {
	for _, tc := range []struct{ in, out, ext string }{
		{"zstd", "zstd", ".zst"}, {"zstd:fastest", "zstd:1", ".zst"}, {"zstd:19", "zstd:4", ".zst"},
		{"lz4", "lz4", ".lz4"}, {"gzip:9", "gzip:9", ".gz"}, {"none", "none", ""},
	} {
		c, err := ParseCodec(tc.in)
		if err != nil || c.String() != tc.out || c.Ext() != tc.ext {
			t.Errorf("ParseCodec(%q) = %v %q %v", tc.in, c, c.Ext(), err)
		}
	}
	for _, bad := range []string{"xz", "zstd:0", "gzip:10", "none:3", "zstd:x"} {
		if _, err := ParseCodec(bad); !errors.Is(err, ErrUnknownCodec) {
			t.Errorf("ParseCodec(%q) err = %v", bad, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rnd := make([]byte, 300<<10)
	for i := range rnd {
		rnd[i] = byte(rand.Uint32())
	}
	inputs := map[string][]byte{"empty": {}, "one": {'x'}, "mail": testgen.MailData(256<<10, 1), "random": rnd, "zeros": make([]byte, 300<<10)}
	for _, name := range allCodecs[:3] {
		c, _ := ParseCodec(name)
		enc, err := NewEncoder(c, 300<<10)
		if err != nil {
			t.Fatal(err)
		}
		dec := NewDecoder(1 << 20)
		for iname, in := range inputs {
			unit := enc.EncodeFrame([]byte("junk"), ChunkMeta{FileIndex: 7, Offset: 1 << 33}, in)[4:]
			h, err := ParseHeader(unit)
			if err != nil || h.UnitLen != len(unit) || h.Meta.Length != uint32(len(in)) {
				t.Fatalf("%s/%s: header %+v %v len %d", name, iname, h, err, len(unit))
			}
			if iname == "random" && (h.Flags&FlagStored == 0 || len(unit) > len(in)+200) {
				t.Errorf("%s: random data not stored raw: %d -> %d", name, len(in), len(unit))
			}
			out, m, err := dec.DecodeFrame(nil, unit)
			if err != nil || !bytes.Equal(out, in) || m.FileIndex != 7 || m.Offset != 1<<33 {
				t.Fatalf("%s/%s: decode %v %+v", name, iname, err, m)
			}
			// corruption anywhere is detected
			for _, pos := range []int{3, 20, len(unit) / 2, len(unit) - 1} {
				bad := bytes.Clone(unit)
				bad[pos] ^= 0x40
				if out, _, err := dec.DecodeFrame(nil, bad); err == nil && !bytes.Equal(out, in) {
					t.Fatalf("%s/%s: corruption at %d returned wrong data", name, iname, pos)
				} else if err == nil {
					t.Logf("%s/%s: flip at %d harmless", name, iname, pos)
				}
			}
			if FindUnit(append([]byte("garbageTSCH"), unit...)) != 11 {
				t.Errorf("%s/%s: FindUnit failed", name, iname)
			}
		}
	}
}

func TestCLIDecodes(t *testing.T) {
	for _, tc := range []struct{ codec, cli string }{{"zstd", "zstd"}, {"lz4", "lz4"}, {"gzip", "gzip"}} {
		if _, err := exec.LookPath(tc.cli); err != nil {
			if os.Getenv("CI") == "" {
				t.Skip(tc.cli, " not installed")
			}
			t.Fatal(err)
		}
		c, _ := ParseCodec(tc.codec)
		enc, _ := NewEncoder(c, 64<<10)
		data := testgen.MailData(1<<20, 3)
		rnd := make([]byte, 200<<10) // incompressible: stored frames
		for i := range rnd {
			rnd[i] = byte(rand.Uint32())
		}
		data = append(data, rnd...)
		var stream []byte
		for off := 0; off < len(data); off += 64 << 10 {
			stream = enc.EncodeFrame(stream, ChunkMeta{Offset: int64(off)}, data[off:min(off+64<<10, len(data))])
		}
		cmd := exec.Command(tc.cli, "-d", "-c")
		cmd.Stdin = bytes.NewReader(stream)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, data) || stderr.Len() != 0 {
			t.Errorf("%s -d: err %v, equal %v, stderr %q", tc.cli, err, bytes.Equal(out, data), stderr.String())
		}
	}
}

func TestDecodeBomb(t *testing.T) {
	c, _ := ParseCodec("zstd")
	enc, _ := NewEncoder(c, 4<<20)
	unit := enc.EncodeFrame(nil, ChunkMeta{}, make([]byte, 4<<20))
	dec := NewDecoder(1 << 20)
	if _, _, err := dec.DecodeFrame(nil, unit); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bomb: %v", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	data := testgen.MailData(8<<20, 9)
	for _, name := range allCodecs {
		for _, fs := range []int{64 << 10, 256 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dK", name, fs>>10), func(b *testing.B) {
				c, _ := ParseCodec(name)
				enc, _ := NewEncoder(c, fs)
				dst := make([]byte, 0, 2*fs)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				var out int
				for b.Loop() {
					out = 0
					for off := 0; off < len(data); off += fs {
						dst = enc.EncodeFrame(dst[:0], ChunkMeta{Offset: int64(off)}, data[off:min(off+fs, len(data))])
						out += len(dst)
					}
				}
				b.ReportMetric(float64(len(data))/float64(out), "ratio")
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := testgen.MailData(8<<20, 9)
	for _, name := range allCodecs[:3] {
		fs := 256 << 10
		b.Run(name, func(b *testing.B) {
			c, _ := ParseCodec(name)
			enc, _ := NewEncoder(c, fs)
			var units [][]byte
			for off := 0; off < len(data); off += fs {
				units = append(units, enc.EncodeFrame(nil, ChunkMeta{Offset: int64(off)}, data[off:min(off+fs, len(data))]))
			}
			dec := NewDecoder(fs)
			dst := make([]byte, 0, fs)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				for _, u := range units {
					var err error
					if dst, _, err = dec.DecodeFrame(dst[:0], u); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestInfoFrame: a file-info frame round-trips, the codec CLIs skip it
// (checked by the set tests), FindUnit finds it, and any flipped byte
// makes it invalid.
func TestInfoFrame(t *testing.T) {
	info := []byte(`{"file":{"name":"Mailbox1.edb"}}`)
	for _, k := range []Kind{Zstd, LZ4, Gzip} {
		fr := AppendInfo([]byte("xx"), k, info)[2:]
		got, n, err := ParseInfo(append(bytes.Clone(fr), "more"...))
		if err != nil || n != len(fr) || !bytes.Equal(got, info) {
			t.Fatalf("%v: %q %d %v", k, got, n, err)
		}
		if i := FindUnit(append([]byte("garbageTSFI"), fr...)); i != 11 {
			t.Fatalf("%v: FindUnit %d", k, i)
		}
		for p := range fr {
			bad := bytes.Clone(fr)
			bad[p] ^= 0x08
			if _, _, err := ParseInfo(bad); err == nil {
				t.Fatalf("%v: flip at %d accepted", k, p)
			}
		}
	}
}

// TestSetTag: the writer stamps the set tag; a flipped tag byte fails the
// record checksum; version 1 records (36 bytes) still parse.
func TestSetTag(t *testing.T) {
	c, _ := ParseCodec("zstd")
	enc, _ := NewEncoder(c, 1024)
	u := enc.EncodeFrame(nil, ChunkMeta{FileIndex: 3, Offset: 2048}, []byte("hello"))
	tag := SetTagOf("0123456789abcdef0123456789abcdef")
	if err := StampSet(u, tag); err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(u)
	if err != nil || h.SetTag != tag || h.Version != 2 || h.Meta.FileIndex != 3 {
		t.Fatalf("%+v %v", h, err)
	}
	u[8+33] ^= 1
	if _, err := ParseHeader(u); err == nil {
		t.Fatal("flipped set tag accepted")
	}
}
