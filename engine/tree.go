package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
)

// Fixed pages of every page file (wire format).
const (
	pgnoSpace   = 2 // allocation state
	pgnoCatalog = 3 // root of the catalog tree (table name → root page)
	firstFree   = 4
)

// Limits on keys and values.
const (
	MaxKeyLen = 255
	// inlineMax is the largest leaf cell holding its value inline; larger
	// values go to long-value pages so a page always holds >= 4 cells.
	inlineMax = page.MaxCell - 16
	// MaxValueLen bounds one value (a message with its attachments).
	MaxValueLen = 64 << 20
)

// Leaf cell (wire format): flags(1) keyLen(2) key value
// Long-value reference: totalLen(8) file kind(1) firstPgno(4)
// Internal cell (wire format): child(4) key; the leftmost child is the page link.
const (
	cellLong = 1
	lvRefLen = 13
)

func leafKey(c []byte) []byte    { return c[3 : 3+int(binary.LittleEndian.Uint16(c[1:]))] }
func leafVal(c []byte) []byte    { return c[3+int(binary.LittleEndian.Uint16(c[1:])):] }
func leafIsLong(c []byte) bool   { return c[0]&cellLong != 0 }
func innerChild(c []byte) uint32 { return binary.LittleEndian.Uint32(c) }
func innerKey(c []byte) []byte   { return c[4:] }

func makeLeafCell(key []byte, flags byte, val []byte) []byte {
	c := make([]byte, 3+len(key)+len(val))
	c[0] = flags
	binary.LittleEndian.PutUint16(c[1:], uint16(len(key)))
	copy(c[3:], key)
	copy(c[3+len(key):], val)
	return c
}

func makeInnerCell(child uint32, key []byte) []byte {
	c := make([]byte, 4+len(key))
	binary.LittleEndian.PutUint32(c, child)
	copy(c[4:], key)
	return c
}

func cellKey(p []byte, i int) []byte {
	c := page.Cell(p, i)
	if page.KindOf(p) == page.KindLeaf {
		return leafKey(c)
	}
	return innerKey(c)
}

// searchLeaf returns the slot of key or where it would be inserted.
func searchLeaf(p []byte, key []byte) (int, bool) {
	n := page.NSlot(p)
	i := sort.Search(n, func(i int) bool { return bytes.Compare(leafKey(page.Cell(p, i)), key) >= 0 })
	return i, i < n && bytes.Equal(leafKey(page.Cell(p, i)), key)
}

// searchInner returns the child to follow for key and its index: -1 for
// the leftmost child (the page link), i for cell i.
func searchInner(p []byte, key []byte) (uint32, int) {
	n := page.NSlot(p)
	j := sort.Search(n, func(i int) bool { return bytes.Compare(innerKey(page.Cell(p, i)), key) > 0 })
	if j == 0 {
		return page.Link(p), -1
	}
	return innerChild(page.Cell(p, j-1)), j - 1
}

func childAt(p []byte, idx int) uint32 {
	if idx < 0 {
		return page.Link(p)
	}
	return innerChild(page.Cell(p, idx))
}

type pathEnt struct {
	f   *frame
	idx int // child followed
}

// descend walks from root to the leaf for key, pinning every page on the way.
func (g *Group) descend(file fileNo, root uint32, key []byte) ([]pathEnt, *frame, error) {
	var path []pathEnt
	pgno := root
	for depth := 0; ; depth++ {
		if depth > 64 {
			g.unpinPath(path)
			return nil, nil, fmt.Errorf("%s: tree at page %d deeper than 64 levels (cycle?)", g.fileName(file), root)
		}
		f, err := g.getFrame(frameKey{file, pgno}, true, true)
		if err != nil {
			g.unpinPath(path)
			return nil, nil, err
		}
		switch page.KindOf(f.data) {
		case page.KindLeaf:
			return path, f, nil
		case page.KindInternal:
			child, idx := searchInner(f.data, key)
			path = append(path, pathEnt{f, idx})
			pgno = child
		default:
			g.unpin(f)
			g.unpinPath(path)
			return nil, nil, fmt.Errorf("%s: page %d: expected a tree page, found %s", g.fileName(file), pgno, page.KindOf(f.data))
		}
	}
}

func (g *Group) unpinPath(path []pathEnt) {
	for _, e := range path {
		g.unpin(e.f)
	}
}

// applier changes pages on behalf of one transaction (or recovery) and logs
// each change. All calls happen under the group mutex.
type applier struct {
	g       *Group
	touched []*frame
	buf     []byte
}

func (a *applier) db(file fileNo) *database { return a.g.byID[file.dbid()] }

// log appends a page op for f and marks it dirty.
func (a *applier) log(f *frame, op *pageOp) error {
	a.buf = appendPageOp(a.buf[:0], op)
	start, _, err := a.g.log.Append(a.buf)
	if err != nil {
		return err
	}
	a.g.cache.markDirty(f, start)
	if !f.inflight {
		f.inflight = true
		a.touched = append(a.touched, f)
	}
	return nil
}

func (a *applier) tick(f *frame) (before, after uint64) {
	before = page.DBTime(f.data)
	d := a.db(f.key.file)
	d.dbtime++
	page.SetDBTime(f.data, d.dbtime)
	return before, d.dbtime
}

func (a *applier) insert(f *frame, slot int, cell []byte) error {
	if err := page.InsertCell(f.data, slot, cell); err != nil {
		return err
	}
	before, after := a.tick(f)
	return a.log(f, &pageOp{typ: recInsert, file: f.key.file, pgno: f.key.pgno, before: before, after: after, slot: slot, cell: cell})
}

func (a *applier) delete(f *frame, slot int) error {
	page.DeleteCell(f.data, slot)
	before, after := a.tick(f)
	return a.log(f, &pageOp{typ: recDelete, file: f.key.file, pgno: f.key.pgno, before: before, after: after, slot: slot})
}

func (a *applier) replace(f *frame, slot int, cell []byte) error {
	if err := page.ReplaceCell(f.data, slot, cell); err != nil {
		return err
	}
	before, after := a.tick(f)
	return a.log(f, &pageOp{typ: recReplace, file: f.key.file, pgno: f.key.pgno, before: before, after: after, slot: slot, cell: cell})
}

// image logs the whole (compacted) page after build rewrote it. Used where
// a change cannot be replayed from an older version of the page: new
// pages, splits, merges, frees, the space page.
func (a *applier) image(f *frame, build func(p []byte)) error {
	before := page.DBTime(f.data)
	build(f.data)
	d := a.db(f.key.file)
	d.dbtime++
	page.SetDBTime(f.data, d.dbtime)
	head, tail := page.Compact(f.data)
	return a.log(f, &pageOp{typ: recImage, file: f.key.file, pgno: f.key.pgno, before: before, after: d.dbtime, head: head, tail: tail})
}

// rebuild rewrites f as a slotted page of kind with link and cells.
func (a *applier) rebuild(f *frame, kind page.Kind, link uint32, cells [][]byte) error {
	return a.image(f, func(p []byte) {
		page.Init(p, kind)
		page.SetLink(p, link)
		for i, c := range cells {
			if err := page.InsertCell(p, i, c); err != nil {
				panic(fmt.Sprintf("rebuild of page %d: %v", f.key.pgno, err)) // split sizing guarantees fit
			}
		}
	})
}

// Space page body (wire format): pageCount(4) freeHead(4) freeCount(4).
const (
	spPageCount = page.HeaderLen
	spFreeHead  = page.HeaderLen + 4
	spFreeCount = page.HeaderLen + 8
)

func spaceGet(p []byte) (count, head, nfree uint32) {
	return binary.LittleEndian.Uint32(p[spPageCount:]), binary.LittleEndian.Uint32(p[spFreeHead:]), binary.LittleEndian.Uint32(p[spFreeCount:])
}

func spaceSet(p []byte, count, head, nfree uint32) {
	binary.LittleEndian.PutUint32(p[spPageCount:], count)
	binary.LittleEndian.PutUint32(p[spFreeHead:], head)
	binary.LittleEndian.PutUint32(p[spFreeCount:], nfree)
}

// alloc returns n pinned, zeroed frames for new pages of file.
func (a *applier) alloc(file fileNo, n int) ([]*frame, error) {
	sp, err := a.g.getFrame(frameKey{file, pgnoSpace}, true, true)
	if err != nil {
		return nil, err
	}
	defer a.g.unpin(sp)
	count, head, nfree := spaceGet(sp.data)
	out := make([]*frame, 0, n)
	for len(out) < n {
		var pgno uint32
		if head != 0 {
			pgno = head
			fp, err := a.g.getFrame(frameKey{file, pgno}, true, true)
			if err != nil {
				return nil, err
			}
			if page.KindOf(fp.data) != page.KindFree {
				a.g.unpin(fp)
				return nil, fmt.Errorf("%s: free list page %d is a %s page", a.g.fileName(file), pgno, page.KindOf(fp.data))
			}
			head = page.Link(fp.data)
			nfree--
			out = append(out, fp)
			continue
		}
		pgno = count
		count++
		f, err := a.g.getFrame(frameKey{file, pgno}, false, false)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	err = a.image(sp, func(p []byte) { spaceSet(p, count, head, nfree) })
	return out, err
}

// free puts pages on the free list.
func (a *applier) free(file fileNo, pgnos []uint32) error {
	if len(pgnos) == 0 {
		return nil
	}
	sp, err := a.g.getFrame(frameKey{file, pgnoSpace}, true, true)
	if err != nil {
		return err
	}
	defer a.g.unpin(sp)
	count, head, nfree := spaceGet(sp.data)
	for _, pgno := range pgnos {
		f, err := a.g.getFrame(frameKey{file, pgno}, true, true)
		if err != nil {
			return err
		}
		link := head
		err = a.image(f, func(p []byte) {
			page.Init(p, page.KindFree)
			page.SetLink(p, link)
		})
		a.g.unpin(f)
		if err != nil {
			return err
		}
		head = pgno
		nfree++
	}
	return a.image(sp, func(p []byte) { spaceSet(p, count, head, nfree) })
}

// longCap is the data one long-value page holds.
const longCap = page.Size - page.HeaderLen

// writeLong stores val in a chain of long-value pages and returns the ref.
func (a *applier) writeLong(d *database, val []byte) ([]byte, error) {
	kind := fileEDB
	if d.files[fileSTM] != nil {
		kind = fileSTM // large bodies live in the streaming file, as in Exchange 2000/2003
	}
	file := makeFileNo(d.id, kind)
	n := (len(val) + longCap - 1) / longCap
	frames, err := a.alloc(file, n)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range frames {
			a.g.unpin(f)
		}
	}()
	for i, f := range frames {
		chunk := val[i*longCap : min(len(val), (i+1)*longCap)]
		next := uint32(0)
		if i+1 < n {
			next = frames[i+1].key.pgno
		}
		if err := a.image(f, func(p []byte) {
			page.Init(p, page.KindLong)
			page.SetLink(p, next)
			page.SetAux(p, uint32(len(chunk)))
			copy(p[page.HeaderLen:], chunk)
		}); err != nil {
			return nil, err
		}
	}
	ref := make([]byte, lvRefLen)
	binary.LittleEndian.PutUint64(ref, uint64(len(val)))
	ref[8] = byte(kind)
	first := uint32(0)
	if n > 0 {
		first = frames[0].key.pgno
	}
	binary.LittleEndian.PutUint32(ref[9:], first)
	return ref, nil
}

// longChain walks a long value's pages; fn gets each page's data.
func (g *Group) longChain(dbid int, ref []byte, fn func(pgno uint32, data []byte) error) error {
	if len(ref) != lvRefLen {
		return fmt.Errorf("long-value reference of %d bytes", len(ref))
	}
	total := binary.LittleEndian.Uint64(ref)
	if ref[8] > fileSTM || total > MaxValueLen {
		return fmt.Errorf("malformed long-value reference (file %d, %d bytes)", ref[8], total)
	}
	file := makeFileNo(dbid, int(ref[8]))
	pgno := binary.LittleEndian.Uint32(ref[9:])
	var got uint64
	for steps := 0; pgno != 0; steps++ {
		if got > total || steps > MaxValueLen/longCap+1 {
			return fmt.Errorf("%s: long value chain at page %d overruns its length %d", g.fileName(file), pgno, total)
		}
		f, err := g.getFrame(frameKey{file, pgno}, true, true)
		if err != nil {
			return err
		}
		if page.KindOf(f.data) != page.KindLong || page.Aux(f.data) > longCap {
			g.unpin(f)
			return fmt.Errorf("%s: page %d in a long-value chain is a %s page", g.fileName(file), pgno, page.KindOf(f.data))
		}
		data := f.data[page.HeaderLen : page.HeaderLen+page.Aux(f.data)]
		err = fn(pgno, data)
		got += uint64(len(data))
		next := page.Link(f.data)
		g.unpin(f)
		if err != nil {
			return err
		}
		pgno = next
	}
	if got != total {
		return fmt.Errorf("%s: long value has %d bytes in its chain, reference says %d", g.fileName(file), got, total)
	}
	return nil
}

func (g *Group) readLong(dbid int, ref []byte) ([]byte, error) {
	if len(ref) != lvRefLen || binary.LittleEndian.Uint64(ref) > MaxValueLen {
		return nil, fmt.Errorf("%s: malformed long-value reference", g.fileName(makeFileNo(dbid, fileEDB)))
	}
	out := make([]byte, 0, binary.LittleEndian.Uint64(ref))
	err := g.longChain(dbid, ref, func(_ uint32, data []byte) error {
		out = append(out, data...)
		return nil
	})
	return out, err
}

func (a *applier) freeLong(dbid int, ref []byte) error {
	var pgnos []uint32
	if err := a.g.longChain(dbid, ref, func(pgno uint32, _ []byte) error {
		pgnos = append(pgnos, pgno)
		return nil
	}); err != nil {
		return err
	}
	return a.free(makeFileNo(dbid, int(ref[8])), pgnos)
}

// put inserts or replaces key in the tree rooted at root.
func (a *applier) put(d *database, root uint32, key, val []byte) error {
	file := makeFileNo(d.id, fileEDB)
	var cell []byte
	if 3+len(key)+len(val) <= inlineMax {
		cell = makeLeafCell(key, 0, val)
	} else {
		ref, err := a.writeLong(d, val)
		if err != nil {
			return err
		}
		cell = makeLeafCell(key, cellLong, ref)
	}
	path, leaf, err := a.g.descend(file, root, key)
	if err != nil {
		return err
	}
	defer func() { a.g.unpin(leaf); a.g.unpinPath(path) }()
	slot, found := searchLeaf(leaf.data, key)
	if found {
		old := page.Cell(leaf.data, slot)
		if leafIsLong(old) {
			if err := a.freeLong(d.id, bytes.Clone(leafVal(old))); err != nil {
				return err
			}
		}
		if page.FreeBytes(leaf.data)+len(old) >= len(cell) {
			return a.replace(leaf, slot, cell)
		}
		if err := a.delete(leaf, slot); err != nil {
			return err
		}
	}
	return a.insertAt(path, leaf, slot, cell, root)
}

// insertAt inserts cell at slot of f, splitting f (and its ancestors) when
// it does not fit. path holds f's ancestors.
func (a *applier) insertAt(path []pathEnt, f *frame, slot int, cell []byte, root uint32) error {
	if page.Fits(f.data, len(cell)) {
		return a.insert(f, slot, cell)
	}
	kind := page.KindOf(f.data)
	n := page.NSlot(f.data)
	cells := make([][]byte, 0, n+1)
	for i := 0; i < n; i++ {
		if i == slot {
			cells = append(cells, cell)
		}
		cells = append(cells, bytes.Clone(page.Cell(f.data, i)))
	}
	if slot == n {
		cells = append(cells, cell)
	}
	// Split by bytes so both halves fit.
	total := 0
	for _, c := range cells {
		total += len(c) + 4
	}
	m, acc := 0, 0
	for m < len(cells)-1 && acc+len(cells[m])+4 <= total/2 {
		acc += len(cells[m]) + 4
		m++
	}
	m = max(m, 1)
	var left, right [][]byte
	var sep []byte
	var rightLink uint32
	if kind == page.KindLeaf {
		left, right = cells[:m], cells[m:]
		sep = bytes.Clone(leafKey(right[0]))
	} else {
		if m >= len(cells)-1 {
			m = len(cells) - 2
		}
		left, right = cells[:m], cells[m+1:]
		sep = bytes.Clone(innerKey(cells[m]))
		rightLink = innerChild(cells[m])
	}
	if f.key.pgno == root {
		// The root keeps its page number: its content moves to two new pages.
		nf, err := a.alloc(f.key.file, 2)
		if err != nil {
			return err
		}
		defer a.g.unpin(nf[0])
		defer a.g.unpin(nf[1])
		leftLink := page.Link(f.data)
		if kind == page.KindLeaf {
			leftLink = 0
		}
		if err := a.rebuild(nf[0], kind, leftLink, left); err != nil {
			return err
		}
		if err := a.rebuild(nf[1], kind, rightLink, right); err != nil {
			return err
		}
		return a.rebuild(f, page.KindInternal, nf[0].key.pgno, [][]byte{makeInnerCell(nf[1].key.pgno, sep)})
	}
	nf, err := a.alloc(f.key.file, 1)
	if err != nil {
		return err
	}
	defer a.g.unpin(nf[0])
	if err := a.rebuild(nf[0], kind, rightLink, right); err != nil {
		return err
	}
	if err := a.rebuild(f, kind, page.Link(f.data), left); err != nil {
		return err
	}
	parent := path[len(path)-1]
	return a.insertAt(path[:len(path)-1], parent.f, parent.idx+1, makeInnerCell(nf[0].key.pgno, sep), root)
}

// del removes key; it reports whether the key existed.
func (a *applier) del(d *database, root uint32, key []byte) (bool, error) {
	file := makeFileNo(d.id, fileEDB)
	path, leaf, err := a.g.descend(file, root, key)
	if err != nil {
		return false, err
	}
	defer func() { a.g.unpin(leaf); a.g.unpinPath(path) }()
	slot, found := searchLeaf(leaf.data, key)
	if !found {
		return false, nil
	}
	if c := page.Cell(leaf.data, slot); leafIsLong(c) {
		if err := a.freeLong(d.id, bytes.Clone(leafVal(c))); err != nil {
			return false, err
		}
	}
	if err := a.delete(leaf, slot); err != nil {
		return false, err
	}
	return true, a.maybeMerge(path, leaf, root)
}

// maybeMerge merges an underfull leaf with a sibling under the same parent,
// and collapses a root left with a single child.
func (a *applier) maybeMerge(path []pathEnt, leaf *frame, root uint32) error {
	if len(path) == 0 || page.UsedBytes(leaf.data) >= (page.Size-page.HeaderLen)/4 {
		return nil
	}
	parent := path[len(path)-1]
	pn := page.NSlot(parent.f.data)
	var li, ri int // child indexes in parent (-1 = link)
	switch {
	case parent.idx+1 < pn:
		li, ri = parent.idx, parent.idx+1
	case parent.idx >= 0:
		li, ri = parent.idx-1, parent.idx
	default:
		return nil
	}
	file := leaf.key.file
	lf, err := a.g.getFrame(frameKey{file, childAt(parent.f.data, li)}, true, true)
	if err != nil {
		return err
	}
	defer a.g.unpin(lf)
	rf, err := a.g.getFrame(frameKey{file, childAt(parent.f.data, ri)}, true, true)
	if err != nil {
		return err
	}
	defer a.g.unpin(rf)
	if page.KindOf(lf.data) != page.KindLeaf || page.KindOf(rf.data) != page.KindLeaf {
		return nil
	}
	if page.UsedBytes(lf.data)+page.UsedBytes(rf.data) > page.Size-page.HeaderLen-64 {
		return nil
	}
	var cells [][]byte
	for _, f := range []*frame{lf, rf} {
		for i := 0; i < page.NSlot(f.data); i++ {
			cells = append(cells, bytes.Clone(page.Cell(f.data, i)))
		}
	}
	if err := a.rebuild(lf, page.KindLeaf, 0, cells); err != nil {
		return err
	}
	if err := a.delete(parent.f, ri); err != nil {
		return err
	}
	if err := a.free(file, []uint32{rf.key.pgno}); err != nil {
		return err
	}
	if parent.f.key.pgno == root && page.NSlot(parent.f.data) == 0 {
		// Collapse: the root takes over its only child's content.
		child := lf
		var cs [][]byte
		for i := 0; i < page.NSlot(child.data); i++ {
			cs = append(cs, bytes.Clone(page.Cell(child.data, i)))
		}
		if err := a.rebuild(parent.f, page.KindOf(child.data), page.Link(child.data), cs); err != nil {
			return err
		}
		return a.free(file, []uint32{child.key.pgno})
	}
	return nil
}

// get looks key up; long values are read in full.
func (g *Group) get(d *database, root uint32, key []byte) ([]byte, bool, error) {
	file := makeFileNo(d.id, fileEDB)
	path, leaf, err := g.descend(file, root, key)
	if err != nil {
		return nil, false, err
	}
	defer func() { g.unpin(leaf); g.unpinPath(path) }()
	slot, found := searchLeaf(leaf.data, key)
	if !found {
		return nil, false, nil
	}
	c := page.Cell(leaf.data, slot)
	if leafIsLong(c) {
		v, err := g.readLong(d.id, leafVal(c))
		return v, err == nil, err
	}
	return bytes.Clone(leafVal(c)), true, nil
}

type kv struct{ k, v []byte }

// seekGE returns the entries >= key of the leaf that would hold key, and
// the lower bound of the next leaf's subtree (nil when this is the last).
func (g *Group) seekGE(d *database, root uint32, key []byte) ([]kv, []byte, error) {
	file := makeFileNo(d.id, fileEDB)
	path, leaf, err := g.descend(file, root, key)
	if err != nil {
		return nil, nil, err
	}
	defer func() { g.unpin(leaf); g.unpinPath(path) }()
	slot, _ := searchLeaf(leaf.data, key)
	var out []kv
	for i := slot; i < page.NSlot(leaf.data); i++ {
		c := page.Cell(leaf.data, i)
		v := leafVal(c)
		if leafIsLong(c) {
			if v, err = g.readLong(d.id, v); err != nil {
				return nil, nil, err
			}
		} else {
			v = bytes.Clone(v)
		}
		out = append(out, kv{bytes.Clone(leafKey(c)), v})
	}
	var next []byte
	for i := len(path) - 1; i >= 0; i-- {
		if e := path[i]; e.idx+1 < page.NSlot(e.f.data) {
			next = bytes.Clone(innerKey(page.Cell(e.f.data, e.idx+1)))
			break
		}
	}
	return out, next, nil
}

// redo applies one logged page op during recovery. It is idempotent.
func (a *applier) redo(op *pageOp, start, end wal.Pos) error {
	g := a.g
	f, err := g.getFrame(frameKey{op.file, op.pgno}, true, false)
	if err != nil {
		return err
	}
	defer g.unpin(f)
	pf := g.pagefile(op.file)
	var cur uint64
	if f.dirty {
		cur = page.DBTime(f.data) // changed by earlier records of this replay
	} else if verr := page.Verify(pf.name, f.data, op.pgno); verr == nil {
		if page.KindOf(f.data) != page.KindUnused {
			cur = page.DBTime(f.data)
		}
	} else if op.typ != recImage || !errors.Is(verr, page.ErrBlank) {
		// A page never written (or beyond the file's end) is rebuilt whole
		// by an image; anything else unreadable is corruption.
		return fmt.Errorf("redo of log record at %v: %w", start, verr)
	}
	// The database's dbtime must end above every dbtime on disk, also
	// those of ops skipped here: pages flushed after the last checkpoint
	// carry dbtimes the checkpoint does not know.
	if d := a.db(op.file); d.dbtime < op.after {
		d.dbtime = op.after
	}
	if op.after <= cur {
		return nil // already on disk
	}
	switch op.typ {
	case recImage:
		page.Expand(f.data, op.head, op.tail)
	default:
		if cur != op.before {
			return fmt.Errorf("%s: page %d is at dbtime %d but the log record at %v changes it from dbtime %d: a log generation or database page is missing", pf.name, op.pgno, cur, start, op.before)
		}
		var err error
		switch op.typ {
		case recInsert:
			err = page.InsertCell(f.data, op.slot, op.cell)
		case recReplace:
			err = page.ReplaceCell(f.data, op.slot, op.cell)
		case recDelete:
			page.DeleteCell(f.data, op.slot)
		}
		if err != nil {
			return fmt.Errorf("%s: page %d: redo of record at %v: %w", pf.name, op.pgno, start, err)
		}
	}
	page.SetDBTime(f.data, op.after)
	g.cache.markDirty(f, start)
	if f.lastLSN.Less(end) {
		f.lastLSN = end
	}
	return nil
}
