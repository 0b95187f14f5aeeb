package engine

import (
	"fmt"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
)

// DefaultCacheSize is the buffer cache budget of a storage group.
const DefaultCacheSize = 64 << 20

type frameKey struct {
	file fileNo
	pgno uint32
}

// frame is a cached page. All fields are guarded by the group mutex.
type frame struct {
	key      frameKey
	data     []byte
	valid    bool
	dirty    bool
	recLSN   wal.Pos // first log record that dirtied the page since its last write
	lastLSN  wal.Pos // commit that last changed it: the page may reach disk only once this is durable
	modSeq   uint64
	pins     int
	inflight bool // changed by the transaction being applied: never written before its commit (no-steal)
	ref      bool
}

// cache is a clock-replacement buffer cache with a fixed budget. A
// transaction larger than the budget may grow it temporarily: redo-only
// logging forbids writing its pages before the commit record is durable.
type cache struct {
	budget int
	frames []*frame
	index  map[frameKey]*frame
	hand   int
	dirty  int
}

func newCache(bytes int) *cache {
	n := max(bytes/page.Size, 64)
	return &cache{budget: n, index: make(map[frameKey]*frame, n)}
}

// victim returns a frame that may be reused: clean, unpinned, not in
// flight. It returns nil when every frame is busy or dirty.
func (c *cache) victim() *frame {
	if len(c.frames) < c.budget {
		return c.grow()
	}
	for i := 0; i < 2*len(c.frames); i++ {
		f := c.frames[c.hand]
		c.hand = (c.hand + 1) % len(c.frames)
		if f.pins > 0 || f.dirty || f.inflight {
			continue
		}
		if f.ref {
			f.ref = false
			continue
		}
		if f.valid {
			delete(c.index, f.key)
		}
		f.valid = false
		return f
	}
	return nil
}

func (c *cache) grow() *frame {
	f := &frame{data: make([]byte, page.Size)}
	c.frames = append(c.frames, f)
	return f
}

// shrink drops surplus clean frames after a transaction bigger than the
// budget.
func (c *cache) shrink() {
	if len(c.frames) <= c.budget {
		return
	}
	kept := c.frames[:0]
	for _, f := range c.frames {
		if len(kept) >= c.budget && f.pins == 0 && !f.dirty && !f.inflight {
			if f.valid {
				delete(c.index, f.key)
			}
			continue
		}
		kept = append(kept, f)
	}
	clear(c.frames[len(kept):])
	c.frames = kept
	c.hand = 0
}

// getFrame returns the pinned frame of key. With load, a page not in the
// cache is read from disk and verified (strict) or read as is (recovery).
func (g *Group) getFrame(key frameKey, load, strict bool) (*frame, error) {
	c := g.cache
	if f, ok := c.index[key]; ok {
		f.pins++
		f.ref = true
		return f, nil
	}
	f := c.victim()
	if f == nil {
		// Everything is dirty or pinned: grow past the budget and let the
		// flusher catch up (commits wait for it when the overshoot grows).
		f = c.grow()
		g.kickFlusher()
	}
	pf := g.pagefile(key.file)
	if pf == nil {
		return nil, fmt.Errorf("storage group %s: log or tree references unknown file %d", g.name, key.file)
	}
	if load {
		if err := pf.readPage(key.pgno, f.data); err != nil {
			return nil, err
		}
		if strict {
			if err := page.Verify(pf.name, f.data, key.pgno); err != nil {
				return nil, err
			}
		}
	} else {
		clear(f.data)
	}
	f.key, f.valid, f.dirty, f.inflight, f.pins, f.ref = key, true, false, false, 1, true
	c.index[key] = f
	return f, nil
}

func (g *Group) unpin(f *frame) { f.pins-- }

// markDirty records a change to f made by the log record at start.
func (c *cache) markDirty(f *frame, start wal.Pos) {
	if !f.dirty {
		f.dirty = true
		f.recLSN = start
		c.dirty++
	}
	f.modSeq++
}

// dirtyOf reports whether a page of database dbid is dirty or in flight.
func (c *cache) dirtyOf(dbid int) bool {
	for _, f := range c.frames {
		if f.valid && f.key.file.dbid() == dbid && (f.dirty || f.inflight) {
			return true
		}
	}
	return false
}

// drop forgets the (clean) pages of database dbid: its files are about to
// be closed, and another file may take their place before it is mounted.
func (c *cache) drop(dbid int) {
	for _, f := range c.frames {
		if f.valid && f.key.file.dbid() == dbid && !f.dirty && f.pins == 0 {
			delete(c.index, f.key)
			f.valid, f.ref = false, false
		}
	}
}

// minRecLSN is the oldest log position a dirty page still needs.
func (c *cache) minRecLSN() (wal.Pos, bool) {
	var m wal.Pos
	found := false
	for _, f := range c.frames {
		if f.valid && f.dirty && (!found || f.recLSN.Less(m)) {
			m, found = f.recLSN, true
		}
	}
	return m, found
}
