package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
)

type storeRecoverOpts struct {
	Dir   string
	Group string
	Out   io.Writer
}

func newStoreRecoverCmd() *cobra.Command {
	var o storeRecoverOpts
	c := &cobra.Command{
		Use:   "recover --dir DIR --group SG1",
		Short: "Run recovery (replay the logs from the checkpoint) and report the range",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreRecover(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	return c
}

func runStoreRecover(_ context.Context, o storeRecoverOpts) error {
	g, closeFn, err := openGroup(o.Dir, o.Group, engine.Options{})
	if err != nil {
		return err
	}
	ri := g.Recovery()
	if err := closeFn(); err != nil {
		return err
	}
	if ri.Clean {
		fmt.Fprintf(o.Out, "%s: clean, nothing to replay (log generation %d)\n", o.Group, ri.ToGen)
		return nil
	}
	fmt.Fprintf(o.Out, "%s: replayed generations %d-%d: %d records, %d commits, %d bytes in %s\n",
		o.Group, ri.FromGen, ri.ToGen, ri.Records, ri.Commits, ri.LogBytes, ri.Duration)
	return nil
}
