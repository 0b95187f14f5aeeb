package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
)

// Tx is a transaction. Writes are buffered in the transaction and applied
// to the pages, logged and made durable at Commit: redo-only logging never
// lets an uncommitted change reach the log or a database file, so rollback
// is just dropping the buffer and recovery never has anything to undo.
// Reads see the transaction's own writes over the committed state.
type Tx struct {
	g        *Group
	readOnly bool
	done     bool
	writes   map[string]map[string]*[]byte // "db\x00table" → key → value (nil = delete)
	bytes    int
}

// Begin starts a read-write transaction.
func (g *Group) Begin() *Tx { return &Tx{g: g, writes: make(map[string]map[string]*[]byte)} }

func tkey(db, table string) string { return db + "\x00" + table }

func splitTKey(t string) (db, table string) {
	i := bytes.IndexByte([]byte(t), 0)
	return t[:i], t[i+1:]
}

func (tx *Tx) write(db, table string, key []byte, v *[]byte) error {
	if tx.done {
		return fmt.Errorf("engine: transaction already finished")
	}
	if tx.readOnly {
		return ErrReadOnly
	}
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes (1-%d)", ErrKeyTooLong, len(key), MaxKeyLen)
	}
	if v != nil && len(*v) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrValueTooLong, len(*v), MaxValueLen)
	}
	if len(table) == 0 || len(table) > MaxKeyLen {
		return fmt.Errorf("invalid table name %q", table)
	}
	t := tx.writes[tkey(db, table)]
	if t == nil {
		t = make(map[string]*[]byte)
		tx.writes[tkey(db, table)] = t
	}
	t[string(key)] = v
	if v != nil {
		tx.bytes += len(*v)
	}
	return nil
}

// Put sets key to value in table of database db.
func (tx *Tx) Put(db, table string, key, value []byte) error {
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	return tx.write(db, table, key, &v)
}

// Delete removes key (no error if absent).
func (tx *Tx) Delete(db, table string, key []byte) error { return tx.write(db, table, key, nil) }

// Get reads key.
func (tx *Tx) Get(db, table string, key []byte) ([]byte, bool, error) {
	if w, ok := tx.writes[tkey(db, table)][string(key)]; ok {
		if w == nil {
			return nil, false, nil
		}
		return bytes.Clone(*w), true, nil
	}
	g := tx.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(); err != nil {
		return nil, false, err
	}
	d, err := g.database(db)
	if err != nil {
		return nil, false, err
	}
	root, err := g.tableRoot(nil, d, table)
	if errors.Is(err, ErrNoTable) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return g.get(d, root, key)
}

// Scan calls fn for every key >= start in key order, merging the
// transaction's own writes. The group is read leaf by leaf, so concurrent
// commits may become visible part way through a scan.
func (tx *Tx) Scan(db, table string, start []byte, fn func(key, value []byte) error) error {
	pending := tx.writes[tkey(db, table)]
	pkeys := make([]string, 0, len(pending))
	for k := range pending {
		if k >= string(start) {
			pkeys = append(pkeys, k)
		}
	}
	sort.Strings(pkeys)
	g := tx.g
	cur := start
	emit := func(k, v []byte) error { return fn(k, v) }
	// flushPending emits pending writes with keys < limit (all if limit nil).
	flushPending := func(limit []byte) error {
		for len(pkeys) > 0 && (limit == nil || pkeys[0] < string(limit)) {
			k := pkeys[0]
			pkeys = pkeys[1:]
			if v := pending[k]; v != nil {
				if err := emit([]byte(k), *v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for {
		g.mu.Lock()
		if err := g.err(); err != nil {
			g.mu.Unlock()
			return err
		}
		d, err := g.database(db)
		if err != nil {
			g.mu.Unlock()
			return err
		}
		root, err := g.tableRoot(nil, d, table)
		if errors.Is(err, ErrNoTable) {
			g.mu.Unlock()
			return flushPending(nil)
		}
		if err != nil {
			g.mu.Unlock()
			return err
		}
		ents, next, err := g.seekGE(d, root, cur)
		g.mu.Unlock()
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := flushPending(e.k); err != nil {
				return err
			}
			if len(pkeys) > 0 && pkeys[0] == string(e.k) {
				continue // overridden by this transaction; emitted by flushPending
			}
			if _, overridden := pending[string(e.k)]; overridden {
				continue
			}
			if err := emit(e.k, e.v); err != nil {
				return err
			}
		}
		if next == nil {
			return flushPending(nil)
		}
		if err := scanProgress(d, cur, next, ents); err != nil {
			return err
		}
		cur = next
	}
}

// Rollback drops the transaction's writes.
func (tx *Tx) Rollback() { tx.done = true; tx.writes = nil }

// Commit applies, logs and durably commits the transaction. Concurrent
// committers share log fsyncs (group commit).
func (tx *Tx) Commit() error {
	if tx.done {
		return fmt.Errorf("engine: transaction already finished")
	}
	tx.done = true
	if len(tx.writes) == 0 {
		return nil
	}
	g := tx.g
	// The latency a client waits for, from here to the durable log,
	// including waiting for the group's lock and for the flusher.
	loaded := false
	t0 := g.pressure.begin()
	defer func() { g.pressure.end(t0, loaded) }()
	g.mu.Lock()
	over := len(g.cache.frames) > g.cache.budget+g.cache.budget/4
	g.mu.Unlock()
	if over {
		// Backpressure: the cache is far over budget with dirty pages.
		if err := g.flush(false); err != nil {
			return err
		}
	}
	g.mu.Lock()
	if err := g.err(); err != nil {
		g.mu.Unlock()
		return err
	}
	// Resolve databases first: a bad name must fail before anything is logged.
	tables := make([]string, 0, len(tx.writes))
	for t := range tx.writes {
		db, _ := splitTKey(t)
		if _, err := g.database(db); err != nil {
			g.mu.Unlock()
			return err
		}
		tables = append(tables, t)
	}
	sort.Strings(tables)
	a := &applier{g: g}
	err := func() error {
		for _, t := range tables {
			dbName, table := splitTKey(t)
			d, _ := g.database(dbName)
			root, err := g.tableRoot(a, d, table)
			if err != nil {
				return err
			}
			ws := tx.writes[t]
			for _, k := range sortedKeys(ws) {
				if v := ws[k]; v != nil {
					err = a.put(d, root, []byte(k), *v)
				} else {
					_, err = a.del(d, root, []byte(k))
				}
				if err != nil {
					return fmt.Errorf("storage group %s: %s/%s: key %q: %w", g.name, dbName, table, k, err)
				}
			}
		}
		return nil
	}()
	if err != nil {
		// Pages may be half changed in memory: stop the group; reopening
		// recovers the committed state from the log.
		g.fail(err)
		g.mu.Unlock()
		return err
	}
	g.txid++
	a.buf = appendCommit(a.buf[:0], g.txid, g.opts.Now().UnixNano())
	_, end, err := g.log.Append(a.buf)
	if err != nil {
		g.fail(err)
		g.mu.Unlock()
		return err
	}
	for _, f := range a.touched {
		f.lastLSN = end
		f.inflight = false
	}
	g.cache.shrink()
	g.stats.Commits++
	g.stats.CommitBytes += uint64(tx.bytes)
	loaded = g.backup != nil
	needFlush := g.cache.dirty > g.cache.budget/2
	g.mu.Unlock()
	if needFlush {
		g.kickFlusher()
	}
	if err := g.log.SyncTo(end); err != nil {
		g.mu.Lock()
		g.fail(err)
		g.mu.Unlock()
		return err
	}
	return nil
}

// fail stops the group after an error that left memory ahead of the log.
func (g *Group) fail(err error) {
	if g.fatal == nil {
		g.fatal = err
	}
}

// Update runs fn in a transaction and commits it; fn's error rolls back.
func (g *Group) Update(fn func(tx *Tx) error) error {
	tx := g.Begin()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// View runs fn in a read-only transaction.
func (g *Group) View(fn func(tx *Tx) error) error {
	tx := &Tx{g: g, readOnly: true}
	err := fn(tx)
	tx.done = true
	return err
}
