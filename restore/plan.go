package restore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tapestream/tapestream/tapeformat"
)

// PlannedSet is one set of a chain: where to read it and its label (nil
// for standard input, whose label is read when it is restored).
type PlannedSet struct {
	Source SetSource
	Label  *tapeformat.Label
}

// Chain is what restores one storage group: a full (or copy) set, then its
// incrementals in order, or one differential.
type Chain struct {
	Group string // from the labels ("" for standard input until read)
	Sets  []PlannedSet
}

// Plan reads each set's label once, groups the sets by storage group (in
// the order given) and checks that each group's sets form a chain, before
// anything is written. Standard input holds one set and is a chain of its
// own, checked when it is read.
func Plan(srcs []SetSource, o Options) ([]Chain, error) {
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no backup set given")
	}
	if len(srcs) > 1 && slices.ContainsFunc(srcs, func(s SetSource) bool { return s.Path == "-" }) {
		return nil, fmt.Errorf("standard input holds one set; give the others as files or tapes")
	}
	if srcs[0].Path == "-" {
		return []Chain{{Sets: []PlannedSet{{Source: srcs[0]}}}}, nil
	}
	var chains []Chain
	index := map[string]int{}
	for _, s := range srcs {
		l, err := ReadLabel(s, o)
		if err != nil {
			return nil, err
		}
		if l.Encryption != nil && len(o.Identities) == 0 {
			return nil, fmt.Errorf("%s: %w", s.Path, &tapeformat.KeyError{SetID: l.SetID, Encryption: l.Encryption})
		}
		i, ok := index[l.StorageGroup]
		if !ok {
			i = len(chains)
			index[l.StorageGroup] = i
			chains = append(chains, Chain{Group: l.StorageGroup})
		}
		chains[i].Sets = append(chains[i].Sets, PlannedSet{Source: s, Label: &l})
	}
	for _, c := range chains {
		labels := make([]tapeformat.Label, len(c.Sets))
		for i, ps := range c.Sets {
			labels[i] = *ps.Label
		}
		if err := ValidateChain(labels); err != nil {
			return nil, fmt.Errorf("refusing to restore: %w", err)
		}
		if err := validateLabelRanges(labels); err != nil {
			return nil, fmt.Errorf("refusing to restore: %w", err)
		}
	}
	return chains, nil
}

// validateLabelRanges checks the links between the log-only sets of a
// chain from the ranges their labels carry: a chain with a set left out
// is refused before anything is written. The link from the full is
// checked once the full's manifest is read, before the next set is.
func validateLabelRanges(labels []tapeformat.Label) error {
	for i := 2; i < len(labels); i++ {
		_, prevHigh, ok1 := LabelLogRange(labels[i-1])
		lo, hi, ok2 := LabelLogRange(labels[i])
		if !ok1 || !ok2 {
			continue
		}
		if err := checkLink(labels[i-1].SetID, prevHigh, labels[i].SetID, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

// RunChains restores several chains (of different storage groups) into one
// store: its lock is taken once and the chains are restored at the same
// time, each on its own. One chain's failure does not stop another's, and
// each is atomic (its target is the old group or the new one).
func RunChains(ctx context.Context, chains []Chain, o GroupOptions) ([]*Result, []error) {
	results := make([]*Result, len(chains))
	errs := make([]error, len(chains))
	if len(chains) > 1 && o.Group != "" {
		for i := range errs {
			errs[i] = fmt.Errorf("a target group name (%s) names one group; the sets belong to %d groups", o.Group, len(chains))
		}
		return results, errs
	}
	if !o.StoreLocked {
		release, err := LockStore(o.To, o.Log)
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
			return results, errs
		}
		defer release()
		o.StoreLocked = true
	}
	var wg sync.WaitGroup
	for i, c := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = RunChain(ctx, c, o)
		}()
	}
	wg.Wait()
	return results, errs
}
