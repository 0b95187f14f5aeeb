package catalog

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapestream/tapestream/media"
)

// VolumeLabelName is the only member of a tape's volume label file (tape
// file 0 of a labelled volume; sets follow from file 1 on).
const VolumeLabelName = "tapestream/volume.json"

// VolumeLabel is the content of a volume label.
type VolumeLabel struct {
	Tapestream int       `json:"tapestream_volume"` // 1
	Label      string    `json:"label"`
	Pool       string    `json:"pool,omitempty"`
	Created    time.Time `json:"created"`
}

// TapeState is what the first file of a tape volume holds.
type TapeState int

const (
	TapeBlank    TapeState = iota // no data at all
	TapeLabelled                  // a tapestream volume label
	TapeSetData                   // a backup set (an unlabelled or continuation volume)
	TapeForeign                   // something else
)

// IsTape reports whether target names a tape (device or emulated).
func IsTape(target string) bool {
	k := media.Classify(target)
	return k == media.KindTape || k == media.KindEmulated
}

// LoadedVolume is the cartridge loaded in an emulated tape drive (its
// state.json), 0 for a real drive.
func LoadedVolume(target string) int {
	if !strings.HasPrefix(target, media.EmulatedPrefix) {
		return 0
	}
	t, err := media.ParseEmulatedSpec(target)
	if err != nil {
		return 0
	}
	if t.Volume > 0 {
		return t.Volume
	}
	var st struct {
		Loaded int `json:"loaded_volume"`
	}
	b, err := os.ReadFile(filepath.Join(t.Dir, "state.json"))
	if err == nil && json.Unmarshal(b, &st) == nil && st.Loaded > 0 {
		return st.Loaded
	}
	return 1
}

// WithVolume returns an emulated tape target that reads cartridge n
// (unchanged for a real drive or n <= 0).
func WithVolume(target string, n int) string {
	if n <= 0 || !strings.HasPrefix(target, media.EmulatedPrefix) {
		return target
	}
	if strings.Contains(target, "?") {
		return fmt.Sprintf("%s&volume=%d", target, n)
	}
	return fmt.Sprintf("%s?volume=%d", target, n)
}

// BaseTarget strips options from an emulated target (tape:PATH).
func BaseTarget(target string) string {
	if strings.HasPrefix(target, media.EmulatedPrefix) {
		p, _, _ := strings.Cut(target, "?")
		return p
	}
	return target
}

// ReadVolumeLabel reads tape file 0 of the loaded volume of target.
func ReadVolumeLabel(target string, recordSize int) (TapeState, *VolumeLabel, error) {
	rd, err := media.OpenReader(WithVolume(target, LoadedVolume(target)), media.Options{RecordSize: recordSize})
	if err != nil {
		if errors.Is(err, media.ErrEndOfData) || errors.Is(err, os.ErrNotExist) {
			return TapeBlank, nil, nil
		}
		return 0, nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	if len(b) == 0 {
		return TapeBlank, nil, nil
	}
	h, err := tar.NewReader(bytes.NewReader(b)).Next()
	if err != nil {
		return TapeForeign, nil, nil
	}
	switch h.Name {
	case VolumeLabelName:
		tr := tar.NewReader(bytes.NewReader(b))
		tr.Next()
		var l VolumeLabel
		if err := json.NewDecoder(tr).Decode(&l); err != nil || l.Label == "" {
			return TapeForeign, nil, fmt.Errorf("%s: damaged volume label: %v", target, err)
		}
		return TapeLabelled, &l, nil
	case "tapestream/label.json":
		return TapeSetData, nil, nil
	}
	return TapeForeign, nil, nil
}

// WriteVolumeLabel writes a volume label as file 0 of the loaded volume of
// target. The volume must be blank unless overwrite (everything on it is
// then lost).
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
		recordSize = media.DefaultRecordSize
	}
	dst, err := media.Open(target, media.Options{RecordSize: recordSize, Overwrite: overwrite})
	if err != nil {
		return err
	}
	b := buf.Bytes()
	for len(b) > 0 {
		n := min(len(b), recordSize)
		if _, err := dst.Write(b[:n]); err != nil {
			dst.Abort()
			return err
		}
		b = b[n:]
	}
	return dst.Commit()
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
