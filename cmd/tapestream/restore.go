package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/storeapi"
)

func init() { extraCommands = append(extraCommands, newRestoreCmd) }

type restoreOpts struct {
	Sets           []string
	To             string
	Group          string
	NoRecover      bool
	Until          string
	Force          bool
	AcceptDataLoss bool
	Salvage        bool
	Read           readMediaFlags
	Identity       identityFlags
	JSON           bool
	Catalog        string // catalog_cmd.go: restore the chain the catalog picks
	At             string
	FromGroup      string
	Remote         remoteFlags // --server: the server restores sets from its restore directory
	Replace        bool        // with --server: into the live group the server owns
	CacheSize      string      // the recovery's buffer cache
	DropDatabases  []string    // databases a restore of the whole group may drop
	Out, Err       io.Writer
	stdin          io.Reader // replaces the process's stdin for `-` (tests)
}

func newRestoreCmd() *cobra.Command {
	var o restoreOpts
	c := &cobra.Command{
		Use:   "restore SET...|--catalog FILE --group G [--at TIME] --to DIR [--group NAME] [--no-recover] [--until GENERATION|TIME]",
		Short: "Restore a full set plus its incrementals (or one differential) and recover",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && o.Catalog == "" {
				return cobra.MinimumNArgs(1)(cmd, args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Sets, o.Out, o.Err = args, cmd.OutOrStdout(), cmd.ErrOrStderr()
			_, err := runRestore(cmd.Context(), o)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.To, "to", "", "store root directory to restore into")
	f.StringVar(&o.Group, "group", "", "restore into this alternate storage group (a recovery storage group)")
	f.BoolVar(&o.NoRecover, "no-recover", false, "lay down files and logs only; run `tapestream store recover` later")
	f.StringVar(&o.CacheSize, "cache-size", "32MiB", "buffer cache of the recovery, the largest part of a restore's memory")
	f.StringVar(&o.Until, "until", "", "stop replay after this log generation (number or 0xHEX) or at this commit time (RFC 3339)")
	f.BoolVar(&o.Force, "force", false, "replace an existing storage group directory (point-of-failure restore: its later logs are replayed)")
	f.BoolVar(&o.AcceptDataLoss, "accept-data-loss", false, "with --force: replace a group (or some of its databases) even though it holds commits the restore cannot reach (a rollback; what it replaces is kept beside it)")
	f.StringSliceVar(&o.DropDatabases, "drop-database", nil, "with --force: replace the whole group by the sets' databases, dropping this one of it (repeat for each); without it, sets holding some of a group's databases replace those only")
	f.BoolVar(&o.Salvage, "salvage", false, "restore what is intact from a damaged set and report what was lost")
	o.Read.add(c)
	o.Identity.add(c)
	f.BoolVar(&o.JSON, "json", false, "print a JSON summary")
	f.StringVar(&o.Catalog, "catalog", "", "pick the sets from this catalog: the chain of --from-group (else --group) as of --at")
	f.StringVar(&o.At, "at", "", "with --catalog: restore the newest chain state at or before this RFC 3339 time (default: newest)")
	f.StringVar(&o.FromGroup, "from-group", "", "with --catalog: the cataloged storage group to restore (into --group)")
	f.BoolVar(&o.Replace, "replace", false, "with --server: restore into the live group the server owns (dismount, restore, replay its later logs, mount); sets of some of its databases replace those only while it serves the others")
	addRemoteFlags(c, &o.Remote)
	return c
}

// runRestoreRemote asks a store server to restore sets that lie in its
// restore directory (paths relative to it): into a new recovery group, or
// with --replace into a live group it owns.
func runRestoreRemote(ctx context.Context, o restoreOpts) error {
	if o.Group == "" {
		return usagef("with --server, --group names the group to restore into")
	}
	if o.To != "" || o.NoRecover || o.Salvage || o.Catalog != "" || len(o.DropDatabases) > 0 {
		return usagef("with --server the server decides where the group goes: --to, --no-recover, --salvage, --catalog and --drop-database do not apply")
	}
	if len(o.Identity.Files) > 0 {
		return usagef("with --server the server reads the sets: --identity does not apply (a key is not sent over the wire)")
	}
	untilGen, untilTime, err := parseUntil(o.Until)
	if err != nil {
		return err
	}
	if !untilTime.IsZero() {
		return usagef("with --server, --until takes a generation")
	}
	r, err := o.Remote.open()
	if err != nil {
		return err
	}
	defer r.Close()
	res, err := r.Restore(ctx, storeapi.RestoreRequest{Sets: o.Sets, Group: o.Group, UntilGen: untilGen, Replace: o.Replace})
	if err != nil {
		return err
	}
	rr := res.Result
	if o.JSON {
		g := newRestoreGroupDoc(rr)
		g.Group, g.Mounted = res.Group.Name, true
		return writeJSON(o.Out, &restoreDoc{docHeader: header("restore"), OK: len(g.Problems) == 0, Groups: []restoreGroupDoc{g}, Failed: []groupFailure{}})
	}
	into := "storage group " + res.Group.Name
	if len(rr.Databases) > 0 {
		into = "databases " + strings.Join(rr.Databases, ", ") + " of storage group " + res.Group.Name + " (its others stayed mounted)"
	}
	fmt.Fprintf(o.Out, "server restored %d set(s) into %s: logs %d-%d", len(rr.Sets), into, rr.LowGen, rr.HighGen)
	if rr.Recovery != nil {
		fmt.Fprintf(o.Out, ", replayed generations %d-%d (%d commits)", rr.Recovery.FromGen, rr.Recovery.ToGen, rr.Recovery.Commits)
	}
	fmt.Fprintln(o.Out, "; mounted")
	return nil
}

func parseUntil(s string) (uint32, time.Time, error) {
	if s == "" {
		return 0, time.Time{}, nil
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		return uint32(n), time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, time.Time{}, usagef(fmt.Sprintf("--until %q: neither a generation number nor an RFC 3339 time", s))
	}
	return 0, t, nil
}

func setSources(paths []string, fileNumber int) []restore.SetSource {
	var out []restore.SetSource
	for _, p := range paths {
		out = append(out, restore.SetSource{Path: p, FileNumber: fileNumber})
	}
	return out
}

// readOptions are the options of reading sets back (restore, verify, list).
func readOptions(ctx context.Context, m readMediaFlags, salvage bool, sources []string) (restore.Options, error) {
	mo, err := m.options(ctx, sources...)
	if err != nil {
		return restore.Options{}, err
	}
	return restore.Options{Sink: mo, Salvage: salvage}, nil
}

func runRestore(ctx context.Context, o restoreOpts) ([]*restore.Result, error) {
	if o.Remote.Server != "" {
		return nil, runRestoreRemote(ctx, o)
	}
	if o.To == "" {
		return nil, usagef("--to is required")
	}
	untilGen, untilTime, err := parseUntil(o.Until)
	if err != nil {
		return nil, err
	}
	ro, err := readOptions(ctx, o.Read, o.Salvage, o.Sets)
	if err != nil {
		return nil, err
	}
	if ro.Identities, err = o.Identity.load(); err != nil {
		return nil, err
	}
	if o.stdin != nil {
		ro.Sink.Stdin = o.stdin
	}
	ro.Sink.Stderr = o.Err // tape prompts: "load MAIL0003 (volume 3 of set …)"
	if len(o.Sets) > 1 && slices.Contains(o.Sets, "-") {
		return nil, usagef("standard input holds one set; give the others as files or tapes")
	}
	srcs := setSources(o.Sets, o.Read.FileNumber)
	if o.Catalog != "" {
		if srcs, err = restoreFromCatalog(o); err != nil {
			return nil, err
		}
	}
	chains, err := restore.Plan(srcs, ro)
	if err != nil {
		return nil, err
	}
	if len(chains) > 1 && o.Group != "" {
		var groups []string
		for _, c := range chains {
			groups = append(groups, c.Group)
		}
		return nil, usagef("--group names one target group; the sets belong to several groups (" + strings.Join(groups, ", ") + ")")
	}
	var cache int64
	if o.CacheSize != "" {
		if cache, err = parseSize("cache-size", o.CacheSize); err != nil {
			return nil, err
		}
	}
	results, errs := restore.RunChains(ctx, chains, restore.GroupOptions{
		Options: ro, To: o.To, Group: o.Group, NoRecover: o.NoRecover,
		UntilGen: untilGen, UntilTime: untilTime, Force: o.Force, AcceptDataLoss: o.AcceptDataLoss, Log: o.Err, CacheSize: int(cache),
		DropDatabases: o.DropDatabases,
	})
	err = errors.Join(errs...)
	if o.JSON {
		doc := &restoreDoc{docHeader: header("restore"), Groups: []restoreGroupDoc{}, Failed: []groupFailure{}}
		for i, r := range results {
			if r != nil {
				doc.Groups = append(doc.Groups, newRestoreGroupDoc(r))
			}
			if errs[i] != nil {
				doc.Failed = append(doc.Failed, groupFailure{Group: chains[i].Group, Error: errs[i].Error()})
			}
		}
		doc.OK = len(doc.Failed) == 0
		for _, g := range doc.Groups {
			doc.OK = doc.OK && len(g.Problems) == 0
		}
		err = errors.Join(err, writeJSON(o.Out, doc))
	}
	for _, r := range results {
		if r == nil || o.JSON {
			continue
		}
		what := "storage group " + r.Group
		if len(r.Databases) > 0 {
			what = "databases " + strings.Join(r.Databases, ", ") + " of storage group " + r.Group + " (its others untouched)"
		}
		fmt.Fprintf(o.Out, "restored %s into %s from %d set(s): logs %d-%d, %s in %s\n",
			what, r.Dir, len(r.Sets), r.LowGen, r.HighGen, humanize.IBytes(uint64(r.Bytes)), r.Duration.Round(time.Millisecond))
		if r.Recovery != nil {
			fmt.Fprintf(o.Out, "  recovery replayed generations %d-%d: %d commits, %s of log in %s\n", r.Recovery.FromGen, r.Recovery.ToGen,
				r.Recovery.Commits, humanize.IBytes(uint64(r.Recovery.LogBytes)), r.Recovery.Duration.Round(time.Millisecond))
		} else {
			fmt.Fprintf(o.Out, "  not recovered: run `tapestream store recover --dir %s --group %s`\n", o.To, r.Group)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(o.Out, "  LOST %s\n", p)
		}
	}
	lost := false
	for _, r := range results {
		lost = lost || r != nil && len(r.Problems) > 0
	}
	if err != nil && o.Salvage && lost {
		return results, fmt.Errorf("%w: %w", &corruptionError{"salvaged restore lost data"}, err)
	}
	return results, err
}
