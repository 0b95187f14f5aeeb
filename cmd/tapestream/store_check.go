package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/workload"
)

type storeCheckOpts struct {
	Dir     string
	Group   string
	NoModel bool
	Out     io.Writer
}

func newStoreCheckCmd() *cobra.Command {
	var o storeCheckOpts
	c := &cobra.Command{
		Use:   "check --dir DIR --group SG1",
		Short: "Verify every page checksum, the B+tree invariants and the workload model",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreCheck(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().BoolVar(&o.NoModel, "no-model", false, "skip the workload model check")
	return c
}

func runStoreCheck(ctx context.Context, o storeCheckOpts) error {
	g, closeFn, err := openGroup(o.Dir, o.Group, engine.Options{})
	if err != nil {
		return err
	}
	defer closeFn()
	return checkGroup(ctx, g, o.Out, !o.NoModel)
}

// checkGroup runs the structural check and, if the group holds workload
// data, the model check.
func checkGroup(ctx context.Context, g *engine.Group, out io.Writer, model bool) error {
	r, err := g.Check()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d pages verified, %d tables, %d entries\n", g.Name(), r.Pages, r.Tables, r.Entries)
	if !r.OK() {
		return &corruptionError{fmt.Sprintf("storage group %s: %d problems:\n  %s", g.Name(), len(r.Problems), strings.Join(r.Problems, "\n  "))}
	}
	if !model {
		return nil
	}
	rep, err := workload.Verify(ctx, mailstore.New(g))
	if errors.Is(err, workload.ErrNoParams) {
		fmt.Fprintf(out, "%s: no workload data, model check skipped\n", g.Name())
		return nil
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return &corruptionError{fmt.Sprintf("storage group %s: workload model: %v", g.Name(), rep.Err())}
	}
	fmt.Fprintf(out, "%s: workload model OK: %d streams, %d keys, seqs %v\n", g.Name(), len(rep.Seqs), rep.Keys, rep.Seqs)
	return nil
}
