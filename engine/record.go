package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Log record payloads (wire format). The WAL frames and checksums them; the
// engine encodes:
//
//	page op:  type(1) fileNo(2) pgno(4) dbtimeBefore(8) dbtimeAfter(8) op body
//	  insert/replace: slot(2) cell…
//	  delete:         slot(2)
//	  image:          headLen(2) head… tail…   (a page minus its free gap)
//	commit:   type(1) txid(8) unixNanos(8)
//	abort:    type(1)
//
// Redo is idempotent: a page op applies only when the page's dbtime is older
// than dbtimeAfter; a physiological op additionally requires the page to be
// exactly at dbtimeBefore, images apply to any older version. That is why a
// backup never needs patch files: whatever version of a page the copy saw,
// the logs from the frozen checkpoint rebuild it.
const (
	recInsert  = 1
	recDelete  = 2
	recReplace = 3
	recImage   = 4
	recCommit  = 5
	// recAbort discards the page ops logged since the last commit: the
	// tail of a transaction a crash (or a failed commit) interrupted.
	// Recovery appends it when the log ends with such a tail, so that
	// the records after it are never replayed together with that tail
	// (a replay that starts before the tail: a restore replaying a backup
	// set from the start of a generation, or an open without checkpoint).
	recAbort = 6
)

const pageOpHdr = 1 + 2 + 4 + 8 + 8

type pageOp struct {
	typ    byte
	file   fileNo
	pgno   uint32
	before uint64
	after  uint64
	slot   int
	cell   []byte // insert/replace
	head   []byte // image
	tail   []byte // image
}

func appendPageOp(dst []byte, op *pageOp) []byte {
	var h [pageOpHdr]byte
	h[0] = op.typ
	binary.LittleEndian.PutUint16(h[1:], uint16(op.file))
	binary.LittleEndian.PutUint32(h[3:], op.pgno)
	binary.LittleEndian.PutUint64(h[7:], op.before)
	binary.LittleEndian.PutUint64(h[15:], op.after)
	dst = append(dst, h[:]...)
	switch op.typ {
	case recInsert, recReplace:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(op.slot))
		dst = append(dst, op.cell...)
	case recDelete:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(op.slot))
	case recImage:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(op.head)))
		dst = append(dst, op.head...)
		dst = append(dst, op.tail...)
	}
	return dst
}

var errBadRecord = errors.New("malformed log record")

func decodePageOp(b []byte) (*pageOp, error) {
	if len(b) < pageOpHdr+2 {
		return nil, errBadRecord
	}
	op := &pageOp{
		typ:    b[0],
		file:   fileNo(binary.LittleEndian.Uint16(b[1:])),
		pgno:   binary.LittleEndian.Uint32(b[3:]),
		before: binary.LittleEndian.Uint64(b[7:]),
		after:  binary.LittleEndian.Uint64(b[15:]),
	}
	rest := b[pageOpHdr:]
	switch op.typ {
	case recInsert, recReplace, recDelete:
		op.slot = int(binary.LittleEndian.Uint16(rest))
		op.cell = rest[2:]
	case recImage:
		n := int(binary.LittleEndian.Uint16(rest))
		if 2+n > len(rest) {
			return nil, errBadRecord
		}
		op.head = rest[2 : 2+n]
		op.tail = rest[2+n:]
	default:
		return nil, fmt.Errorf("%w: type %d", errBadRecord, op.typ)
	}
	return op, nil
}

func appendCommit(dst []byte, txid uint64, unixNanos int64) []byte {
	dst = append(dst, recCommit)
	dst = binary.LittleEndian.AppendUint64(dst, txid)
	return binary.LittleEndian.AppendUint64(dst, uint64(unixNanos))
}

func appendAbort(dst []byte) []byte { return append(dst, recAbort) }

func decodeCommit(b []byte) (txid uint64, unixNanos int64, err error) {
	if len(b) != 17 || b[0] != recCommit {
		return 0, 0, errBadRecord
	}
	return binary.LittleEndian.Uint64(b[1:]), int64(binary.LittleEndian.Uint64(b[9:])), nil
}
