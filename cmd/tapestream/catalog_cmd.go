package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/catalog/scan"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/scheduler"
)

func init() { extraCommands = append(extraCommands, newCatalogCmd) }

type catalogOpts struct {
	Config        string
	Catalog       string
	Job           string
	Group         string
	Status        string
	JSON          bool
	BlockSize     string
	NextVolumeCmd string
	Out, Err      io.Writer
}

func (o *catalogOpts) flags(c *cobra.Command) {
	c.Flags().StringVar(&o.Config, "config", "", "job configuration file (names the catalog)")
	c.Flags().StringVar(&o.Catalog, "catalog", "", "catalog file (instead of --config)")
}

func newCatalogCmd() *cobra.Command {
	c := &cobra.Command{Use: "catalog", Short: "List, show and rebuild the catalog of backup sets"}
	var lo catalogOpts
	list := &cobra.Command{
		Use: "list [--group G] [--job J] [--status S] [--json]", Short: "List the cataloged sets, oldest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lo.Out, lo.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runCatalogList(cmd.Context(), lo)
		},
	}
	lo.flags(list)
	list.Flags().StringVar(&lo.Group, "group", "", "only this storage group")
	list.Flags().StringVar(&lo.Job, "job", "", "only this job")
	list.Flags().StringVar(&lo.Status, "status", "", "only complete, failed or expired sets")
	list.Flags().BoolVar(&lo.JSON, "json", false, "print JSON")
	var so catalogOpts
	show := &cobra.Command{
		Use: "show SET-ID", Short: "Show one set (an id prefix of 6+ characters will do)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Out, so.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runCatalogShow(cmd.Context(), so, args[0])
		},
	}
	so.flags(show)
	show.Flags().BoolVar(&so.JSON, "json", false, "print JSON")
	var ro catalogOpts
	rebuild := &cobra.Command{
		Use:   "rebuild [DIR|FILE|/dev/nstN|tape:PATH]...",
		Short: "Scan set files or a tape (like bscan) and write what they hold into the catalog",
		Long:  "Without arguments the destinations of every job in --config are scanned. Every set found is read completely and verified.",
		RunE: func(cmd *cobra.Command, args []string) error {
			ro.Out, ro.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runCatalogRebuild(cmd.Context(), ro, args)
		},
	}
	ro.flags(rebuild)
	rebuild.Flags().StringVar(&ro.BlockSize, "block-size", "1MiB", "record (tape block) size the sets were written with")
	rebuild.Flags().StringVar(&ro.NextVolumeCmd, "next-volume-cmd", "", "command run to load the next tape volume")
	var vo catalogOpts
	vols := &cobra.Command{
		Use: "volumes", Short: "List the labelled tape volumes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vo.Out, vo.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runCatalogVolumes(cmd.Context(), vo)
		},
	}
	vo.flags(vols)
	vols.Flags().BoolVar(&vo.JSON, "json", false, "print JSON")
	c.AddCommand(list, show, rebuild, vols)
	return c
}

// catalogPath finds the catalog file from --catalog or --config.
func catalogPath(o catalogOpts) (string, *scheduler.Config, error) {
	if o.Catalog != "" {
		var cfg *scheduler.Config
		if o.Config != "" {
			c, err := loadSchedConfig(o.Config)
			if err != nil {
				return "", nil, err
			}
			cfg = c
		}
		return o.Catalog, cfg, nil
	}
	if o.Config == "" {
		return "", nil, usagef("give --config FILE or --catalog FILE")
	}
	cfg, err := loadSchedConfig(o.Config)
	if err != nil {
		return "", nil, err
	}
	return cfg.Catalog, cfg, nil
}

// openCatalog opens the catalog of o for a command that records in it
// (created if missing).
func openCatalog(o catalogOpts) (*catalog.Catalog, *scheduler.Config, error) {
	p, cfg, err := catalogPath(o)
	if err != nil {
		return nil, nil, err
	}
	cat, err := catalog.Open(p)
	return cat, cfg, err
}

// readCatalog opens the catalog of o for a command that only reads it: a
// catalog named by --catalog must exist (exit 2). One found through
// --config may not exist yet (no job has run): it reads as empty.
func readCatalog(o catalogOpts) (*catalog.Catalog, *scheduler.Config, error) {
	if o.Catalog != "" {
		if err := catalog.Exists(o.Catalog); err != nil {
			return nil, nil, err
		}
	}
	return openCatalog(o)
}

func setWhere(s *catalog.Set) string {
	switch s.Location.Kind {
	case "tape":
		if len(s.Location.Tape) > 0 {
			tv := s.Location.Tape[0]
			lbl := tv.Label
			if lbl == "" {
				lbl = "(unlabelled)"
			}
			return fmt.Sprintf("%s %s file %d", s.Location.Target, lbl, tv.FileNumber)
		}
	case "file":
		return s.Location.Target
	}
	return "-"
}

func runCatalogList(_ context.Context, o catalogOpts) error {
	cat, _, err := readCatalog(o)
	if err != nil {
		return err
	}
	sets, err := cat.List(catalog.Filter{Job: o.Job, Group: o.Group, Status: o.Status})
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.Out, &catalogListDoc{header("catalog list"), nonNil(sets)})
	}
	fmt.Fprintf(o.Out, "%-12s  %-20s  %-8s  %-12s  %-8s  %-12s  %-11s  %9s  %s\n", "SET", "CREATED", "GROUP", "TYPE", "STATUS", "PARENT", "LOGS", "SIZE", "LOCATION")
	for _, s := range sets {
		fmt.Fprintf(o.Out, "%-12s  %-20s  %-8s  %-12s  %-8s  %-12s  %-11s  %9s  %s\n", restore.Printable(short12(s.ID)), s.Created.UTC().Format("2006-01-02T15:04:05Z"), restore.Printable(s.Group), s.Type, s.Status,
			short12(s.ParentID), fmt.Sprintf("%d-%d", s.LowGen, s.HighGen), humanize.IBytes(uint64(s.BytesOut)), setWhere(s))
	}
	return nil
}

func short12(id string) string {
	if id == "" {
		return "-"
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func runCatalogShow(_ context.Context, o catalogOpts, id string) error {
	cat, _, err := readCatalog(o)
	if err != nil {
		return err
	}
	s, err := cat.GetSet(id)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.Out, &catalogShowDoc{header("catalog show"), s})
	}
	fmt.Fprintf(o.Out, "set %s\n  job %s, storage group %s (%s), databases %s\n  %s, %s, created %s\n", restore.Printable(s.ID), restore.Printable(s.Job), restore.Printable(s.Group), restore.Printable(s.GroupSignature),
		strings.Join(s.Databases, ", "), s.Type, s.Status, s.Created.Format(time.RFC3339))
	if s.Promoted != "" {
		fmt.Fprintf(o.Out, "  promoted to full: %s\n", s.Promoted)
	}
	if e := s.Encryption; e != nil {
		var rs []string
		for _, d := range e.Recipients {
			rs = append(rs, d.String())
		}
		fmt.Fprintf(o.Out, "  encrypted (%s) to: %s\n", e.Scheme, strings.Join(rs, ", "))
	}
	if s.Error != "" {
		fmt.Fprintf(o.Out, "  error: %s\n", restore.Printable(s.Error))
	}
	fmt.Fprintf(o.Out, "  logs %d-%d, parent %s, chain of full %s\n  %s read, %s stored (%s)\n  location: %s\n", s.LowGen, s.HighGen, short12(s.ParentID), short12(s.FullID),
		humanize.IBytes(uint64(s.BytesIn)), humanize.IBytes(uint64(s.BytesOut)), s.Codec, setWhere(s))
	for _, p := range s.Location.Paths {
		fmt.Fprintf(o.Out, "    %s\n", p)
	}
	for _, tv := range s.Location.Tape {
		fmt.Fprintf(o.Out, "    volume %d: label %q, %s, file %d\n", tv.Number, tv.Label, tv.Name, tv.FileNumber)
	}
	for _, c := range s.Copies {
		fmt.Fprintf(o.Out, "  copy: %s %s\n", c.Kind, c.Target)
		for _, p := range c.Paths {
			fmt.Fprintf(o.Out, "    %s\n", p)
		}
		for _, tv := range c.Tape {
			fmt.Fprintf(o.Out, "    volume %d: label %q, %s, file %d\n", tv.Number, tv.Label, tv.Name, tv.FileNumber)
		}
	}
	for _, f := range s.Files {
		alg, sum := f.Digest()
		fmt.Fprintf(o.Out, "  %-9s %-24s %10s  %s %s\n", f.Kind, f.Name, humanize.IBytes(uint64(f.Size)), alg, sum)
	}
	return nil
}

func runCatalogRebuild(ctx context.Context, o catalogOpts, targets []string) error {
	// A target that is not there is named before a catalog is created.
	for _, t := range targets {
		if media.Classify(t) != media.KindFile {
			continue
		}
		if _, err := media.FileSetPath(t); errors.Is(err, media.ErrNoSet) {
			return fmt.Errorf("catalog rebuild: %w", err)
		}
	}
	cat, cfg, err := openCatalog(o)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		if cfg == nil {
			return usagef("name the set files, directories or tapes to scan, or give --config to scan every job's destination")
		}
		seen := map[string]bool{}
		for _, j := range cfg.Jobs {
			t := j.Destination.Dir
			switch {
			case j.IsTape():
				t = j.Destination.Tape
			case j.IsS3():
				t = j.Destination.S3
			}
			if seen[t] {
				continue
			}
			seen[t] = true
			if t == j.Destination.Dir {
				if _, err := os.Stat(t); err != nil {
					fmt.Fprintf(o.Err, "job %s: skipping %s: %v\n", j.Name, t, err)
					continue
				}
			}
			targets = append(targets, t)
		}
	}
	so := scan.ScanOptions{NextVolumeCmd: o.NextVolumeCmd, Log: o.Err}
	if o.BlockSize != "" {
		n, err := parseSize("block-size", o.BlockSize)
		if err != nil {
			return err
		}
		so.RecordSize = int(n)
	}
	if cfg != nil {
		so.JobFor = cfg.JobFor
	}
	var files, tapes []string
	total := 0
	for _, t := range targets {
		if media.Classify(t) == media.KindS3 {
			sets, err := scan.ScanS3(ctx, t, so)
			if err != nil {
				return err
			}
			added, updated, err := cat.Merge(sets, nil)
			if err != nil {
				return err
			}
			total += len(sets)
			fmt.Fprintf(o.Out, "%s: %d set(s): %d added, %d updated\n", t, len(sets), added, updated)
			continue
		}
		if !media.IsTape(t) {
			files = append(files, t)
			continue
		}
		tapes = append(tapes, t)
	}
	if len(tapes) > 0 {
		// One box of cartridges, in any order: every set is read from its
		// first volume on, its cartridges asked for by label.
		sets, vols, err := scan.ScanTapes(ctx, tapes, so)
		if err != nil {
			return err
		}
		added, updated, err := cat.Merge(sets, nil)
		if err != nil {
			return err
		}
		for _, v := range vols {
			if _, _, err := cat.Merge(nil, v); err != nil {
				return err
			}
		}
		total += len(sets)
		fmt.Fprintf(o.Out, "%s: %d cartridge(s), %d set(s): %d added, %d updated\n", strings.Join(tapes, ", "), len(vols), len(sets), added, updated)
	}
	if len(files) > 0 {
		sets, err := scan.ScanFiles(ctx, files, so)
		if err != nil {
			return err
		}
		added, updated, err := cat.Merge(sets, nil)
		if err != nil {
			return err
		}
		total += len(sets)
		fmt.Fprintf(o.Out, "%s: %d set(s): %d added, %d updated\n", strings.Join(files, ", "), len(sets), added, updated)
	}
	fmt.Fprintf(o.Out, "catalog %s rebuilt from %d set(s)\n", cat.Path, total)
	return nil
}

func runCatalogVolumes(_ context.Context, o catalogOpts) error {
	cat, _, err := readCatalog(o)
	if err != nil {
		return err
	}
	vols, err := cat.Volumes()
	if err != nil {
		return err
	}
	sets, err := cat.List(catalog.Filter{})
	if err != nil {
		return err
	}
	carts := catalog.Cartridges(vols, sets)
	if o.JSON {
		return writeJSON(o.Out, &catalogVolumesDoc{header("catalog volumes"), nonNil(carts)})
	}
	fmt.Fprintf(o.Out, "%-12s  %-10s  %-10s  %9s  %-20s  %-20s  %s\n", "LABEL", "POOL", "STATUS", "BYTES", "LABELLED", "LAST WRITTEN", "SETS (volume, file)")
	for _, c := range carts {
		last := "-"
		if !c.LastWritten.IsZero() {
			last = c.LastWritten.Format("2006-01-02T15:04:05Z")
		}
		var parts []string
		for _, p := range c.Sets {
			part := fmt.Sprintf("%s %s of %s: volume %d/%d, file %d", short12(p.SetID), p.Type, p.Group, p.Volume, p.Volumes, p.FileNumber)
			if p.Status != catalog.StatusComplete {
				part += " (" + p.Status + ")"
			}
			parts = append(parts, part)
		}
		if len(parts) == 0 {
			parts = []string{"-"}
		}
		pool := c.Pool
		if pool == "" {
			pool = "-"
		}
		fmt.Fprintf(o.Out, "%-12s  %-10s  %-10s  %9s  %-20s  %-20s  %s\n", c.Label, pool, c.Status, humanize.IBytes(uint64(c.Bytes)),
			c.Labelled.Format("2006-01-02T15:04:05Z"), last, parts[0])
		for _, p := range parts[1:] {
			fmt.Fprintf(o.Out, "%-12s  %-10s  %-10s  %9s  %-20s  %-20s  %s\n", "", "", "", "", "", "", p)
		}
	}
	return nil
}

// restoreFromCatalog works out the chain to restore for `restore
// --catalog`: the storage group (--from-group, else --group) as of --at
// (default: the newest).
func restoreFromCatalog(o restoreOpts) ([]restore.SetSource, error) {
	group := o.FromGroup
	if group == "" {
		group = o.Group
	}
	if group == "" {
		return nil, usagef("with --catalog, name the storage group: --group (or --from-group to restore it into another group)")
	}
	if len(o.Sets) > 0 {
		return nil, usagef("give set paths or --catalog, not both")
	}
	var at time.Time
	if o.At != "" && o.At != "now" {
		t, err := time.Parse(time.RFC3339Nano, o.At)
		if err != nil {
			return nil, usagef(fmt.Sprintf("--at %q: want an RFC 3339 time", o.At))
		}
		at = t
	}
	cat, err := catalog.OpenExisting(o.Catalog)
	if err != nil {
		return nil, err
	}
	sets, err := cat.List(catalog.Filter{Group: group})
	if err != nil {
		return nil, err
	}
	chain, err := catalog.RestoreChain(sets, group, at)
	if err != nil {
		return nil, err
	}
	return catalogSources(chain, o.Err), nil
}

// catalogSources turns cataloged sets into sources to read: a tape set's
// first cartridge and file, and the labels of all its cartridges, so that
// the reader asks for each by label and refuses any other.
func catalogSources(sets []*catalog.Set, log io.Writer) []restore.SetSource {
	var srcs []restore.SetSource
	for _, s := range sets {
		loc, _ := catalog.Available(s) // callers took only sets that are
		src := restore.SetSource{Path: loc.Target}
		if loc.Kind == "tape" && len(loc.Tape) > 0 {
			tv := loc.Tape[0]
			src.Path, src.FileNumber = media.WithVolume(loc.Target, tv.Loaded), int(tv.FileNumber)
			src.Expect = media.ExpectedSet{SetID: s.ID}
			var where []string
			for _, v := range loc.Tape {
				src.Expect.Labels = append(src.Expect.Labels, v.Label)
				lbl := v.Label
				if lbl == "" {
					lbl = "an unlabelled cartridge"
				}
				where = append(where, fmt.Sprintf("volume %d on %s file %d", v.Number, lbl, v.FileNumber))
			}
			if log != nil {
				fmt.Fprintf(log, "set %s: %s\n", short12(s.ID), strings.Join(where, ", "))
			}
		}
		if log != nil {
			fmt.Fprintf(log, "chain: %s set %s of %s (%s)\n", s.Type, short12(s.ID), s.Created.UTC().Format(time.RFC3339), setWhere(s))
		}
		srcs = append(srcs, src)
	}
	return srcs
}
