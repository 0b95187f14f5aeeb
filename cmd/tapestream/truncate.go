package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/restore"
)

func init() { extraCommands = append(extraCommands, newTruncateCmd) }

// truncateOpts: truncate, later, the logs of a backup taken without
// truncation (a set written to a pipe), once the stored set is read back.
type truncateOpts struct {
	Source sourceFlags
	Group  string
	Set    string
	Read   readMediaFlags
	JSON   bool
	Out    io.Writer
}

func newTruncateCmd() *cobra.Command {
	var o truncateOpts
	c := &cobra.Command{
		Use:   "truncate --store DIR|--server URL --group SG1 SET",
		Short: "Truncate the logs a stored full or incremental made unnecessary, after reading the set back and verifying it",
		Long: `A backup written to a pipe (-o -) truncates no log: its consumer's durability is out of
sight. Once the set is stored (on tape, in a file), truncate reads it back completely, verifies
every chunk, page and log, checks that it is the group's most recent full or incremental as the
database headers record it, and only then deletes the logs it made unnecessary.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Set, o.Out = args[0], cmd.OutOrStdout()
			return runTruncate(cmd.Context(), o)
		},
	}
	o.Source.add(c)
	o.Read.add(c)
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return c
}

func runTruncate(ctx context.Context, o truncateOpts) error {
	ro, err := readOptions(ctx, o.Read, false, []string{o.Set})
	if err != nil {
		return err
	}
	infos, _, err := restore.Verify(ctx, setSources([]string{o.Set}, o.Read.FileNumber), ro)
	if err != nil {
		return err
	}
	in := infos[0]
	if len(in.Problems) > 0 {
		return &corruptionError{fmt.Sprintf("set %s fails verification (%s): no log is truncated", o.Set, in.Problems[0])}
	}
	if in.Manifest == nil {
		return &corruptionError{fmt.Sprintf("set %s is incomplete (no manifest): no log is truncated", o.Set)}
	}
	l := in.Label
	if l.StorageGroup != o.Group {
		return usagef(fmt.Sprintf("set %s is a backup of storage group %s, not %s", o.Set, l.StorageGroup, o.Group))
	}
	var names []string
	if o.Source.Remote.Server != "" {
		r, err := o.Source.Remote.open()
		if err != nil {
			return err
		}
		defer r.Close()
		if names, err = r.TruncateAfter(ctx, o.Group, l.SetID); err != nil {
			return err
		}
	} else {
		if o.Source.Store == "" {
			return usagef("--store (or --server) is required")
		}
		srv, err := engine.OpenServer(o.Source.Store, engine.Options{})
		if err != nil {
			return err
		}
		defer srv.Close()
		g, err := srv.Group(o.Group)
		if err != nil {
			return err
		}
		if g.Config().Signature != l.GroupSignature {
			return fmt.Errorf("set %s belongs to another storage group named %s (signature %s, the store's is %s)", o.Set, o.Group, l.GroupSignature, g.Config().Signature)
		}
		if names, err = g.TruncateAfter(l.SetID); err != nil {
			return err
		}
	}
	if o.JSON {
		return writeJSON(o.Out, &truncateDoc{docHeader: header("truncate"), SetID: l.SetID, Group: o.Group, TruncatedLogs: nonNil(names)})
	}
	fmt.Fprintf(o.Out, "set %s of %s verified; truncated %d logs", l.SetID, o.Group, len(names))
	if len(names) > 0 {
		fmt.Fprintf(o.Out, ": %s .. %s", names[0], names[len(names)-1])
	}
	fmt.Fprintln(o.Out)
	return nil
}
