package tapeformat

import (
	"fmt"
	"io"
	"slices"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Accounting: which file a chunk belongs to, in-order delivery, holes,
// late and duplicate chunks, chunks of files not yet identified, and the
// losses and warnings they make. The rule: a chunk is delivered once,
// verified, to the file its record names; every byte of every file the
// set is known to hold is delivered or reported lost, with a reason.

type span struct{ off, end int64 }

type fileState struct {
	hdr       FileHeader
	fromInfo  bool  // hdr.Size is the file-info's (authenticated, declared at backup)
	announced bool  // its Next event is queued
	closed    bool  // a later file was opened: chunks arriving now are late
	pos       int64 // end of the delivered chunks (in order, or after a hole)
	holes     []span
	nchunks   int
	hashOK    bool   // every byte delivered so far, in order
	sum       string // hex digest, once the file closed complete
	last      bool   // its last segment's record was seen
	lastEnd   int64  // the file's end by that record
	closeSize int64  // size the losses at closing were computed with (-1: unknown)
	reason    string // why the next hole is missing
}

// size is the file's size as known now, or -1.
func (f *fileState) size() int64 {
	if f.hdr.Size >= 0 {
		return f.hdr.Size
	}
	if f.last {
		return f.lastEnd
	}
	return -1
}

// event is a file start or a chunk for Next and NextChunk.
type event struct {
	f     *fileState
	chunk bool
	meta  codec.ChunkMeta
	data  []byte
	own   bool // data is not r.out (a held chunk's buffer)
}

// pendChunk is a verified chunk of a file not yet identified.
type pendChunk struct {
	meta   codec.ChunkMeta
	data   []byte
	reason string
}

// event returns the next event. An error (in strict mode, the first
// damage) comes before any event queued after it was found.
func (r *Reader) event() (event, error) {
	for r.qh == len(r.queue) {
		r.queue, r.qh = r.queue[:0], 0
		if r.err != nil {
			return event{}, r.err
		}
		if err := r.fetch(); err != nil {
			r.err = err
			return event{}, err
		}
	}
	if r.err != nil {
		return event{}, r.err
	}
	ev := r.queue[r.qh]
	r.queue[r.qh] = event{}
	r.qh++
	return ev, nil
}

// unread puts ev back in front of the queue.
func (r *Reader) unread(ev event) {
	if r.qh > 0 {
		r.qh--
		r.queue[r.qh] = ev
		return
	}
	r.queue = slices.Insert(r.queue, 0, ev)
}

// fetch reads on until it has queued events (or the set is done).
func (r *Reader) fetch() error {
	switch {
	case r.active:
		meta, ok, err := r.nextUnit()
		if err != nil || !ok {
			return err
		}
		return r.accept(meta)
	case r.done:
		if !r.finalized {
			r.finalize()
			if len(r.queue) > r.qh || r.err != nil {
				return r.err
			}
		}
		return io.EOF
	}
	return r.nextMember()
}

// learnRecord learns a file from a segment's member record (and its
// file-info, on a first segment). It returns nil for a member that cannot
// be used (its file conflicts with what is known).
func (r *Reader) learnRecord(start int64, member string, rec *memberRecord) (*fileState, error) {
	var fi *fileInfoRecord
	if rec.info != nil {
		fi = &rec.info.File
	}
	return r.learnRecordInfo(start, member, rec, fi)
}

// learnRecordInfo is learnRecord with the file-info fi (of an encrypted
// member, the frame in its plaintext rather than the record's copy,
// which lacks the header snapshot).
func (r *Reader) learnRecordInfo(start int64, member string, rec *memberRecord, fi *fileInfoRecord) (*fileState, error) {
	f, err := r.learn(start, member, rec.File, rec.Name, rec.Kind, rec.Size, fi)
	if f == nil || err != nil {
		return nil, err
	}
	if rec.Last {
		f.last, f.lastEnd = true, rec.Offset+rec.Length
	}
	if f.fromInfo && f.hdr.Size >= 0 && rec.Size != f.hdr.Size {
		// Authenticated both, so the writer or an attacker made them
		// differ: the file-info wins, the record is reported.
		if err := r.damage(start, member, fmt.Errorf("%w: member record says the file has %d bytes, its file-info %d",
			ErrHeader, rec.Size, f.hdr.Size)); err != nil {
			return nil, err
		}
	}
	if !f.fromInfo && rec.Size >= 0 && f.hdr.Size >= 0 && rec.Size != f.hdr.Size {
		if err := r.damage(start, member, fmt.Errorf("%w: member records disagree on the file's size (%d, %d)",
			ErrHeader, f.hdr.Size, rec.Size)); err != nil {
			return nil, err
		}
	}
	if !f.closed && !f.announced {
		r.openFile(f)
	}
	return f, nil
}

// learnInfoFrame learns a file from a file-info frame met in a member's
// data (or in a damaged region).
func (r *Reader) learnInfoFrame(at int64, b []byte) error {
	fi, err := parseInfoFrame(b)
	if err == nil && fi.Set.SetID != r.label.SetID {
		err = fmt.Errorf("%w: file-info of another set (%q)", ErrNotTapestream, fi.Set.SetID)
	}
	if err == nil && r.memRec != nil && (fi.File.Index != r.memRec.File || fi.File.Name != r.memRec.Name) {
		err = fmt.Errorf("%w: file-info of file %d in a member of file %d", ErrNotTapestream, fi.File.Index, r.memRec.File)
	}
	if err != nil {
		return r.damage(at, r.memName, err)
	}
	r.learnLabel(&fi.Set)
	f, err := r.learn(at, r.memName, fi.File.Index, fi.File.Name, fi.File.Kind, fi.File.Size, &fi.File)
	if err != nil || f == nil {
		return err
	}
	if r.memRec == nil && r.memFile < 0 {
		r.memFile = f.hdr.Index // the units after it in this region are its file's
	}
	if !f.closed && !f.announced {
		r.openFile(f)
	}
	return nil
}

// learnInfoPeek learns the label from the file-info frame at the start of
// b, if there is a valid one of this set.
func (r *Reader) learnInfoPeek(b []byte) {
	if info, _, err := codec.ParseInfo(b); err == nil {
		if fi, err := parseInfoFrame(info); err == nil && fi.Set.SetID == r.label.SetID {
			r.learnLabel(&fi.Set)
		}
	}
}

// learn records what a source says about file idx: it creates the file,
// or checks the source against what is known.
func (r *Reader) learn(at int64, member string, idx int, name, kind string, size int64, fi *fileInfoRecord) (*fileState, error) {
	f := r.files[idx]
	if f == nil {
		f = &fileState{hdr: FileHeader{Index: idx, Name: name, Kind: kind, Size: size}, closeSize: -1}
		r.files[idx] = f
	} else if f.hdr.Name != name || f.hdr.Kind != kind {
		return nil, r.damage(at, member, fmt.Errorf("%w: file %d is %q (%q) here, %q (%q) before", ErrNotTapestream,
			idx, name, kind, f.hdr.Name, f.hdr.Kind))
	}
	if fi != nil && !f.fromInfo {
		f.fromInfo = true
		f.hdr.Size, f.hdr.ModTime, f.hdr.DBHeader = fi.Size, fi.ModTime, fi.DBHeader
	} else if fi != nil && len(f.hdr.DBHeader) == 0 {
		// An encrypted set's member records leave the snapshot out; the
		// file-info frame in the plaintext has it.
		f.hdr.DBHeader = fi.DBHeader
	} else if f.hdr.Size < 0 && !f.fromInfo {
		f.hdr.Size = size
	}
	return f, nil
}

// openFile makes f the file chunks go to: the open one is closed, f's
// start is queued for Next, and the chunks held for it are delivered.
func (r *Reader) openFile(f *fileState) {
	if r.open != nil {
		if r.open.hdr.Index > f.hdr.Index {
			r.warn(r.off, r.memName, f.hdr.Name, fmt.Sprintf("file %d comes after file %d (members out of order)", f.hdr.Index, r.open.hdr.Index))
		}
		r.closeFile(r.open)
	}
	f.announced, f.hashOK = true, true
	r.open = f
	if r.hash == nil {
		r.hash, _ = NewDigest(r.label.Digest) // checked when the label was read
	} else {
		r.hash.Reset()
	}
	r.queue = append(r.queue, event{f: f})
	var held []pendChunk
	k := 0
	for _, p := range r.pend {
		if int(p.meta.FileIndex) == f.hdr.Index {
			held = append(held, p)
			r.pendBytes -= int64(len(p.data))
			continue
		}
		r.pend[k] = p
		k++
	}
	clear(r.pend[k:])
	r.pend = r.pend[:k]
	slices.SortFunc(held, func(a, b pendChunk) int { return int(a.meta.Offset - b.meta.Offset) })
	for _, p := range held {
		r.deliver(f, p.meta, p.data, true)
	}
}

// closeFile ends the open file: its holes and missing tail become losses,
// its digest is finished (one digest state for the whole set).
func (r *Reader) closeFile(f *fileState) {
	f.closed = true
	r.open = nil
	for _, h := range f.holes {
		r.loss(f, h.off, h.end-h.off, f.reason)
	}
	f.holes = nil
	size := f.size()
	f.closeSize = size
	switch {
	case size < 0:
		r.loss(f, f.pos, -1, "end of the file not in the set (its last member lost or the set truncated)")
	case f.pos < size:
		if f.nchunks == 0 && r.reason == "" {
			r.loss(f, f.pos, size-f.pos, "no chunk of the file in the set")
		} else {
			r.loss(f, f.pos, size-f.pos, "")
		}
	case f.pos > size:
		r.loss(f, size, f.pos-size, fmt.Sprintf("chunks beyond the file's size of %d bytes", size))
	}
	if f.hashOK && size >= 0 && f.pos == size {
		f.sum = hexString(r.hash.Sum(nil))
	}
}

// accept routes the verified chunk in r.out to its file.
func (r *Reader) accept(meta codec.ChunkMeta) error {
	f := r.files[int(meta.FileIndex)]
	if f == nil {
		r.hold(meta)
		return r.err
	}
	if !f.announced && !f.closed {
		r.openFile(f)
	}
	r.deliver(f, meta, r.out, false)
	return r.err
}

// deliver queues a chunk for f if it is new, and accounts for it. A
// sealed reader accounts for the chunks whose ciphertext it checked and
// queues nothing.
func (r *Reader) deliver(f *fileState, meta codec.ChunkMeta, data []byte, own bool) {
	if r.Sealed() {
		f.hashOK = false
	}
	if f.closed {
		r.late(f, meta)
		return
	}
	switch {
	case meta.Offset == f.pos && (meta.Length > 0 || f.nchunks == 0):
		if f.hashOK {
			r.hash.Write(data)
		}
		f.pos = meta.End()
	case meta.Offset > f.pos:
		f.holes = append(f.holes, span{f.pos, meta.Offset})
		if f.reason == "" {
			f.reason = r.reason
		}
		if r.opts.Strict && r.err == nil {
			r.err = r.ferr(r.off, r.memName, fmt.Errorf("%w: file %q: bytes [%d,%d) missing", ErrDamaged, f.hdr.Name, f.pos, meta.Offset))
		}
		f.hashOK = false
		f.pos = meta.End()
	default:
		i := slices.IndexFunc(f.holes, func(h span) bool { return h.off <= meta.Offset && meta.End() <= h.end })
		if i < 0 || meta.Length == 0 {
			r.duplicate(f, meta)
			return
		}
		// A chunk of a hole, come late (members out of order): it is
		// delivered, the hole shrinks, the digest cannot be checked.
		h := f.holes[i]
		f.holes = slices.Delete(f.holes, i, i+1)
		if h.off < meta.Offset {
			f.holes = slices.Insert(f.holes, i, span{h.off, meta.Offset})
			i++
		}
		if meta.End() < h.end {
			f.holes = slices.Insert(f.holes, i, span{meta.End(), h.end})
		}
		r.lateNote(f, meta)
	}
	f.nchunks++
	if r.Sealed() {
		return
	}
	r.queue = append(r.queue, event{f: f, chunk: true, meta: meta, data: data, own: own})
}

// late handles a chunk of a file already closed (a member out of order):
// it cannot be delivered; the loss that covers it names the cause.
func (r *Reader) late(f *fileState, meta codec.ChunkMeta) {
	why := fmt.Sprintf("out of order: member %q came after the file had ended", r.memName)
	for i := range r.losses {
		l := &r.losses[i]
		if l.FileIndex == f.hdr.Index && l.Offset <= meta.Offset && (l.Length < 0 || meta.End() <= l.Offset+l.Length) {
			if l.Reason == "" || l.Reason == "data missing" || !containsOOO(l.Reason) {
				l.Reason = why + "; " + l.Reason
			}
			if r.opts.Strict && r.err == nil {
				r.err = r.ferr(r.off, r.memName, fmt.Errorf("%w: file %q: %s", ErrDamaged, f.hdr.Name, why))
			}
			return
		}
	}
	r.duplicate(f, meta)
}

func containsOOO(s string) bool { return len(s) >= 12 && s[:12] == "out of order" }

// lateNote reports a late chunk delivered in its file: damage (the set
// is not as written), once per member.
func (r *Reader) lateNote(f *fileState, meta codec.ChunkMeta) {
	if r.memLate {
		return
	}
	r.memLate = true
	err := r.damage(r.memOff, r.memName, fmt.Errorf("%w: file %q: chunk at %d out of order (its member came after a later one); delivered late",
		ErrDamaged, f.hdr.Name, meta.Offset))
	if err != nil && r.err == nil {
		r.err = err
	}
}

// duplicate reports a chunk delivered before, once per member, unless the
// member is the one torn at the end of the last volume and rewritten.
func (r *Reader) duplicate(f *fileState, meta codec.ChunkMeta) {
	if r.memRewrite || r.memDup {
		return
	}
	r.memDup = true
	r.warn(r.memOff, r.memName, f.hdr.Name, fmt.Sprintf("duplicate chunk(s) from offset %d ignored (member repeated)", meta.Offset))
}

// hold keeps a verified chunk of a file not yet identified, within
// MaxPending bytes; the oldest held chunks go first when it overflows.
func (r *Reader) hold(meta codec.ChunkMeta) {
	data := append([]byte(nil), r.out...)
	r.pend = append(r.pend, pendChunk{meta: meta, data: data, reason: r.reason})
	r.pendBytes += int64(len(data))
	for r.pendBytes > r.opts.MaxPending && len(r.pend) > 0 {
		p := r.pend[0]
		r.pend = r.pend[1:]
		r.pendBytes -= int64(len(p.data))
		r.unidentified(p)
	}
}

func (r *Reader) unidentified(p pendChunk) {
	r.losses = append(r.losses, Loss{FileIndex: int(p.meta.FileIndex), Offset: p.meta.Offset, Length: int64(p.meta.Length),
		Reason: "chunk of a file the set never identified (its headers lost): " + p.reason})
	if r.opts.Strict && r.err == nil {
		r.err = r.ferr(r.off, "", fmt.Errorf("%w: chunk of unidentified file %d", ErrDamaged, p.meta.FileIndex))
	}
}

// loss records a lost range of f.
func (r *Reader) loss(f *fileState, off, n int64, reason string) {
	if reason == "" {
		reason = r.reason
	}
	if reason == "" {
		reason = "data missing"
	}
	r.losses = append(r.losses, Loss{FileIndex: f.hdr.Index, File: f.hdr.Name, Offset: off, Length: n, Reason: reason})
	if r.opts.Strict && r.err == nil {
		r.err = r.ferr(r.off, "", fmt.Errorf("%w: %s", ErrDamaged, r.losses[len(r.losses)-1]))
	}
}
