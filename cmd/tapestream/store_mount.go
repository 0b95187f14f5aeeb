package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
)

type storeMountOpts struct {
	Dir      string
	Group    string
	Database string
	Mount    bool
	Remote   remoteFlags
	Out      io.Writer
}

func init() {
	extraStoreCommands = append(extraStoreCommands, func() *cobra.Command { return newStoreMountCmd(true) }, func() *cobra.Command { return newStoreMountCmd(false) })
}

func newStoreMountCmd(mount bool) *cobra.Command {
	o := storeMountOpts{Mount: mount}
	name, short := "mount", "Mount a dismounted database (its group keeps running)"
	if !mount {
		name, short = "dismount", "Dismount a database: its group keeps running on the others; kept when the group reopens"
	}
	c := &cobra.Command{
		Use:   name + " --dir DIR --group SG1 --database NAME | --server URL --group SG1 --database NAME",
		Short: short,
		Long: short + `.

A dismounted database's pages are written, its header says Clean Shutdown
and its files are closed (they may be copied or replaced); the state is kept
in the group's group.json, so the group reopens with it dismounted. While a
database is dismounted no log of its group is truncated (its header is not
read). Mount checks the files (this group's database, consistent) and opens
them again. Both are refused during a backup of the group (-505). With
--server the store server does it on the group it serves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreMount(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().StringVar(&o.Database, "database", "", "the database")
	addRemoteFlags(c, &o.Remote)
	return c
}

func runStoreMount(ctx context.Context, o storeMountOpts) error {
	if o.Database == "" {
		return usagef("--database is required")
	}
	var gi *engine.GroupInfo
	if o.Remote.Server != "" {
		if o.Dir != "" {
			return usagef("--dir and --server: give one")
		}
		r, err := o.Remote.open()
		if err != nil {
			return err
		}
		defer r.Close()
		if gi, err = r.Mount(ctx, o.Group, o.Database, o.Mount); err != nil {
			return err
		}
	} else {
		g, closeFn, err := openGroup(o.Dir, o.Group, engine.Options{})
		if err != nil {
			return err
		}
		if o.Mount {
			err = g.Mount(o.Database)
		} else {
			err = g.Dismount(o.Database)
		}
		info := g.Info()
		if cerr := closeFn(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		gi = &info
	}
	for _, d := range gi.Databases {
		state := "mounted"
		if !d.Mounted {
			state = "dismounted"
		}
		fmt.Fprintf(o.Out, "%s/%s: %s\n", gi.Name, d.Name, state)
	}
	return nil
}
