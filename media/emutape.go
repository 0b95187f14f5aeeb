package media

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	humanize "github.com/dustin/go-humanize"

	"github.com/tapestream/tapestream/tapeformat"
)

// EmulatedPrefix starts an emulated tape target: tape:PATH?options.
const EmulatedPrefix = "tape:"

// Emulated tape defaults.
const (
	// DefaultEmulatedCapacity is the capacity of an emulated volume.
	DefaultEmulatedCapacity = 1 << 30
	// MaxDefaultEarlyWarning caps the default early-warning reserve, which
	// is capacity/16.
	MaxDefaultEarlyWarning = 64 << 20
)

// EmulatedTape describes an emulated tape (a directory standing for a
// drive with a stack of cartridges), parsed from
//
//	tape:PATH[?capacity=SIZE][&early-warning=SIZE][&write-protect=BOOL][&volume=N]
//
// SIZE accepts humanize forms (64MiB, 1GB, 1048576). Unset values come from
// PATH/state.json, else the defaults: capacity 1 GiB, early-warning
// capacity/16 but at most 64 MiB, write-protect false, volume: the loaded
// volume in state.json (1 for a new tape) when writing, 1 when reading.
type EmulatedTape struct {
	Dir          string
	Capacity     int64 // payload bytes a volume holds
	EarlyWarning int64 // reserve below Capacity where writes report early warning
	WriteProtect bool
	Volume       int // volume to start on; 0 = default
}

// ParseEmulatedSpec parses "tape:PATH?..." (the "tape:" prefix optional).
// Values not given are left zero (resolved when the tape is opened).
func ParseEmulatedSpec(spec string) (EmulatedTape, error) {
	s := strings.TrimPrefix(spec, EmulatedPrefix)
	path, query, _ := strings.Cut(s, "?")
	var t EmulatedTape
	if path == "" {
		return t, newErr("parse", spec, fmt.Errorf("%w: emulated tape needs a directory: tape:PATH", ErrInvalidOptions))
	}
	t.Dir = path
	q, err := url.ParseQuery(query)
	if err != nil {
		return t, newErr("parse", spec, fmt.Errorf("%w: %w", ErrInvalidOptions, err))
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		bad := func(err error) (EmulatedTape, error) {
			return t, newErr("parse", spec, fmt.Errorf("%w: %s=%q: %v", ErrInvalidOptions, key, v, err))
		}
		switch key {
		case "capacity", "early-warning":
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return bad(err)
			}
			if n == 0 || n > math.MaxInt64 {
				return bad(errors.New("out of range"))
			}
			if key == "capacity" {
				t.Capacity = int64(n)
			} else {
				t.EarlyWarning = int64(n)
			}
		case "write-protect":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad(err)
			}
			t.WriteProtect = b
		case "volume":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return bad(errors.New("want a volume number >= 1"))
			}
			t.Volume = n
		default:
			return bad(errors.New("unknown option (capacity, early-warning, write-protect, volume)"))
		}
	}
	return t, nil
}

// emuState is PATH/state.json.
type emuState struct {
	Format       string `json:"format"`
	LoadedVolume int    `json:"loaded_volume"`
	Capacity     int64  `json:"capacity"`
	EarlyWarning int64  `json:"early_warning"`
	// Loads counts cartridges loaded into the drive (LoadEmulated, the
	// changer): a next-volume command that loaded one is told from one
	// that did not.
	Loads int64 `json:"loads,omitempty"`
}

const emuStateFormat = "tapestream-emulated-tape/1"

func readEmuState(dir string) (emuState, error) {
	var st emuState
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, "state.json"), err)
	}
	if st.Format != emuStateFormat {
		return st, fmt.Errorf("%s: unknown format %q", filepath.Join(dir, "state.json"), st.Format)
	}
	return st, nil
}

// writeEmuState replaces state.json atomically.
func writeEmuState(dir string, st emuState) error {
	st.Format = emuStateFormat
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// resolve fills unset values from state.json and defaults, creating the
// directory and state.json when create is set.
func (t EmulatedTape) resolve(create, writing bool) (EmulatedTape, error) {
	if create {
		if err := os.MkdirAll(t.Dir, 0o755); err != nil {
			return t, err
		}
	} else if fi, err := os.Stat(t.Dir); err != nil {
		return t, err
	} else if !fi.IsDir() {
		return t, fmt.Errorf("%w: %s is not a directory", ErrInvalidOptions, t.Dir)
	}
	st, err := readEmuState(t.Dir)
	if err != nil {
		return t, err
	}
	if t.Capacity == 0 {
		t.Capacity = st.Capacity
	}
	if t.Capacity == 0 {
		t.Capacity = DefaultEmulatedCapacity
	}
	if t.EarlyWarning == 0 {
		t.EarlyWarning = st.EarlyWarning
	}
	if t.EarlyWarning == 0 || t.EarlyWarning >= t.Capacity {
		t.EarlyWarning = min(t.Capacity/16, MaxDefaultEarlyWarning)
	}
	if t.Volume == 0 {
		t.Volume = 1
		if writing && st.LoadedVolume > 0 {
			t.Volume = st.LoadedVolume
		}
	}
	if create {
		st.Capacity, st.EarlyWarning = t.Capacity, t.EarlyWarning
		if st.LoadedVolume == 0 {
			st.LoadedVolume = t.Volume
		}
		if err := writeEmuState(t.Dir, st); err != nil {
			return t, err
		}
	}
	return t, nil
}

// VolumePath is the image file of volume n: PATH/vol001.img, ...
func (t EmulatedTape) VolumePath(n int) string {
	return filepath.Join(t.Dir, fmt.Sprintf("vol%03d.img", n))
}

// Emulated volume image format (PATH/volNNN.img):
//
//	16-byte header "tapestream-emu1\n"
//	entries, back to back, each starting with a little-endian uint32:
//	  0xFFFFFFFF             a filemark (no payload)
//	  n (0 < n < 1<<31)      a record: n payload bytes follow
//
// The end of the file is the end of recorded data (EOD). A torn last entry
// (crash mid-write) is cut off when the volume is opened for writing and
// ignored when reading. Capacity counts record payload bytes only.
const emuMagic = "tapestream-emu1\n"

const emuFilemark = 0xFFFFFFFF

type emuEntry struct {
	off int64 // offset of the entry header
	n   int64 // payload length; -1 for a filemark
	cum int64 // payload bytes up to and including this entry
}

func (e emuEntry) end() int64 {
	if e.n < 0 {
		return e.off + 4
	}
	return e.off + 4 + e.n
}

// EmulatedDrive is a file-backed Drive: one volume image of an
// EmulatedTape loaded. It is not safe for concurrent use.
type EmulatedDrive struct {
	tape     EmulatedTape
	vol      int
	path     string
	f        *os.File
	readOnly bool
	wp       bool
	entries  []emuEntry
	pos      int
}

// OpenEmulatedDrive opens volume t.Volume of an emulated tape (creating the
// directory, state.json and the image as needed unless readOnly). Unset
// fields of t are resolved as described at EmulatedTape.
func OpenEmulatedDrive(t EmulatedTape, readOnly bool) (*EmulatedDrive, error) {
	name := EmulatedPrefix + t.Dir
	t, err := t.resolve(!readOnly, !readOnly)
	if err != nil {
		return nil, newErr("open", name, err)
	}
	d := &EmulatedDrive{tape: t, vol: t.Volume, path: t.VolumePath(t.Volume), readOnly: readOnly || t.WriteProtect, wp: t.WriteProtect}
	if err := d.load(); err != nil {
		return nil, newErr("open", d.path, err)
	}
	return d, nil
}

func (d *EmulatedDrive) load() error {
	var f *os.File
	var err error
	if d.readOnly {
		f, err = os.Open(d.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a blank cartridge
		}
	} else {
		f, err = os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return err
	}
	d.f = f
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 && !d.readOnly {
		if _, err := f.WriteAt([]byte(emuMagic), 0); err != nil {
			return err
		}
		size = int64(len(emuMagic))
	}
	hdr := make([]byte, len(emuMagic))
	if size > 0 {
		if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr) != emuMagic {
			return fmt.Errorf("not an emulated tape volume (bad header)")
		}
	}
	off := int64(len(emuMagic))
	var cum int64
	var word [4]byte
	for off+4 <= size {
		if _, err := f.ReadAt(word[:], off); err != nil {
			return err
		}
		w := binary.LittleEndian.Uint32(word[:])
		e := emuEntry{off: off, n: -1, cum: cum}
		if w != emuFilemark {
			if w == 0 || w >= 1<<31 {
				return fmt.Errorf("corrupt entry at offset %d", off)
			}
			e.n = int64(w)
			if e.end() > size {
				break // torn record
			}
			cum += e.n
			e.cum = cum
		}
		d.entries = append(d.entries, e)
		off = e.end()
	}
	if off < size && size > 0 && !d.readOnly {
		return f.Truncate(off)
	}
	return nil
}

// Path is the image file of the loaded volume.
func (d *EmulatedDrive) Path() string { return d.path }

// Volume is the loaded volume number.
func (d *EmulatedDrive) Volume() int { return d.vol }

// SetWriteProtect flips the write-protect tab of the loaded cartridge.
func (d *EmulatedDrive) SetWriteProtect(wp bool) { d.wp = wp }

func (d *EmulatedDrive) used() int64 {
	if d.pos == 0 {
		return 0
	}
	return d.entries[d.pos-1].cum
}

func (d *EmulatedDrive) Status() (DriveStatus, error) {
	st := DriveStatus{
		Online:       true,
		WriteProtect: d.wp || d.readOnly,
		BOT:          d.pos == 0,
		EOD:          d.pos == len(d.entries),
		EOT:          d.used() > d.tape.Capacity-d.tape.EarlyWarning,
		Filemark:     d.pos > 0 && d.entries[d.pos-1].n < 0,
	}
	for i := d.pos - 1; i >= 0; i-- {
		if d.entries[i].n < 0 {
			st.FileNumber++
		} else if st.FileNumber == 0 {
			st.BlockNumber++
		}
	}
	return st, nil
}

// truncateHere discards everything from the position on (tape semantics:
// writing ends the recorded data).
func (d *EmulatedDrive) truncateHere() (int64, error) {
	off := int64(len(emuMagic))
	if d.pos > 0 {
		off = d.entries[d.pos-1].end()
	}
	if d.pos < len(d.entries) {
		if err := d.f.Truncate(off); err != nil {
			return 0, err
		}
		d.entries = d.entries[:d.pos]
	}
	return off, nil
}

func (d *EmulatedDrive) writable() error {
	if d.wp || d.readOnly {
		return ErrWriteProtected
	}
	if d.f == nil {
		return fs.ErrClosed
	}
	return nil
}

// WriteRecord writes one record. It fails with ErrEndOfMedium (nothing
// written) when the record would pass the capacity, and returns
// ErrEarlyWarning (written) for every record ending beyond
// capacity - early-warning.
func (d *EmulatedDrive) WriteRecord(p []byte) (int, error) {
	if err := d.writable(); err != nil {
		return 0, err
	}
	if len(p) == 0 || len(p) >= 1<<31 {
		return 0, fmt.Errorf("%w: record of %d bytes", ErrInvalidOptions, len(p))
	}
	used := d.used()
	if used+int64(len(p)) > d.tape.Capacity {
		return 0, fmt.Errorf("%w: %s: %d of %d bytes used", tapeformat.ErrEndOfMedium, d.path, used, d.tape.Capacity)
	}
	off, err := d.truncateHere()
	if err != nil {
		return 0, err
	}
	var word [4]byte
	binary.LittleEndian.PutUint32(word[:], uint32(len(p)))
	if _, err := d.f.WriteAt(word[:], off); err != nil {
		return 0, err
	}
	if _, err := d.f.WriteAt(p, off+4); err != nil {
		d.f.Truncate(off)
		return 0, err
	}
	e := emuEntry{off: off, n: int64(len(p)), cum: used + int64(len(p))}
	d.entries = append(d.entries, e)
	d.pos++
	if e.cum > d.tape.Capacity-d.tape.EarlyWarning {
		return len(p), fmt.Errorf("%w: %s: %d of %d bytes used", tapeformat.ErrEarlyWarning, d.path, e.cum, d.tape.Capacity)
	}
	return len(p), nil
}

func (d *EmulatedDrive) ReadRecord(p []byte) (int, error) {
	if d.pos >= len(d.entries) {
		return 0, ErrEndOfData
	}
	e := d.entries[d.pos]
	d.pos++
	if e.n < 0 {
		return 0, nil
	}
	if e.n > int64(len(p)) {
		return 0, fmt.Errorf("%w: %d-byte record, %d-byte buffer", ErrRecordTooLarge, e.n, len(p))
	}
	n, err := d.f.ReadAt(p[:e.n], e.off+4)
	if err == io.EOF && int64(n) == e.n {
		err = nil
	}
	return n, err
}

// WriteFilemark writes n filemarks and syncs the image (a filemark flushes
// a real drive's buffer).
func (d *EmulatedDrive) WriteFilemark(n int) error {
	if err := d.writable(); err != nil {
		return err
	}
	if n <= 0 {
		return d.f.Sync()
	}
	off, err := d.truncateHere()
	if err != nil {
		return err
	}
	buf := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(buf[4*i:], emuFilemark)
		cum := d.used()
		d.entries = append(d.entries, emuEntry{off: off + int64(4*i), n: -1, cum: cum})
		d.pos++
	}
	if _, err := d.f.WriteAt(buf, off); err != nil {
		return err
	}
	return d.f.Sync()
}

// SpaceFilemarks moves over n filemarks: forward to just after the nth, or
// (n < 0) backward to just before the |n|th. Running into EOD or BOT first
// is an error (like st's EIO), leaving the position there.
func (d *EmulatedDrive) SpaceFilemarks(n int) error {
	for ; n > 0; n-- {
		for {
			if d.pos >= len(d.entries) {
				return fmt.Errorf("space forward: %w", ErrEndOfData)
			}
			d.pos++
			if d.entries[d.pos-1].n < 0 {
				break
			}
		}
	}
	for ; n < 0; n++ {
		for {
			if d.pos == 0 {
				return errors.New("space backward: beginning of tape")
			}
			d.pos--
			if d.entries[d.pos].n < 0 {
				break
			}
		}
	}
	return nil
}

func (d *EmulatedDrive) SeekEOD() error { d.pos = len(d.entries); return nil }

func (d *EmulatedDrive) Rewind() error { d.pos = 0; return nil }

// SetBlockSize accepts 0 (variable blocks) only.
func (d *EmulatedDrive) SetBlockSize(n int) error {
	if n != 0 {
		return fmt.Errorf("%w: emulated drive supports variable blocks only", ErrInvalidOptions)
	}
	return nil
}

func (d *EmulatedDrive) Unload() error { d.pos = 0; return nil }

func (d *EmulatedDrive) Close() error {
	if d.f == nil {
		return nil
	}
	var err error
	if !d.readOnly {
		err = d.f.Sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	return err
}

// emuLoader is the emulated changer. A volume change runs the next-volume
// command, if configured (same environment as for real drives); when the
// command loaded a cartridge (LoadEmulated, `tapestream tape load`), that
// one is in the drive. Otherwise a reader that knows which cartridge it
// wants gets it from the library, found by its volume label (a changer's
// barcode reader), and anything else gets the next cartridge image.
type emuLoader struct {
	tape     EmulatedTape
	opts     Options
	forWrite bool
	dev      string
}

func newEmuLoader(spec string, opts Options, forWrite bool) (*emuLoader, error) {
	t, err := ParseEmulatedSpec(spec)
	if err != nil {
		return nil, err
	}
	t, err = t.resolve(forWrite, forWrite)
	if err != nil {
		return nil, newErr("open", spec, err)
	}
	return &emuLoader{tape: t, opts: opts, forWrite: forWrite, dev: EmulatedPrefix + t.Dir}, nil
}

func (l *emuLoader) name() string { return l.dev }

func (l *emuLoader) open() (Drive, error) {
	return OpenEmulatedDrive(l.tape, !l.forWrite)
}

func (l *emuLoader) cartridge() int { return l.tape.Volume }

// retries: a next-volume command can load another cartridge; the library
// search already found the only one that fits.
func (l *emuLoader) retries() bool { return l.opts.NextVolumeCmd != "" || l.forWrite }

func (l *emuLoader) change(ctx context.Context, w wantVolume) error {
	pre, err := readEmuState(l.tape.Dir)
	if err != nil {
		return err
	}
	if l.opts.NextVolumeCmd != "" {
		if err := runVolumeCmd(ctx, l.opts.NextVolumeCmd, w, l.dev, l.opts.stderr()); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	post, err := readEmuState(l.tape.Dir)
	if err != nil {
		return err
	}
	switch {
	case post.Loads != pre.Loads && post.LoadedVolume > 0:
		l.tape.Volume = post.LoadedVolume
	case !l.forWrite && w.known():
		n, err := findCartridge(l.tape, w, l.opts.recordSize())
		if err != nil {
			return err
		}
		l.tape.Volume = n
	default:
		l.tape.Volume++
	}
	if l.forWrite {
		post.LoadedVolume = l.tape.Volume
		post.Capacity, post.EarlyWarning = l.tape.Capacity, l.tape.EarlyWarning
		post.Loads++
		return writeEmuState(l.tape.Dir, post)
	}
	return nil
}

// cartridges lists the cartridge numbers of the images in an emulated
// tape's directory.
func (t EmulatedTape) cartridges() ([]int, error) {
	names, err := filepath.Glob(filepath.Join(t.Dir, "vol*.img"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, name := range names {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "vol"), ".img"))
		if err == nil && n > 0 && t.VolumePath(n) == name {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// probeCartridge tells what files 0 and 1 of cartridge n of an emulated
// tape hold.
func probeCartridge(t EmulatedTape, n, recordSize int) (probed, probed, error) {
	t.Volume = n
	d, err := OpenEmulatedDrive(t, true)
	if err != nil {
		return probed{}, probed{}, err
	}
	defer d.Close()
	p0, err := probeDrive(d, 0, recordSize)
	if err != nil || p0.content != ContentLabel {
		return p0, probed{}, err
	}
	p1, err := probeDrive(d, 1, recordSize)
	return p0, p1, err
}

// findCartridge searches the emulated library for the cartridge w wants.
func findCartridge(t EmulatedTape, w wantVolume, recordSize int) (int, error) {
	nums, err := t.cartridges()
	if err != nil {
		return 0, err
	}
	for _, n := range nums {
		p0, p1, err := probeCartridge(t, n, recordSize)
		if err != nil {
			continue // an unreadable cartridge is not the one
		}
		if w.mismatch(p0, p1) == "" {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: no cartridge in the emulated library %s is %s", ErrWrongCartridge, t.Dir, w)
}

// LoadEmulated loads a cartridge into an emulated drive, like a changer's
// load command: by number, or by the label on it (which is searched for in
// the library). It returns the number loaded.
func LoadEmulated(target, cartridge string, recordSize int) (int, error) {
	t, err := ParseEmulatedSpec(target)
	if err != nil {
		return 0, err
	}
	if t, err = t.resolve(true, true); err != nil {
		return 0, newErr("load", target, err)
	}
	n, err := strconv.Atoi(cartridge)
	if err != nil || n < 1 {
		if n, err = findCartridge(t, wantVolume{label: cartridge, n: 1}, recordSize); err != nil {
			return 0, newErr("load", target, err)
		}
	}
	st, err := readEmuState(t.Dir)
	if err != nil {
		return 0, newErr("load", target, err)
	}
	st.LoadedVolume = n
	st.Capacity, st.EarlyWarning = t.Capacity, t.EarlyWarning
	st.Loads++
	return n, newErr("load", target, writeEmuState(t.Dir, st))
}
