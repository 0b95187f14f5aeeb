// Command tapestream takes online, streaming backups of an ESE-style
// storage engine into tar-compatible backup sets, and restores them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := execute(ctx, root)
	stopProfile() // also after a failure: the profile of a failed run is wanted too
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapestream:", err)
	}
	os.Exit(exitCode(ctx, err))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tapestream",
		Short:         "Online streaming backups of an ESE-style store to tar-compatible sets on files, tape or stdout",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A CPU profile of any command: where a backup or restore spends its
	// time on the user's own machine and data (go tool pprof FILE).
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file")
	root.PersistentFlags().MarkHidden("cpuprofile")
	var memProfile string
	root.PersistentFlags().StringVar(&memProfile, "memprofile", "", "write an allocation profile of the command to this file")
	root.PersistentFlags().MarkHidden("memprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if memProfile != "" {
			stopMem := func() {
				runtime.GC() // the profile shows allocations up to the last collection
				if f, err := os.Create(memProfile); err == nil {
					pprof.Lookup("allocs").WriteTo(f, 0)
					f.Close()
				}
			}
			prev := stopProfile
			stopProfile = func() { prev(); stopMem() }
		}
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		prev := stopProfile
		stopProfile = func() {
			pprof.StopCPUProfile()
			f.Close()
			prev()
		}
		return pprof.StartCPUProfile(f)
	}
	root.AddCommand(newStoreCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// execute runs the command line. An error that did not come from a
// command's own work (an unknown command or flag, a wrong number of
// arguments: cobra's parsing) is a usage error, decided by where it came
// from rather than by its text.
func execute(ctx context.Context, root *cobra.Command) error {
	ran := false
	var mark func(c *cobra.Command)
	mark = func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				ran = true
				return run(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			mark(sub)
		}
	}
	mark(root)
	c, err := root.ExecuteContextC(ctx)
	if err != nil && !ran && !isUsage(err) {
		err = &usageError{err.Error()}
	}
	if err != nil && ctx.Err() != nil {
		err = interrupted(c, err)
	}
	return err
}

// stopProfile ends the --cpuprofile profile and writes the --memprofile
// one, if they were asked for.
var stopProfile = func() {}

// extraCommands are registered by the files that implement them.
var extraCommands []func() *cobra.Command
