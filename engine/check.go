package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/tapestream/tapestream/engine/page"
)

// CheckReport is the result of Check.
type CheckReport struct {
	Pages    int      // pages verified on disk
	Entries  int      // table entries walked
	Tables   int      // tables walked
	Problems []string // empty when the group is sound
}

// OK reports whether no problem was found.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

const maxProblems = 50

func (r *CheckReport) add(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Check flushes the group and verifies every page checksum on disk, the
// B+tree invariants of every table (order, separator bounds, equal leaf
// depth), every long-value chain, and that every page is used exactly once
// (tree, long value or free list).
func (g *Group) Check() (*CheckReport, error) {
	if err := g.flush(false); err != nil {
		return nil, err
	}
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(); err != nil {
		return nil, err
	}
	r := &CheckReport{}
	for _, d := range g.dbs {
		if !d.mounted {
			continue
		}
		for _, pf := range d.files {
			if pf != nil {
				g.checkPages(pf, r)
			}
		}
		g.checkTrees(d, r)
	}
	return r, nil
}

func (g *Group) checkPages(pf *pagefile, r *CheckReport) {
	phys := uint32(pf.size() / page.Size)
	buf := make([]byte, page.PagesPerChunk*page.Size)
	for first := uint32(0); first < phys; first += page.PagesPerChunk {
		n := min(page.PagesPerChunk, phys-first)
		if _, err := pf.f.ReadAt(buf[:n*page.Size], int64(first)*page.Size); err != nil && !errors.Is(err, io.EOF) {
			r.add("%s: reading pages %d-%d: %v", pf.name, first, first+n-1, err)
			continue
		}
		for i := uint32(0); i < n; i++ {
			r.Pages++
			if err := page.Verify(pf.name, buf[i*page.Size:(i+1)*page.Size], first+i); err != nil {
				r.add("%v", err)
			}
		}
	}
}

// pageUse tracks which pages of a file are accounted for: an owner
// number per page (4 bytes a page, not a string in a map: a check after a
// restore's recovery ran at 2-3x the heap it needed, and the map grew
// with the database), the owners' names kept once.
type pageUse struct {
	name   string
	owner  []uint32 // page → 1 + index in owners; 0: unused
	owners []string
	ids    map[string]uint32
	r      *CheckReport
}

func newPageUse(name string, pages int64, r *CheckReport) *pageUse {
	return &pageUse{name: name, owner: make([]uint32, pages), ids: map[string]uint32{}, r: r}
}

// mark records that what uses page pgno; detail (lazily formatted) only
// goes into a problem's text.
func (u *pageUse) mark(pgno uint32, what string, detail func() string) {
	if int(pgno) >= len(u.owner) {
		// A damaged link: never sized by what the pages say.
		u.r.add("%s: page %d beyond the end of the file (%s)", u.name, pgno, what)
		return
	}
	if prev := u.owner[pgno]; prev != 0 {
		d := what
		if detail != nil {
			d = detail()
		}
		u.r.add("%s: page %d used twice (%s and %s)", u.name, pgno, u.owners[prev-1], d)
		return
	}
	id, ok := u.ids[what]
	if !ok {
		u.owners = append(u.owners, what)
		id = uint32(len(u.owners))
		u.ids[what] = id
	}
	u.owner[pgno] = id
}

func (u *pageUse) used(pgno uint32) bool { return int(pgno) < len(u.owner) && u.owner[pgno] != 0 }

func (g *Group) checkTrees(d *database, r *CheckReport) {
	uses := map[int]*pageUse{}
	for kind, pf := range d.files {
		if pf != nil {
			uses[kind] = newPageUse(pf.name, pf.size()/page.Size, r)
		}
	}
	edb := makeFileNo(d.id, fileEDB)
	var tables []struct {
		name string
		root uint32
	}
	g.checkTree(d, edb, pgnoCatalog, "catalog", uses, r, true, func(k, v []byte) {
		if len(v) != 4 {
			r.add("%s: catalog entry %q has a %d-byte value", d.name, k, len(v))
			return
		}
		tables = append(tables, struct {
			name string
			root uint32
		}{string(k), binary.LittleEndian.Uint32(v)})
	})
	for _, t := range tables {
		r.Tables++
		g.checkTree(d, edb, t.root, "table "+t.name, uses, r, false, func(k, v []byte) { r.Entries++ })
	}
	for kind, u := range uses {
		file := makeFileNo(d.id, kind)
		g.checkSpace(file, u, r)
	}
}

// checkTree walks a tree; leafFn gets every entry, with long values read
// whole only if values (else v is nil for them: their chains are checked,
// and not gathered for nothing).
func (g *Group) checkTree(d *database, file fileNo, root uint32, what string, uses map[int]*pageUse, r *CheckReport, values bool, leafFn func(k, v []byte)) {
	leafDepth := -1
	var walk func(pgno uint32, lo, hi []byte, depth int)
	walk = func(pgno uint32, lo, hi []byte, depth int) {
		if depth > 64 {
			r.add("%s: %s: tree deeper than 64 at page %d", g.fileName(file), what, pgno)
			return
		}
		uses[fileEDB].mark(pgno, what, nil)
		f, err := g.getFrame(frameKey{file, pgno}, true, true)
		if err != nil {
			r.add("%s: %v", what, err)
			return
		}
		defer g.unpin(f)
		p := f.data
		n := page.NSlot(p)
		var prev []byte
		for i := 0; i < n; i++ {
			k := cellKey(p, i)
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				r.add("%s: %s: page %d: keys out of order at slot %d", g.fileName(file), what, pgno, i)
			}
			if lo != nil && bytes.Compare(k, lo) < 0 || hi != nil && bytes.Compare(k, hi) >= 0 {
				r.add("%s: %s: page %d: key %q outside its parent's range", g.fileName(file), what, pgno, k)
			}
			prev = k
		}
		switch page.KindOf(p) {
		case page.KindLeaf:
			if leafDepth < 0 {
				leafDepth = depth
			} else if depth != leafDepth {
				r.add("%s: %s: leaf page %d at depth %d, others at %d", g.fileName(file), what, pgno, depth, leafDepth)
			}
			for i := 0; i < n; i++ {
				c := page.Cell(p, i)
				v := leafVal(c)
				if leafIsLong(c) {
					ref := bytes.Clone(v)
					if len(ref) != lvRefLen {
						r.add("%s: %s: key %q: long-value reference of %d bytes", g.fileName(file), what, leafKey(c), len(ref))
						continue
					}
					u := uses[int(ref[8])]
					if u == nil {
						r.add("%s: %s: key %q: long value in a file the database does not have", g.fileName(file), what, leafKey(c))
						continue
					}
					var data []byte
					lv := "long value of " + what
					err := g.longChain(d.id, ref, func(pg uint32, b []byte) error {
						u.mark(pg, lv, func() string { return fmt.Sprintf("%s key %q", lv, leafKey(c)) })
						if values {
							data = append(data, b...)
						}
						return nil
					})
					if err != nil {
						r.add("%s: key %q: %v", what, leafKey(c), err)
						continue
					}
					v = data
				}
				leafFn(leafKey(c), v)
			}
		case page.KindInternal:
			children := make([]uint32, 0, n+1)
			bounds := make([][]byte, 0, n+2)
			children = append(children, page.Link(p))
			bounds = append(bounds, lo)
			for i := 0; i < n; i++ {
				c := page.Cell(p, i)
				children = append(children, innerChild(c))
				bounds = append(bounds, bytes.Clone(innerKey(c)))
			}
			bounds = append(bounds, hi)
			for i, ch := range children {
				walk(ch, bounds[i], bounds[i+1], depth+1)
			}
		default:
			r.add("%s: %s: page %d is a %s page inside a tree", g.fileName(file), what, pgno, page.KindOf(p))
		}
	}
	walk(root, nil, nil, 0)
}

// checkSpace walks the free list and checks that every page below the
// space page's count is used exactly once and everything above is unused.
func (g *Group) checkSpace(file fileNo, u *pageUse, r *CheckReport) {
	sp, err := g.getFrame(frameKey{file, pgnoSpace}, true, true)
	if err != nil {
		r.add("%v", err)
		return
	}
	count, head, nfree := spaceGet(sp.data)
	g.unpin(sp)
	seen := uint32(0)
	for pg := head; pg != 0; seen++ {
		if seen > count {
			r.add("%s: free list longer than the file (cycle?)", u.name)
			break
		}
		u.mark(pg, "free list", nil)
		f, err := g.getFrame(frameKey{file, pg}, true, true)
		if err != nil {
			r.add("%v", err)
			break
		}
		if page.KindOf(f.data) != page.KindFree {
			r.add("%s: free list page %d is a %s page", u.name, pg, page.KindOf(f.data))
		}
		pg = page.Link(f.data)
		g.unpin(f)
	}
	if seen != nfree {
		r.add("%s: free list holds %d pages, space page says %d", u.name, seen, nfree)
	}
	nmissing, first := 0, uint32(0)
	for pg := uint32(firstFree); pg < count; pg++ {
		if !u.used(pg) {
			if nmissing == 0 {
				first = pg
			}
			nmissing++
		}
	}
	if nmissing > 0 {
		r.add("%s: %d pages neither in a tree nor free (first: %d)", u.name, nmissing, first)
	}
	for pg := int(count); pg < len(u.owner); pg++ {
		if u.owner[pg] != 0 {
			r.add("%s: page %d in use beyond the allocated count %d", u.name, pg, count)
		}
	}
}

// Dump writes a deterministic logical listing of the group: one line per
// entry, "db<TAB>table<TAB>key<TAB>length<TAB>sha256", in key order. Two
// stores with the same committed content produce identical dumps.
func (g *Group) Dump(w io.Writer, onlyDB string) error {
	for _, dc := range g.cfg.Databases {
		if onlyDB != "" && dc.Name != onlyDB {
			continue
		}
		tables, err := g.Tables(dc.Name)
		if err != nil {
			return err
		}
		sort.Strings(tables)
		for _, t := range tables {
			err := g.View(func(tx *Tx) error {
				return tx.Scan(dc.Name, t, nil, func(k, v []byte) error {
					sum := sha256.Sum256(v)
					_, err := fmt.Fprintf(w, "%s\t%s\t%q\t%d\t%x\n", dc.Name, t, k, len(v), sum)
					return err
				})
			})
			if err != nil {
				return err
			}
		}
	}
	if onlyDB != "" {
		for _, dc := range g.cfg.Databases {
			if dc.Name == onlyDB {
				return nil
			}
		}
		return fmt.Errorf("storage group %s has no database %q", g.name, onlyDB)
	}
	return nil
}
