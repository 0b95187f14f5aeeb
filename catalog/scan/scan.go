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
	// S3 configures s3:// locations beyond their URL.
	S3 media.S3Options
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
		Type: l.SetType, Created: l.Created.UTC(), ParentID: l.PreviousSetID, Codec: l.Codec, RecordSize: l.RecordSize,
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
		// NAME of a split set is read from NAME.001 on, as a restore or
		// verify of NAME reads it.
		if first, err := media.FileSetPath(p); err == nil && first != p {
			add(first)
			continue
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

// ScanS3 reads every set under s3://BUCKET/PREFIX (split volumes
// KEY.001... count as one set; leases and other objects are skipped) and
// returns a record for each.
func ScanS3(ctx context.Context, url string, o ScanOptions) ([]*catalog.Set, error) {
	b, err := media.OpenBucket(ctx, url, o.S3)
	if err != nil {
		return nil, err
	}
	objs, err := b.Objects(ctx, "")
	if err != nil {
		return nil, err
	}
	bases := map[string][]string{}
	for _, obj := range objs {
		base := obj.Key
		if m := splitRE.FindStringSubmatch(base); m != nil {
			base = strings.TrimSuffix(base, m[0])
		}
		bases[base] = append(bases[base], b.URL(obj.Key))
	}
	names := make([]string, 0, len(bases))
	for k := range bases {
		names = append(names, k)
	}
	sort.Strings(names)
	ro := restore.Options{Sink: media.Options{RecordSize: o.RecordSize, S3: o.S3}}
	var out []*catalog.Set
	for _, base := range names {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		urls := bases[base]
		sort.Strings(urls)
		rd, err := media.OpenReader(urls[0], ro.Sink)
		if err != nil {
			o.logf("skipped %s: %v", urls[0], err)
			continue
		}
		c, _, _ := media.Identify(rd)
		rd.Close()
		if c != media.ContentSet {
			continue
		}
		infos, _, err := restore.Verify(ctx, []restore.SetSource{{Path: b.URL(base)}}, ro)
		if err != nil || len(infos) == 0 {
			o.logf("skipped %s: %v", b.URL(base), err)
			continue
		}
		s := SetFromInfo(infos[0])
		s.Location = catalog.Location{Kind: "s3", Target: b.URL(base), Paths: urls}
		if o.JobFor != nil {
			s.Job = o.JobFor(s)
		}
		o.logf("found %s set %s of %s (%s) in %s: %s", s.Type, s.ID, s.Group, s.Created.Format("2006-01-02T15:04:05Z07:00"), b.URL(base), s.Status)
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

// ScanTape scans the cartridges of one tape target (see ScanTapes) and
// returns the volume record of the first.
func ScanTape(ctx context.Context, target string, o ScanOptions) ([]*catalog.Set, *catalog.Volume, error) {
	sets, vols, err := ScanTapes(ctx, []string{target}, o)
	var vol *catalog.Volume
	if len(vols) > 0 {
		vol = vols[0]
	}
	return sets, vol, err
}

// cartridge is what a survey found on one cartridge.
type cartridge struct {
	target string // reads this cartridge (tape:PATH?volume=N, or the device)
	label  *media.VolumeLabel
	pieces []piece
}

// piece is a volume of a set that starts in a file of a cartridge.
type piece struct {
	file   int
	setID  string
	volume int
}

// ScanTapes reads a box of cartridges, in any order, and returns every set
// that starts on one of them and a record for each labelled cartridge. A
// target is one cartridge: a drive's loaded one (/dev/nstN), an emulated
// tape's cartridge (tape:PATH?volume=N), or every cartridge of an emulated
// tape (tape:PATH).
//
// First every cartridge is surveyed: its volume label, and which volume of
// which set each of its files holds (set labels only, a few KiB each).
// Then each set is read completely and verified from its first volume on,
// its further volumes asked for by the labels the survey found (or, for
// cartridges not in the box, by set id and volume number): the emulated
// library finds them itself, a real drive gets them from the next-volume
// command. The result does not depend on the order of the cartridges.
func ScanTapes(ctx context.Context, targets []string, o ScanOptions) ([]*catalog.Set, []*catalog.Volume, error) {
	var carts []*cartridge
	for _, t := range targets {
		list := []string{t}
		if strings.HasPrefix(t, media.EmulatedPrefix) {
			var err error
			if list, err = media.EmulatedCartridges(t); err != nil {
				return nil, nil, err
			}
		}
		for _, c := range list {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			cart, err := survey(c, o)
			if err != nil {
				return nil, nil, err
			}
			carts = append(carts, cart)
		}
	}
	// Where each volume of each set is, and where each set starts.
	labels := map[string][]string{}
	type start struct {
		cart *cartridge
		file int
	}
	starts := map[string]start{}
	at := map[string]map[int]start{} // set id → volume → where
	for _, c := range carts {
		for _, p := range c.pieces {
			if at[p.setID] == nil {
				at[p.setID] = map[int]start{}
			}
			at[p.setID][p.volume] = start{cart: c, file: p.file}
			if c.label != nil {
				l := labels[p.setID]
				for len(l) < p.volume {
					l = append(l, "")
				}
				l[p.volume-1] = c.label.Label
				labels[p.setID] = l
			}
			if p.volume == 1 {
				starts[p.setID] = start{cart: c, file: p.file}
			}
		}
	}
	ids := make([]string, 0, len(starts))
	for id := range starts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*catalog.Set
	full := map[string]bool{}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return out, nil, err
		}
		st := starts[id]
		var read []media.VolumeInfo
		ro := restore.Options{Sink: media.Options{RecordSize: o.RecordSize, NextVolumeCmd: o.NextVolumeCmd, Stderr: o.Log,
			ReadVolume: func(v media.VolumeInfo) { read = append(read, v) }}}
		src := restore.SetSource{Path: st.cart.target, FileNumber: st.file, Expect: media.ExpectedSet{SetID: id, Labels: labels[id]}}
		infos, _, err := restore.Verify(ctx, []restore.SetSource{src}, ro)
		if err != nil || len(infos) == 0 {
			o.logf("%s file %d: set %s: %v", st.cart.target, st.file, id, err)
			continue
		}
		// A last volume that holds only its label and the archive trailer
		// (the manifest ended the volume before) is not read by a reader,
		// which is done after the manifest: count it from where the survey
		// found it.
		for k := len(read) + 1; len(read) > 0 && read[len(read)-1].Number == k-1; k++ {
			p, ok := at[id][k]
			if !ok {
				break
			}
			v, err := readPiece(p.cart, p.file, o)
			if err != nil {
				o.logf("%s file %d: volume %d of set %s: %v", p.cart.target, p.file, k, id, err)
				break
			}
			read = append(read, v)
		}
		s := SetFromInfo(infos[0])
		s.Location = catalog.Location{Kind: "tape", Target: media.BaseTarget(st.cart.target)}
		for _, v := range read {
			s.Location.Tape = append(s.Location.Tape, catalog.TapeVolume{Number: v.Number, Label: v.Label, Name: media.BaseTarget(v.Name),
				FileNumber: v.FileNumber, Bytes: v.Bytes, Loaded: v.Cartridge})
		}
		for _, tv := range s.Location.Tape[:max(len(s.Location.Tape)-1, 0)] {
			full[tv.Label] = true
		}
		if o.JobFor != nil {
			s.Job = o.JobFor(s)
		}
		where := st.cart.target
		if st.cart.label != nil {
			where = st.cart.label.Label
		}
		o.logf("%s file %d: %s set %s of %s (%d volume(s)): %s", where, st.file, s.Type, s.ID, s.Group, len(s.Location.Tape), s.Status)
		out = append(out, s)
	}
	for _, c := range carts {
		for _, p := range c.pieces {
			if _, ok := starts[p.setID]; !ok {
				o.logf("%s file %d: volume %d of set %s, whose first volume is on no cartridge scanned: not cataloged", c.target, p.file, p.volume, p.setID)
			}
		}
	}
	catalog.SortSets(out)
	var vols []*catalog.Volume
	for _, c := range carts {
		if c.label == nil {
			continue
		}
		l := c.label
		v := &catalog.Volume{Label: l.Label, Target: media.BaseTarget(c.target), Number: media.LoadedVolume(c.target), Created: l.Created, Pool: l.Pool,
			Status: catalog.CartridgeAppend}
		if full[l.Label] {
			v.Full, v.Status = true, catalog.CartridgeFull
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Label < vols[j].Label })
	return out, vols, nil
}

// readPiece reads tape file n of a cartridge to its end and reports it as
// a volume (its set's volume number, cartridge label, bytes).
func readPiece(c *cartridge, n int, o ScanOptions) (media.VolumeInfo, error) {
	var got media.VolumeInfo
	mo := media.Options{RecordSize: o.RecordSize, NextVolumeCmd: o.NextVolumeCmd, FileNumber: n, Stderr: o.Log,
		ReadVolume: func(v media.VolumeInfo) { got = v }}
	if c.label != nil {
		mo.Expect = media.ExpectedSet{Labels: []string{c.label.Label}}
	}
	rd, err := media.OpenReader(c.target, mo)
	if err != nil {
		return got, err
	}
	if _, err := io.Copy(io.Discard, rd); err != nil {
		rd.Close()
		return got, err
	}
	if err := rd.Close(); err != nil {
		return got, err
	}
	if got.Number == 0 {
		return got, errors.New("not read to its end")
	}
	return got, nil
}

// survey reads the volume label of a cartridge and the set label at the
// start of each of its files.
func survey(target string, o ScanOptions) (*cartridge, error) {
	c := &cartridge{target: target}
	for n := 0; ; n++ {
		f, err := media.ProbeFile(target, n, o.RecordSize)
		if errors.Is(err, media.ErrEndOfData) || errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch {
		case f.Content == media.ContentLabel && n == 0:
			c.label = f.Label
			o.logf("%s: cartridge %s", target, f.Label)
		case f.Content == media.ContentSet && f.Set != nil:
			c.pieces = append(c.pieces, piece{file: n, setID: f.Set.SetID, volume: max(f.Set.Volume, 1)})
		case f.Content == media.ContentBlank:
			return c, nil
		default:
			o.logf("%s file %d: not a tapestream set, skipped", target, n)
		}
	}
	return c, nil
}
