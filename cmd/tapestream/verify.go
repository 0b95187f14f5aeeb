package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/tapeformat"
)

func init() { extraCommands = append(extraCommands, newVerifyCmd) }

type verifyOpts struct {
	Sets     []string
	Read     readMediaFlags
	Identity identityFlags
	Deep     bool
	JSON     bool
	Out      io.Writer
}

func newVerifyCmd() *cobra.Command {
	var o verifyOpts
	c := &cobra.Command{
		Use:   "verify SET...",
		Short: "Read sets completely and verify frames, checksums, pages, hashes, logs and the chain",
		Long: `Reads sets completely and verifies every frame, checksum, page, log, file digest and the chain.
An encrypted set is decrypted with --identity (or $TAPESTREAM_AGE_IDENTITY_FILE) and verified
the same way. Without an identity its structure and every byte of its ciphertext are checked
against the checksums in its member records, and damage is reported with the file ranges it
costs, but its contents are not: --deep makes that an error instead.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Sets, o.Out = args, cmd.OutOrStdout()
			return runVerify(cmd.Context(), o)
		},
	}
	o.Read.add(c)
	o.Identity.add(c)
	c.Flags().BoolVar(&o.Deep, "deep", false, "fail on an encrypted set no identity decrypts, rather than checking only its ciphertext")
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
	Type     string            `json:"type"`
	Group    string            `json:"group"`
	Files    int               `json:"files"`
	Bytes    int64             `json:"bytes"`
	LogFirst uint32            `json:"log_first_generation"`
	LogLast  uint32            `json:"log_last_generation"`
	Problems []restore.Problem `json:"problems,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	// Encrypted sets: the recipients; Sealed when read without an
	// identity (ciphertext verified, contents not).
	Encryption *tapeformat.Encryption `json:"encryption,omitempty"`
	Sealed     bool                   `json:"sealed,omitempty"`
}

func runVerify(ctx context.Context, o verifyOpts) error {
	ro, err := readOptions(o.Read, true)
	if err != nil {
		return err
	}
	if ro.Identities, err = o.Identity.load(); err != nil {
		return err
	}
	ro.Deep = o.Deep
	infos, chain, err := restore.Verify(ctx, setSources(o.Sets, o.Read.FileNumber), ro)
	if err != nil {
		return err
	}
	rep := verifyReport{Chain: chain, OK: len(chain) == 0}
	for _, in := range infos {
		lo, hi := in.LogRange()
		vs := verifySet{Path: in.Source.Path, SetID: in.Label.SetID, Type: in.Label.SetType, Group: in.Label.StorageGroup,
			Files: len(in.Files), LogFirst: lo, LogLast: hi, Problems: in.Problems, Warnings: in.Warnings,
			Encryption: in.Label.Encryption, Sealed: in.Sealed}
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
			if s.Sealed {
				state += " (encrypted: structure and ciphertext verified; contents not checked without --identity)"
			}
			fmt.Fprintf(o.Out, "%s: %s %s set %s of %s, %d files, %d bytes, logs %d-%d: %s\n", s.Path, "tapestream", s.Type, s.SetID, s.Group, s.Files, s.Bytes, s.LogFirst, s.LogLast, state)
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
