package page

import (
	"encoding/binary"
	"errors"
)

// ErrFull means a cell does not fit the page even after compaction.
var ErrFull = errors.New("page: no room for cell")

// cellHdr is the per-cell length prefix (wire format).
const cellHdr = 2

// MaxCell is the largest cell any slotted page accepts; the B+tree keeps
// cells well under it so that a split always leaves both halves legal.
const MaxCell = (Size - HeaderLen) / 4

// Cell returns the bytes of cell i (aliasing p).
func Cell(p []byte, i int) []byte {
	off := slot(p, i)
	n := int(binary.LittleEndian.Uint16(p[off:]))
	return p[off+cellHdr : off+cellHdr+n]
}

// UsedBytes is the space taken by slots and live cells.
func UsedBytes(p []byte) int {
	used := 0
	for i, n := 0, NSlot(p); i < n; i++ {
		used += 2 + cellHdr + len(Cell(p, i))
	}
	return used
}

// FreeBytes is the space available for new cells (including their slot)
// after a compaction.
func FreeBytes(p []byte) int { return Size - HeaderLen - UsedBytes(p) }

// Fits reports whether a cell of n bytes can be inserted.
func Fits(p []byte, n int) bool { return FreeBytes(p) >= n+cellHdr+2 }

// InsertCell inserts cell at slot i, shifting later slots up.
func InsertCell(p []byte, i int, cell []byte) error {
	need := len(cell) + cellHdr
	if !Fits(p, len(cell)) {
		return ErrFull
	}
	if upperOrEnd(p)-need < lower(p)+2 {
		compact(p)
	}
	off := upperOrEnd(p) - need
	binary.LittleEndian.PutUint16(p[off:], uint16(len(cell)))
	copy(p[off+cellHdr:], cell)
	setUpper(p, off)
	n := NSlot(p)
	copy(p[HeaderLen+2*(i+1):HeaderLen+2*(n+1)], p[HeaderLen+2*i:HeaderLen+2*n])
	setSlot(p, i, off)
	setNSlot(p, n+1)
	return nil
}

// DeleteCell removes slot i. The cell's bytes become garbage reclaimed by
// the next compaction.
func DeleteCell(p []byte, i int) {
	n := NSlot(p)
	copy(p[HeaderLen+2*i:], p[HeaderLen+2*(i+1):HeaderLen+2*n])
	setNSlot(p, n-1)
	// Zero the vacated slot so page images stay deterministic.
	p[HeaderLen+2*(n-1)] = 0
	p[HeaderLen+2*(n-1)+1] = 0
	if n == 1 {
		compact(p)
	}
}

// ReplaceCell replaces cell i with cell.
func ReplaceCell(p []byte, i int, cell []byte) error {
	old := Cell(p, i)
	if len(old) == len(cell) {
		copy(old, cell)
		return nil
	}
	if FreeBytes(p)+len(old)+cellHdr < len(cell)+cellHdr {
		return ErrFull
	}
	// Delete and re-insert at the same slot; the slot array keeps its order.
	n := NSlot(p)
	copy(p[HeaderLen+2*i:], p[HeaderLen+2*(i+1):HeaderLen+2*n])
	setNSlot(p, n-1)
	p[HeaderLen+2*(n-1)] = 0
	p[HeaderLen+2*(n-1)+1] = 0
	return InsertCell(p, i, cell)
}

// compact rewrites the cell area so that all free space is contiguous. It is
// a pure function of the page's live cells, so redo reproduces it exactly.
func compact(p []byte) {
	var tmp [Size]byte
	n := NSlot(p)
	off := Size
	for i := 0; i < n; i++ {
		c := Cell(p, i)
		off -= len(c) + cellHdr
		binary.LittleEndian.PutUint16(tmp[off:], uint16(len(c)))
		copy(tmp[off+cellHdr:], c)
		setSlot(tmp[:], i, off)
	}
	copy(p[HeaderLen:HeaderLen+2*n], tmp[HeaderLen:HeaderLen+2*n])
	clear(p[HeaderLen+2*n : off])
	copy(p[off:], tmp[off:])
	setUpper(p, off)
}

// Compact returns the page with its free gap removed, for full-page-image
// log records: header and slots, then the cell area. For non-slotted pages
// (long values) the body up to Size is kept minus trailing zeros.
func Compact(p []byte) (head, tail []byte) {
	switch KindOf(p) {
	case KindLeaf, KindInternal:
		compact(p)
		return p[:lower(p)], p[upperOrEnd(p):Size]
	}
	end := Size
	for end > HeaderLen && p[end-1] == 0 {
		end--
	}
	return p[:end], nil
}

// Expand rebuilds a page from Compact's halves.
func Expand(dst []byte, head, tail []byte) {
	clear(dst[:Size])
	copy(dst, head)
	copy(dst[Size-len(tail):], tail)
}
