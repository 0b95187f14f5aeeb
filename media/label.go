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

// VolumeLabel is the content of a volume label.
type VolumeLabel struct {
	Tapestream int       `json:"tapestream_volume"` // 1
	Label      string    `json:"label"`
	Pool       string    `json:"pool,omitempty"`
	Created    time.Time `json:"created"`
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
	if len(b) == 0 {
		return ContentBlank, nil, nil
	}
	tr := tar.NewReader(bytes.NewReader(b))
	h, err := tr.Next()
	if err != nil {
		return ContentForeign, nil, nil
	}
	switch h.Name {
	case VolumeLabelName:
		var l VolumeLabel
		if err := json.NewDecoder(tr).Decode(&l); err != nil || l.Label == "" {
			return ContentForeign, nil, fmt.Errorf("damaged volume label: %v", err)
		}
		return ContentLabel, &l, nil
	case tapeformat.LabelName:
		return ContentSet, nil, nil
	}
	return ContentForeign, nil, nil
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
	if l.Tapestream == 0 {
		l.Tapestream = 1
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: VolumeLabelName, Mode: 0o644, Size: int64(len(data)), ModTime: l.Created, Format: tar.FormatPAX}); err != nil {
		return err
	}
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return err
	}
	if recordSize <= 0 {
		recordSize = DefaultRecordSize
	}
	dst, err := Open(target, Options{RecordSize: recordSize, Overwrite: overwrite})
	if err != nil {
		return err
	}
	b := buf.Bytes()
	for len(b) > 0 {
		n := min(len(b), recordSize)
		rec := b[:n]
		if n%512 != 0 { // pad the last record to whole blocks
			rec = append(append([]byte(nil), rec...), make([]byte, 512-n%512)...)
		}
		if _, err := dst.Write(rec); err != nil {
			dst.Abort()
			return err
		}
		b = b[n:]
	}
	return dst.Commit()
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
