package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/ese"
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
	Catalog  string // verify cataloged sets: SET-IDs, or the chain of --group as of --at
	Group    string
	At       string
	Out      io.Writer
	Err      io.Writer
}

func newVerifyCmd() *cobra.Command {
	var o verifyOpts
	c := &cobra.Command{
		Use:   "verify SET...|--catalog FILE (SET-ID...|--group G [--at TIME])",
		Short: "Read sets completely and verify frames, checksums, pages, hashes, logs and the chain",
		Long: `Reads sets completely and verifies every frame, checksum, page, log, file digest and the chain.
With --catalog the sets are found in the catalog, by id or as the chain a restore of --group
(as of --at) would read; tape sets' cartridges are asked for by label, and a wrong one is refused.
An encrypted set is decrypted with --identity (or $TAPESTREAM_AGE_IDENTITY_FILE) and verified
the same way. Without an identity its structure and every byte of its ciphertext are checked
against the checksums in its member records, and damage is reported with the file ranges it
costs, but its contents are not: --deep makes that an error instead.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Catalog != "" && o.Group != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.MinimumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Sets, o.Out, o.Err = args, cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runVerify(cmd.Context(), o)
		},
	}
	o.Read.add(c)
	o.Identity.add(c)
	c.Flags().BoolVar(&o.Deep, "deep", false, "fail on an encrypted set no identity decrypts, rather than checking only its ciphertext")
	c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON report")
	c.Flags().StringVar(&o.Catalog, "catalog", "", "find the sets in this catalog (SET-ID arguments, or --group)")
	c.Flags().StringVar(&o.Group, "group", "", "with --catalog: verify the chain a restore of this storage group would read")
	c.Flags().StringVar(&o.At, "at", "", "with --catalog --group: as of this RFC 3339 time (default: newest)")
	return c
}

// verifySources finds the sets to verify in the catalog.
func verifySources(o verifyOpts) ([]restore.SetSource, error) {
	if o.Group != "" {
		return restoreFromCatalog(restoreOpts{Catalog: o.Catalog, Group: o.Group, At: o.At, Err: o.Err})
	}
	cat, err := catalog.OpenExisting(o.Catalog)
	if err != nil {
		return nil, err
	}
	var sets []*catalog.Set
	for _, id := range o.Sets {
		s, err := cat.GetSet(id)
		if err != nil {
			return nil, usagef(err.Error())
		}
		if _, ok := catalog.Available(s); !ok {
			return nil, usagef(fmt.Sprintf("set %s: %s, and no copy of it is there either", s.ID, strings.Join(s.Location.Paths, ", ")))
		}
		sets = append(sets, s)
	}
	return catalogSources(sets, o.Err), nil
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
	// Encrypted sets: the recipients; Sealed when read without an
	// identity (ciphertext verified, contents not).
	Encryption *tapeformat.Encryption `json:"encryption,omitempty"`
	Sealed     bool                   `json:"sealed,omitempty"`
}

func runVerify(ctx context.Context, o verifyOpts) error {
	ro, err := readOptions(ctx, o.Read, true, o.Sets)
	if err != nil {
		return err
	}
	if ro.Identities, err = o.Identity.load(); err != nil {
		return err
	}
	ro.Deep = o.Deep
	ro.Sink.Stderr = o.Err
	srcs := setSources(o.Sets, o.Read.FileNumber)
	if o.Catalog != "" {
		if srcs, err = verifySources(o); err != nil {
			return err
		}
	} else if o.Group != "" || o.At != "" {
		return usagef("--group and --at select sets in a catalog: give --catalog")
	}
	infos, chain, err := restore.Verify(ctx, srcs, ro)
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
		if err := writeJSON(o.Out, &verifyDoc{header("verify"), &rep}); err != nil {
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
