// Command tapestream takes online, streaming backups of an ESE-style
// storage engine into tar-compatible backup sets, and restores them.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
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
	root.AddCommand(newStoreCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// extraCommands are registered by the files that implement them.
var extraCommands []func() *cobra.Command

// printJSON writes v as indented JSON: every --json output goes through it.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
