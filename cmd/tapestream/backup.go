package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

func init() { extraCommands = append(extraCommands, newBackupCmd) }

type backupOpts struct {
	Store         string
	Groups        []string
	Databases     []string
	Type          string
	Compress      string
	Workers       int
	Output        string
	BlockSize     string
	FrameSize     string
	SegmentSize   string
	VolumeSize    string
	NextVolumeCmd string
	MaxRate       string
	Progress      string
	Stats         bool
	JSON          bool
	Force         bool
	Append        bool
	Overwrite     bool
	NoVerify      bool
	PreviousSet   string
	Remote        remoteFlags // --server: back up through a store server

	Out, Err io.Writer
	// source overrides Store (tests, the demo, the scheduler).
	source source.Source
	// stdout replaces the process's stdout for `-o -` (tests).
	stdout io.Writer
}

func newBackupCmd() *cobra.Command {
	var o backupOpts
	c := &cobra.Command{
		Use:   "backup --store DIR --group SG1 --type full|incremental|differential|copy -o FILE|-|/dev/nstN|tape:PATH",
		Short: "Take an online backup of storage groups into backup sets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			_, err := runBackup(cmd.Context(), o)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Store, "store", "", "store root directory (embedded, in process)")
	f.StringArrayVar(&o.Groups, "group", nil, "storage group (repeatable: one set per group, backed up concurrently)")
	f.StringArrayVar(&o.Databases, "database", nil, "back up only this database (full and copy; repeatable)")
	f.StringVar(&o.Type, "type", "full", "full, incremental, differential or copy")
	f.StringVar(&o.Compress, "compress", "zstd", "zstd, zstd:fastest|default|better|best, zstd:N, lz4, gzip, gzip:N or none")
	f.IntVar(&o.Workers, "workers", 0, "compression workers (default: number of CPUs)")
	f.StringVarP(&o.Output, "output", "o", "", "FILE, - (stdout), /dev/nstN (tape) or tape:PATH?capacity=SIZE (emulated tape); {group} is replaced by the group name")
	f.StringVar(&o.BlockSize, "block-size", "1MiB", "record (tape block) size, a multiple of 512")
	f.StringVar(&o.FrameSize, "frame-size", "", "uncompressed bytes per compressed frame (multiple of 64KiB; default 1MiB)")
	f.StringVar(&o.SegmentSize, "segment-size", "", "largest stored segment member (default 32MiB); a volume must hold at least one, and memory grows with it")
	f.StringVar(&o.VolumeSize, "volume-size", "", "split a file set into volumes NAME.001, NAME.002, ... of this size")
	f.StringVar(&o.NextVolumeCmd, "next-volume-cmd", "", "command run to load the next tape volume (gets TAPESTREAM_VOLUME, TAPESTREAM_DEVICE)")
	f.StringVar(&o.MaxRate, "max-rate", "", "limit the read rate, e.g. 100MiB (per second)")
	f.StringVar(&o.Progress, "progress", "auto", "auto or always (a bar on a terminal, periodic lines otherwise) or never")
	f.BoolVar(&o.Stats, "stats", false, "print per-stage counters at the end (which stage is the bottleneck)")
	f.BoolVar(&o.JSON, "json", false, "print a JSON summary")
	f.BoolVar(&o.Force, "force", false, "overwrite an existing set file")
	f.BoolVar(&o.Append, "append", false, "tape: append after the data already on the tape")
	f.BoolVar(&o.Overwrite, "overwrite", false, "tape: overwrite a tape that holds data")
	f.BoolVar(&o.NoVerify, "no-verify", false, "skip the pipeline's page verification (the engine still verifies)")
	f.StringVar(&o.PreviousSet, "previous-set", "", "set id this incremental/differential continues (recorded in the label)")
	addRemoteFlags(c, &o.Remote)
	return c
}

func runBackup(ctx context.Context, o backupOpts) ([]*pipeline.Result, error) {
	typ, err := ese.ParseBackupType(o.Type)
	if err != nil {
		return nil, usagef(err.Error())
	}
	switch o.Progress {
	case "", "auto", "always", "never":
	default:
		return nil, usagef("--progress must be auto, always or never")
	}
	cdc, err := codec.ParseCodec(o.Compress)
	if err != nil {
		return nil, usagef(err.Error())
	}
	if o.Output == "" {
		return nil, usagef("-o is required (FILE, -, /dev/nstN or tape:PATH)")
	}
	if len(o.Groups) == 0 {
		o.Groups = []string{"SG1"}
	}
	if len(o.Groups) > 1 && !strings.Contains(o.Output, "{group}") {
		return nil, usagef("with several --group, -o must contain {group} so that each set gets its own destination")
	}
	sopts := media.Options{Force: o.Force, Append: o.Append, Overwrite: o.Overwrite, NextVolumeCmd: o.NextVolumeCmd, Stderr: o.Err, Stdout: o.stdout}
	if o.BlockSize != "" {
		n, err := parseSize("block-size", o.BlockSize)
		if err != nil {
			return nil, err
		}
		sopts.RecordSize = int(n)
	}
	if o.VolumeSize != "" {
		if sopts.VolumeSize, err = parseSize("volume-size", o.VolumeSize); err != nil {
			return nil, err
		}
	}
	popts := pipeline.Options{Codec: cdc, Workers: o.Workers, RecordSize: sopts.RecordSize, NoVerify: o.NoVerify, PreviousSetID: o.PreviousSet}
	if o.FrameSize != "" {
		n, err := parseSize("frame-size", o.FrameSize)
		if err != nil {
			return nil, err
		}
		popts.FrameSize = int(n)
	}
	if o.SegmentSize != "" {
		n, err := parseSize("segment-size", o.SegmentSize)
		if err != nil {
			return nil, err
		}
		popts.SegmentSize = int(n)
	}
	if o.MaxRate != "" {
		if popts.MaxRate, err = parseSize("max-rate", o.MaxRate); err != nil {
			return nil, err
		}
	}
	src := o.source
	if src == nil && o.Remote.Server != "" {
		if o.Store != "" {
			return nil, usagef("give --store or --server, not both")
		}
		r, err := o.Remote.open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		src = r
	}
	if src == nil {
		if o.Store == "" {
			return nil, usagef("--store is required")
		}
		l, err := source.OpenLocal(o.Store, engine.Options{})
		if err != nil {
			return nil, err
		}
		defer l.Close()
		src = l
	}
	if o.Output == "-" {
		defer media.HandleSIGPIPE()()
	}
	// Each group is its own session and set: one group's failure (a full
	// disk, a corrupt page) does not abort the others.
	results := make([]*pipeline.Result, len(o.Groups))
	errs := make([]error, len(o.Groups))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, group := range o.Groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := backupGroup(ctx, src, group, typ, o, sopts, popts, &mu)
			results[i] = r
			if err != nil {
				errs[i] = fmt.Errorf("storage group %s: %w", group, err)
			}
		}()
	}
	wg.Wait()
	err = errors.Join(errs...)
	for _, r := range results {
		if r == nil {
			continue
		}
		if o.JSON {
			err = errors.Join(err, printJSON(o.Out, r))
		} else {
			printBackupSummary(o.Out, r)
		}
	}
	return results, err
}

func backupGroup(ctx context.Context, src source.Source, group string, typ ese.BackupType, o backupOpts, sopts media.Options, popts pipeline.Options, mu *sync.Mutex) (*pipeline.Result, error) {
	target := strings.ReplaceAll(o.Output, "{group}", group)
	sess, err := src.Begin(ctx, group, typ, o.Databases)
	if err != nil {
		return nil, err
	}
	dst, err := media.Open(target, sopts)
	if err != nil {
		sess.Abort(err)
		return nil, &sinkError{err}
	}
	stats := &pipeline.Stats{}
	popts.Stats = stats
	stop := startProgress(ctx, o.Progress, o.Err, group, stats, o.Output == "-")
	res, err := pipeline.Backup(ctx, sess, dst, popts)
	stop()
	if o.Stats {
		mu.Lock()
		printStageStats(o.Err, group, stats)
		mu.Unlock()
	}
	if err != nil && res == nil && isSinkErr(err) {
		return nil, &sinkError{err}
	}
	return res, err
}

func printBackupSummary(w io.Writer, r *pipeline.Result) {
	fmt.Fprintf(w, "%s backup of %s: set %s\n", r.Type, r.Group, r.SetID)
	fmt.Fprintf(w, "  databases: %s\n", strings.Join(r.Databases, ", "))
	fmt.Fprintf(w, "  logs: generations %d-%d (0x%X-0x%X)\n", r.LowGen, r.HighGen, r.LowGen, r.HighGen)
	fmt.Fprintf(w, "  %s read, %s written (ratio %.2f, %s) in %s: %s/s\n",
		humanize.IBytes(uint64(r.BytesIn)), humanize.IBytes(uint64(r.BytesOut)), r.Ratio, r.Codec,
		r.Duration.Round(time.Millisecond), humanize.IBytes(uint64(r.Throughput)))
	for _, v := range r.Volumes {
		fmt.Fprintf(w, "  volume %d: %s (%s)\n", v.Number, v.Name, humanize.IBytes(uint64(v.Bytes)))
	}
	if len(r.Truncated) > 0 {
		fmt.Fprintf(w, "  truncated %d logs: %s .. %s\n", len(r.Truncated), r.Truncated[0], r.Truncated[len(r.Truncated)-1])
	}
}

func printStageStats(w io.Writer, group string, st *pipeline.Stats) {
	el := time.Since(st.Started)
	row := func(name string, s *pipeline.StageStats) {
		busy, blocked := time.Duration(s.Busy.Load()), time.Duration(s.Blocked.Load())
		fmt.Fprintf(w, "  %-9s in %10s  out %10s  busy %9s  blocked %9s\n", name,
			humanize.IBytes(uint64(s.BytesIn.Load())), humanize.IBytes(uint64(s.BytesOut.Load())),
			busy.Round(time.Millisecond), blocked.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "stage statistics for %s (%s elapsed; compress busy/blocked are summed over workers):\n", group, el.Round(time.Millisecond))
	row("read", &st.Read)
	row("sha256", &st.Hash)
	row("compress", &st.Compress)
	row("write", &st.Write)
}

func isSinkErr(err error) bool {
	var se *media.Error
	return errors.As(err, &se)
}
