package workload

import (
	"bytes"
	"errors"
	"sort"
	"sync"
)

// Store is a transactional key-value store organised as databases holding
// tables.
type Store interface {
	// Update runs fn in one transaction and commits it. If fn returns an
	// error the transaction is rolled back and the error returned. The
	// commit is durable when Update returns nil. fn may be called more than
	// once (retry); the workload's functions are idempotent.
	Update(fn func(tx Tx) error) error
	// View runs fn in a read-only (snapshot-ish) transaction.
	View(fn func(tx Tx) error) error
}

// Tx is a transaction handed to Store.Update or Store.View.
type Tx interface {
	Get(db, table string, key []byte) (value []byte, ok bool, err error)
	Put(db, table string, key, value []byte) error
	Delete(db, table string, key []byte) error
	// Scan calls fn for every key >= start of table in key order (bytewise;
	// nil start = from the beginning; a missing table scans as empty). fn
	// must copy key and value if it retains them. An error returned by fn
	// stops the scan and is returned by Scan.
	Scan(db, table string, start []byte, fn func(key, value []byte) error) error
}

// ErrReadOnly is returned by MemStore for writes inside View.
var ErrReadOnly = errors.New("workload: write in read-only transaction")

// MemStore is an in-memory, map-based, thread-safe transactional Store.
// Transactions are serialised (Update takes an exclusive lock, View a shared
// one), so every transaction sees a consistent state and writes of a failed
// transaction are never visible. The zero value is not usable; use
// NewMemStore.
type MemStore struct {
	mu     sync.RWMutex
	tables map[string]map[string][]byte // "db\x00table" -> key -> value
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{tables: make(map[string]map[string][]byte)}
}

func tableID(db, table string) string { return db + "\x00" + table }

// Update implements Store.
func (m *MemStore) Update(fn func(tx Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{m: m, writes: make(map[string]map[string]*[]byte)}
	if err := fn(tx); err != nil {
		return err
	}
	tx.done = true
	for tid, ws := range tx.writes {
		t := m.tables[tid]
		if t == nil {
			t = make(map[string][]byte)
			m.tables[tid] = t
		}
		for k, v := range ws {
			if v == nil {
				delete(t, k)
			} else {
				t[k] = *v
			}
		}
	}
	return nil
}

// View implements Store.
func (m *MemStore) View(fn func(tx Tx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tx := &memTx{m: m, readOnly: true}
	err := fn(tx)
	tx.done = true
	return err
}

// Clone returns a deep copy of the store (used by tests to fork states).
func (m *MemStore) Clone() *MemStore {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := NewMemStore()
	for tid, t := range m.tables {
		ct := make(map[string][]byte, len(t))
		for k, v := range t {
			ct[k] = bytes.Clone(v)
		}
		c.tables[tid] = ct
	}
	return c
}

// Equal reports whether both stores hold exactly the same tables, keys and
// values (empty tables are ignored).
func (m *MemStore) Equal(o *MemStore) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	o.mu.RLock()
	defer o.mu.RUnlock()
	n := 0
	for tid, t := range m.tables {
		if len(t) == 0 {
			continue
		}
		n++
		ot := o.tables[tid]
		if len(ot) != len(t) {
			return false
		}
		for k, v := range t {
			ov, ok := ot[k]
			if !ok || !bytes.Equal(v, ov) {
				return false
			}
		}
	}
	for _, t := range o.tables {
		if len(t) > 0 {
			n--
		}
	}
	return n == 0
}

// Keys returns the number of keys in the store.
func (m *MemStore) Keys() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, t := range m.tables {
		n += len(t)
	}
	return n
}

type memTx struct {
	m        *MemStore
	readOnly bool
	done     bool
	writes   map[string]map[string]*[]byte // nil pointer = delete
}

var errTxDone = errors.New("workload: transaction already finished")

func (t *memTx) Get(db, table string, key []byte) ([]byte, bool, error) {
	if t.done {
		return nil, false, errTxDone
	}
	tid := tableID(db, table)
	if ws := t.writes[tid]; ws != nil {
		if v, ok := ws[string(key)]; ok {
			if v == nil {
				return nil, false, nil
			}
			return bytes.Clone(*v), true, nil
		}
	}
	v, ok := t.m.tables[tid][string(key)]
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(v), true, nil
}

func (t *memTx) write(db, table string, key []byte, v *[]byte) error {
	if t.done {
		return errTxDone
	}
	if t.readOnly {
		return ErrReadOnly
	}
	tid := tableID(db, table)
	ws := t.writes[tid]
	if ws == nil {
		ws = make(map[string]*[]byte)
		t.writes[tid] = ws
	}
	ws[string(key)] = v
	return nil
}

func (t *memTx) Put(db, table string, key, value []byte) error {
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	return t.write(db, table, key, &v)
}

func (t *memTx) Delete(db, table string, key []byte) error {
	return t.write(db, table, key, nil)
}

func (t *memTx) Scan(db, table string, start []byte, fn func(key, value []byte) error) error {
	if t.done {
		return errTxDone
	}
	tid := tableID(db, table)
	base := t.m.tables[tid]
	ws := t.writes[tid]
	keys := make([]string, 0, len(base)+len(ws))
	for k := range base {
		if _, over := ws[k]; !over && k >= string(start) {
			keys = append(keys, k)
		}
	}
	for k, v := range ws {
		if v != nil && k >= string(start) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v []byte
		if w, ok := ws[k]; ok {
			v = *w
		} else {
			v = base[k]
		}
		// Hand out copies so a misbehaving fn cannot corrupt the store.
		if err := fn([]byte(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}
