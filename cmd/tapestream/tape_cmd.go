package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/scheduler"
)

func init() { extraCommands = append(extraCommands, newTapeCmd) }

type tapeOpts struct {
	catalogOpts
	Tape      string
	Label     string
	Pool      string
	Overwrite bool
	now       func() time.Time
}

func newTapeCmd() *cobra.Command {
	c := &cobra.Command{Use: "tape", Short: "Label tape volumes and show what is loaded"}
	var lo tapeOpts
	label := &cobra.Command{
		Use:   "label --tape /dev/nstN|tape:PATH [LABEL] [--pool P] [--overwrite]",
		Short: "Write a volume label on the loaded tape (file 0) and record it in the catalog",
		Long:  "Without LABEL the next free label of the pool prefix is used (PREFIX0001, ...; --prefix, default TS).",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lo.Out, lo.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if len(args) == 1 {
				lo.Label = args[0]
			}
			return runTapeLabel(cmd.Context(), lo)
		},
	}
	lo.flags(label)
	label.Flags().StringVar(&lo.Tape, "tape", "", "tape device or emulated tape")
	label.Flags().StringVar(&lo.Pool, "pool", "", "pool name recorded in the label")
	label.Flags().StringVar(&lo.Job, "prefix", "TS", "label prefix when no LABEL is given")
	label.Flags().BoolVar(&lo.Overwrite, "overwrite", false, "relabel a tape that holds data (its sets are lost and marked expired)")
	label.Flags().StringVar(&lo.BlockSize, "block-size", "1MiB", "record size")
	var so tapeOpts
	status := &cobra.Command{
		Use: "status --tape /dev/nstN|tape:PATH [--json]", Short: "Show the label of the loaded tape and what the catalog knows of it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			so.Out, so.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runTapeStatus(cmd.Context(), so)
		},
	}
	so.flags(status)
	status.Flags().StringVar(&so.Tape, "tape", "", "tape device or emulated tape")
	status.Flags().StringVar(&so.BlockSize, "block-size", "1MiB", "record size")
	status.Flags().BoolVar(&so.JSON, "json", false, "print JSON")
	var ldo tapeOpts
	load := &cobra.Command{
		Use:   "load --tape tape:PATH N|LABEL",
		Short: "Load a cartridge into an emulated drive, by number or by its label (what a changer's load does)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ldo.Out, ldo.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runTapeLoad(ldo, args[0])
		},
	}
	load.Flags().StringVar(&ldo.Tape, "tape", "", "emulated tape (tape:PATH)")
	load.Flags().StringVar(&ldo.BlockSize, "block-size", "1MiB", "record size")
	c.AddCommand(label, status, load)
	return c
}

func runTapeLoad(o tapeOpts, cartridge string) error {
	if !strings.HasPrefix(o.Tape, media.EmulatedPrefix) {
		return usagef("--tape: tape load drives an emulated tape (tape:PATH); load a real drive with its changer (mtx)")
	}
	rs, err := o.recordSize()
	if err != nil {
		return err
	}
	n, err := media.LoadEmulated(o.Tape, cartridge, rs)
	if err != nil {
		return &sinkError{err}
	}
	fmt.Fprintf(o.Out, "loaded cartridge %d into %s\n", n, media.BaseTarget(o.Tape))
	return nil
}

func (o tapeOpts) recordSize() (int, error) {
	if o.BlockSize == "" {
		return 0, nil
	}
	n, err := parseSize("block-size", o.BlockSize)
	return int(n), err
}

func runTapeLabel(_ context.Context, o tapeOpts) error {
	if o.Tape == "" {
		return usagef("--tape is required")
	}
	cat, _, err := openCatalog(o.catalogOpts)
	if err != nil {
		return err
	}
	rs, err := o.recordSize()
	if err != nil {
		return err
	}
	if o.Label == "" {
		if o.Label, err = scheduler.NextLabel(cat, o.Job); err != nil {
			return err
		}
	}
	now := time.Now
	if o.now != nil {
		now = o.now
	}
	if err := scheduler.LabelTape(cat, o.Tape, o.Label, o.Pool, rs, o.Overwrite, now()); err != nil {
		return &sinkError{err}
	}
	fmt.Fprintf(o.Out, "labelled %s as %s\n", o.Tape, o.Label)
	return nil
}

// tapeStatusDoc is tape status's document: what is on the loaded tape and
// what the catalog knows of it.
type tapeStatusDoc struct {
	docHeader
	Tape string `json:"tape"`
	// Content is what file 0 holds: "label" (a tapestream volume label),
	// "blank", "set" (an unlabelled volume starting with a set) or
	// "foreign".
	Content string `json:"content" jsonschema:"enum=label,enum=blank,enum=set,enum=foreign"`
	// Volume is the label, for Content "label".
	Volume *media.VolumeLabel `json:"volume,omitempty"`
	// CatalogStatus is the volume's status in the catalog (with --config
	// or --catalog, when it is recorded).
	CatalogStatus string `json:"catalog_status,omitempty"`
	// Sets are the catalog's sets on this volume.
	Sets []tapeSetDoc `json:"sets"`
}

// tapeSetDoc is one set the catalog has on a tape volume.
type tapeSetDoc struct {
	FileNumber int64          `json:"file_number"`
	SetID      string         `json:"set_id"`
	Type       ese.BackupType `json:"type"`
	Group      string         `json:"group"`
	Created    time.Time      `json:"created"`
	Status     string         `json:"status"`
}

func runTapeStatus(_ context.Context, o tapeOpts) error {
	if o.Tape == "" {
		return usagef("--tape is required")
	}
	rs, err := o.recordSize()
	if err != nil {
		return err
	}
	state, vl, err := media.ReadVolumeLabel(o.Tape, rs)
	if err != nil {
		return &sinkError{err}
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	doc := &tapeStatusDoc{docHeader: header("tape status"), Tape: o.Tape, Sets: []tapeSetDoc{}}
	switch state {
	case media.ContentBlank:
		doc.Content = "blank"
	case media.ContentSet:
		doc.Content = "set"
	case media.ContentForeign:
		doc.Content = "foreign"
	default:
		doc.Content, doc.Volume = "label", vl
	}
	if doc.Volume != nil && (o.Config != "" || o.Catalog != "") {
		cat, _, err := openCatalog(o.catalogOpts)
		if err != nil {
			return err
		}
		if v, err := cat.GetVolume(vl.Label); err == nil {
			doc.CatalogStatus = v.Status
		}
		sets, err := cat.List(catalog.Filter{})
		if err != nil {
			return err
		}
		for _, s := range sets {
			for _, tv := range s.Location.Tape {
				if tv.Label == vl.Label {
					doc.Sets = append(doc.Sets, tapeSetDoc{FileNumber: tv.FileNumber, SetID: s.ID, Type: s.Type, Group: s.Group, Created: s.Created, Status: s.Status})
				}
			}
		}
	}
	if o.JSON {
		return writeJSON(out, doc)
	}
	printTapeStatus(out, doc)
	return nil
}

func printTapeStatus(out io.Writer, d *tapeStatusDoc) {
	switch d.Content {
	case "blank":
		fmt.Fprintf(out, "%s: blank\n", d.Tape)
		return
	case "set":
		fmt.Fprintf(out, "%s: unlabelled; starts with a backup set (a continuation volume written before every cartridge was labelled)\n", d.Tape)
		return
	case "foreign":
		fmt.Fprintf(out, "%s: holds data that is not tapestream's\n", d.Tape)
		return
	}
	vl := d.Volume
	fmt.Fprintf(out, "%s: volume %s (pool %q, labelled %s)\n", d.Tape, vl.Label, vl.Pool, vl.Created.Format(time.RFC3339))
	if vl.SetID != "" {
		fmt.Fprintf(out, "  file 1: volume %d of set %s\n", vl.SetVolume, vl.SetID)
	}
	if d.CatalogStatus != "" {
		fmt.Fprintf(out, "  catalog: %s\n", d.CatalogStatus)
	}
	for _, s := range d.Sets {
		fmt.Fprintf(out, "  file %d: %s set %s of %s, %s, %s\n", s.FileNumber, s.Type, short12(s.SetID), s.Group, s.Created.UTC().Format(time.RFC3339), s.Status)
	}
}
