// Package scan rebuilds catalog records from the media: it reads set files
// and tapes through restore (each set verified as a restore would read it)
// and turns what it finds into catalog.Set records.
package scan

import (
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

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/restore"
)

// ScanOptions configure ScanFiles and ScanTape.
type ScanOptions struct {
	RecordSize    int
	NextVolumeCmd string
	// JobFor names the job a scanned set belongs to ("" if unknown).
	JobFor func(s *catalog.Set) string
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
func SetFromInfo(info *restore.SetInfo) *catalog.Set {
	l := info.Label
	s := &catalog.Set{
		ID: l.SetID, Group: l.StorageGroup, GroupSignature: l.GroupSignature, Databases: l.Databases,
		Type: ese.BackupType(l.SetType), Created: l.Created.UTC(), ParentID: l.PreviousSetID, Codec: l.Codec, RecordSize: l.RecordSize,
		Status: catalog.StatusComplete,
	}
	if s.Type == ese.Full {
		s.FullID = s.ID
	}
	if e := l.Encryption; e != nil {
		s.Encryption = &catalog.Encryption{Scheme: e.Scheme, Recipients: e.Recipients}
	}
	if m := info.Manifest; m != nil {
		s.LowGen, s.HighGen = uint32(m.Info.LogFirst), uint32(m.Info.LogLast)
		for _, f := range m.Files {
			s.Files = append(s.Files, catalog.File{Name: f.Name, Kind: f.Kind, Size: f.Size, BLAKE3: f.BLAKE3, SHA256: f.SHA256})
		}
		s.BytesIn, s.BytesOut = m.Totals.Bytes, m.Totals.StoredBytes
	} else {
		s.Status, s.Error = catalog.StatusFailed, "set has no manifest (incomplete)"
	}
	if len(info.Problems) > 0 {
		s.Status, s.Error = catalog.StatusFailed, info.Problems[0].String()
	}
	return s
}

// ScanFiles reads every backup set file under the given files and
// directories (split volumes NAME.001... count as one set) and returns a
// record for each. Files that are not tapestream sets are skipped.
func ScanFiles(ctx context.Context, paths []string, o ScanOptions) ([]*catalog.Set, error) {
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
	ro := restore.Options{Sink: media.Options{RecordSize: o.RecordSize, NextVolumeCmd: o.NextVolumeCmd}}
	var out []*catalog.Set
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
		s.Location = catalog.Location{Kind: "file", Target: base, Paths: files}
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
	c, _, _ := media.Identify(f)
	return c == media.ContentSet
}

// ScanTape reads every file of the volume of target (a device, or
// tape:PATH[?volume=N]): the volume label and each set. A set that
// continues on further volumes is read through them (the next-volume
// command loads them); scanning stops at the end of the first volume's
// recorded data.
func ScanTape(ctx context.Context, target string, o ScanOptions) ([]*catalog.Set, *catalog.Volume, error) {
	vol := 1
	if strings.HasPrefix(target, media.EmulatedPrefix) {
		if t, err := media.ParseEmulatedSpec(target); err == nil && t.Volume > 0 {
			vol = t.Volume
		}
	}
	target = media.WithVolume(media.BaseTarget(target), vol)
	if !strings.HasPrefix(target, media.EmulatedPrefix) {
		vol = 0
	}
	ro := restore.Options{Sink: media.Options{RecordSize: o.RecordSize, NextVolumeCmd: o.NextVolumeCmd}}
	var out []*catalog.Set
	var volume *catalog.Volume
	label := ""
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return out, volume, err
		}
		kind, vl, err := media.IdentifyFile(target, n, o.RecordSize)
		if errors.Is(err, media.ErrEndOfData) {
			break
		}
		if err != nil {
			return out, volume, err
		}
		switch kind {
		case media.ContentLabel:
			label = vl.Label
			volume = &catalog.Volume{Label: vl.Label, Target: media.BaseTarget(target), Number: vol, Created: vl.Created, Pool: vl.Pool, Status: "append"}
			o.logf("file %d: volume label %s", n, vl.Label)
			continue
		case media.ContentSet:
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
		s.Location = catalog.Location{Kind: "tape", Target: media.BaseTarget(target)}
		for i := 0; i < max(infos[0].Volumes, 1); i++ {
			tv := catalog.TapeVolume{Number: i + 1, Name: target, FileNumber: int64(n)}
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
