package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
)

type storeHeaderOpts struct {
	File string
	JSON bool
	Out  io.Writer
}

func newStoreHeaderCmd() *cobra.Command {
	var o storeHeaderOpts
	c := &cobra.Command{
		Use:   "header FILE.edb [--json]",
		Short: "Print a database header (like eseutil /mh)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File, o.Out = args[0], cmd.OutOrStdout()
			return runStoreHeader(cmd.Context(), o)
		},
	}
	c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return c
}

func runStoreHeader(_ context.Context, o storeHeaderOpts) error {
	h, err := engine.ReadHeader(nil, o.File)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.Out, &storeHeaderDoc{header("store header"), o.File, h})
	}
	printHeader(o.Out, o.File, h)
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "00/00/1900 00:00:00"
	}
	return t.UTC().Format("01/02/2006 15:04:05")
}

func fmtGens(lo, hi uint32) string {
	return fmt.Sprintf("%d-%d (0x%X-0x%X)", lo, hi, lo, hi)
}

func printHeader(w io.Writer, file string, h *engine.DBHeader) {
	kind := "Database"
	if h.File == "stm" {
		kind = "Streaming File"
	}
	fmt.Fprintf(w, "Database: %s\n\n", filepath.Base(file))
	row := func(k, v string) { fmt.Fprintf(w, "%24s: %s\n", k, v) }
	row("File Type", kind)
	row("Format Version", fmt.Sprint(h.FormatVersion))
	row("Name", h.Name)
	row("GUID", h.GUID)
	row("DB Signature", h.Signature)
	row("Log Signature", h.LogSignature)
	row("cbDbPage", fmt.Sprint(h.PageSize))
	row("dbtime", fmt.Sprintf("%d (0x%X)", h.DBTime, h.DBTime))
	row("State", h.State)
	if m := mountState(file, h); m != "" {
		// Not an eseutil field: the group's state of the database.
		row("Mount State", m)
	}
	row("Log Required", fmtGens(h.LogRequired.Min, h.LogRequired.Max))
	if h.Attach != nil {
		row("Attached At", fmt.Sprintf("generation %d offset %d (no earlier log record applies to this file)", h.Attach.Gen, h.Attach.Off))
	}
	row("Last Consistent", fmtTime(h.LastConsistent))
	row("Created", fmtTime(h.Created))
	section := func(name string, b *engine.BackupInfo) {
		fmt.Fprintf(w, "\n%s:\n", name)
		if !b.IsSet() {
			row("Log Gen", fmtGens(0, 0))
			row("Mark", fmtTime(time.Time{}))
			return
		}
		row("Log Gen", fmtGens(b.LowGen, b.HighGen))
		row("Mark", fmtTime(b.Time))
		if b.SetID != "" {
			row("Backup Set", b.SetID)
		}
	}
	section("Previous Full Backup", h.PreviousFull)
	section("Previous Incremental Backup", h.PreviousIncremental)
	section("Previous Differential Backup", h.PreviousDifferential)
	section("Previous Copy Backup", h.PreviousCopy)
	section("Current Full Backup", h.CurrentFull)
	// Not an eseutil field: the first generation this database needs on
	// disk, which decides what the next full or incremental truncates.
	fmt.Fprintln(w)
	if h.PendingLogFloor != 0 {
		row("Pending Log Floor", fmt.Sprintf("%d (0x%X), until `tapestream truncate` reads the set back", h.PendingLogFloor, h.PendingLogFloor))
	}
	if h.LogFloor != 0 {
		row("Log Floor", fmt.Sprintf("%d (0x%X)", h.LogFloor, h.LogFloor))
	} else {
		row("Log Floor", "none (no full or incremental backup)")
	}
	if h.PatchCurrentFull.IsSet() {
		section("Patch Current Full Backup", h.PatchCurrentFull)
	}
	fmt.Fprintln(w)
}

// dbSize sums the database and streaming files of a group directory.
func dbSize(dir, group string) int64 {
	var n int64
	ents, _ := os.ReadDir(filepath.Join(dir, group))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".edb") || strings.HasSuffix(e.Name(), ".stm") {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// mountState is the state the group.json beside file gives the database
// ("" when the file is not in a group directory).
func mountState(file string, h *engine.DBHeader) string {
	cfg, err := engine.ReadGroupConfig(filepath.Dir(file))
	if err != nil {
		return ""
	}
	for _, d := range cfg.Databases {
		if d.Name == h.Name && d.GUID == h.GUID {
			if d.Dismounted {
				return "Dismounted (storage group " + cfg.Name + ")"
			}
			return "Mounted (storage group " + cfg.Name + ")"
		}
	}
	return ""
}
