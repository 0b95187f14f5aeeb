package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() { extraCommands = append(extraCommands, newGenManCmd) }

// manDate is the date in the pages' header. A fixed date keeps `make man`
// reproducible (the same binary gives the same pages, byte for byte);
// SOURCE_DATE_EPOCH, which distribution builds set, takes precedence.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// newGenManCmd is the hidden `gen-man DIR` that `make man` runs: the pages
// come from the commands themselves (cobra's doc package), so a flag can
// never be missing from its page. It is a subcommand rather than a
// separate program because the command tree lives in package main.
func newGenManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages (tapestream.1, tapestream-backup.1, ...) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := genMan(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d man pages to %s\n", n, args[0])
			return nil
		},
	}
}

// genMan writes one page per command into dir and returns how many. It
// builds a fresh command tree, not the running one, so that the pages are
// the same however gen-man was invoked; the completion command cobra adds
// at run time is added here too, since users have it.
func genMan(dir string) (int, error) {
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Section: "1", Source: "tapestream", Manual: "tapestream manual"}
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		header.Date = &manDate
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return 0, fmt.Errorf("man pages in %s: %w", dir, err)
	}
	n := 0
	var count func(c *cobra.Command)
	count = func(c *cobra.Command) {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			return
		}
		n++
		for _, sub := range c.Commands() {
			count(sub)
		}
	}
	count(root)
	return n, nil
}
