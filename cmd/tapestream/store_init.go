package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
)

type storeInitOpts struct {
	Dir       string
	Groups    []string
	Databases string
	LogSize   string
	Circular  bool
	Streaming bool
	Out       io.Writer
}

func newStoreInitCmd() *cobra.Command {
	var o storeInitOpts
	c := &cobra.Command{
		Use:   "init --dir DIR [--group NAME]... [--databases NAME,NAME] [--log-size SIZE] [--circular-logging] [--stm]",
		Short: "Create a store with storage groups and databases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreInit(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringArrayVar(&o.Groups, "group", nil, "storage group to create (repeatable; default SG1)")
	c.Flags().StringVar(&o.Databases, "databases", "Mailbox1,Public", "databases of each group, comma separated")
	c.Flags().StringVar(&o.LogSize, "log-size", "1MiB", "size of one log generation")
	c.Flags().BoolVar(&o.Circular, "circular-logging", false, "delete closed logs behind the checkpoint (no incremental/differential backups)")
	c.Flags().BoolVar(&o.Streaming, "stm", false, "give every database a .stm streaming file for large message bodies")
	return c
}

func runStoreInit(_ context.Context, o storeInitOpts) error {
	if o.Dir == "" {
		return usagef("--dir is required")
	}
	if len(o.Groups) == 0 {
		o.Groups = []string{"SG1"}
	}
	logSize, err := parseSize("log-size", o.LogSize)
	if err != nil {
		return err
	}
	var dbs []string
	for _, d := range strings.Split(o.Databases, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dbs = append(dbs, d)
		}
	}
	if len(dbs) == 0 {
		return usagef("--databases names no database")
	}
	var specs []engine.GroupSpec
	for _, g := range o.Groups {
		specs = append(specs, engine.GroupSpec{Name: g, Databases: dbs, Streaming: o.Streaming, LogSize: logSize, CircularLogging: o.Circular})
	}
	if err := engine.InitStore(o.Dir, specs, engine.Options{}); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "created store %s: groups %s, databases %s\n", o.Dir, strings.Join(o.Groups, ","), strings.Join(dbs, ","))
	return nil
}
