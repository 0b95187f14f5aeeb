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

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
)

func init() { extraCommands = append(extraCommands, newBackupCmd) }

type backupOpts struct {
	Source      sourceFlags
	Groups      []string
	Databases   []string
	Type        string
	Pipeline    pipelineFlags
	Encrypt     encryptFlags
	Output      string
	Media       writeMediaFlags
	Progress    string
	Stats       bool
	JSON        bool
	JSONFile    string
	PreviousSet string

	Out, Err io.Writer
	// source overrides Source (tests, the demo).
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
	o.Source.add(c)
	o.Pipeline.add(c)
	o.Encrypt.add(c)
	o.Media.add(c)
	f := c.Flags()
	f.StringArrayVar(&o.Groups, "group", nil, "storage group (repeatable: one set per group, backed up concurrently)")
	f.StringArrayVar(&o.Databases, "database", nil, "back up only this database (full and copy; repeatable)")
	f.StringVar(&o.Type, "type", "full", "full, incremental, differential or copy")
	f.StringVarP(&o.Output, "output", "o", "", "FILE, - (stdout), /dev/nstN (tape) or tape:PATH?capacity=SIZE (emulated tape); {group} is replaced by the group name")
	f.StringVar(&o.Progress, "progress", "auto", "auto or always (a bar on a terminal, periodic lines otherwise) or never")
	f.BoolVar(&o.Stats, "stats", false, "print per-stage counters at the end (which stage is the bottleneck)")
	f.BoolVar(&o.JSON, "json", false, "print a JSON summary (on stderr when the set goes to stdout)")
	f.StringVar(&o.JSONFile, "json-file", "", "write the JSON summary to this file")
	f.StringVar(&o.PreviousSet, "previous-set", "", "set id this incremental/differential continues (recorded in the label)")
	return c
}

// runBackup: flags → one request per group → backup.RunGroups → summaries.
func runBackup(ctx context.Context, o backupOpts) ([]*backup.Result, error) {
	typ, err := ese.ParseBackupType(o.Type)
	if err != nil {
		return nil, usagef(err.Error())
	}
	switch o.Progress {
	case "", "auto", "always", "never":
	default:
		return nil, usagef("--progress must be auto, always or never")
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
	mo, err := o.Media.options(o.Err)
	if err != nil {
		return nil, err
	}
	mo.Stdout = o.stdout
	po, seg, err := o.Pipeline.options()
	if err != nil {
		return nil, err
	}
	if po.Pace, err = o.Pipeline.pacer(); err != nil {
		return nil, err
	}
	rcpts, err := o.Encrypt.recipients()
	if err != nil {
		return nil, err
	}
	src := o.source
	if src == nil {
		if src, err = o.Source.open(); err != nil {
			return nil, err
		}
		defer src.Close()
	}
	if o.Output == "-" {
		defer media.HandleSIGPIPE()()
	}
	reqs := make([]backup.Request, len(o.Groups))
	stats := make([]*pipeline.Stats, len(o.Groups))
	for i, group := range o.Groups {
		stats[i] = &pipeline.Stats{}
		p := po
		p.Stats = stats[i]
		reqs[i] = backup.Request{Group: group, Target: strings.ReplaceAll(o.Output, "{group}", group), Options: backup.Options{
			Type: typ, Databases: o.Databases, Pipeline: p, Media: mo, SegmentSize: seg, PreviousSetID: o.PreviousSet,
			Recipients: rcpts,
		}}
	}
	var stops []func()
	for i, r := range reqs {
		stops = append(stops, startProgress(ctx, o.Progress, o.Err, r.Group, stats[i], po.Pace))
	}
	outs := backup.RunGroups(ctx, src, reqs)
	for _, stop := range stops {
		stop()
	}
	results := make([]*backup.Result, len(outs))
	var errs []error
	var failed []groupFailure
	for i, out := range outs {
		results[i] = out.Result
		if o.Stats {
			printStageStats(o.Err, out.Request.Group, stats[i])
		}
		if out.Err != nil {
			errs = append(errs, fmt.Errorf("storage group %s: %w", out.Request.Group, out.Err))
			failed = append(failed, groupFailure{Group: out.Request.Group, Error: out.Err.Error()})
		}
	}
	err = errors.Join(errs...)
	// Summaries go to stderr when stdout carries the set.
	out := o.Out
	if o.Output == "-" {
		out = o.Err
	}
	var ps *pace.Summary
	if po.Pace != nil {
		ps = po.Pace.Summary()
	}
	doc := newBackupDoc(results, failed, ps)
	if !o.JSON {
		for _, r := range results {
			if r != nil {
				printBackupSummary(out, r)
			}
		}
		if len(doc.Groups) > 0 {
			printPaceSummary(out, ps)
		}
	}
	if o.JSONFile != "" {
		err = errors.Join(err, writeJSONFile(o.JSONFile, doc))
	}
	if o.JSON {
		err = errors.Join(err, writeJSON(out, doc))
	}
	return results, err
}

func printPaceSummary(w io.Writer, s *pace.Summary) {
	if s == nil {
		return
	}
	var rates []string
	for _, p := range s.Series {
		rates = append(rates, fmt.Sprintf("%s@%.1fs", humanize.IBytes(uint64(p.Rate)), p.T.Seconds()))
	}
	fmt.Fprintf(w, "  pace auto (shared by %s): %d decreases, %d probes; rate over time: %s\n",
		strings.Join(s.Groups, ", "), s.Decreases, s.Probes, strings.Join(rates, " "))
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  pace: %s\n", n)
	}
}

var statsMu sync.Mutex

func printBackupSummary(w io.Writer, r *backup.Result) {
	fmt.Fprintf(w, "%s backup of %s: set %s\n", r.Type, r.Group, r.SetID)
	fmt.Fprintf(w, "  databases: %s\n", strings.Join(r.Databases, ", "))
	fmt.Fprintf(w, "  logs: generations %d-%d (0x%X-0x%X)\n", r.LowGen, r.HighGen, r.LowGen, r.HighGen)
	if r.PreviousSetID != "" {
		fmt.Fprintf(w, "  continues set: %s\n", r.PreviousSetID)
	}
	fmt.Fprintf(w, "  %s read, %s written (ratio %.2f, %s) in %s: %s/s\n",
		humanize.IBytes(uint64(r.BytesIn)), humanize.IBytes(uint64(r.BytesOut)), r.Ratio, r.Codec,
		r.Duration.Round(time.Millisecond), humanize.IBytes(uint64(r.Throughput)))
	for _, v := range r.Volumes {
		fmt.Fprintf(w, "  volume %d: %s (%s)\n", v.Number, v.Name, humanize.IBytes(uint64(v.Bytes)))
	}
	if r.Encryption != nil {
		fmt.Fprintf(w, "  encrypted (age) to: %s\n", r.Encryption.RecipientList())
	}
	if len(r.Truncated) > 0 {
		fmt.Fprintf(w, "  truncated %d logs: %s .. %s\n", len(r.Truncated), r.Truncated[0], r.Truncated[len(r.Truncated)-1])
	}
	if r.TruncationSkipped != "" {
		fmt.Fprintf(w, "  no log truncated: %s\n", r.TruncationSkipped)
	}
}

func printStageStats(w io.Writer, group string, st *pipeline.Stats) {
	statsMu.Lock()
	defer statsMu.Unlock()
	el := time.Since(st.Started)
	row := func(name string, s *pipeline.StageStats) {
		busy, blocked := time.Duration(s.Busy.Load()), time.Duration(s.Blocked.Load())
		fmt.Fprintf(w, "  %-9s in %10s  out %10s  busy %9s  blocked %9s\n", name,
			humanize.IBytes(uint64(s.BytesIn.Load())), humanize.IBytes(uint64(s.BytesOut.Load())),
			busy.Round(time.Millisecond), blocked.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "stage statistics for %s (%s elapsed; compress busy/blocked are summed over workers):\n", group, el.Round(time.Millisecond))
	row("read", &st.Read)
	row("blake3", &st.Hash)
	row("compress", &st.Compress)
	row("write", &st.Write)
}
