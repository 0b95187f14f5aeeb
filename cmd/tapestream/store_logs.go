package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
)

type storeLogsOpts struct {
	Dir    string
	Group  string
	JSON   bool
	Remote remoteFlags
	Out    io.Writer
}

func newStoreLogsCmd() *cobra.Command {
	var o storeLogsOpts
	c := &cobra.Command{
		Use:   "logs --dir DIR --group SG1 [--json] | --server URL --group SG1",
		Short: "List log generations, verify every record checksum (like eseutil /ml) and say what keeps each from being truncated",
		Long: `List the log generations of a storage group, verify every record and the
generation chain (like eseutil /ml), and explain GetTruncateLogFiles: per
generation, what keeps it on disk (the checkpoint, a database's last full or
incremental backup, a dismounted or never backed up database), and which
backup taken now would truncate it (a full, an incremental, a full of one
database alone). With --server the server answers the explanation (the log
files are on its host and are not read).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreLogs(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().BoolVar(&o.JSON, "json", false, "print the truncation report as JSON")
	addRemoteFlags(c, &o.Remote)
	return c
}

func runStoreLogs(ctx context.Context, o storeLogsOpts) error {
	if o.Remote.Server != "" {
		if o.Dir != "" {
			return usagef("--dir and --server: give one")
		}
		r, err := o.Remote.open()
		if err != nil {
			return err
		}
		defer r.Close()
		rep, err := r.LogReport(ctx, o.Group)
		if err != nil {
			return err
		}
		if o.JSON {
			return writeJSON(o.Out, &storeLogsDoc{header("store logs"), rep})
		}
		for _, g := range rep.Gens {
			fmt.Fprintf(o.Out, "%s  gen %d (0x%X)\n", g.File, g.Gen, g.Gen)
			printHolds(o.Out, g)
		}
		printBackupsNow(o.Out, rep)
		return nil
	}
	if o.Dir == "" {
		return usagef("--dir is required")
	}
	gdir := filepath.Join(o.Dir, o.Group)
	cfgs, err := engine.ListGroups(o.Dir)
	if err != nil {
		return err
	}
	prefix := ""
	for _, c := range cfgs {
		if c.Name == o.Group {
			prefix = c.Prefix()
		}
	}
	if prefix == "" {
		return engine.CheckGroup(o.Dir, o.Group)
	}
	rep, err := engine.ReadLogReport(gdir)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.Out, &storeLogsDoc{header("store logs"), rep})
	}
	byGen := map[uint32]engine.GenReport{}
	for _, g := range rep.Gens {
		byGen[g.Gen] = g
	}
	// The chain check (consecutive generations, signatures, creation
	// times) names the first bad or missing generation.
	res, err := wal.Scan(vfs.OS, wal.ScanOptions{Dirs: []string{gdir}, Prefix: prefix}, nil)
	for _, gi := range res.Gens {
		state := "OK"
		if !gi.Complete {
			state = "current"
		}
		fmt.Fprintf(o.Out, "%s  gen %d (0x%X)  created %s  records %d  bytes %d  %s\n",
			filepath.Base(gi.File), gi.Header.Gen, gi.Header.Gen, time.Unix(0, gi.Header.Created).UTC().Format(time.RFC3339),
			gi.Records, gi.Bytes, state)
		if g, ok := byGen[gi.Header.Gen]; ok {
			printHolds(o.Out, g)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%d generations verified, no damage\n", len(res.Gens))
	printBackupsNow(o.Out, rep)
	return nil
}

// printHolds prints what keeps a generation and what would free it.
func printHolds(w io.Writer, g engine.GenReport) {
	var kept []string
	for _, h := range g.KeptBy {
		switch h.Reason {
		case "checkpoint":
			kept = append(kept, "the checkpoint (crash recovery starts there)")
		case "backup":
			kept = append(kept, fmt.Sprintf("%s (its last backup needs generations from %d)", h.Database, h.Floor))
		case "dismounted":
			kept = append(kept, h.Database+" (dismounted: nothing is truncated)")
		case "never-backed-up":
			kept = append(kept, h.Database+" (never backed up: nothing is truncated)")
		}
	}
	if len(kept) == 0 {
		kept = []string{"nothing (the next full or incremental deletes it)"}
	}
	fmt.Fprintf(w, "    kept by: %s\n", strings.Join(kept, "; "))
	if len(g.FreedBy) > 0 {
		fmt.Fprintf(w, "    a backup now deletes it: %s\n", strings.Join(g.FreedBy, ", "))
	}
}

// printBackupsNow says what each backup taken now would truncate.
func printBackupsNow(w io.Writer, rep *engine.LogReport) {
	fmt.Fprintf(w, "checkpoint at generation %d; what a backup now truncates (GetTruncateLogFiles):\n", rep.Checkpoint)
	first := uint32(0)
	if len(rep.Gens) > 0 && !rep.Gens[0].Current {
		first = rep.Gens[0].Gen
	}
	for _, b := range rep.Backups {
		switch {
		case b.Refused != "":
			fmt.Fprintf(w, "  %s: refused: %s\n", b.Name, b.Refused)
		case first == 0 || b.Below <= first:
			fmt.Fprintf(w, "  %s: nothing\n", b.Name)
		default:
			fmt.Fprintf(w, "  %s: generations %d-%d\n", b.Name, first, b.Below-1)
		}
	}
}
