package tapeformat

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The tar layer: member headers and records, resynchronisation after
// damage, volume ends, and what follows the end of the set.

type pendingHeader struct {
	h     *tar.Header
	rec   *memberRecord
	start int64
}

// validHeaderBlock reports whether b is a pax extended header block with a
// valid checksum, as every tapestream member starts with one.
func validHeaderBlock(b []byte) bool {
	if len(b) < BlockSize || string(b[257:265]) != "ustar\x0000" || b[156] != tar.TypeXHeader {
		return false
	}
	var sum int64
	for i, c := range b[:BlockSize] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	f := bytes.TrimRight(bytes.TrimLeft(b[148:156], " "), " \x00")
	want, err := strconv.ParseInt(string(f), 8, 64)
	return err == nil && want == sum
}

type countReader struct {
	r *Reader
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.br.Read(p)
	c.r.off += int64(n)
	return n, err
}

// readHeader reads the member header at the current position. It returns
// io.EOF at the end of the volume (a zero block or the end of data) and a
// *FormatError wrapping ErrHeader for a block that is no header. The
// record may belong to another set: the caller decides.
//
// The header (the 'x' block, the pax records, the ustar block) is parsed
// from the read buffer and consumed only if it is valid; otherwise only
// its first block is, and a resync goes on block by block from there
// (a damaged size in a pax record must not carry the reader past the next
// member's header, nor off the 512-byte grid).
func (r *Reader) readHeader() (*tar.Header, *memberRecord, error) {
	start := r.off
	blk, err := r.br.Peek(BlockSize)
	if len(blk) < BlockSize {
		if len(blk) == 0 && (err == io.EOF || err == nil) {
			return nil, nil, io.EOF
		}
		return nil, nil, r.ferr(start, "", fmt.Errorf("%w: %d stray bytes at end of volume", ErrTruncated, len(blk)))
	}
	if bytes.Equal(blk, zeroBlock[:]) {
		return nil, nil, io.EOF
	}
	if !validHeaderBlock(blk) {
		if start == 0 && r.vol <= 1 {
			// The very first block: most likely not a set at all.
			return nil, nil, r.ferr(start, "", fmt.Errorf("%w: its first block is no tar header: not a tapestream set (or one whose start is destroyed)", ErrHeader))
		}
		return nil, nil, r.ferr(start, "", ErrHeader)
	}
	paxSize, ok := parseOctal(blk[124:136])
	if !ok || paxSize > maxPaxSize {
		r.skip(BlockSize)
		return nil, nil, r.ferr(start, "", fmt.Errorf("%w: pax header of %d bytes", ErrHeader, paxSize))
	}
	span := int(BlockSize + padded(paxSize) + BlockSize)
	r.growBuffer(span)
	hb, err := r.br.Peek(span)
	if len(hb) < span {
		r.skip(BlockSize)
		return nil, nil, r.ferr(start, "", fmt.Errorf("%w: the volume ends inside a member header (%v)", ErrTruncated, err))
	}
	h, err := tar.NewReader(bytes.NewReader(hb)).Next()
	if err != nil {
		r.skip(BlockSize)
		return nil, nil, r.ferr(start, "", fmt.Errorf("%w: %v", ErrHeader, err))
	}
	if h.Typeflag != tar.TypeReg || h.Size < 0 {
		r.skip(BlockSize)
		return nil, nil, r.ferr(start, h.Name, ErrNotTapestream)
	}
	rec, err := decodeRecord(h.PAXRecords["comment"], !r.labeled || r.version < 3)
	if err == nil && rec.Magic == recordV2 && rec.Stored != h.Size {
		err = fmt.Errorf("%w: member record says %d bytes, tar header %d", ErrHeader, rec.Stored, h.Size)
	}
	if err != nil {
		r.skip(BlockSize)
		return nil, nil, r.ferr(start, h.Name, err)
	}
	if r.labeled && rec.Set != r.label.SetID {
		r.skip(int64(span))
		return h, rec, nil // another set's: the caller decides
	}
	if err := checkMemberName(h.Name, rec, r.codec); err != nil && (r.labeled || rec.Type == mtLabel) {
		r.skip(BlockSize)
		return nil, nil, r.ferr(start, h.Name, err)
	}
	r.skip(int64(span))
	return h, rec, nil
}

func parseOctal(b []byte) (int64, bool) {
	f := bytes.Trim(b, " \x00")
	n, err := strconv.ParseInt(string(f), 8, 64)
	return n, err == nil && len(f) > 0
}

// readData reads a member's data and padding into p.
func (r *Reader) readData(p []byte) error {
	n, err := io.ReadFull(countReader{r}, p)
	if err != nil {
		return fmt.Errorf("%w: member data ends after %d of %d bytes", ErrTruncated, n, len(p))
	}
	return r.skipPad(len(p))
}

func (r *Reader) skipPad(n int) error {
	pad := -n & (BlockSize - 1)
	k, _ := r.br.Discard(pad)
	r.off += int64(k)
	if k < pad {
		return fmt.Errorf("%w: member padding", ErrTruncated)
	}
	return nil
}

// readMember reads a segment's data into the member buffer, which grows
// with the data actually read: a header declaring a huge size costs no
// memory unless the data is there. It returns the bytes read.
func (r *Reader) readMember(size int64) ([]byte, error) {
	hint := int64(r.label.SegmentSize) + 2*int64(r.label.FrameSize) + 64<<10
	if cap(r.memBuf) < int(size) && size <= hint {
		// Segments differ in size by up to a unit: a buffer of exactly
		// this member's size was replaced again and again (128 MB
		// allocated restoring a 4 GiB set, peak RSS 163 instead of 93
		// MiB). Room for the largest segment the label announces makes
		// it once.
		r.memBuf = make([]byte, 0, hint)
	}
	buf := r.memBuf[:0]
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(size-int64(len(buf)), max(int64(len(buf)), 1<<20)))...)[:len(buf)]
		}
		n, err := io.ReadFull(countReader{r}, buf[len(buf):min(int64(cap(buf)), size)])
		buf = buf[:len(buf)+n]
		if err != nil {
			r.memBuf = buf
			return buf, fmt.Errorf("%w: member data ends after %d of %d bytes", ErrTruncated, len(buf), size)
		}
	}
	r.memBuf = buf
	return buf, r.skipPad(int(size))
}

func (r *Reader) skip(n int64) {
	for n > 0 {
		k, err := r.br.Discard(int(min(n, 1<<30)))
		r.off += int64(k)
		n -= int64(k)
		if err != nil {
			return
		}
	}
}

func padded(n int64) int64 { return n + -n&(BlockSize-1) }

// endVolume is called at the end of the current volume.
func (r *Reader) endVolume() error {
	if r.manRead {
		r.done = true
		return nil
	}
	if ok, err := r.nextVolume(); ok {
		return err
	}
	r.done = true
	return r.damage(r.off, "", fmt.Errorf("%w: no manifest", ErrTruncated))
}

// nextVolume moves to the next volume of a VolumeReader and reads its
// label; ok is false when there is none.
func (r *Reader) nextVolume() (ok bool, err error) {
	if r.vr == nil || r.vr.NextVolume() != nil {
		return false, nil
	}
	r.br = bufio.NewReaderSize(r.vr, r.br.Size())
	r.off = 0
	if err := r.readLabel(); err != nil {
		r.done = true
		return true, r.damageOr(err)
	}
	return true, nil
}

func (r *Reader) damageOr(err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return r.damage(fe.Offset, fe.Member, fe.Err)
	}
	return err
}

// nextMember reads the next member header and, for segments, its data.
func (r *Reader) nextMember() error {
	r.drainAhead()
	if len(r.salvAge) > 0 {
		return r.openSalvaged()
	}
	start := r.off
	var h *tar.Header
	var rec *memberRecord
	var err error
	if p := r.pendingHdr; p != nil {
		h, rec, start, r.pendingHdr = p.h, p.rec, p.start, nil
	} else {
		h, rec, err = r.readHeader()
	}
	if err == io.EOF {
		// A zero block: the trailer and record padding run to the end of
		// the volume. Anything else after zero blocks is a zeroed region,
		// or (after the manifest) data that is not part of the set.
		for {
			blk, _ := r.br.Peek(BlockSize)
			if len(blk) < BlockSize {
				if len(blk) > 0 && r.manRead {
					r.warn(r.off, "", "", fmt.Sprintf("%d bytes after the end of the set (ignored)", len(blk)))
				}
				r.skip(int64(len(blk)))
				return r.endVolume()
			}
			if !bytes.Equal(blk, zeroBlock[:]) {
				break
			}
			r.skip(BlockSize)
		}
		if r.manRead {
			return r.trailing()
		}
		if err := r.damage(start, "", fmt.Errorf("%w: zeroed region of %d bytes", ErrDamaged, r.off-start)); err != nil {
			return err
		}
		return r.resync(r.off, false)
	}
	if err != nil {
		if r.manRead {
			return r.trailing()
		}
		if errors.Is(err, ErrTruncated) {
			// The volume ends inside a header: a member torn at the end
			// of a volume (rewritten whole on the next) or a truncated
			// set.
			r.skip(1 << 62)
			if r.vr == nil {
				if err := r.damageOr(err); err != nil {
					return err
				}
			}
			return r.endVolume()
		}
		if err := r.damageOr(err); err != nil {
			return err
		}
		return r.resync(start, true)
	}
	if rec.Set != r.label.SetID {
		// A member of another set: spliced in, or a second set after a
		// damaged first one. Its data is skipped unread, so that none of
		// its chunks can be taken for this set's.
		if r.manRead {
			return r.trailingMember(start, h, rec)
		}
		r.warn(start, h.Name, "", fmt.Sprintf("member of another set (%q) skipped", rec.Set))
		r.reason = fmt.Sprintf("tapeformat: volume %d offset %d member %q: member of another set (%q) in its place", r.vol, start, h.Name, rec.Set)
		r.skip(padded(h.Size))
		return nil
	}
	switch rec.Type {
	case mtLabel:
		if err := r.damage(start, h.Name, errors.New("unexpected label member")); err != nil {
			return err
		}
		r.skip(padded(h.Size))
		return nil
	case mtManifest:
		return r.readManifest(start, h, rec)
	}
	return r.segment(start, h, rec)
}

// segment starts parsing a segment member.
func (r *Reader) segment(start int64, h *tar.Header, rec *memberRecord) error {
	if h.Size > r.opts.MaxMemberSize {
		if err := r.damage(start, h.Name, fmt.Errorf("%w: %d bytes", ErrMemberTooLarge, h.Size)); err != nil {
			return err
		}
		r.skip(padded(h.Size))
		return nil
	}
	if rec.Last && rec.Size >= 0 && rec.Size != rec.Offset+rec.Length {
		if err := r.damage(start, h.Name, fmt.Errorf("%w: last segment ends at %d, its record says the file has %d bytes",
			ErrHeader, rec.Offset+rec.Length, rec.Size)); err != nil {
			return err
		}
		rec.Size = rec.Offset + rec.Length
	}
	if r.enc || rec.Age != nil {
		return r.sealedSegment(start, h, rec)
	}
	r.learnLabelFrom(rec)
	f, err := r.learnRecord(start, h.Name, rec)
	if err != nil {
		return err
	}
	rewrite := r.torn == [2]int{rec.File, rec.Part}
	r.torn = [2]int{-1, -1}
	dataAt := r.off
	data, rerr := r.readMember(h.Size)
	if !r.labelFull && r.codec.Kind != codec.None {
		r.learnInfoPeek(data) // before the file is announced
	}
	r.mem, r.memRec, r.memName, r.memOff, r.memVol, r.memPos, r.memTable, r.memCOff = data, rec, h.Name, dataAt, r.vol, 0, 0, rec.Offset
	r.memTorn, r.memFile, r.memDup, r.memLate, r.memRewrite = false, rec.File, false, false, rewrite
	r.active = f != nil
	if rerr != nil {
		// A torn member at the end of a volume (rewritten whole on the
		// next), or a truncated set: the complete units read are used.
		r.memTorn = true
		r.torn = [2]int{rec.File, rec.Part}
		if r.vr == nil { // a torn member at the end of a volume is normal
			if err := r.damage(r.memOff, h.Name, rerr); err != nil {
				return err
			}
		}
	}
	return nil
}

// resync scans forward, block by block, for the next member header after
// damage. The blocks passed over are scanned for units, which say where
// they belong.
func (r *Reader) resync(start int64, skipBad bool) error {
	r.drainAhead()
	if skipBad && r.off == start { // nothing consumed: skip the bad block
		r.skip(BlockSize)
	}
	salv := r.memBuf[:0]
	salvOff := r.off
	for {
		blk, _ := r.br.Peek(BlockSize)
		if len(blk) < BlockSize || validHeaderBlock(blk) {
			break
		}
		if int64(len(salv)) < r.opts.MaxMemberSize {
			salv = append(salv, blk...)
		} else {
			// Past the member limit nothing can be a unit of a valid
			// member: the region is lost.
			r.reason = fmt.Sprintf("tapeformat: volume %d offset %d: damaged region longer than the member size limit", r.vol, r.off)
		}
		r.skip(BlockSize)
	}
	r.memBuf = salv
	if r.enc {
		// Units are never in the clear in an encrypted set: what the
		// region holds is age files, found by their headers.
		r.findAge(salv, salvOff)
		return nil
	}
	if r.codec.Kind != codec.None && len(salv) > 0 {
		r.mem, r.memPos, r.memRec, r.memName, r.memOff, r.memVol = salv, 0, nil, "", salvOff, r.vol
		r.memTorn, r.memFile, r.memDup, r.memLate, r.memRewrite = true, -1, false, false, false
		r.active = true
	}
	return nil
}

// trailing handles what follows the end of a complete set (its manifest
// read) on the last volume: a warning, never damage. A second set is
// named; anything else is counted and skipped.
func (r *Reader) trailing() error {
	start := r.off
	if blk, _ := r.br.Peek(BlockSize); validHeaderBlock(blk) {
		h, rec, err := r.readHeader()
		if err == nil {
			return r.trailingMember(start, h, rec)
		}
	}
	r.skip(1 << 62)
	r.warn(start, "", "", fmt.Sprintf("%d bytes after the end of the set (ignored)", r.off-start))
	r.done = true
	return nil
}

func (r *Reader) trailingMember(start int64, h *tar.Header, rec *memberRecord) error {
	if rec.Type == mtLabel && rec.Set != r.label.SetID {
		r.warn(start, h.Name, "", fmt.Sprintf("another set (%q) follows the end of this one; it is not read (read it on its own)", rec.Set))
	} else if rec.Type == mtLabel {
		r.warn(start, h.Name, "", "a second copy of this set follows its end; it is not read")
	} else {
		r.warn(start, h.Name, "", fmt.Sprintf("member of set %q after the end of the set (ignored)", rec.Set))
	}
	r.skip(1 << 62)
	r.done = true
	return nil
}
