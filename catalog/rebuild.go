package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/sink"
	"github.com/tapestream/tapestream/tapeformat"
)

// ScanOptions configure ScanFiles and ScanTape.
type ScanOptions struct {
	RecordSize    int
	NextVolumeCmd string
	// JobFor names the job a scanned set belongs to ("" if unknown).
	JobFor func(s *Set) string
	// Log receives one line per set found (nil: quiet).
	Log io.Writer
}

func (o ScanOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

var splitRE = regexp.MustCompile(`\.([0-9]{3,})$`)

// SetFromInfo turns what reading a set found into a catalog record.
func SetFromInfo(info *restore.SetInfo) *Set {
	l := info.Label
	s := &Set{
		ID: l.SetID, Group: l.StorageGroup, GroupSignature: l.GroupSignature, Databases: l.Databases,
		Type: l.SetType, Created: l.Created.UTC(), ParentID: l.PreviousSetID, Codec: l.Codec, RecordSize: l.RecordSize,
		Status: StatusComplete,
	}
	if s.Type == TypeFull {
		s.FullID = s.ID
	}
	if m := info.Manifest; m != nil {
		s.LowGen, s.HighGen = uint32(m.Info.LogFirst), uint32(m.Info.LogLast)
		for _, f := range m.Files {
			s.Files = append(s.Files, File{Name: f.Name, Kind: f.Kind, Size: f.Size, BLAKE3: f.BLAKE3, SHA256: f.SHA256})
		}
		s.BytesIn, s.BytesOut = m.Totals.Bytes, m.Totals.StoredBytes
	} else {
		s.Status, s.Error = StatusFailed, "set has no manifest (incomplete)"
	}
	if len(info.Problems) > 0 {
		s.Status, s.Error = StatusFailed, info.Problems[0].String()
	}
	return s
}

// ScanFiles reads every backup set file under the given files and
// directories (split volumes NAME.001... count as one set) and returns a
// record for each. Files that are not tapestream sets are skipped.
func ScanFiles(ctx context.Context, paths []string, o ScanOptions) ([]*Set, error) {
	bases := map[string][]string{}
	add := func(p string) {
		base := p
		if m := splitRE.FindStringSubmatch(p); m != nil {
			base = strings.TrimSuffix(p, m[0])
		}
		bases[base] = append(bases[base], p)
	}
	for _, p := range paths {
		p, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasSuffix(path, ".partial") {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(bases))
	for b := range bases {
		names = append(names, b)
	}
	sort.Strings(names)
	ro := restore.Options{Sink: sink.Options{RecordSize: o.RecordSize, NextVolumeCmd: o.NextVolumeCmd}}
	var out []*Set
	for _, base := range names {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		files := bases[base]
		sort.Strings(files)
		if !isSetFile(files[0]) {
			continue
		}
		infos, _, err := restore.Verify(ctx, []restore.SetSource{{Path: base}}, ro)
		if err != nil || len(infos) == 0 {
			o.logf("skipped %s: %v", base, err)
			continue
		}
		s := SetFromInfo(infos[0])
		s.Location = Location{Kind: "file", Target: base, Paths: files}
		if o.JobFor != nil {
			s.Job = o.JobFor(s)
		}
		o.logf("found %s set %s of %s (%s) in %s: %s", s.Type, s.ID, s.Group, s.Created.Format("2006-01-02T15:04:05Z07:00"), base, s.Status)
		out = append(out, s)
	}
	return out, nil
}

// isSetFile peeks at the first tar header of a file.
func isSetFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	h, err := tar.NewReader(io.LimitReader(f, 1<<20)).Next()
	return err == nil && h.Name == tapeformat.LabelName
}

// ScanTape reads every file of the volume of target (a device, or
// tape:PATH[?volume=N]): the volume label and each set. A set that
// continues on further volumes is read through them (the next-volume
// command loads them); scanning stops at the end of the first volume's
// recorded data.
func ScanTape(ctx context.Context, target string, o ScanOptions) ([]*Set, *Volume, error) {
	vol := 1
	if strings.HasPrefix(target, sink.EmulatedPrefix) {
		if t, err := sink.ParseEmulatedSpec(target); err == nil && t.Volume > 0 {
			vol = t.Volume
		}
	}
	target = WithVolume(BaseTarget(target), vol)
	if !strings.HasPrefix(target, sink.EmulatedPrefix) {
		vol = 0
	}
	ro := restore.Options{Sink: sink.Options{RecordSize: o.RecordSize, NextVolumeCmd: o.NextVolumeCmd}}
	var out []*Set
	var volume *Volume
	label := ""
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return out, volume, err
		}
		kind, vl, err := peekTapeFile(target, n, o.RecordSize)
		if errors.Is(err, sink.ErrEndOfData) {
			break
		}
		if err != nil {
			return out, volume, err
		}
		switch kind {
		case TapeLabelled:
			label = vl.Label
			volume = &Volume{Label: vl.Label, Target: BaseTarget(target), Number: vol, Created: vl.Created, Pool: vl.Pool, Status: "append"}
			o.logf("file %d: volume label %s", n, vl.Label)
			continue
		case TapeSetData:
		default:
			o.logf("file %d: not a tapestream set, skipped", n)
			continue
		}
		infos, _, err := restore.Verify(ctx, []restore.SetSource{{Path: target, FileNumber: n}}, ro)
		if err != nil || len(infos) == 0 {
			o.logf("file %d: %v", n, err)
			continue
		}
		s := SetFromInfo(infos[0])
		s.Location = Location{Kind: "tape", Target: BaseTarget(target)}
		for i := 0; i < max(infos[0].Volumes, 1); i++ {
			tv := TapeVolume{Number: i + 1, Name: target, FileNumber: int64(n)}
			if vol > 0 {
				tv.Loaded = vol + i
			}
			if i == 0 {
				tv.Label = label
			} else {
				tv.FileNumber = 0
			}
			s.Location.Tape = append(s.Location.Tape, tv)
		}
		if o.JobFor != nil {
			s.Job = o.JobFor(s)
		}
		o.logf("file %d: %s set %s of %s: %s", n, s.Type, s.ID, s.Group, s.Status)
		out = append(out, s)
		if infos[0].Volumes > 1 {
			break // the rest of this volume's files were not scanned
		}
	}
	return out, volume, nil
}

func peekTapeFile(target string, n, recordSize int) (TapeState, *VolumeLabel, error) {
	rd, err := sink.OpenReader(target, sink.Options{RecordSize: recordSize, FileNumber: n})
	if err != nil {
		return 0, nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, 64<<10))
	if err != nil {
		return 0, nil, err
	}
	if len(b) == 0 {
		return TapeBlank, nil, nil
	}
	tr := tar.NewReader(bytes.NewReader(b))
	h, err := tr.Next()
	if err != nil {
		return TapeForeign, nil, nil
	}
	switch h.Name {
	case VolumeLabelName:
		var l VolumeLabel
		if err := jsonDecode(tr, &l); err != nil {
			return TapeForeign, nil, nil
		}
		return TapeLabelled, &l, nil
	case tapeformat.LabelName:
		return TapeSetData, nil, nil
	}
	return TapeForeign, nil, nil
}

// Merge writes scanned sets (and a volume) into the catalog. A set already
// cataloged keeps its job, promotion reason and (if expired) status;
// its location and content are replaced by what the scan found. Chain
// roots (FullID) are recomputed over the whole catalog.
func (c *Catalog) Merge(sets []*Set, vol *Volume) (added, updated int, err error) {
	existing, err := c.List(Filter{})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	old := NewIndex(existing)
	all := NewIndex(existing)
	for _, s := range sets {
		if o := old[s.ID]; o != nil {
			if s.Job == "" {
				s.Job = o.Job
			}
			s.Promoted = o.Promoted
			if o.Status == StatusExpired && s.Status == StatusComplete {
				// still on the tape, but retention let it go
				s.Status, s.ExpiredAt = o.Status, o.ExpiredAt
			}
			updated++
		} else {
			added++
		}
		all[s.ID] = s
	}
	for _, s := range sets {
		s.FullID = all.FullOf(s)
		if err := c.PutSet(s); err != nil {
			return added, updated, err
		}
	}
	if vol != nil {
		if v, err := c.GetVolume(vol.Label); err == nil {
			vol.Full, vol.Status, vol.LastUsed = v.Full, v.Status, v.LastUsed
		}
		if err := c.PutVolume(vol); err != nil {
			return added, updated, err
		}
	}
	return added, updated, nil
}
