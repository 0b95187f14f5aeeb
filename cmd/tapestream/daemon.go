package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newDaemonCmd) }

func newDaemonCmd() *cobra.Command {
	var o runOpts
	c := &cobra.Command{
		Use:   "daemon --config FILE",
		Short: "Run the configured backup jobs on their schedules in one long-lived process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runDaemon(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.Config, "config", "", "job configuration file (TOML)")
	f.StringVar(&o.NotifyCmd, "notify-cmd", "", "command (sh -c) run after each job, on success and failure (overrides notify_cmd)")
	f.StringVar(&o.LogFormat, "log-format", "", "text or json (default: the config's log_format, else text)")
	f.StringVar(&o.MaxRate, "max-rate", "", "limit every job's read rate, e.g. 100MiB (per second; overrides max_rate)")
	return c
}

// runDaemon returns when ctx is done (SIGINT/SIGTERM) and the running jobs
// have stopped; a clean stop is not an error.
func runDaemon(ctx context.Context, o runOpts) error {
	cfg, err := loadSchedConfig(o.Config)
	if err != nil {
		return err
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	r, err := newRunner(o, cfg)
	if err != nil {
		return err
	}
	return r.Daemon(ctx)
}
