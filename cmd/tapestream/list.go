package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/restore"
)

func init() { extraCommands = append(extraCommands, newListCmd) }

type listOpts struct {
	Set      string
	Read     readMediaFlags
	Identity identityFlags
	JSON     bool
	Out      io.Writer
}

func newListCmd() *cobra.Command {
	var o listOpts
	c := &cobra.Command{
		Use:   "list SET",
		Short: "Print a set's label, databases, log range, codec and members per volume",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Set, o.Out = args[0], cmd.OutOrStdout()
			return runList(cmd.Context(), o)
		},
	}
	o.Read.add(c)
	o.Identity.add(c)
	c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return c
}

func runList(ctx context.Context, o listOpts) error {
	ro, err := readOptions(ctx, o.Read, true, []string{o.Set})
	if err != nil {
		return err
	}
	if ro.Identities, err = o.Identity.load(); err != nil {
		return err
	}
	infos, _, err := restore.Verify(ctx, setSources([]string{o.Set}, o.Read.FileNumber), ro)
	if err != nil {
		return err
	}
	in := infos[0]
	if o.JSON {
		return writeJSON(o.Out, &listDoc{docHeader: header("list"), Label: in.Label, Manifest: in.Manifest})
	}
	l := in.Label
	pr := restore.Printable // a set is untrusted: its strings are shown escaped
	fmt.Fprintf(o.Out, "set %s\n  type: %s\n  storage group: %s\n  created: %s on %s\n  codec: %s, record size %d, frame size %d\n",
		pr(l.SetID), pr(string(l.SetType)), pr(l.StorageGroup), l.Created.Format("2006-01-02 15:04:05 MST"), pr(l.Host), pr(l.Codec), l.RecordSize, l.FrameSize)
	if l.PreviousSetID != "" {
		fmt.Fprintf(o.Out, "  continues set: %s\n", pr(l.PreviousSetID))
	}
	if e := l.Encryption; e != nil {
		fmt.Fprintf(o.Out, "  encrypted (%s, %d recipients): %s\n", e.Scheme, len(e.Recipients), e.RecipientList())
		if in.Sealed {
			fmt.Fprintf(o.Out, "  contents not checked (no identity: --identity shows the header snapshots and checks pages, logs and digests)\n")
		}
	} else {
		fmt.Fprintf(o.Out, "  encryption: none\n")
	}
	chain := "start of a chain"
	switch l.SetType {
	case ese.Incremental:
		chain = "incremental: restore after its full and earlier incrementals"
	case ese.Differential:
		chain = "differential: restore after its full"
	case ese.Copy:
		chain = "copy: stands alone (does not start a chain for incrementals)"
	}
	fmt.Fprintf(o.Out, "  chain position: %s\n", chain)
	m := in.Manifest
	if m == nil {
		fmt.Fprintf(o.Out, "  no manifest: the set is incomplete or damaged\n")
		return &corruptionError{"set has no manifest"}
	}
	fmt.Fprintf(o.Out, "  logs: generations %d-%d\n", m.Info.LogFirst, m.Info.LogLast)
	fmt.Fprintf(o.Out, "  files:\n")
	for _, f := range m.Files {
		extra := ""
		if len(f.DBHeader) > 0 {
			if h, err := engine.ParseHeaderPages(f.Name, f.DBHeader); err == nil {
				extra = fmt.Sprintf("  database %s, state %s", h.Name, h.State)
			}
		}
		fmt.Fprintf(o.Out, "    %-22s %-9s %10s -> %10s  %d chunks%s\n", pr(f.Name), pr(f.Kind), humanize.IBytes(uint64(f.Size)), humanize.IBytes(uint64(f.StoredBytes)), f.Chunks, extra)
	}
	fmt.Fprintf(o.Out, "  totals: %d files, %s stored as %s\n", m.Totals.Files, humanize.IBytes(uint64(m.Totals.Bytes)), humanize.IBytes(uint64(m.Totals.StoredBytes)))
	for _, v := range m.Volumes {
		fmt.Fprintf(o.Out, "  volume %d: %d members: %s\n", v.Volume, len(v.Members), pr(strings.Join(v.Members, " ")))
	}
	if len(in.Problems) > 0 {
		for _, p := range in.Problems {
			fmt.Fprintf(o.Out, "  PROBLEM %s\n", p)
		}
		return &corruptionError{"set is damaged"}
	}
	return nil
}
