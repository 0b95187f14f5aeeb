package media

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tapestream/tapestream/tapeformat"
)

// VolumeLabelName is the only member of a cartridge's volume label: tape
// file 0 of a labelled cartridge, sets follow from file 1 on
// (tapeformat/FORMAT.md, "Tape volume label").
const VolumeLabelName = "tapestream/volume.json"

// VolumeLabel is the content of a volume label: tape file 0 of a cartridge,
// one pax member (VolumeLabelName) holding this JSON, padded to 512-byte
// blocks, then a filemark.
//
//	file 0   volume label   {"tapestream_volume":1,"label":"MAIL0003","pool":"weekly",
//	                         "created":…,"set_id":"…","set_volume":3}
//	file 1   the set the label names: volume set_volume of set set_id
//	file 2…  sets appended later (each names itself in its own set label)
//
// SetID and SetVolume name what file 1 holds. A cartridge that a set
// continues on (set_volume >= 2) carries them, so that a cartridge can be
// told from any other without the catalog: a reader refuses one whose
// label names another set or volume. A first cartridge (labelled by
// tapestream tape label, or when a set starts on a blank one) has neither:
// the set in its file 1 names itself in its own label.
type VolumeLabel struct {
	Tapestream int       `json:"tapestream_volume"` // 1
	Label      string    `json:"label"`
	Pool       string    `json:"pool,omitempty"`
	Created    time.Time `json:"created"`
	SetID      string    `json:"set_id,omitempty"`
	SetVolume  int       `json:"set_volume,omitempty"`
}

// String names the cartridge the way operators are asked for it:
// "MAIL0003 (pool weekly, volume 3 of set 0a1b2c…)".
func (l VolumeLabel) String() string {
	s := l.Label
	var parts []string
	if l.Pool != "" {
		parts = append(parts, "pool "+l.Pool)
	}
	if l.SetID != "" {
		parts = append(parts, fmt.Sprintf("volume %d of set %s", l.SetVolume, shortID(l.SetID)))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// shortID shortens a set id for messages.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Content is what the start of a tape file (or any set file) holds.
type Content int

const (
	ContentBlank   Content = iota // no data at all
	ContentLabel                  // a tapestream volume label
	ContentSet                    // a backup set (on tape: an unlabelled or continuation volume)
	ContentForeign                // something else
)

// identifyBytes bounds what Identify reads: a label member, or a set's
// label member, is a few KiB.
const identifyBytes = 64 << 10

// Identify tells what r starts with, reading at most 64 KiB: a volume
// label (returned), a backup set, nothing, or something else. This is the
// one place that sniffs tapes and set files.
func Identify(r io.Reader) (Content, *VolumeLabel, error) {
	b, err := io.ReadAll(io.LimitReader(r, identifyBytes))
	if err != nil {
		return ContentForeign, nil, err
	}
	p := identify(b)
	return p.content, p.label, p.err
}

// probed is what the start of a tape file holds.
type probed struct {
	content Content
	label   *VolumeLabel      // ContentLabel
	set     *tapeformat.Label // ContentSet, when its label member parses
	err     error
}

// identify tells what b (the first bytes of a tape file) holds: a volume
// label, a set (with its set label when the member parses: the set id and
// volume number say which set and which of its volumes it is), nothing, or
// something else.
func identify(b []byte) probed {
	if len(b) == 0 {
		return probed{content: ContentBlank}
	}
	tr := tar.NewReader(bytes.NewReader(b))
	h, err := tr.Next()
	if err != nil {
		return probed{content: ContentForeign}
	}
	switch h.Name {
	case VolumeLabelName:
		var l VolumeLabel
		if err := json.NewDecoder(tr).Decode(&l); err != nil || l.Label == "" {
			return probed{content: ContentForeign, err: fmt.Errorf("damaged volume label: %v", err)}
		}
		return probed{content: ContentLabel, label: &l}
	case tapeformat.LabelName:
		p := probed{content: ContentSet}
		var l tapeformat.Label
		if h.Size > 0 && h.Size <= identifyBytes && json.NewDecoder(io.LimitReader(tr, h.Size)).Decode(&l) == nil && l.SetID != "" {
			p.set = &l
		}
		return p
	}
	return probed{content: ContentForeign}
}

// probeDrive reads the start (at most 64 KiB) of tape file n of the
// cartridge in d and tells what it holds. The position afterwards is
// undefined.
func probeDrive(d Drive, n, recordSize int) (probed, error) {
	if err := d.Rewind(); err != nil {
		return probed{}, err
	}
	if n > 0 {
		if err := d.SpaceFilemarks(n); err != nil {
			if errors.Is(err, ErrEndOfData) {
				return probed{content: ContentBlank}, nil
			}
			return probed{}, err
		}
	}
	if recordSize <= 0 {
		recordSize = DefaultRecordSize
	}
	buf := make([]byte, recordSize)
	var b []byte
	for len(b) < identifyBytes {
		k, err := d.ReadRecord(buf)
		if errors.Is(err, ErrEndOfData) || err == nil && k == 0 {
			break
		}
		if errors.Is(err, ErrRecordTooLarge) {
			return probed{content: ContentForeign}, nil
		}
		if err != nil {
			return probed{}, err
		}
		b = append(b, buf[:k]...)
	}
	return identify(b), nil
}

// IdentifyFile identifies the tape file (or set file) n of target.
func IdentifyFile(target string, n, recordSize int) (Content, *VolumeLabel, error) {
	rd, err := OpenReader(target, Options{RecordSize: recordSize, FileNumber: n})
	if err != nil {
		if errors.Is(err, ErrEndOfData) || errors.Is(err, os.ErrNotExist) {
			return ContentBlank, nil, err
		}
		return ContentForeign, nil, err
	}
	defer rd.Close()
	c, l, err := Identify(rd)
	if err != nil {
		err = fmt.Errorf("%s file %d: %w", target, n, err)
	}
	return c, l, err
}

// TapeFile is what the start of a tape file holds.
type TapeFile struct {
	Content Content
	Label   *VolumeLabel      // ContentLabel: the volume label
	Set     *tapeformat.Label // ContentSet: the set label (nil when it does not parse)
}

// ProbeFile tells what tape file n of target holds (reading at most 64
// KiB of it): ErrEndOfData when the tape has no file n.
func ProbeFile(target string, n, recordSize int) (TapeFile, error) {
	rd, err := OpenReader(target, Options{RecordSize: recordSize, FileNumber: n})
	if err != nil {
		return TapeFile{}, err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, identifyBytes))
	if err != nil {
		return TapeFile{}, err
	}
	p := identify(b)
	if p.err != nil {
		p.err = fmt.Errorf("%s file %d: %w", target, n, p.err)
	}
	return TapeFile{Content: p.content, Label: p.label, Set: p.set}, p.err
}

// EmulatedCartridges lists the cartridges of an emulated tape: the one
// its volume= option names, else every cartridge image in its directory,
// each as a target reading that cartridge (tape:PATH?volume=N).
func EmulatedCartridges(target string) ([]string, error) {
	t, err := ParseEmulatedSpec(target)
	if err != nil {
		return nil, err
	}
	if t.Volume > 0 {
		return []string{target}, nil
	}
	nums, err := t.cartridges()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nums {
		out = append(out, WithVolume(target, n))
	}
	return out, nil
}

// ReadVolumeLabel reads tape file 0 of the loaded cartridge of target.
func ReadVolumeLabel(target string, recordSize int) (Content, *VolumeLabel, error) {
	c, l, err := IdentifyFile(WithVolume(target, LoadedVolume(target)), 0, recordSize)
	if c == ContentBlank && (errors.Is(err, ErrEndOfData) || errors.Is(err, os.ErrNotExist)) {
		return ContentBlank, nil, nil
	}
	return c, l, err
}

// WriteVolumeLabel writes a volume label as file 0 of the loaded cartridge
// of target. The cartridge must be blank unless overwrite (everything on
// it is then lost).
func WriteVolumeLabel(target string, l VolumeLabel, recordSize int, overwrite bool) error {
	if recordSize <= 0 {
		recordSize = DefaultRecordSize
	}
	recs, err := labelRecords(l, recordSize)
	if err != nil {
		return err
	}
	dst, err := Open(target, Options{RecordSize: recordSize, Overwrite: overwrite})
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if _, err := dst.Write(rec); err != nil {
			dst.Abort()
			return err
		}
	}
	return dst.Commit()
}

// labelRecords encodes a volume label as the records of tape file 0: a pax
// archive of one member, in records of at most recordSize bytes, the last
// padded to whole 512-byte blocks.
func labelRecords(l VolumeLabel, recordSize int) ([][]byte, error) {
	if l.Tapestream == 0 {
		l.Tapestream = 1
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: VolumeLabelName, Mode: 0o644, Size: int64(len(data)), ModTime: l.Created, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var recs [][]byte
	b := buf.Bytes()
	for len(b) > 0 {
		n := min(len(b), recordSize)
		rec := b[:n]
		if n%512 != 0 {
			rec = append(append([]byte(nil), rec...), make([]byte, 512-n%512)...)
		}
		recs = append(recs, rec)
		b = b[n:]
	}
	return recs, nil
}

// writeLabelAtBOT writes l as file 0 of the cartridge in d (everything
// after it is gone: tape semantics) and leaves d at the start of file 1.
func writeLabelAtBOT(d Drive, l VolumeLabel, recordSize int) error {
	recs, err := labelRecords(l, recordSize)
	if err != nil {
		return err
	}
	if err := d.Rewind(); err != nil {
		return err
	}
	for _, rec := range recs {
		if _, err := d.WriteRecord(rec); err != nil {
			return err
		}
	}
	return d.WriteFilemark(1)
}

// IsTape reports whether target names a tape drive, real or emulated.
func IsTape(target string) bool {
	k := Classify(target)
	return k == KindTape || k == KindEmulated
}

// BaseTarget strips options from an emulated tape target (tape:PATH); other
// targets are returned as they are.
func BaseTarget(target string) string {
	if strings.HasPrefix(target, EmulatedPrefix) {
		p, _, _ := strings.Cut(target, "?")
		return p
	}
	return target
}

// WithVolume returns an emulated tape target that reads cartridge n
// (unchanged for a real drive or n <= 0).
func WithVolume(target string, n int) string {
	if n <= 0 || !strings.HasPrefix(target, EmulatedPrefix) {
		return target
	}
	if strings.Contains(target, "?") {
		return fmt.Sprintf("%s&volume=%d", target, n)
	}
	return fmt.Sprintf("%s?volume=%d", target, n)
}

// LoadedVolume is the cartridge loaded in an emulated drive (named by the
// target's volume= option, else its state), 0 for a real drive.
func LoadedVolume(target string) int {
	if !strings.HasPrefix(target, EmulatedPrefix) {
		return 0
	}
	t, err := ParseEmulatedSpec(target)
	if err != nil {
		return 0
	}
	if t.Volume > 0 {
		return t.Volume
	}
	if st, err := readEmuState(t.Dir); err == nil && st.LoadedVolume > 0 {
		return st.LoadedVolume
	}
	return 1
}
