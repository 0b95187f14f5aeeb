package tapeformat

import (
	"fmt"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The unit layer: the units and file-info frames of a member's data (or
// of a damaged region being salvaged), decoded ahead in parallel within a
// byte budget.

// aheadUnit is a unit of the current member being decoded by a worker.
type aheadUnit struct {
	pos, n int
	size   int64 // declared uncompressed length: its share of the budget
	out    []byte
	meta   codec.ChunkMeta
	err    error
	done   chan struct{}
}

// takeAhead returns the decoded unit at r.memPos, scheduling the next
// units of the member on the decoder pool first. Units are decoded in
// parallel and delivered in order, as long as the chunks being decoded
// stay within ReadAhead bytes (at least one is); anything unusual (a torn
// member, a record that does not parse, a file-info frame) is left to the
// sequential path, which owns resynchronisation and damage reports.
func (r *Reader) takeAhead() *aheadUnit {
	if r.opts.Workers <= 1 || r.codec.Kind == codec.None || r.memTorn {
		return nil
	}
	if len(r.ahead) > 0 && r.ahead[0].pos != r.memPos {
		r.drainAhead()
	}
	if r.scan < r.memPos {
		r.scan = r.memPos
	}
	if r.decs == nil {
		r.decs = make(chan *codec.Decoder, r.opts.Workers)
	}
	for len(r.ahead) < 2*r.opts.Workers && r.scan < len(r.mem) {
		b := r.mem[r.scan:]
		h, err := codec.ParseHeader(b)
		if err != nil || h.UnitLen > len(b) || h.Kind != r.codec.Kind || int(h.Meta.Length) > r.opts.MaxFrameSize {
			break
		}
		size := int64(h.Meta.Length)
		if len(r.ahead) > 0 && r.aheadBytes+size > r.opts.ReadAhead || r.holeIn(r.scan, r.scan+h.UnitLen) != nil {
			break
		}
		a := &aheadUnit{pos: r.scan, n: h.UnitLen, size: size, done: make(chan struct{})}
		a.out = r.getOut()
		unit := b[:h.UnitLen]
		r.scan += h.UnitLen
		r.ahead = append(r.ahead, a)
		r.aheadBytes += size
		dec := r.decoder()
		go func() {
			a.out, a.meta, a.err = dec.DecodeFrame(a.out, unit)
			r.decs <- dec
			close(a.done)
		}()
	}
	if len(r.ahead) == 0 || r.ahead[0].pos != r.memPos {
		return nil
	}
	a := r.ahead[0]
	r.ahead = r.ahead[1:]
	r.aheadBytes -= a.size
	<-a.done
	return a
}

// decoder returns an idle decoder of the pool, making one only when all
// are busy: only as many decoders (and their windows) exist as the budget
// lets run at once.
func (r *Reader) decoder() *codec.Decoder {
	select {
	case d := <-r.decs:
		return d
	default:
	}
	if r.ndecs < r.opts.Workers {
		r.ndecs++
		return codec.NewDecoder(r.opts.MaxFrameSize)
	}
	return <-r.decs
}

// getOut returns a recycled chunk buffer, or nil (a decode then allocates).
func (r *Reader) getOut() []byte {
	n := len(r.outFree)
	if n == 0 {
		return nil
	}
	b := r.outFree[n-1][:0]
	r.outFree = r.outFree[:n-1]
	r.outBytes -= int64(cap(b))
	return b
}

// putOut keeps b for a later chunk; the pool is bounded (in count and in
// bytes) so that buffers a caller recycles cannot pile up.
func (r *Reader) putOut(b []byte) {
	if cap(b) > 0 && len(r.outFree) < 2*r.opts.Workers+4 && r.outBytes+int64(cap(b)) <= r.opts.ReadAhead+int64(r.opts.MaxFrameSize) {
		r.outFree = append(r.outFree, b[:0])
		r.outBytes += int64(cap(b))
	}
}

// drainAhead waits for every scheduled decode: the member buffer they
// read is about to be reused.
func (r *Reader) drainAhead() {
	for _, a := range r.ahead {
		<-a.done
		r.putOut(a.out)
	}
	r.ahead = r.ahead[:0]
	r.aheadBytes = 0
	r.scan = 0
}

// nextUnit decodes the next chunk of the member being parsed into r.out;
// ok is false when the member is exhausted. File-info frames met on the
// way are learnt from.
func (r *Reader) nextUnit() (meta codec.ChunkMeta, ok bool, err error) {
	switch {
	case r.Sealed() && r.memRec != nil:
		return r.nextSealed()
	case r.codec.Kind == codec.None && r.memRec != nil && r.memRec.Age != nil:
		return r.nextSealedRaw()
	}
	for r.memPos < len(r.mem) {
		at := r.memOff + int64(r.memPos)
		b := r.mem[r.memPos:]
		if len(r.holes) > 0 && r.codec.Kind != codec.None {
			if moved, err := r.skipHole(); err != nil || moved {
				if err != nil {
					return meta, false, err
				}
				continue
			}
		}
		if r.codec.Kind == codec.None {
			rec := r.memRec
			if rec == nil || r.memTable >= len(rec.Table) {
				break
			}
			e := rec.Table[r.memTable]
			meta = codec.ChunkMeta{FileIndex: uint32(rec.File), Offset: r.memCOff, Length: e[0], CRC32C: e[1]}
			if int64(e[0]) > int64(len(b)) {
				r.memPos = len(r.mem)
				if r.memTorn {
					break // the chunk at the tear
				}
				return meta, false, r.damage(at, r.memName, fmt.Errorf("%w: chunk table exceeds member", ErrDamaged))
			}
			r.memTable++
			r.memCOff += int64(e[0])
			r.memPos += int(e[0])
			if err := codec.Verify(meta, b[:e[0]]); err != nil {
				if err := r.damage(at, r.memName, fmt.Errorf("chunk of file %d at offset %d: %w", meta.FileIndex, meta.Offset, err)); err != nil {
					return meta, false, err
				}
				continue
			}
			if r.out == nil {
				r.out = r.getOut()
			}
			r.out = append(r.out[:0], b[:e[0]]...)
			return meta, true, nil
		}
		var derr error
		var h codec.Header
		if a := r.takeAhead(); a != nil {
			// Decoded in parallel, in order.
			r.memPos += a.n
			r.putOut(r.out)
			r.out, meta, derr = a.out, a.meta, a.err
			h, _ = codec.ParseHeader(b)
		} else {
			var herr error
			h, herr = codec.ParseHeader(b)
			if herr != nil {
				info, n, ierr := codec.ParseInfo(b)
				if ierr == nil {
					r.memPos += n
					if r.memRec != nil && r.memRec.info != nil && r.labelFull {
						continue // all it says is known (its checksum is good)
					}
					if err := r.learnInfoFrame(at, info); err != nil {
						return meta, false, err
					}
					continue
				}
				if r.memTorn && n > len(b) {
					break // a file-info frame cut at the tear
				}
			}
			if r.memTorn && (len(b) < codec.MinHeaderLen || herr == nil && h.UnitLen > len(b)) {
				break // incomplete unit at the tear (or at the end of a region)
			}
			if herr != nil || h.UnitLen > len(b) || h.Kind != r.codec.Kind {
				if err := r.damage(at, r.memName, fmt.Errorf("%w: no valid chunk record", ErrDamaged)); err != nil {
					return meta, false, err
				}
				next := codec.FindUnit(b[1:])
				if next < 0 {
					r.memPos = len(r.mem)
					break
				}
				r.memPos += 1 + next
				continue
			}
			r.memPos += h.UnitLen
			if int(h.Meta.Length) > r.opts.MaxFrameSize {
				meta, derr = h.Meta, fmt.Errorf("%w: chunk of %d bytes", codec.ErrTooLarge, h.Meta.Length)
			} else {
				if r.out == nil {
					r.out = r.getOut()
				}
				r.out, meta, derr = r.dec.DecodeFrame(r.out[:0], b[:h.UnitLen])
			}
		}
		if derr == nil {
			derr = r.checkUnit(h, meta)
		}
		if derr != nil {
			if err := r.damage(at, r.memName, fmt.Errorf("chunk of file %d at offset %d: %w", meta.FileIndex, meta.Offset, derr)); err != nil {
				return meta, false, err
			}
			continue
		}
		return meta, true, nil
	}
	r.active = false
	return meta, false, r.reportHoles(nil)
}

// checkUnit checks that a decoded unit belongs here: to this set (the
// set tag of format version 3), to the member's file and range.
func (r *Reader) checkUnit(h codec.Header, meta codec.ChunkMeta) error {
	if r.version >= 3 && (h.Version != codec.RecordVer || h.SetTag != r.tag) {
		return fmt.Errorf("%w: chunk record of another set (tag %016x, version %d)", ErrDamaged, h.SetTag, h.Version)
	}
	if r.version < 3 && h.Version != 1 {
		return fmt.Errorf("%w: chunk record version %d in a set of format version %d", ErrDamaged, h.Version, r.version)
	}
	if rec := r.memRec; rec != nil && (int(meta.FileIndex) != rec.File || meta.Offset < rec.Offset ||
		meta.End() > rec.Offset+rec.Length) {
		return fmt.Errorf("%w: chunk of file %d at %d outside its member", ErrDamaged, meta.FileIndex, meta.Offset)
	}
	if r.memRec == nil && r.memFile >= 0 && int(meta.FileIndex) != r.memFile {
		return fmt.Errorf("%w: chunk of file %d in member of file %d", ErrDamaged, meta.FileIndex, r.memFile)
	}
	return nil
}
