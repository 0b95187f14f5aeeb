package media

// A btape-like test suite for tape targets. It runs against the emulated
// drive always, and against a real drive when TAPESTREAM_TEST_TAPE names
// one (e.g. /dev/nst0). THE REAL-DRIVE RUN ERASES THE TAPE IN THE DRIVE.
// Filling a real tape to end of medium takes hours: those cases run on a
// real drive only with TAPESTREAM_TEST_TAPE_FILL=1 and an operator or
// TAPESTREAM_TEST_NEXT_VOLUME_CMD for the second volume.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/tapeformat"
)

type tapeHarness struct {
	target string // sink target
	real   bool
	dir    string // emulated: the tape directory
}

// open opens the drive on the loaded volume for writing.
func (h tapeHarness) open(t *testing.T) Drive {
	t.Helper()
	var d Drive
	var err error
	if h.real {
		d, err = OpenDrive(h.target, true)
	} else {
		var spec EmulatedTape
		spec, err = ParseEmulatedSpec(h.target)
		if err == nil {
			d, err = OpenEmulatedDrive(spec, false)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetBlockSize(0); err != nil {
		t.Fatal(err)
	}
	return d
}

// harnessFactory returns a fresh tape for each subtest; query sets the
// emulated tape's options (ignored for a real drive).
type harnessFactory func(t *testing.T, query string) tapeHarness

func emulatedFactory(t *testing.T, query string) tapeHarness {
	dir := filepath.Join(t.TempDir(), "tape")
	target := EmulatedPrefix + dir
	if query != "" {
		target += "?" + query
	}
	return tapeHarness{target: target, dir: dir}
}

func TestDriveSuiteEmulated(t *testing.T) {
	runDriveSuite(t, emulatedFactory)
}

func TestDriveSuiteReal(t *testing.T) {
	dev := os.Getenv("TAPESTREAM_TEST_TAPE")
	if dev == "" {
		t.Skip("set TAPESTREAM_TEST_TAPE=/dev/nstN to run the suite against a real drive (erases the tape)")
	}
	runDriveSuite(t, func(t *testing.T, query string) tapeHarness {
		return tapeHarness{target: dev, real: true}
	})
}

func runDriveSuite(t *testing.T, newH harnessFactory) {
	t.Run("RecordSizes", func(t *testing.T) { suiteRecordSizes(t, newH(t, "")) })
	t.Run("AppendAtEOD", func(t *testing.T) { suiteAppend(t, newH(t, "")) })
	t.Run("ForwardSpace", func(t *testing.T) { suiteForwardSpace(t, newH(t, "")) })
	t.Run("TwoSets", func(t *testing.T) { suiteTwoSets(t, newH(t, "")) })
	t.Run("RefuseOverwrite", func(t *testing.T) { suiteRefuseOverwrite(t, newH(t, "")) })
	t.Run("WriteProtect", func(t *testing.T) { suiteWriteProtect(t, newH(t, "")) })
	fill := func(t *testing.T, query string) tapeHarness {
		h := newH(t, query)
		if h.real && os.Getenv("TAPESTREAM_TEST_TAPE_FILL") == "" {
			t.Skip("filling a real tape: set TAPESTREAM_TEST_TAPE_FILL=1")
		}
		return h
	}
	t.Run("FillEarlyWarningNextVolume", func(t *testing.T) {
		suiteFillEarlyWarning(t, fill(t, "capacity=2MiB&early-warning=256KiB"))
	})
	t.Run("FillEndOfMediumNextVolume", func(t *testing.T) {
		suiteFillEndOfMedium(t, fill(t, "capacity=1MiB&early-warning=128KiB"))
	})
}

func readRec(t *testing.T, d Drive, buf []byte) []byte {
	t.Helper()
	n, err := d.ReadRecord(buf)
	if err != nil {
		t.Fatalf("read record: %v", err)
	}
	return buf[:n]
}

func expectFilemark(t *testing.T, d Drive, buf []byte) {
	t.Helper()
	if n, err := d.ReadRecord(buf); n != 0 || err != nil {
		t.Fatalf("want filemark, got %d bytes, %v", n, err)
	}
}

func suiteRecordSizes(t *testing.T, h tapeHarness) {
	d := h.open(t)
	defer d.Close()
	if err := d.Rewind(); err != nil {
		t.Fatal(err)
	}
	sizes := []int{512, 1536, 10240, 65536, 1 << 20}
	for f, size := range sizes {
		for i := 0; i < 4; i++ {
			if n, err := d.WriteRecord(record(size, f, i)); n != size || err != nil {
				t.Fatalf("write %d-byte record: %d, %v", size, n, err)
			}
		}
		if err := d.WriteFilemark(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Rewind(); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Status(); err != nil || !st.BOT || st.FileNumber != 0 {
		t.Fatalf("status after rewind: %+v %v", st, err)
	}
	buf := make([]byte, maxRec)
	for f, size := range sizes {
		for i := 0; i < 4; i++ {
			if got := readRec(t, d, buf); !bytes.Equal(got, record(size, f, i)) {
				t.Fatalf("file %d record %d: %d bytes, mismatch", f, i, len(got))
			}
		}
		expectFilemark(t, d, buf)
	}
	if _, err := d.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("after last filemark: %v, want end of data", err)
	}
	// A record larger than the buffer is reported, not truncated.
	d.Rewind()
	if err := d.SpaceFilemarks(len(sizes) - 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadRecord(make([]byte, 512)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("small buffer: %v", err)
	}
}

func suiteAppend(t *testing.T, h tapeHarness) {
	d := h.open(t)
	d.Rewind()
	for i := 0; i < 2; i++ {
		if _, err := d.WriteRecord(record(4096, 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	d.WriteFilemark(1)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = h.open(t)
	defer d.Close()
	if err := d.SeekEOD(); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Status(); err != nil || st.FileNumber != 1 {
		t.Fatalf("status at EOD: %+v %v", st, err)
	}
	if _, err := d.WriteRecord(record(4096, 2, 0)); err != nil {
		t.Fatal(err)
	}
	d.WriteFilemark(1)
	d.Rewind()
	buf := make([]byte, maxRec)
	for i := 0; i < 2; i++ {
		if !bytes.Equal(readRec(t, d, buf), record(4096, 1, i)) {
			t.Fatalf("file 0 record %d", i)
		}
	}
	expectFilemark(t, d, buf)
	if !bytes.Equal(readRec(t, d, buf), record(4096, 2, 0)) {
		t.Fatal("appended file")
	}
	expectFilemark(t, d, buf)
}

func suiteForwardSpace(t *testing.T, h tapeHarness) {
	d := h.open(t)
	defer d.Close()
	d.Rewind()
	for f := 0; f < 3; f++ {
		for i := 0; i < 3; i++ {
			if _, err := d.WriteRecord(record(8192, 10+f, i)); err != nil {
				t.Fatal(err)
			}
		}
		d.WriteFilemark(1)
	}
	buf := make([]byte, maxRec)
	d.Rewind()
	if err := d.SpaceFilemarks(2); err != nil {
		t.Fatal(err)
	}
	if tag, seq := recordID(readRec(t, d, buf)); tag != 12 || seq != 0 {
		t.Fatalf("after spacing 2 files: record %d/%d", tag, seq)
	}
	if st, _ := d.Status(); st.FileNumber != 2 || st.BlockNumber != 1 {
		t.Fatalf("status: file %d block %d", st.FileNumber, st.BlockNumber)
	}
	// From the middle of file 0, one filemark forward is the start of file 1.
	d.Rewind()
	readRec(t, d, buf)
	if err := d.SpaceFilemarks(1); err != nil {
		t.Fatal(err)
	}
	if tag, seq := recordID(readRec(t, d, buf)); tag != 11 || seq != 0 {
		t.Fatalf("record %d/%d", tag, seq)
	}
	// Backward: before the filemark ending file 0, i.e. in file 0.
	if err := d.SpaceFilemarks(-1); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(); st.FileNumber != 0 {
		t.Fatalf("after backspace: file %d", st.FileNumber)
	}
	// Spacing past the end of data fails.
	d.Rewind()
	if err := d.SpaceFilemarks(5); err == nil {
		t.Fatal("spaced past end of data")
	}
}

// writeSet writes a set of n records tagged tag through the sink and
// commits it.
func writeSet(t *testing.T, target string, opts Options, tag, n int) []VolumeInfo {
	t.Helper()
	s, err := Open(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := s.Write(record(opts.recordSize(), tag, i)); err != nil {
			s.Abort()
			t.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	return s.Volumes()
}

// readVolume reads records of size rs from r until io.EOF.
func readVolume(t *testing.T, r io.Reader, rs int) [][]byte {
	t.Helper()
	var recs [][]byte
	for {
		p := make([]byte, rs)
		if _, err := io.ReadFull(r, p); err != nil {
			if err == io.EOF {
				return recs
			}
			t.Fatalf("read: %v", err)
		}
		recs = append(recs, p)
	}
}

func suiteTwoSets(t *testing.T, h tapeHarness) {
	const rs = 64 << 10
	v := writeSet(t, h.target, Options{RecordSize: rs, Overwrite: h.real}, 1, 3)
	if len(v) != 1 || v[0].FileNumber != 0 || v[0].Records != 3 {
		t.Fatalf("set 1 volumes %+v", v)
	}
	v = writeSet(t, h.target, Options{RecordSize: rs, Append: true}, 2, 2)
	if len(v) != 1 || v[0].FileNumber != 1 {
		t.Fatalf("set 2 volumes %+v", v)
	}
	for file, want := range map[int][2]int{0: {1, 3}, 1: {2, 2}} {
		r, err := OpenReader(h.target, Options{RecordSize: rs, FileNumber: file})
		if err != nil {
			t.Fatal(err)
		}
		recs := readVolume(t, r, rs)
		if len(recs) != want[1] {
			t.Fatalf("file %d: %d records", file, len(recs))
		}
		for i, p := range recs {
			if !bytes.Equal(p, record(rs, want[0], i)) {
				t.Fatalf("file %d record %d", file, i)
			}
		}
		if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("read after end of set: %d %v", n, err)
		}
		r.Close()
	}
	if _, err := OpenReader(h.target, Options{FileNumber: 5}); err == nil {
		t.Fatal("opened file 5 of a 2-set tape")
	}
	if _, err := OpenReader(h.target, Options{FileNumber: 2}); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("file 2 of a 2-set tape (end of data): %v", err)
	}
}

func suiteRefuseOverwrite(t *testing.T, h tapeHarness) {
	const rs = 16 << 10
	writeSet(t, h.target, Options{RecordSize: rs, Overwrite: h.real}, 1, 2)
	_, err := Open(h.target, Options{RecordSize: rs})
	if !errors.Is(err, ErrTapeNotEmpty) {
		t.Fatalf("open non-empty tape: %v", err)
	}
	if !strings.Contains(err.Error(), strings.TrimSuffix(strings.SplitN(h.target, "?", 2)[0], "/")) {
		t.Fatalf("error does not name the device: %v", err)
	}
	writeSet(t, h.target, Options{RecordSize: rs, Overwrite: true}, 3, 1)
	r, err := OpenReader(h.target, Options{RecordSize: rs})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs := readVolume(t, r, rs)
	if len(recs) != 1 || !bytes.Equal(recs[0], record(rs, 3, 0)) {
		t.Fatalf("overwritten tape holds %d records", len(recs))
	}
}

func suiteWriteProtect(t *testing.T, h tapeHarness) {
	if h.real {
		d := h.open(t)
		st, err := d.Status()
		d.Close()
		if err != nil || !st.WriteProtect {
			t.Skip("real drive: load a write-protected tape to test this")
		}
		if _, err := Open(h.target, Options{Overwrite: true}); !errors.Is(err, ErrWriteProtected) {
			t.Fatalf("open write-protected tape: %v", err)
		}
		return
	}
	if _, err := Open(h.target+"?write-protect=true", Options{}); !errors.Is(err, ErrWriteProtected) {
		t.Fatalf("open write-protected tape: %v", err)
	}
	d := h.open(t)
	defer d.Close()
	d.(*EmulatedDrive).SetWriteProtect(true)
	if st, _ := d.Status(); !st.WriteProtect {
		t.Fatal("status does not report write protect")
	}
	if _, err := d.WriteRecord(record(512, 1, 0)); !errors.Is(err, ErrWriteProtected) {
		t.Fatalf("write: %v", err)
	}
	if err := d.WriteFilemark(1); !errors.Is(err, ErrWriteProtected) {
		t.Fatalf("filemark: %v", err)
	}
}

const trailerTag = 999

// maxRec is the read buffer of the drive-level tests.
const maxRec = 1 << 20

// fillWriter behaves like the tapeformat writer: on early warning it
// finishes the (one-record) member, writes a trailer record and changes
// volume; on end of medium it changes volume and rewrites the record.
func fillWriter(t *testing.T, s Sink, rs, total int) {
	t.Helper()
	for seq := 0; seq < total; {
		_, err := s.Write(record(rs, 1, seq))
		switch {
		case err == nil:
			seq++
		case errors.Is(err, tapeformat.ErrEarlyWarning):
			seq++
			if _, err := s.Write(record(rs, trailerTag, 0)); err != nil {
				t.Fatalf("trailer into the reserve: %v", err)
			}
			if err := s.NextVolume(); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, tapeformat.ErrEndOfMedium):
			if err := s.NextVolume(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readAllVolumes reads nvol volumes of a set and returns the record ids.
func readAllVolumes(t *testing.T, target string, opts Options, rs, nvol int) [][][2]int {
	t.Helper()
	r, err := OpenReader(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var vols [][][2]int
	for v := 1; v <= nvol; v++ {
		if v > 1 {
			if err := r.NextVolume(); err != nil {
				t.Fatal(err)
			}
		}
		var ids [][2]int
		for _, p := range readVolume(t, r, rs) {
			tag, seq := recordID(p)
			if !bytes.Equal(p, record(rs, tag, seq)) {
				t.Fatalf("volume %d: record %d/%d corrupt", v, tag, seq)
			}
			ids = append(ids, [2]int{tag, seq})
		}
		vols = append(vols, ids)
	}
	return vols
}

func suiteFillEarlyWarning(t *testing.T, h tapeHarness) {
	const rs = 64 << 10
	const total = 50 // 3.2 MiB: two 2 MiB volumes
	opts := Options{RecordSize: rs, Overwrite: h.real, NextVolumeCmd: os.Getenv("TAPESTREAM_TEST_NEXT_VOLUME_CMD")}
	s, err := Open(h.target, opts)
	if err != nil {
		t.Fatal(err)
	}
	fillWriter(t, s, rs, total)
	vi := s.Volumes()
	if len(vi) != 2 || !vi[0].EarlyWarning || vi[1].EarlyWarning || vi[1].FileNumber != 0 {
		t.Fatalf("volumes %+v", vi)
	}
	if h.real {
		return // reading back needs the first tape loaded again
	}
	if st, _ := readEmuState(h.dir); st.LoadedVolume != 2 {
		t.Fatalf("state.json loaded volume %d", st.LoadedVolume)
	}
	vols := readAllVolumes(t, h.target, Options{RecordSize: rs}, rs, 2)
	seq := 0
	for v, ids := range vols {
		for i, id := range ids {
			if id[0] == trailerTag {
				if v != 0 || i != len(ids)-1 {
					t.Fatalf("trailer at volume %d record %d", v+1, i)
				}
				continue
			}
			if id[1] != seq {
				t.Fatalf("volume %d record %d: seq %d, want %d", v+1, i, id[1], seq)
			}
			seq++
		}
	}
	if seq != total {
		t.Fatalf("read %d records, wrote %d", seq, total)
	}
	if last := vols[0][len(vols[0])-1]; last[0] != trailerTag {
		t.Fatal("volume 1 does not end with the trailer")
	}
}

func suiteFillEndOfMedium(t *testing.T, h tapeHarness) {
	if h.real {
		t.Skip("exact end-of-medium accounting is emulated-only")
	}
	const rs = 64 << 10
	s, err := Open(h.target, Options{RecordSize: rs})
	if err != nil {
		t.Fatal(err)
	}
	ew := 0
	seq := 0
	for {
		n, err := s.Write(record(rs, 1, seq))
		if errors.Is(err, tapeformat.ErrEndOfMedium) {
			if n != 0 {
				t.Fatalf("end of medium with n=%d", n)
			}
			break
		}
		if errors.Is(err, tapeformat.ErrEarlyWarning) {
			ew++
		} else if err != nil {
			t.Fatal(err)
		}
		seq++
	}
	// 1 MiB / 64 KiB = 16 records fit; early warning reported once.
	if seq != 16 || ew != 1 {
		t.Fatalf("%d records before end of medium, %d early warnings", seq, ew)
	}
	if err := s.NextVolume(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Write(record(rs, 1, seq+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	vols := readAllVolumes(t, h.target, Options{RecordSize: rs}, rs, 2)
	if len(vols[0]) != 16 || len(vols[1]) != 3 || vols[1][0][1] != 16 {
		t.Fatalf("volumes hold %d and %d records; volume 2 starts at %v", len(vols[0]), len(vols[1]), vols[1])
	}
}

// --- emulated-only tape tests ---

func TestEmulatedNextVolumeCmd(t *testing.T) {
	h := emulatedFactory(t, "capacity=1MiB&early-warning=128KiB")
	log := filepath.Join(t.TempDir(), "changer.log")
	opts := Options{RecordSize: 64 << 10, NextVolumeCmd: `echo "$TAPESTREAM_VOLUME $TAPESTREAM_DEVICE" >> '` + log + `'`, Stderr: io.Discard}
	s, err := Open(h.target, opts)
	if err != nil {
		t.Fatal(err)
	}
	fillWriter(t, s, 64<<10, 40) // 2.5 MiB: three volumes
	b, _ := os.ReadFile(log)
	want := "2 tape:" + h.dir + "\n3 tape:" + h.dir + "\n"
	if string(b) != want {
		t.Fatalf("changer log %q, want %q", b, want)
	}
	// The reader runs the command too when it changes volume.
	os.Remove(log)
	readAllVolumes(t, h.target, opts, 64<<10, 3)
	if b, _ := os.ReadFile(log); string(b) != want {
		t.Fatalf("reader changer log %q", b)
	}
}

func TestEmulatedNextVolumeCmdFails(t *testing.T) {
	h := emulatedFactory(t, "capacity=1MiB&early-warning=128KiB")
	s, err := Open(h.target, Options{RecordSize: 64 << 10, NextVolumeCmd: "echo no more tapes >&2; exit 3", Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(64<<10, 1, 0))
	err = s.NextVolume()
	if !errors.Is(err, ErrVolumeCommand) || !strings.Contains(err.Error(), "no more tapes") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("next volume: %v", err)
	}
	if _, err := s.Write(record(64<<10, 1, 1)); err == nil {
		t.Fatal("write after failed volume change succeeded")
	}
	if err := s.Commit(); err == nil {
		t.Fatal("commit after failed volume change succeeded")
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
}

func TestAbortCancelsVolumeChange(t *testing.T) {
	h := emulatedFactory(t, "")
	s, err := Open(h.target, Options{RecordSize: 4096, NextVolumeCmd: "exec sleep 30", Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(4096, 1, 0))
	done := make(chan error)
	go func() { done <- s.NextVolume() }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("volume change survived Abort")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Abort took %v", d)
	}
}

func TestChangeVolumePrompt(t *testing.T) {
	var gotVol int
	var gotDev string
	opts := Options{Prompt: func(ctx context.Context, v int, dev string) error {
		gotVol, gotDev = v, dev
		return nil
	}}
	if err := changeVolume(context.Background(), opts, 3, "/dev/nst0"); err != nil || gotVol != 3 || gotDev != "/dev/nst0" {
		t.Fatalf("prompt: %v %d %q", err, gotVol, gotDev)
	}
	err := changeVolume(context.Background(), Options{Stdin: strings.NewReader("")}, 2, "/dev/nst0")
	if !errors.Is(err, ErrNoNextVolume) {
		t.Fatalf("no operator: %v", err)
	}
	var out bytes.Buffer
	p := TerminalPrompt(strings.NewReader("\n"), &out)
	if err := p(context.Background(), 2, "/dev/nst0"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Insert volume 2 in /dev/nst0 and press Enter") {
		t.Fatalf("prompt text %q", out.String())
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := TerminalPrompt(pr, io.Discard)(ctx, 2, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled prompt: %v", err)
	}
}

func TestEmulatedSpec(t *testing.T) {
	spec, err := ParseEmulatedSpec("tape:/x/y?capacity=64MiB&early-warning=2MiB&write-protect=1&volume=3")
	if err != nil {
		t.Fatal(err)
	}
	if spec != (EmulatedTape{Dir: "/x/y", Capacity: 64 << 20, EarlyWarning: 2 << 20, WriteProtect: true, Volume: 3}) {
		t.Fatalf("%+v", spec)
	}
	for _, bad := range []string{"tape:", "tape:?capacity=1", "tape:/x?capacity=lots", "tape:/x?bogus=1", "tape:/x?volume=0", "tape:/x?write-protect=maybe"} {
		if _, err := ParseEmulatedSpec(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "t")
	r, err := EmulatedTape{Dir: dir}.resolve(true, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Capacity != DefaultEmulatedCapacity || r.EarlyWarning != 64<<20 || r.Volume != 1 {
		t.Fatalf("defaults %+v", r)
	}
	dir2 := filepath.Join(t.TempDir(), "t")
	if _, err := (EmulatedTape{Dir: dir2, Capacity: 64 << 20}).resolve(true, true); err != nil {
		t.Fatal(err)
	}
	// Later opens without options use state.json.
	r, err = EmulatedTape{Dir: dir2}.resolve(false, false)
	if err != nil || r.Capacity != 64<<20 || r.EarlyWarning != 4<<20 {
		t.Fatalf("from state: %+v %v", r, err)
	}
}

func TestEmulatedTornRecord(t *testing.T) {
	h := emulatedFactory(t, "")
	d := h.open(t)
	d.WriteRecord(record(4096, 1, 0))
	d.WriteFilemark(1)
	path := d.(*EmulatedDrive).Path()
	d.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 16, 0, 0, 1, 2, 3}) // a 4096-byte record header, 3 bytes of it
	f.Close()
	d = h.open(t)
	defer d.Close()
	buf := make([]byte, 8192)
	if !bytes.Equal(readRec(t, d, buf), record(4096, 1, 0)) {
		t.Fatal("record")
	}
	expectFilemark(t, d, buf)
	if _, err := d.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("torn record not cut: %v", err)
	}
	if _, err := d.WriteRecord(record(4096, 2, 0)); err != nil {
		t.Fatal(err)
	}
	d.Rewind()
	d.SpaceFilemarks(1)
	if !bytes.Equal(readRec(t, d, buf), record(4096, 2, 0)) {
		t.Fatal("record after torn tail")
	}
}

func TestEmulatedNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenReader(EmulatedPrefix+f, Options{}); err == nil {
		t.Fatal("opened a file as an emulated tape")
	}
	if _, err := OpenReader(EmulatedPrefix+filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Fatal("opened a missing emulated tape for reading")
	}
}
