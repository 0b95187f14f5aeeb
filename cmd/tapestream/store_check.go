package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/workload"
)

type storeCheckOpts struct {
	Dir     string
	Group   string
	NoModel bool
	JSON    bool
	Out     io.Writer
}

func newStoreCheckCmd() *cobra.Command {
	var o storeCheckOpts
	c := &cobra.Command{
		Use:   "check --dir DIR --group SG1 [--json]",
		Short: "Verify every page checksum, the B+tree invariants and the workload model",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runStoreCheck(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "store root directory")
	c.Flags().StringVar(&o.Group, "group", "SG1", "storage group")
	c.Flags().BoolVar(&o.NoModel, "no-model", false, "skip the workload model check")
	c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return c
}

func runStoreCheck(ctx context.Context, o storeCheckOpts) error {
	g, closeFn, err := openGroup(o.Dir, o.Group, engine.Options{})
	if err != nil {
		return err
	}
	defer closeFn()
	doc, err := checkGroupDoc(ctx, g, !o.NoModel)
	if doc == nil {
		return err
	}
	if o.JSON {
		return errors.Join(err, writeJSON(o.Out, doc))
	}
	printStoreCheck(o.Out, doc)
	return err
}

// storeCheckDoc is store check's document (and what its text shows).
type storeCheckDoc struct {
	docHeader
	Group string `json:"group"`
	// OK: no problem in the pages and trees, and the model (if checked)
	// matches.
	OK       bool     `json:"ok"`
	Pages    int      `json:"pages"`
	Tables   int      `json:"tables"`
	Entries  int      `json:"entries"`
	Problems []string `json:"problems"`
	// Model is the workload model check; absent with --no-model or when
	// the structural check failed.
	Model *modelCheckDoc `json:"model,omitempty"`
}

// modelCheckDoc is the check of a workload-loaded group against its model.
type modelCheckDoc struct {
	// Skipped says why the model was not checked ("no workload data").
	Skipped string `json:"skipped,omitempty"`
	OK      bool   `json:"ok"`
	// Seqs are the committed sequence numbers per stream.
	Seqs        []uint64 `json:"seqs"`
	Keys        int64    `json:"keys"`
	Differences int      `json:"differences"`
	// Diffs are the first differences found.
	Diffs []string `json:"diffs"`
}

// checkGroupDoc runs the structural check and, if the group holds workload
// data, the model check. A damaged group returns the document and a
// corruptionError.
func checkGroupDoc(ctx context.Context, g *engine.Group, model bool) (*storeCheckDoc, error) {
	r, err := g.Check()
	if err != nil {
		return nil, err
	}
	doc := &storeCheckDoc{docHeader: header("store check"), Group: g.Name(), OK: r.OK(), Pages: r.Pages, Tables: r.Tables,
		Entries: r.Entries, Problems: nonNil(r.Problems)}
	if !r.OK() {
		return doc, &corruptionError{fmt.Sprintf("storage group %s: %d problems:\n  %s", g.Name(), len(r.Problems), strings.Join(r.Problems, "\n  "))}
	}
	if !model {
		return doc, nil
	}
	rep, err := workload.Verify(ctx, mailstore.New(g))
	if errors.Is(err, workload.ErrNoParams) {
		doc.Model = &modelCheckDoc{Skipped: "no workload data", OK: true, Seqs: []uint64{}, Diffs: []string{}}
		return doc, nil
	}
	if err != nil {
		return nil, err
	}
	doc.Model = &modelCheckDoc{OK: rep.OK(), Seqs: nonNil(rep.Seqs), Keys: rep.Keys, Differences: rep.NumDiffs, Diffs: []string{}}
	for _, d := range rep.Diffs {
		doc.Model.Diffs = append(doc.Model.Diffs, d.String())
	}
	if !rep.OK() {
		doc.OK = false
		return doc, &corruptionError{fmt.Sprintf("storage group %s: workload model: %v", g.Name(), rep.Err())}
	}
	return doc, nil
}

func printStoreCheck(out io.Writer, d *storeCheckDoc) {
	fmt.Fprintf(out, "%s: %d pages verified, %d tables, %d entries\n", d.Group, d.Pages, d.Tables, d.Entries)
	switch m := d.Model; {
	case m == nil || !d.OK:
	case m.Skipped != "":
		fmt.Fprintf(out, "%s: %s, model check skipped\n", d.Group, m.Skipped)
	default:
		fmt.Fprintf(out, "%s: workload model OK: %d streams, %d keys, seqs %v\n", d.Group, len(m.Seqs), m.Keys, m.Seqs)
	}
}

// checkGroup is store check without a document (tests).
func checkGroup(ctx context.Context, g *engine.Group, out io.Writer, model bool) error {
	doc, err := checkGroupDoc(ctx, g, model)
	if doc != nil {
		printStoreCheck(out, doc)
	}
	return err
}
