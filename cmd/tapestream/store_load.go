package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/workload"
)

type storeLoadOpts struct {
	Dir      string
	Group    string
	Size     string
	Duration time.Duration
	Seed     uint64
	Streams  int
	Remote   remoteFlags // --server: run the workload through a store server
	Out      io.Writer
}

func newStoreLoadCmd() *cobra.Command {
	var o storeLoadOpts
	c := &cobra.Command{
		Use:   "load --dir DIR --group SG1 [--size 256MiB | --duration 30s] [--seed N]",
		Short: "Run the mail workload until the databases reach a size or time is up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreLoad(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().StringVar(&o.Size, "size", "", "stop when the group's database files reach this size")
	c.Flags().DurationVar(&o.Duration, "duration", 0, "stop after this long")
	c.Flags().Uint64Var(&o.Seed, "seed", 1, "workload seed (content and transaction mix)")
	c.Flags().IntVar(&o.Streams, "streams", 8, "concurrent workload streams")
	addRemoteFlags(c, &o.Remote)
	return c
}

func runStoreLoad(ctx context.Context, o storeLoadOpts) error {
	if o.Size == "" && o.Duration == 0 {
		return usagef("give --size or --duration")
	}
	var target int64
	if o.Size != "" {
		var err error
		if target, err = parseSize("size", o.Size); err != nil {
			return err
		}
	}
	if o.Remote.Server != "" {
		return runStoreLoadRemote(ctx, o, target)
	}
	g, closeFn, err := openGroup(o.Dir, o.Group, engine.Options{})
	if err != nil {
		return err
	}
	st, runErr := workload.Run(ctx, mailstore.New(g), workload.RunOptions{
		Workload:   workload.Workload{Seed: o.Seed, Streams: o.Streams, Databases: g.Databases()},
		SizeFunc:   g.DatabaseSize,
		TargetSize: target,
		Duration:   o.Duration,
	})
	if err := closeFn(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	secs := st.Elapsed.Seconds()
	fmt.Fprintf(o.Out, "loaded %s: %d transactions, %s of mail in %s (%s/s, %.0f tx/s); databases now %s\n",
		o.Group, st.Txns, humanize.IBytes(uint64(st.Bytes)), st.Elapsed.Round(time.Millisecond),
		humanize.IBytes(uint64(float64(st.Bytes)/max(secs, 1e-9))), float64(st.Txns)/max(secs, 1e-9),
		humanize.IBytes(uint64(dbSize(o.Dir, o.Group))))
	return runErr
}
