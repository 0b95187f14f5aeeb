package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/source"
)

func init() { extraCommands = append(extraCommands, newConfigCmd) }

type configOpts struct {
	Path     string
	JSON     bool
	Runs     int
	Out, Err io.Writer

	// now and openSource are injected by tests (time, an open store).
	now        func() time.Time
	openSource func(ctx context.Context, j *scheduler.Job) (source.Source, error)
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Check a job configuration before it runs, and show it with its defaults"}
	var co configOpts
	check := &cobra.Command{
		Use:   "check FILE [--json]",
		Short: "Parse everything, open the catalog, reach every store, server, destination, tape and command; print each job's next runs; exit 2 naming every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			co.Path, co.Out, co.Err = args[0], cmd.OutOrStdout(), cmd.ErrOrStderr()
			_, err := runConfigCheck(cmd.Context(), co)
			return err
		},
	}
	check.Flags().BoolVar(&co.JSON, "json", false, "print JSON")
	check.Flags().IntVar(&co.Runs, "runs", 5, "how many next runs of each job to list")
	var so configOpts
	show := &cobra.Command{
		Use:   "show FILE",
		Short: "Print the effective configuration: every default filled in, paths absolute, schedules as cron lines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Path, so.Out = args[0], cmd.OutOrStdout()
			return runConfigShow(so)
		},
	}
	c.AddCommand(check, show)
	return c
}

func runConfigCheck(ctx context.Context, o configOpts) (*scheduler.CheckResult, error) {
	now := time.Now()
	if o.now != nil {
		now = o.now()
	}
	var r *scheduler.Runner
	if o.openSource != nil {
		cfg, err := scheduler.LoadConfig(o.Path)
		if err == nil {
			r = &scheduler.Runner{Config: cfg, OpenSource: o.openSource}
		}
	}
	if o.Runs <= 0 {
		o.Runs = 5
	}
	res := scheduler.CheckConfig(ctx, o.Path, now, o.Runs, r)
	if o.JSON {
		if err := writeJSON(o.Out, &configCheckDoc{header("config check"), res.OK(), res}); err != nil {
			return res, err
		}
	} else {
		for _, c := range res.Checked {
			fmt.Fprintf(o.Out, "ok       %s\n", c)
		}
		for _, j := range res.Jobs {
			fmt.Fprintf(o.Out, "job %s: next runs\n", j.Job)
			for _, s := range j.NextRuns {
				fmt.Fprintf(o.Out, "  %s  %s\n", s.Time.Format("Mon 2006-01-02 15:04 MST"), s.Level)
			}
		}
		for _, p := range res.Problems {
			fmt.Fprintf(o.Out, "PROBLEM  %s\n", p)
		}
	}
	if !res.OK() {
		return res, &scheduler.ConfigError{Path: o.Path, Problems: res.Problems}
	}
	return res, nil
}

func runConfigShow(o configOpts) error {
	cfg, err := loadSchedConfig(o.Path)
	if err != nil {
		return err
	}
	return cfg.WriteEffective(o.Out)
}
