package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
)

func newStoreCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "store",
		Short: "Create, load, inspect and recover an embedded store",
	}
	c.AddCommand(newStoreInitCmd(), newStoreLoadCmd(), newStoreHeaderCmd(), newStoreLogsCmd(),
		newStoreCheckCmd(), newStoreRecoverCmd(), newStoreDumpCmd())
	for _, add := range extraStoreCommands {
		c.AddCommand(add())
	}
	return c
}

var extraStoreCommands []func() *cobra.Command

// openGroup locks one storage group of the store at dir (commands on other
// groups, a restore of another group, may run beside it) and opens it
// (running recovery). The returned close function shuts it down cleanly.
func openGroup(dir, group string, opts engine.Options) (*engine.Group, func() error, error) {
	if dir == "" {
		return nil, nil, usagef("--dir is required")
	}
	if group == "" {
		return nil, nil, usagef("--group is required")
	}
	if err := engine.CheckGroup(dir, group); err != nil {
		return nil, nil, err
	}
	release, err := engine.LockGroup(dir, group)
	if err != nil {
		return nil, nil, err
	}
	notes, err := engine.ResolveSwitches(dir, group)
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "tapestream:", n)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	g, err := engine.OpenGroup(filepath.Join(dir, group), opts)
	if err != nil {
		release()
		return nil, nil, err
	}
	return g, func() error {
		err := g.Close()
		release()
		return err
	}, nil
}
