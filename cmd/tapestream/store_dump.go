package main

import (
	"bufio"
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
)

type storeDumpOpts struct {
	Dir      string
	Group    string
	Database string
	Out      io.Writer
}

func newStoreDumpCmd() *cobra.Command {
	var o storeDumpOpts
	c := &cobra.Command{
		Use:   "dump --dir DIR --group SG1 [--database NAME]",
		Short: "Print a deterministic logical listing (db, table, key, length, SHA-256) for diff",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreDump(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().StringVar(&o.Database, "database", "", "only this database")
	return c
}

func runStoreDump(_ context.Context, o storeDumpOpts) error {
	g, closeFn, err := openGroup(o.Dir, o.Group, engine.Options{})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(o.Out, 1<<16)
	err = g.Dump(bw, o.Database)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	return err
}
