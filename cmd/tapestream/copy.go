package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/catalog/scan"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/tapeformat"
)

func init() { extraCommands = append(extraCommands, newCopyCmd) }

// copyOpts: copy a set between media (a Bareos copy job: disk to tape, file
// to S3, S3 to tape), verifying every chunk on the way.
type copyOpts struct {
	Src, Dst string
	Read     readMediaFlags
	Write    writeMediaFlags
	Identity identityFlags
	catalogOpts
	Out, Err io.Writer
}

func newCopyCmd() *cobra.Command {
	var o copyOpts
	c := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy a backup set to other media, verifying every chunk as it passes (the copy is the same set)",
		Long: `Copies a set byte for byte, volume by volume, between files, tapes, emulated tapes and S3
(s3://BUCKET/KEY). The set is read and verified as it passes (every chunk record, page, log and
file digest; the manifest); the copy is committed only if all of it verified, and is the same set
(same id, same bytes). With --catalog or --config the catalog records it as a copy of the set.
Volume boundaries are kept: each destination volume must hold a whole source volume.
An encrypted set is copied without any key: its structure and every byte of its ciphertext are
verified against the checksums in its member records; with --identity its contents are too.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Src, o.Dst, o.Out, o.Err = args[0], args[1], cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runCopy(cmd.Context(), o)
		},
	}
	o.Read.add(c)
	o.Identity.add(c)
	f := c.Flags()
	f.StringVar(&o.Write.VolumeSize, "volume-size", "", "")
	f.MarkHidden("volume-size")
	f.BoolVar(&o.Write.Force, "force", false, "overwrite an existing set file")
	f.BoolVar(&o.Write.Append, "append", false, "tape: append after the data already on the tape")
	f.BoolVar(&o.Write.Overwrite, "overwrite", false, "tape: overwrite a tape that holds data")
	f.StringVar(&o.Write.NextVolumeCmd, "dst-next-volume-cmd", "", "command run to load the next destination tape volume")
	o.catalogOpts.flags(c)
	return c
}

// teeVolumes is the set reader's source during a copy: what it reads of
// the source is written to the destination in records, and a volume change
// moves both to their next volume.
type teeVolumes struct {
	src  media.Reader
	dst  media.Sink
	head []byte // read from src and copied already, not yet read by the set reader
	rec  []byte // the destination record being filled
	rs   int
	n    int64 // bytes copied
}

func (t *teeVolumes) Read(p []byte) (int, error) {
	if len(t.head) > 0 {
		n := copy(p, t.head)
		t.head = t.head[n:]
		return n, nil
	}
	n, err := t.src.Read(p)
	if n > 0 {
		if werr := t.put(p[:n]); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (t *teeVolumes) put(p []byte) error {
	t.n += int64(len(p))
	for len(p) > 0 {
		k := min(len(p), t.rs-len(t.rec))
		t.rec = append(t.rec, p[:k]...)
		p = p[k:]
		if len(t.rec) == t.rs {
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the record being filled (a short one at a volume's end
// holds whole 512-byte blocks: volumes are padded to records).
func (t *teeVolumes) flush() error {
	if len(t.rec) == 0 {
		return nil
	}
	if len(t.rec)%tapeformat.BlockSize != 0 {
		return fmt.Errorf("source volume ends inside a 512-byte block")
	}
	_, err := t.dst.Write(t.rec)
	t.rec = t.rec[:0]
	if errors.Is(err, tapeformat.ErrEarlyWarning) {
		err = nil // the reserve holds the rest of the source volume, or EOM says it does not
	}
	if errors.Is(err, tapeformat.ErrEndOfMedium) {
		return fmt.Errorf("the destination volume is smaller than the source volume (a copy keeps volume boundaries): %w", err)
	}
	return err
}

// drain copies what is left of the current source volume (the padding
// after the archive trailer that the set reader does not read).
func (t *teeVolumes) drain() error {
	_, err := io.Copy(io.Discard, t)
	if err != nil {
		return err
	}
	return t.flush()
}

func (t *teeVolumes) NextVolume() error {
	if err := t.drain(); err != nil {
		return err
	}
	if err := t.src.NextVolume(); err != nil {
		return err
	}
	return t.dst.NextVolume()
}

// peekLabel reads the source's first bytes (kept for the copy) and the
// set label in them.
func peekLabel(r io.Reader) ([]byte, tapeformat.Label, error) {
	var l tapeformat.Label
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, l, err
	}
	tr := tar.NewReader(bytes.NewReader(b))
	h, err := tr.Next()
	if err != nil || h.Name != tapeformat.LabelName {
		return b, l, fmt.Errorf("not a tapestream set (no label at its start)")
	}
	if err := json.NewDecoder(tr).Decode(&l); err != nil {
		return b, l, fmt.Errorf("damaged label: %v", err)
	}
	return b, l, nil
}

func runCopy(ctx context.Context, o copyOpts) (err error) {
	t0 := time.Now()
	ro, err := o.Read.options(ctx, o.Src)
	if err != nil {
		return err
	}
	src, err := media.OpenReader(o.Src, ro)
	if err != nil {
		return err
	}
	defer src.Close()
	head, label, err := peekLabel(src)
	if err != nil {
		return &corruptionError{fmt.Sprintf("%s: %v", o.Src, err)}
	}
	ids, err := o.Identity.load()
	if err != nil {
		return err
	}
	wo, err := o.Write.options(o.Err)
	if err != nil {
		return err
	}
	wo.RecordSize = label.RecordSize
	dst, err := media.Open(o.Dst, wo)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			dst.Abort()
		}
	}()
	stop := context.AfterFunc(ctx, func() { dst.Abort() })
	defer stop()
	tee := &teeVolumes{src: src, dst: dst, rs: label.RecordSize}
	if err := tee.put(head); err != nil {
		return err
	}
	tee.head = head
	info, err := restore.VerifyStream(ctx, o.Src, tee, restore.Options{Sink: ro, Identities: ids})
	if err != nil {
		return err
	}
	if len(info.Problems) > 0 || info.Manifest == nil {
		for _, p := range info.Problems {
			fmt.Fprintf(o.Err, "  %s\n", p)
		}
		return &corruptionError{fmt.Sprintf("%s fails verification: nothing was copied to %s", o.Src, o.Dst)}
	}
	if err := tee.drain(); err != nil {
		return err
	}
	if err := dst.Commit(); err != nil {
		return err
	}
	committed = true
	vols := dst.Volumes()
	verified := "verified"
	if info.Sealed {
		verified = "encrypted, structure and ciphertext verified (contents not: no --identity)"
	}
	fmt.Fprintf(o.Out, "copied %s set %s of %s from %s to %s: %s in %d volume(s), %s, in %s\n",
		label.SetType, label.SetID, label.StorageGroup, o.Src, o.Dst, humanize.IBytes(uint64(tee.n)), len(vols), verified, time.Since(t0).Round(time.Millisecond))
	if o.Catalog == "" && o.Config == "" {
		return nil
	}
	cat, _, err := openCatalog(o.catalogOpts)
	if err != nil {
		return fmt.Errorf("the copy is complete, but the catalog could not be opened: %w", err)
	}
	loc := locationOf(o.Dst, vols)
	if err := cat.AddCopy(scan.SetFromInfo(info), loc); err != nil {
		return fmt.Errorf("the copy is complete, but recording it failed: %w", err)
	}
	fmt.Fprintf(o.Out, "cataloged as a copy of set %s\n", label.SetID)
	return nil
}

// locationOf is the catalog location of a set written to target.
func locationOf(target string, vols []media.VolumeInfo) catalog.Location {
	switch {
	case media.IsTape(target):
		loc := catalog.Location{Kind: "tape", Target: media.BaseTarget(target)}
		for _, v := range vols {
			loc.Tape = append(loc.Tape, catalog.TapeVolume{Number: v.Number, Name: v.Name, FileNumber: v.FileNumber, Bytes: v.Bytes, Loaded: media.LoadedVolume(target) + v.Number - 1})
		}
		return loc
	case media.Classify(target) == media.KindS3:
		loc := catalog.Location{Kind: "s3", Target: target}
		for _, v := range vols {
			loc.Paths = append(loc.Paths, v.Name)
		}
		return loc
	}
	loc := catalog.Location{Kind: "file", Target: target}
	for _, v := range vols {
		loc.Paths = append(loc.Paths, v.Name)
	}
	return loc
}
