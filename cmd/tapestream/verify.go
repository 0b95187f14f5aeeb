package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/restore"
)

func init() { extraCommands = append(extraCommands, newVerifyCmd) }

type verifyOpts struct {
	Sets []string
	Read readMediaFlags
	JSON bool
	Out  io.Writer
}

func newVerifyCmd() *cobra.Command {
	var o verifyOpts
	c := &cobra.Command{
		Use:   "verify SET...",
		Short: "Read sets completely and verify frames, checksums, pages, hashes, logs and the chain",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Sets, o.Out = args, cmd.OutOrStdout()
			return runVerify(cmd.Context(), o)
		},
	}
	o.Read.add(c)
	c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON report")
	return c
}

type verifyReport struct {
	Sets  []verifySet `json:"sets"`
	Chain []string    `json:"chain_problems,omitempty"`
	OK    bool        `json:"ok"`
}

type verifySet struct {
	Path     string            `json:"path"`
	SetID    string            `json:"set_id"`
	Type     ese.BackupType    `json:"type"`
	Group    string            `json:"group"`
	Files    int               `json:"files"`
	Bytes    int64             `json:"bytes"`
	LogFirst uint32            `json:"log_first_generation"`
	LogLast  uint32            `json:"log_last_generation"`
	Problems []restore.Problem `json:"problems,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
}

func runVerify(ctx context.Context, o verifyOpts) error {
	ro, err := readOptions(ctx, o.Read, true)
	if err != nil {
		return err
	}
	infos, chain, err := restore.Verify(ctx, setSources(o.Sets, o.Read.FileNumber), ro)
	if err == nil {
		// An interrupted read is not a verdict: the cancellation shows up
		// as a problem of the set being read, which is not damage.
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	rep := verifyReport{Chain: chain, OK: len(chain) == 0}
	for _, in := range infos {
		lo, hi := in.LogRange()
		vs := verifySet{Path: in.Source.Path, SetID: in.Label.SetID, Type: in.Label.SetType, Group: in.Label.StorageGroup,
			Files: len(in.Files), LogFirst: lo, LogLast: hi, Problems: in.Problems, Warnings: in.Warnings}
		if in.Manifest != nil {
			vs.Bytes = in.Manifest.Totals.Bytes
		}
		if len(in.Problems) > 0 {
			rep.OK = false
		}
		rep.Sets = append(rep.Sets, vs)
	}
	if o.JSON {
		if err := printJSON(o.Out, rep); err != nil {
			return err
		}
	} else {
		for _, s := range rep.Sets {
			state := "OK"
			if len(s.Problems) > 0 {
				state = fmt.Sprintf("DAMAGED (%d problems)", len(s.Problems))
			}
			fmt.Fprintf(o.Out, "%s: %s %s set %s of %s, %d files, %d bytes, logs %d-%d: %s\n", s.Path, "tapestream", restore.Printable(string(s.Type)), restore.Printable(s.SetID), restore.Printable(s.Group), s.Files, s.Bytes, s.LogFirst, s.LogLast, state)
			for _, w := range s.Warnings {
				fmt.Fprintf(o.Out, "  warning: %s\n", w)
			}
			for _, p := range s.Problems {
				fmt.Fprintf(o.Out, "  %s\n", p)
			}
		}
		for _, c := range rep.Chain {
			fmt.Fprintf(o.Out, "chain: %s\n", c)
		}
	}
	if !rep.OK {
		return &corruptionError{"verification failed"}
	}
	return nil
}
