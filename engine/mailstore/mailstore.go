// Package mailstore adapts an engine storage group to the mail workload's
// Store interface, so the workload, its model checker and the crash tests
// drive the real engine.
package mailstore

import (
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/workload"
)

// Store is a workload.Store over an open storage group.
type Store struct{ G *engine.Group }

// New adapts g.
func New(g *engine.Group) Store { return Store{G: g} }

// Update implements workload.Store.
func (s Store) Update(fn func(workload.Tx) error) error {
	return s.G.Update(func(tx *engine.Tx) error { return fn(tx) })
}

// View implements workload.Store.
func (s Store) View(fn func(workload.Tx) error) error {
	return s.G.View(func(tx *engine.Tx) error { return fn(tx) })
}

var _ workload.Store = Store{}
