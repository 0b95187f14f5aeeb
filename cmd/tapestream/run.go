package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/source"
)

func init() { extraCommands = append(extraCommands, newRunCmd) }

type runOpts struct {
	Config    string
	Job       string
	DryRun    bool
	JSON      bool
	Level     string
	NotifyCmd string
	LogFormat string
	MaxRate   string
	Out, Err  io.Writer

	// now and openSource are injected by tests (time, an open store).
	now        func() time.Time
	openSource func(ctx context.Context, j *scheduler.Job) (source.Source, error)
}

func newRunCmd() *cobra.Command {
	var o runOpts
	c := &cobra.Command{
		Use:   "run --config FILE [--job NAME] [--dry-run] [--json]",
		Short: "Run the configured backup jobs that are due now (or the named one), once: for cron and systemd timers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			_, err := runRun(cmd.Context(), o)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Config, "config", "", "job configuration file (TOML)")
	f.StringVar(&o.Job, "job", "", "run this job now whatever its schedule")
	f.BoolVar(&o.DryRun, "dry-run", false, "show what would run (levels, promotions, destinations) without backing up")
	f.BoolVar(&o.JSON, "json", false, "print the run summary as JSON")
	f.StringVar(&o.Level, "level", "", "force the level: full, incremental, differential or copy (promotion still applies)")
	f.StringVar(&o.NotifyCmd, "notify-cmd", "", "command (sh -c) run after each job, on success and failure (overrides notify_cmd)")
	f.StringVar(&o.LogFormat, "log-format", "", "text or json (default: the config's log_format, else text)")
	f.StringVar(&o.MaxRate, "max-rate", "", "limit every job's read rate, e.g. 100MiB (per second; overrides max_rate)")
	return c
}

func loadSchedConfig(path string) (*scheduler.Config, error) {
	if path == "" {
		return nil, usagef("--config is required")
	}
	cfg, err := scheduler.LoadConfig(path)
	if err != nil {
		return nil, usagef(err.Error())
	}
	return cfg, nil
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usagef(fmt.Sprintf("--log-format %q: want text or json", format))
}

func newRunner(o runOpts, cfg *scheduler.Config) (*scheduler.Runner, error) {
	format := o.LogFormat
	if format == "" {
		format = cfg.LogFormat
	}
	log, err := newLogger(o.Err, format)
	if err != nil {
		return nil, err
	}
	if o.Level != "" {
		if _, err := scheduler.ParseLevel(o.Level); err != nil {
			return nil, usagef(err.Error())
		}
	}
	var maxRate int64
	if o.MaxRate != "" {
		if maxRate, err = parseSize("max-rate", o.MaxRate); err != nil {
			return nil, err
		}
	}
	return &scheduler.Runner{Config: cfg, Now: o.now, Log: log, Stderr: o.Err, NotifyCmd: o.NotifyCmd,
		Level: o.Level, DryRun: o.DryRun, OpenSource: o.openSource, MaxRate: maxRate}, nil
}

func runRun(ctx context.Context, o runOpts) (*scheduler.Summary, error) {
	cfg, err := loadSchedConfig(o.Config)
	if err != nil {
		return nil, err
	}
	r, err := newRunner(o, cfg)
	if err != nil {
		return nil, err
	}
	sum, err := r.Run(ctx, o.Job)
	if sum != nil {
		if o.JSON {
			err = errors.Join(err, writeJSON(o.Out, &runDoc{header("run"), sum}))
		} else {
			printRunSummary(o.Out, sum)
		}
	}
	return sum, err
}

func printRunSummary(w io.Writer, sum *scheduler.Summary) {
	ran := 0
	for _, j := range sum.Jobs {
		if j.Status == "not-due" {
			continue
		}
		ran++
		fmt.Fprintf(w, "job %s: %s (%s, %s)\n", j.Job, j.Status, j.Level, time.Duration(j.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
		if j.Error != "" && len(j.Groups) == 0 {
			fmt.Fprintf(w, "  error: %s\n", j.Error)
		}
		for _, g := range j.Groups {
			lvl := g.Level
			if g.Promoted != "" {
				lvl += " (promoted from " + g.Requested + ": " + g.Promoted + ")"
			}
			switch g.Status {
			case "failure":
				fmt.Fprintf(w, "  %s: %s FAILED: %s\n", g.Group, lvl, g.Error)
			case "planned":
				fmt.Fprintf(w, "  %s: %s -> %s\n", g.Group, lvl, g.Location)
			default:
				fmt.Fprintf(w, "  %s: %s set %s -> %s: logs %d-%d, %s -> %s (ratio %.2f)\n", g.Group, lvl, g.SetID, g.Location,
					g.LowGen, g.HighGen, humanize.IBytes(uint64(g.BytesIn)), humanize.IBytes(uint64(g.BytesOut)), g.Ratio)
			}
			if len(g.Expired) > 0 {
				fmt.Fprintf(w, "    expired %d set(s): %s\n", len(g.Expired), strings.Join(g.Expired, ", "))
			}
		}
	}
	if ran == 0 {
		fmt.Fprintln(w, "no job due")
	}
}
