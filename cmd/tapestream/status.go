package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/source"
)

func init() { extraCommands = append(extraCommands, newStatusCmd) }

type statusOpts struct {
	catalogOpts
	MaxAge string
	Verify bool

	// now and openSource are injected by tests (time, an open store).
	now        func() time.Time
	openSource func(ctx context.Context, j *scheduler.Job) (source.Source, error)
}

func newStatusCmd() *cobra.Command {
	var o statusOpts
	c := &cobra.Command{
		Use:   "status --config FILE|--catalog FILE [--json] [--max-age DURATION] [--verify]",
		Short: "What is protected and what is not: per storage group and job the newest chain, restore points, last and next run, and every problem",
		Long: `Per storage group: the newest full of each job and the sets chained on it (type, time, age, log
range, size, location), the oldest and newest points the group can be restored to. Per job: the
last run and its result, the next scheduled run. Problems, each named: a group of a store that no
job covers, a chain retention expires at the next full, a set whose files or cartridge are gone
(a cheap existence check; --verify reads every restorable set), a destination short of space for
the next full (at the last full's size), a job whose last run failed.

--max-age 26h exits 1, naming each group whose newest restore point is older (monitoring checks);
--verify exits 3 when a set is damaged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			_, err := runStatus(cmd.Context(), o)
			return err
		},
	}
	o.flags(c)
	c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	c.Flags().StringVar(&o.MaxAge, "max-age", "", "exit 1 when a storage group's newest restore point is older than this (e.g. 26h)")
	c.Flags().BoolVar(&o.Verify, "verify", false, "read every restorable set completely (tapes: their cartridges are asked for by label)")
	return c
}

func runStatus(ctx context.Context, o statusOpts) (*scheduler.Status, error) {
	var maxAge time.Duration
	if o.MaxAge != "" {
		d, err := parseAge(o.MaxAge)
		if err != nil || d <= 0 {
			return nil, usagef(fmt.Sprintf("--max-age %q: want a duration such as 26h or 2d", o.MaxAge))
		}
		maxAge = d
	}
	cat, cfg, err := readCatalog(o.catalogOpts)
	if err != nil {
		return nil, err
	}
	so := scheduler.StatusOptions{Now: o.now, MaxAge: maxAge, Verify: o.Verify, Stderr: o.Err}
	if cfg != nil {
		so.Runner = &scheduler.Runner{Config: cfg, OpenSource: o.openSource}
	}
	st, err := scheduler.BuildStatus(ctx, cfg, cat, so)
	if st == nil {
		return nil, err
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if o.JSON {
		if perr := writeJSON(out, &statusDoc{header("status"), st}); perr != nil {
			return st, perr
		}
	} else {
		printStatus(out, st)
	}
	return st, err
}

// parseAge parses a duration, with d for days (2d, 1d12h).
func parseAge(s string) (time.Duration, error) {
	if i := strings.Index(s, "d"); i > 0 {
		var days int
		if _, err := fmt.Sscanf(s[:i], "%d", &days); err != nil {
			return 0, err
		}
		rest := time.Duration(0)
		if s[i+1:] != "" {
			var err error
			if rest, err = time.ParseDuration(s[i+1:]); err != nil {
				return 0, err
			}
		}
		return time.Duration(days)*24*time.Hour + rest, nil
	}
	return time.ParseDuration(s)
}

func printStatus(w io.Writer, st *scheduler.Status) {
	fmt.Fprintf(w, "status at %s (catalog %s)\n", st.Now.Format(time.RFC3339), st.Catalog)
	for _, g := range st.Groups {
		name := g.Group
		if g.Signature != "" {
			name += " (" + short12(g.Signature) + ")"
		}
		jobs := strings.Join(g.Jobs, ", ")
		if jobs == "" {
			jobs = "no job"
		}
		fmt.Fprintf(w, "\nstorage group %s — backed up by %s\n", name, jobs)
		if g.RestorePoints == 0 {
			fmt.Fprintf(w, "  NO RESTORE POINT\n")
		} else {
			fmt.Fprintf(w, "  restore points: %d, oldest %s, newest %s (%s ago)\n", g.RestorePoints, g.OldestRestorePoint.Format(time.RFC3339),
				g.NewestRestorePoint.Format(time.RFC3339), scheduler.FormatAge(time.Duration(g.AgeSeconds*float64(time.Second))))
		}
		for _, c := range g.Chains {
			fmt.Fprintf(w, "  job %s, newest full and the sets chained on it:\n", c.Job)
			fmt.Fprintf(w, "    %-12s  %-12s  %-20s  %6s  %-13s  %9s  %s\n", "TYPE", "SET", "CREATED", "AGE", "LOGS", "SIZE", "LOCATION")
			for _, s := range c.Sets {
				typ := s.Type
				if s.Status != catalog.StatusComplete {
					typ += " (" + s.Status + ")"
				} else if !s.RestorePoint {
					typ += " (broken)"
				}
				fmt.Fprintf(w, "    %-12s  %-12s  %-20s  %6s  %-13s  %9s  %s\n", typ, short12(s.ID), s.Created.Format("2006-01-02T15:04:05Z"),
					scheduler.FormatAge(time.Duration(s.AgeSeconds*float64(time.Second))), fmt.Sprintf("%d-%d", s.LowGen, s.HighGen),
					humanize.IBytes(uint64(s.Bytes)), s.Location)
			}
		}
	}
	if len(st.Jobs) > 0 {
		fmt.Fprintf(w, "\n%-16s  %-20s  %-8s  %-20s  %s\n", "JOB", "LAST RUN", "RESULT", "NEXT RUN", "LEVEL")
		for _, j := range st.Jobs {
			last, next := "-", "-"
			if !j.LastRun.IsZero() {
				last = j.LastRun.UTC().Format("2006-01-02T15:04:05Z")
			}
			if !j.NextRun.IsZero() {
				next = j.NextRun.UTC().Format("2006-01-02T15:04:05Z")
			}
			res := j.LastStatus
			if res == "" {
				res = "never"
			}
			fmt.Fprintf(w, "%-16s  %-20s  %-8s  %-20s  %s\n", j.Job, last, res, next, j.NextLevel)
			if j.LastError != "" {
				fmt.Fprintf(w, "  error: %s\n", j.LastError)
			}
		}
	}
	if st.Verified {
		fmt.Fprintln(w, "\nevery restorable set was read back (--verify)")
	}
	if len(st.Problems) == 0 {
		fmt.Fprintln(w, "\nno problems")
		return
	}
	fmt.Fprintf(w, "\nPROBLEMS (%d)\n", len(st.Problems))
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  %-17s %s\n", p.Kind, p.Message)
	}
}
