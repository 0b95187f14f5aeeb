package tapeformat

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
	"strconv"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// ReaderOptions configures a Reader. Zero values select defaults.
type ReaderOptions struct {
	// RecordSize is the read buffer size; it must be at least the tape
	// block size when reading a tape (default DefaultRecordSize).
	RecordSize int
	// MaxMemberSize caps the stored size of a segment member, which the
	// Reader buffers whole (default DefaultMaxMemberSize).
	MaxMemberSize int64
	// MaxManifestSize caps the manifest (default DefaultMaxManifestSize).
	MaxManifestSize int64
	// MaxFrameSize caps the uncompressed size of one chunk (default
	// codec.MaxFrameSize).
	MaxFrameSize int
	// Workers decode the units of a member in parallel (default
	// GOMAXPROCS; 1 decodes in the reading goroutine).
	Workers int
	// Strict makes any damage a fatal *FormatError. Otherwise (salvage
	// mode) damaged chunks are skipped and reported by Damage.
	Strict bool
}

// FileHeader describes a file of the set as read.
type FileHeader struct {
	Index int
	Name  string // relative slash path, validated with ValidateName
	Kind  string
	Size  int64 // -1 if not known (yet)
}

// Chunk is a verified chunk of the current file. Data is valid until the
// next call on the Reader.
type Chunk struct {
	Meta codec.ChunkMeta
	Data []byte
}

// Loss is a byte range of a file that could not be recovered.
type Loss struct {
	FileIndex int    `json:"file_index"` // -1: not attributable to a file
	File      string `json:"file"`
	Offset    int64  `json:"offset"`
	Length    int64  `json:"length"` // -1: unknown (to the end of the file)
	Reason    string `json:"reason"`
}

func (l Loss) String() string {
	return fmt.Sprintf("%s [%d,+%d): %s", l.File, l.Offset, l.Length, l.Reason)
}

type fileState struct {
	hdr    FileHeader
	pos    int64 // verified bytes delivered, in order
	h      hash.Hash
	hashOK bool // every byte delivered so far, in order
	last   bool // last segment seen
}

// Reader reads a backup set front to back.
type Reader struct {
	opts ReaderOptions
	vr   VolumeReader
	br   *bufio.Reader
	vol  int
	off  int64 // offset in the current volume

	label   Label
	labeled bool
	codec   codec.Codec
	dec     *codec.Decoder

	files map[int]*fileState
	order []int

	// member being parsed
	mem        []byte
	memPos     int
	memRec     *memberRecord // nil: salvaged bytes without a header
	memName    string
	memOff     int64 // volume offset of the member data
	memVol     int
	memTable   int
	memRecFile int
	memTorn    bool
	pendingHdr *tar.Header
	pendingRec *memberRecord
	memCOff    int64
	memBuf     []byte
	active     bool

	newFile *fileState // file start event to report
	stash   *event
	cur     *fileState
	chunk   Chunk
	out     []byte
	rd      []byte
	rdPos   int64

	manifest   *Manifest
	manRead    bool
	done       bool
	finalized  bool
	err        error
	losses     []Loss
	lastReason string
	fileReason map[int]string

	// Parallel decoding of the current member's units (see takeAhead).
	ahead   []*aheadUnit
	scan    int // next r.mem position to schedule
	decs    chan *codec.Decoder
	outFree [][]byte
}

// aheadUnit is a unit of the current member being decoded by a worker.
type aheadUnit struct {
	pos, n int
	out    []byte
	meta   codec.ChunkMeta
	err    error
	done   chan struct{}
}

// takeAhead returns the decoded unit at r.memPos, scheduling the next
// units of the member on the decoder pool first. Units are decoded in
// parallel and delivered in order; anything unusual (a torn member, a
// record that does not parse) is left to the sequential path, which owns
// resynchronisation and damage reports.
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
		for i := 0; i < r.opts.Workers; i++ {
			r.decs <- codec.NewDecoder(r.opts.MaxFrameSize)
		}
	}
	for len(r.ahead) < 2*r.opts.Workers && r.scan < len(r.mem) {
		b := r.mem[r.scan:]
		h, err := codec.ParseHeader(b)
		if err != nil || h.UnitLen > len(b) || h.Kind != r.codec.Kind {
			break
		}
		a := &aheadUnit{pos: r.scan, n: h.UnitLen, done: make(chan struct{})}
		a.out = r.getOut()
		unit := b[:h.UnitLen]
		r.scan += h.UnitLen
		r.ahead = append(r.ahead, a)
		dec := <-r.decs
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
	<-a.done
	return a
}

// getOut returns a recycled chunk buffer, or nil (a decode then allocates).
func (r *Reader) getOut() []byte {
	n := len(r.outFree)
	if n == 0 {
		return nil
	}
	b := r.outFree[n-1][:0]
	r.outFree = r.outFree[:n-1]
	return b
}

// putOut keeps b for a later chunk; the pool is bounded so that buffers a
// caller recycles cannot pile up.
func (r *Reader) putOut(b []byte) {
	if cap(b) > 0 && len(r.outFree) < 2*r.opts.Workers+4 {
		r.outFree = append(r.outFree, b[:0])
	}
}

// TakeData transfers the data of the chunk NextChunk returned last to the
// caller, who may then keep it past later calls (a restore hands it to its
// writing goroutine instead of copying it); the Reader no longer touches
// it. Recycle gives such buffers back.
func (r *Reader) TakeData() []byte {
	// Chunk.Data is r.out (empty chunks included: their buffer has
	// capacity and would otherwise be both the caller's and ours).
	b := r.chunk.Data
	r.out, r.chunk.Data = nil, nil
	return b
}

// Recycle returns a buffer from TakeData for reuse by later chunks. Like
// every Reader method it must not be called concurrently with the others.
func (r *Reader) Recycle(b []byte) { r.putOut(b) }

// drainAhead waits for every scheduled decode: the member buffer they
// read is about to be reused.
func (r *Reader) drainAhead() {
	for _, a := range r.ahead {
		<-a.done
		r.putOut(a.out)
	}
	r.ahead = r.ahead[:0]
	r.scan = 0
}

type event struct {
	f *fileState
	c bool
}

// NewReader returns a Reader of the set in r, which may be a VolumeReader
// for sets spanning volumes. It reads the label of the first volume.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	if opts.RecordSize <= 0 {
		opts.RecordSize = DefaultRecordSize
	}
	if opts.MaxMemberSize <= 0 {
		opts.MaxMemberSize = DefaultMaxMemberSize
	}
	if opts.MaxManifestSize <= 0 {
		opts.MaxManifestSize = DefaultMaxManifestSize
	}
	if opts.MaxFrameSize <= 0 || opts.MaxFrameSize > codec.MaxFrameSize {
		opts.MaxFrameSize = codec.MaxFrameSize
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	rd := &Reader{opts: opts, br: bufio.NewReaderSize(r, opts.RecordSize), vol: 1, files: map[int]*fileState{}}
	rd.vr, _ = r.(VolumeReader)
	rd.dec = codec.NewDecoder(opts.MaxFrameSize)
	if err := rd.readLabel(); err != nil {
		if opts.Strict || !rd.recoverLabel(err) {
			return nil, err
		}
	}
	return rd, nil
}

// recoverLabel handles a damaged label of the first volume in salvage mode:
// it scans for the next member and takes the set id and codec from its
// member record.
func (r *Reader) recoverLabel(cause error) bool {
	limit := r.off + r.opts.MaxMemberSize
	for r.off < limit {
		blk, _ := r.br.Peek(BlockSize)
		if len(blk) < BlockSize {
			return false
		}
		if !validHeaderBlock(blk) {
			r.skip(BlockSize)
			continue
		}
		start := r.off
		h, rec, err := r.readHeader()
		if err != nil {
			if r.off == start {
				r.skip(BlockSize)
			}
			continue
		}
		c, err := codec.ParseCodec(rec.Codec)
		if err == nil {
			_, err = NewDigest(rec.Digest)
		}
		if rec.Type != mtSegment || err != nil || checkMemberName(h.Name, rec, c) != nil {
			r.skip(h.Size + int64(-h.Size&(BlockSize-1)))
			continue
		}
		r.label = Label{FormatVersion: FormatVersion, SetID: rec.Set, Codec: rec.Codec, Digest: rec.Digest, Volume: 1}
		r.labeled, r.codec = true, c
		r.pendingHdr, r.pendingRec = h, rec
		r.damage(start, LabelName, fmt.Errorf("label unreadable (%v); set id, codec and digest taken from the next member", cause))
		return true
	}
	return false
}

// Label returns the label of the first volume.
func (r *Reader) Label() Label { return r.label }

// Volume returns the number of the volume being read.
func (r *Reader) Volume() int { return r.vol }

func (r *Reader) ferr(off int64, member string, err error) *FormatError {
	return &FormatError{Volume: r.vol, Offset: off, Member: member, Err: err}
}

// damage records a damage event; in strict mode it is fatal.
func (r *Reader) damage(off int64, member string, err error) error {
	fe := r.ferr(off, member, err)
	r.lastReason = fe.Error()
	if r.opts.Strict {
		return fe
	}
	return nil
}

func (r *Reader) readLabel() error {
	h, rec, err := r.readHeader()
	if err != nil {
		return err
	}
	if rec.Type != mtLabel || h.Size > maxLabelSize {
		return r.ferr(r.off, h.Name, fmt.Errorf("%w: first member is not a label", ErrNotTapestream))
	}
	data := make([]byte, h.Size)
	if err := r.readData(data); err != nil {
		return r.ferr(r.off, h.Name, err)
	}
	var l Label
	if err := json.Unmarshal(data, &l); err != nil {
		return r.ferr(r.off, h.Name, fmt.Errorf("%w: label: %v", ErrNotTapestream, err))
	}
	if l.FormatVersion < 1 || l.FormatVersion > FormatVersion {
		return r.ferr(r.off, h.Name, fmt.Errorf("%w: unsupported format version %d", ErrNotTapestream, l.FormatVersion))
	}
	if r.labeled {
		if l.SetID != r.label.SetID {
			return r.ferr(r.off, h.Name, fmt.Errorf("%w: set %s, expected %s", ErrSetMismatch, l.SetID, r.label.SetID))
		}
		r.vol = l.Volume
		return nil
	}
	c, err := codec.ParseCodec(l.Codec)
	if err != nil {
		return r.ferr(r.off, h.Name, err)
	}
	if _, err := NewDigest(l.Digest); err != nil {
		return r.ferr(r.off, h.Name, fmt.Errorf("%w: label: %v", ErrNotTapestream, err))
	}
	if rec.Set != l.SetID {
		return r.ferr(r.off, h.Name, fmt.Errorf("%w: label set id mismatch", ErrNotTapestream))
	}
	r.label, r.labeled, r.codec, r.vol = l, true, c, max(l.Volume, 1)
	return nil
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
// io.EOF at the end of the volume (trailer or end of data) and a
// *FormatError wrapping ErrHeader for a block that is no header.
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
		return nil, nil, r.ferr(start, "", ErrHeader)
	}
	tr := tar.NewReader(io.LimitReader(countReader{r}, maxPaxSize+2*BlockSize))
	h, err := tr.Next()
	if err != nil {
		return nil, nil, r.ferr(start, "", fmt.Errorf("%w: %v", ErrHeader, err))
	}
	rec := new(memberRecord)
	if h.Typeflag != tar.TypeReg || json.Unmarshal([]byte(h.PAXRecords["comment"]), rec) != nil || rec.Magic != "1" ||
		(r.labeled && rec.Set != r.label.SetID) {
		return nil, nil, r.ferr(start, h.Name, ErrNotTapestream)
	}
	if err := checkMemberName(h.Name, rec, r.codec); err != nil && (r.labeled || rec.Type == mtLabel) {
		return nil, nil, r.ferr(start, h.Name, err)
	}
	if h.Size < 0 {
		return nil, nil, r.ferr(start, h.Name, ErrHeader)
	}
	return h, rec, nil
}

// readData reads a member's data and padding.
func (r *Reader) readData(p []byte) error {
	n, err := io.ReadFull(countReader{r}, p)
	if err != nil {
		return fmt.Errorf("%w: member data ends after %d of %d bytes", ErrTruncated, n, len(p))
	}
	pad := int(-len(p)) & (BlockSize - 1)
	k, _ := r.br.Discard(pad)
	r.off += int64(k)
	if k < pad {
		return fmt.Errorf("%w: member padding", ErrTruncated)
	}
	return nil
}

func (r *Reader) skip(n int64) {
	k, _ := io.CopyN(io.Discard, countReader{r}, n)
	_ = k
}

// endVolume is called at the end of the current volume.
func (r *Reader) endVolume() error {
	if r.manRead {
		r.done = true
		return nil
	}
	if r.vr != nil {
		if err := r.vr.NextVolume(); err == nil {
			r.br.Reset(r.vr)
			r.off = 0
			if err := r.readLabel(); err != nil {
				r.done = true
				return r.damageOr(err)
			}
			return nil
		}
	}
	r.done = true
	return r.damage(r.off, "", fmt.Errorf("%w: no manifest", ErrTruncated))
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
	start := r.off
	var h *tar.Header
	var rec *memberRecord
	var err error
	if r.pendingHdr != nil {
		h, rec, r.pendingHdr, r.pendingRec = r.pendingHdr, r.pendingRec, nil, nil
	} else {
		h, rec, err = r.readHeader()
	}
	if err == io.EOF {
		// A zero block: the trailer and record padding run to the end of
		// the volume. Anything else after zero blocks is a zeroed region.
		for {
			blk, _ := r.br.Peek(BlockSize)
			if len(blk) < BlockSize {
				r.skip(int64(len(blk)))
				return r.endVolume()
			}
			if !bytes.Equal(blk, zeroBlock[:]) {
				break
			}
			r.skip(BlockSize)
		}
		if err := r.damage(start, "", fmt.Errorf("%w: zeroed region of %d bytes", ErrDamaged, r.off-start)); err != nil {
			return err
		}
		return r.resync(r.off, false)
	}
	if err != nil {
		if err := r.damageOr(err); err != nil {
			return err
		}
		return r.resync(start, true)
	}
	switch rec.Type {
	case mtLabel:
		if err := r.damage(start, h.Name, errors.New("unexpected label member")); err != nil {
			return err
		}
		r.skip(h.Size + int64(-h.Size&(BlockSize-1)))
		return nil
	case mtManifest:
		return r.readManifest(start, h, rec)
	}
	// segment
	if h.Size > r.opts.MaxMemberSize {
		if err := r.damage(start, h.Name, fmt.Errorf("%w: %d bytes", ErrMemberTooLarge, h.Size)); err != nil {
			return err
		}
		r.skip(h.Size + int64(-h.Size&(BlockSize-1)))
		return nil
	}
	if cap(r.memBuf) < int(h.Size) {
		// Segments differ in size by up to a unit: a buffer of exactly
		// this member's size was replaced again and again (128 MB
		// allocated restoring a 4 GiB set, peak RSS 163 instead of 93
		// MiB). Room for the largest segment the label announces, or the
		// size rounded up to 4 MiB, makes it once.
		n := (h.Size + 4<<20 - 1) &^ (4<<20 - 1)
		if hint := int64(r.label.SegmentSize) + 2*int64(r.label.FrameSize) + 64<<10; h.Size <= hint && hint > n {
			n = hint
		}
		r.memBuf = make([]byte, h.Size, min(n, max(r.opts.MaxMemberSize, h.Size)))
	}
	r.mem = r.memBuf[:h.Size]
	r.memRec, r.memName, r.memOff, r.memVol, r.memPos, r.memTable, r.memCOff = rec, h.Name, r.off, r.vol, 0, 0, rec.Offset
	r.memTorn = false
	r.active = true
	f := r.files[rec.File]
	if f == nil && rec.File >= 0 {
		dg, err := NewDigest(r.label.Digest) // checked when the label was read
		if err != nil {
			return r.ferr(r.off, h.Name, err)
		}
		f = &fileState{hdr: FileHeader{Index: rec.File, Name: rec.Name, Kind: rec.Kind, Size: -1}, h: dg, hashOK: true}
		r.files[rec.File] = f
		r.order = append(r.order, rec.File)
		r.newFile = f
	}
	if rec.Last && rec.Size >= 0 {
		f.hdr.Size = rec.Size
		f.last = true
	} else if rec.Size >= 0 && f.hdr.Size < 0 {
		f.hdr.Size = rec.Size
	}
	if err := r.readData(r.mem); err != nil {
		// torn member at the end of a volume, or truncated set: salvage
		// the complete units read so far.
		n := r.off - r.memOff
		r.mem = r.mem[:min(max(n, 0), int64(len(r.mem)))]
		r.memTorn = true
		if r.vr == nil { // a torn member at the end of a volume is normal
			if err := r.damage(r.memOff, h.Name, err); err != nil {
				return err
			}
		}
		if r.codec.Kind == codec.None {
			r.mem = r.mem[:0]
		}
		r.memRec = nil // salvage mode: units self-describe
		r.memRecFile = rec.File
	}
	return nil
}

// resync scans forward, block by block, for the next member header after
// damage. Blocks passed over are scanned for units.
func (r *Reader) resync(start int64, skipBad bool) error {
	r.drainAhead()
	if skipBad && r.off == start { // nothing consumed: skip the bad block
		r.skip(BlockSize)
	}
	salv := r.memBuf[:0]
	salvOff := start
	if r.off > start {
		salvOff = r.off
	}
	for {
		blk, _ := r.br.Peek(BlockSize)
		if len(blk) < BlockSize || validHeaderBlock(blk) {
			break
		}
		if int64(len(salv)) < r.opts.MaxMemberSize {
			salv = append(salv, blk...)
		}
		r.skip(BlockSize)
	}
	r.memBuf = salv
	if r.codec.Kind != codec.None && len(salv) > 0 {
		r.mem, r.memPos, r.memRec, r.memName, r.memOff, r.memVol = salv, 0, nil, "", salvOff, r.vol
		r.memTorn = false
		r.memRecFile = -1
		r.active = true
	}
	return nil
}

func (r *Reader) readManifest(start int64, h *tar.Header, rec *memberRecord) error {
	if h.Size > r.opts.MaxManifestSize {
		r.manRead = true
		return r.damage(start, h.Name, fmt.Errorf("%w: manifest of %d bytes", ErrMemberTooLarge, h.Size))
	}
	data := make([]byte, h.Size)
	if err := r.readData(data); err != nil {
		return r.damage(start, h.Name, err)
	}
	r.manRead = true
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != rec.SHA256 {
		return r.damage(start, h.Name, fmt.Errorf("%w: manifest SHA-256", ErrChecksum))
	}
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil || m.SetID != r.label.SetID {
		return r.damage(start, h.Name, fmt.Errorf("%w: manifest: %v", ErrNotTapestream, err))
	}
	for _, f := range m.Files {
		if ValidateName(f.Name) != nil {
			return r.damage(start, h.Name, fmt.Errorf("%w: manifest file %q", ErrBadName, f.Name))
		}
	}
	r.manifest = m
	return nil
}

// nextUnit decodes the next chunk of the member being parsed; ok is false
// when the member is exhausted.
func (r *Reader) nextUnit() (meta codec.ChunkMeta, ok bool, err error) {
	for r.memPos < len(r.mem) {
		at := r.memOff + int64(r.memPos)
		b := r.mem[r.memPos:]
		if r.codec.Kind == codec.None {
			rec := r.memRec
			if r.memTable >= len(rec.Table) {
				break
			}
			e := rec.Table[r.memTable]
			r.memTable++
			meta = codec.ChunkMeta{FileIndex: uint32(rec.File), Offset: r.memCOff, Length: e[0], CRC32C: e[1]}
			r.memCOff += int64(e[0])
			if int(e[0]) > len(b) {
				r.memPos = len(r.mem)
				return meta, false, r.damage(at, r.memName, fmt.Errorf("%w: chunk table exceeds member", ErrDamaged))
			}
			r.memPos += int(e[0])
			if err := codec.Verify(meta, b[:e[0]]); err != nil {
				if err := r.damage(at, r.memName, fmt.Errorf("chunk of file %d at offset %d: %w", meta.FileIndex, meta.Offset, err)); err != nil {
					return meta, false, err
				}
				r.setFileReason(int(meta.FileIndex))
				continue
			}
			if r.out == nil {
				r.out = r.getOut()
			}
			r.out = append(r.out[:0], b[:e[0]]...)
			return meta, true, nil
		}
		var derr error
		if a := r.takeAhead(); a != nil {
			// Decoded in parallel, in order.
			r.memPos += a.n
			r.putOut(r.out)
			r.out, meta, derr = a.out, a.meta, a.err
		} else {
			h, herr := codec.ParseHeader(b)
			if r.memTorn && (len(b) < codec.MinHeaderLen || herr == nil && h.UnitLen > len(b)) {
				break // incomplete unit at the tear
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
			if r.out == nil {
				r.out = r.getOut()
			}
			r.out, meta, derr = r.dec.DecodeFrame(r.out[:0], b[:h.UnitLen])
		}
		if derr == nil && r.memRec != nil && (int(meta.FileIndex) != r.memRec.File || meta.Offset < r.memRec.Offset ||
			meta.End() > r.memRec.Offset+r.memRec.Length) {
			derr = fmt.Errorf("%w: chunk of file %d at %d outside its member", ErrDamaged, meta.FileIndex, meta.Offset)
		}
		if derr == nil && r.memRec == nil && r.memRecFile >= 0 && int(meta.FileIndex) != r.memRecFile {
			derr = fmt.Errorf("%w: chunk of file %d in member of file %d", ErrDamaged, meta.FileIndex, r.memRecFile)
		}
		if derr != nil {
			if err := r.damage(at, r.memName, fmt.Errorf("chunk of file %d at offset %d: %w", meta.FileIndex, meta.Offset, derr)); err != nil {
				return meta, false, err
			}
			if meta.Length > 0 {
				r.setFileReason(int(meta.FileIndex))
			}
			continue
		}
		return meta, true, nil
	}
	r.active = false
	return meta, false, nil
}

// fetch returns the next event: a new file or a fresh verified chunk (in
// r.chunk).
func (r *Reader) fetch() (event, error) {
	if r.err != nil {
		return event{}, r.err
	}
	for {
		if r.newFile != nil {
			f := r.newFile
			r.newFile = nil
			return event{f: f}, nil
		}
		if r.active {
			meta, ok, err := r.nextUnit()
			if err != nil {
				r.err = err
				return event{}, err
			}
			if !ok {
				continue
			}
			f := r.files[int(meta.FileIndex)]
			if f == nil { // salvaged chunk of a file whose header was lost
				continue
			}
			if meta.End() <= f.pos && meta.Length > 0 || meta.Offset < f.pos {
				continue // duplicate (member rewritten on the next volume)
			}
			if meta.Offset > f.pos {
				r.loss(f, f.pos, meta.Offset-f.pos)
				if r.err != nil {
					return event{}, r.err
				}
				f.hashOK = false
			}
			if f.hashOK {
				f.h.Write(r.out)
			}
			f.pos = meta.End()
			r.chunk = Chunk{Meta: meta, Data: r.out}
			return event{f: f, c: true}, nil
		}
		if r.done {
			r.finalize()
			if r.err != nil {
				return event{}, r.err
			}
			return event{}, io.EOF
		}
		if err := r.nextMember(); err != nil {
			r.err = err
			return event{}, err
		}
	}
}

func (r *Reader) loss(f *fileState, off, n int64) {
	reason := r.lastReason
	if f != nil {
		if fr, ok := r.fileReason[f.hdr.Index]; ok {
			reason = fr
			delete(r.fileReason, f.hdr.Index)
		}
	}
	if reason == "" {
		reason = "data missing"
	}
	l := Loss{FileIndex: -1, Offset: off, Length: n, Reason: reason}
	if f != nil {
		l.FileIndex, l.File = f.hdr.Index, f.hdr.Name
	}
	r.losses = append(r.losses, l)
	if r.opts.Strict && r.err == nil {
		r.err = r.ferr(r.off, "", fmt.Errorf("%w: %s", ErrDamaged, l))
	}
}

func (r *Reader) digestName() string {
	if r.label.Digest == DigestBLAKE3 {
		return "BLAKE3"
	}
	return "SHA-256"
}

// finalize reports the files and tails never read, and checks hashes.
func (r *Reader) finalize() {
	if r.finalized {
		return
	}
	r.finalized = true
	if r.manifest == nil {
		for _, i := range r.order {
			f := r.files[i]
			if f.hdr.Size >= 0 && f.pos < f.hdr.Size {
				r.loss(f, f.pos, f.hdr.Size-f.pos)
			} else if !f.last {
				r.lastReason = "set truncated"
				r.loss(f, f.pos, -1)
			}
		}
		if r.err == nil && r.opts.Strict {
			r.err = r.ferr(r.off, "", ErrNoManifest)
		}
		r.losses = append(r.losses, Loss{FileIndex: -1, Offset: -1, Length: -1, Reason: "manifest missing or damaged: files not seen are unknown"})
		return
	}
	for _, mf := range r.manifest.Files {
		f := r.files[mf.Index]
		if f == nil {
			r.lastReason = "file missing from the set"
			f = &fileState{hdr: FileHeader{Index: mf.Index, Name: mf.Name, Kind: mf.Kind, Size: mf.Size}}
			if mf.Size > 0 {
				r.loss(f, 0, mf.Size)
			}
			continue
		}
		f.hdr.Size = mf.Size
		if f.pos < mf.Size {
			r.loss(f, f.pos, mf.Size-f.pos)
		} else if f.hashOK && hex.EncodeToString(f.h.Sum(nil)) != mf.Digest() {
			r.lastReason = r.digestName() + " of the file does not match the manifest"
			r.loss(f, 0, mf.Size)
		}
	}
	slices.SortStableFunc(r.losses, func(a, b Loss) int {
		if a.FileIndex != b.FileIndex {
			return a.FileIndex - b.FileIndex
		}
		return int(a.Offset - b.Offset)
	})
}

// Next advances to the next file of the set and returns its header. It
// returns io.EOF after the last file; Manifest and Damage are then final.
func (r *Reader) Next() (*FileHeader, error) {
	curIdx := -1
	if r.cur != nil {
		curIdx = r.cur.hdr.Index
	}
	for {
		var ev event
		var err error
		if r.stash != nil {
			ev, r.stash = *r.stash, nil
		} else if ev, err = r.fetch(); err != nil {
			r.cur = nil
			return nil, err
		}
		if !ev.c && ev.f.hdr.Index > curIdx {
			r.cur, r.rd, r.rdPos = ev.f, nil, 0
			h := ev.f.hdr
			return &h, nil
		}
	}
}

// NextChunk returns the next verified chunk of the current file, or io.EOF
// at its end. In salvage mode chunks may skip lost ranges (Meta.Offset
// tells where the chunk goes).
func (r *Reader) NextChunk() (*Chunk, error) {
	if r.cur == nil {
		return nil, ErrNoFile
	}
	var ev event
	var err error
	if r.stash != nil {
		ev, r.stash = *r.stash, nil
	} else if ev, err = r.fetch(); err != nil {
		return nil, err
	}
	if ev.c && ev.f == r.cur {
		return &r.chunk, nil
	}
	if ev.c && ev.f.hdr.Index < r.cur.hdr.Index {
		return r.NextChunk() // late chunk of an earlier file
	}
	r.stash = &ev
	return nil, io.EOF
}

// Read reads the current file's data in order. A lost range is an error
// (*FormatError wrapping ErrDamaged); use NextChunk to salvage around it.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.rd) == 0 {
		c, err := r.NextChunk()
		if err == io.EOF {
			if r.cur != nil && r.cur.hdr.Size >= 0 && r.rdPos < r.cur.hdr.Size && r.cur.last {
				return 0, r.ferr(r.off, "", fmt.Errorf("%w: file %q: bytes from %d lost", ErrDamaged, r.cur.hdr.Name, r.rdPos))
			}
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
		if c.Meta.Offset != r.rdPos {
			return 0, r.ferr(r.off, "", fmt.Errorf("%w: file %q: bytes [%d,%d) lost", ErrDamaged, r.cur.hdr.Name, r.rdPos, c.Meta.Offset))
		}
		r.rd = c.Data
		r.rdPos = c.Meta.End()
	}
	n := copy(p, r.rd)
	r.rd = r.rd[n:]
	return n, nil
}

// Manifest returns the manifest once Next has returned io.EOF.
func (r *Reader) Manifest() (*Manifest, error) {
	if r.manifest == nil {
		return nil, ErrNoManifest
	}
	return r.manifest, nil
}

// Damage returns the lost byte ranges found so far; complete once Next has
// returned io.EOF.
func (r *Reader) Damage() []Loss { return slices.Clone(r.losses) }

// Close releases the Reader's decoders.
func (r *Reader) Close() error {
	r.drainAhead()
	r.dec.Close()
	if r.decs != nil {
		close(r.decs)
		for d := range r.decs {
			d.Close()
		}
	}
	return nil
}

func (r *Reader) setFileReason(idx int) {
	if _, ok := r.fileReason[idx]; ok {
		return
	}
	if r.fileReason == nil {
		r.fileReason = map[int]string{}
	}
	r.fileReason[idx] = r.lastReason
}
