package tapeformat

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/zeebo/blake3"

	"github.com/tapestream/tapestream/tapeformat/agestream"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// WriterOptions configures a Writer.
type WriterOptions struct {
	// RecordSize is the size of every Write to the destination (the tape
	// block size): a multiple of 512, default DefaultRecordSize.
	RecordSize int
	// SegmentSize bounds the stored (compressed) size of a segment member,
	// default DefaultSegmentSize. The Writer holds up to two segments in
	// memory (the one being filled and the last one emitted, until it is
	// durably written, so that it can be rewritten on the next volume).
	SegmentSize int
	// FrameSize is the uncompressed chunk size used by CreateFile and
	// recorded in the label, default DefaultFrameSize.
	FrameSize int
	// Codec of the units. WriteFrame callers must produce units with it.
	Codec codec.Codec
	// Recipients, if any, encrypt the set (FORMAT.md 5.3): each segment's
	// data becomes an age file that every recipient decrypts alone, and
	// what the plain parts of a set would show of the files' contents
	// (header snapshots, digests) is sealed too. A segment is encrypted
	// as it fills, into its member's buffer: memory is that of a plain
	// set, plus a MiB of plaintext.
	Recipients []*agestream.Recipient
}

func (o *WriterOptions) setDefaults() error {
	if o.RecordSize == 0 {
		o.RecordSize = DefaultRecordSize
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
	if o.RecordSize < BlockSize || o.RecordSize%BlockSize != 0 || o.RecordSize > 64<<20 {
		return fmt.Errorf("tapeformat: record size %d is not a multiple of 512 up to 64 MiB", o.RecordSize)
	}
	if o.FrameSize < 1 || o.FrameSize > codec.MaxFrameSize {
		return fmt.Errorf("tapeformat: frame size %d out of range", o.FrameSize)
	}
	if o.SegmentSize < 64<<10 || o.SegmentSize > 1<<30 {
		return fmt.Errorf("tapeformat: segment size %d out of range 64 KiB..1 GiB", o.SegmentSize)
	}
	return nil
}

// member is a serialised tar member kept until it is durably written.
type member struct {
	name  string
	hdr   []byte // pax + ustar header blocks
	data  []byte
	end   int64 // volume offset after the member's padding; -1 while writing
	label bool
	keep  bool   // manifest: kept until Close completes
	buf   []byte // segment buffer to recycle when released
	// moves counts the volumes the member was rewritten on: a member that
	// did not make it on two fresh volumes never will.
	moves int
	units []unitSpan
	rec   *memberRecord // for the layout hook
}

// unitSpan is where a unit (or the file-info frame, info set) sits in a
// segment's data; kept only for the layout hook of the tests.
type unitSpan struct {
	pos, n int
	meta   codec.ChunkMeta
	info   bool
}

// layoutEvent tells a test where the Writer put a member and its units
// (volume offsets), so that it knows which chunks a damaged byte range
// touches. hdr..data is the header, data..end the data and padding.
type layoutEvent struct {
	vol            int
	name           string
	hdr, data, end int64
	rec            *memberRecord // encrypted segments: the age record is here
	units          []unitSpan    // positions relative to data (to the plaintext, encrypted)
}

// Writer writes a backup set. Methods are not safe for concurrent use. The
// first error is sticky.
type Writer struct {
	dst  io.Writer
	vw   VolumeWriter
	opts WriterOptions

	rec       []byte // current record
	committed int64  // bytes of this volume written (whole records)
	pos       int64  // committed + len(rec)
	pending   []*member
	early     bool
	vol       int

	label   Label
	begun   bool
	closed  bool
	closing bool // writing the manifest
	err     error
	mtime   time.Time
	volList []VolumeInfo
	info    ManifestInfo
	totals  Totals
	files   []*ManifestFile

	// current file
	cur      *ManifestFile
	curInfo  FileInfo
	curOff   int64
	seg      []byte
	segStart int64
	segLen   int64
	segChk   int
	segTable [][2]uint32
	segUnits [][2]uint32 // encrypted: the plaintext layout of the segment
	segInfo  int         // encrypted: length of the file-info frame at its start
	part     int
	free     [][]byte
	// encrypted: the open segment's age file (seal.go); w.seg gathers
	// at most sealFlush of plaintext, segFlushed counts what went in.
	sealer     *agestream.Writer
	sealOut    *appendBuf
	segFlushed int

	enc    *codec.Encoder  // for CreateFile
	tag    uint64          // set tag stamped into every chunk record
	finfo  json.RawMessage // file-info record of the open file
	units  []unitSpan      // layout hook: units of the segment being filled
	layout func(layoutEvent)
}

type singleVolume struct{ io.Writer }

func (singleVolume) NextVolume() error {
	return errors.New("tapeformat: destination is a single volume")
}

// NewWriter returns a Writer writing records to w. If w implements
// VolumeWriter, the set may span volumes (see VolumeWriter for the end of
// medium protocol); otherwise it is a single volume.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	vw, ok := w.(VolumeWriter)
	if !ok {
		vw = singleVolume{w}
	}
	return &Writer{dst: w, vw: vw, opts: opts, rec: make([]byte, 0, opts.RecordSize), vol: 1}, nil
}

// NewSetID returns a random set id.
func NewSetID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) check() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriteAfterClose
	}
	if !w.begun {
		return ErrNotBegun
	}
	return nil
}

// Begin writes the label of the first volume. Zero fields are filled in:
// FormatVersion, SetID (random), Created (now), Codec, RecordSize,
// SegmentSize, FrameSize, Volume.
func (w *Writer) Begin(l Label) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriteAfterClose
	}
	if w.begun {
		return w.fail(errors.New("tapeformat: Begin called twice"))
	}
	l.FormatVersion = FormatVersion
	if l.SetID == "" {
		l.SetID = NewSetID()
	}
	if l.Created.IsZero() {
		l.Created = time.Now()
	}
	l.Created = l.Created.UTC()
	l.Codec = w.opts.Codec.String()
	l.Digest = DigestBLAKE3
	l.RecordSize = w.opts.RecordSize
	l.SegmentSize = w.opts.SegmentSize
	l.FrameSize = w.opts.FrameSize
	l.Encryption = nil
	if len(w.opts.Recipients) > 0 {
		// Recipients age refuses together (post-quantum and classic
		// ones) are refused here, not at the first segment's seal.
		if _, err := agestream.NewWriter(io.Discard, w.opts.Recipients); err != nil {
			return w.fail(err)
		}
		l.Encryption = &Encryption{Scheme: EncryptionAge, Recipients: agestream.Describe(w.opts.Recipients)}
	}
	w.label = l
	w.tag = codec.SetTagOf(l.SetID)
	w.mtime = l.Created.Truncate(time.Second)
	w.begun = true
	w.volList = []VolumeInfo{{Volume: 1}}
	return w.fail0(w.writeLabel())
}

func (w *Writer) fail0(err error) error {
	if err != nil {
		return w.fail(err)
	}
	return nil
}

// Label returns the label as written (volume number of the current volume).
func (w *Writer) Label() Label { l := w.label; l.Volume = w.vol; return l }

// Volume returns the current volume number (1-based).
func (w *Writer) Volume() int { return w.vol }

func (w *Writer) header(name string, size int64, rec *memberRecord) ([]byte, error) {
	rec.Set = w.label.SetID
	rec.Stored = size
	js, err := encodeRecord(rec)
	if err != nil {
		return nil, err
	}
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	err = tw.WriteHeader(&tar.Header{
		Typeflag:   tar.TypeReg,
		Name:       name,
		Mode:       0o644,
		Size:       size,
		ModTime:    w.mtime,
		Format:     tar.FormatPAX,
		PAXRecords: map[string]string{"comment": string(js)},
	})
	return hb.Bytes(), err
}

func (w *Writer) writeLabel() error {
	l := w.label
	l.Volume = w.vol
	js, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	sum := sha256.Sum256(js)
	hdr, err := w.header(LabelName, int64(len(js)), &memberRecord{Type: mtLabel, Vol: w.vol, File: -1, Length: int64(len(js)),
		SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return err
	}
	return w.emit(&member{name: LabelName, hdr: hdr, data: js, label: true})
}

var zeroBlock [BlockSize]byte

// write appends p to the record stream. Whole records of p are written
// from p itself: a member's data is only copied to fill the records it
// shares with its neighbours.
func (w *Writer) write(p []byte) error {
	for len(p) > 0 {
		if rs := cap(w.rec); len(w.rec) == 0 && len(p) >= rs {
			w.pos += int64(rs)
			if err := w.commitRecord(p[:rs]); err != nil {
				return err
			}
			p = p[rs:]
			continue
		}
		n := min(len(p), cap(w.rec)-len(w.rec))
		w.rec = append(w.rec, p[:n]...)
		w.pos += int64(n)
		p = p[n:]
		if len(w.rec) == cap(w.rec) {
			if err := w.flushRecord(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) writeZeros(n int) error {
	for n > 0 {
		k := min(n, BlockSize)
		if err := w.write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

var errEOM = errors.New("end of medium")

func (w *Writer) flushRecord() error { return w.commitRecord(w.rec) }

// commitRecord writes one record, w.rec or a record-sized piece of a
// member (then w.rec is empty).
func (w *Writer) commitRecord(rec []byte) error {
	_, err := w.dst.Write(rec)
	switch {
	case err == nil:
	case errors.Is(err, ErrEarlyWarning):
		w.early = true
	case errors.Is(err, ErrEndOfMedium):
		return errEOM
	default:
		return err
	}
	w.committed += int64(len(rec))
	w.rec = w.rec[:0]
	// release members now durably written
	k := 0
	for _, m := range w.pending {
		if m.end >= 0 && m.end <= w.committed && !m.keep {
			w.release(m)
			continue
		}
		w.pending[k] = m
		k++
	}
	clear(w.pending[k:])
	w.pending = w.pending[:k]
	return nil
}

func (w *Writer) release(m *member) {
	if m.buf != nil && len(w.free) < 2 && cap(m.buf) >= w.bufCap() {
		w.free = append(w.free, m.buf[:0])
	}
}

// writeMember writes m's bytes; m is pending until durably written.
func (w *Writer) writeMember(m *member) error {
	m.end = -1
	w.pending = append(w.pending, m)
	hdrAt := w.pos
	if err := w.write(m.hdr); err != nil {
		return err
	}
	if w.layout != nil {
		w.layout(layoutEvent{vol: w.vol, name: m.name, hdr: hdrAt, data: w.pos,
			end: w.pos + int64(len(m.data)+(-len(m.data)&(BlockSize-1))), units: m.units, rec: m.rec})
	}
	if err := w.write(m.data); err != nil {
		return err
	}
	if err := w.writeZeros(int(-len(m.data)) & (BlockSize - 1)); err != nil {
		return err
	}
	m.end = w.pos
	return nil
}

// emit writes a member, handling early warning and end of medium.
func (w *Writer) emit(m *member) error {
	if !m.label {
		vi := &w.volList[len(w.volList)-1]
		vi.Members = append(vi.Members, m.name)
		w.totals.Members++
	}
	err := w.writeMember(m)
	if err == errEOM {
		return w.switchVolume()
	}
	if err != nil {
		return err
	}
	if w.early {
		return w.endVolume()
	}
	return nil
}

// endVolume closes the current volume after an early warning: trailer,
// padding, NextVolume, label.
func (w *Writer) endVolume() error {
	err := w.trailer()
	if err == errEOM {
		return w.switchVolume()
	}
	if err != nil {
		return err
	}
	return w.newVolume(nil)
}

// trailer writes the tar end-of-archive blocks and pads the last record.
func (w *Writer) trailer() error {
	if err := w.writeZeros(2 * BlockSize); err != nil {
		return err
	}
	if len(w.rec) > 0 {
		return w.writeZeros(cap(w.rec) - len(w.rec))
	}
	return nil
}

// switchVolume handles end of medium: the current record was not written;
// every member not durably written is rewritten whole on the next volume.
func (w *Writer) switchVolume() error {
	var redo []*member
	for _, m := range w.pending {
		if !m.label {
			if m.moves > 1 {
				return w.tooSmall(m)
			}
			redo = append(redo, m)
		}
	}
	w.rec = w.rec[:0]
	w.pending = nil
	return w.newVolume(redo)
}

// tooSmall refuses a member that did not fit, with its trailer, on a
// volume that held nothing else: every further volume would fail the same
// way (a changer would be cycled through every cartridge).
func (w *Writer) tooSmall(m *member) error {
	stored := int64(len(m.hdr) + len(m.data))
	return fmt.Errorf("%w: member %s is %s (%d bytes) as stored, and volume %d held only %s (%d bytes) with the archive trailer: "+
		"use volumes larger than %s, or lower the segment size (--segment-size, segment_size in a job; now %s) so members are smaller (a segment holds at least one frame: --frame-size, now %s)",
		ErrVolumeTooSmall, m.name, humanize.IBytes(uint64(stored)), stored, w.vol, humanize.IBytes(uint64(w.pos)), w.pos,
		humanize.IBytes(uint64(stored)+2*uint64(w.opts.RecordSize)), humanize.IBytes(uint64(w.opts.SegmentSize)), humanize.IBytes(uint64(w.opts.FrameSize)))
}

func (w *Writer) newVolume(redo []*member) error {
	for attempt := 0; ; attempt++ {
		if attempt == 3 {
			return ErrVolumeTooSmall
		}
		if err := w.vw.NextVolume(); err != nil {
			return fmt.Errorf("tapeformat: next volume after volume %d: %w", w.vol, err)
		}
		// move the rewritten members to the new volume's list
		prev := &w.volList[len(w.volList)-1]
		for _, m := range redo {
			for i := len(prev.Members) - 1; i >= 0; i-- {
				if prev.Members[i] == m.name {
					prev.Members = append(prev.Members[:i], prev.Members[i+1:]...)
					break
				}
			}
		}
		w.vol++
		w.committed, w.pos, w.early = 0, 0, false
		w.rec = w.rec[:0]
		w.pending = nil
		vi := VolumeInfo{Volume: w.vol}
		for _, m := range redo {
			vi.Members = append(vi.Members, m.name)
		}
		w.volList = append(w.volList, vi)
		err := w.writeLabel()
		for _, m := range redo {
			if err != nil {
				break
			}
			m.moves++
			if w.closing && m.name == ManifestName {
				err = w.buildManifest(m)
				if err != nil {
					return err
				}
			}
			err = w.writeMember(m)
		}
		if err == errEOM {
			redo = nil
			for _, m := range w.pending {
				if !m.label {
					if m.moves > 1 {
						return w.tooSmall(m)
					}
					redo = append(redo, m)
				}
			}
			w.rec = w.rec[:0]
			continue
		}
		if err != nil {
			return err
		}
		if w.early && !w.closing {
			return w.endVolume()
		}
		return nil
	}
}

// BeginFile starts a file. Its chunks follow with WriteFrame (or through
// CreateFile) and EndFile ends it. Files are numbered in order from 0; the
// index is the ChunkMeta.FileIndex of its chunks.
func (w *Writer) BeginFile(fi FileInfo) (index int, err error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	if w.cur != nil {
		return 0, w.fail(ErrFileOpen)
	}
	if err := ValidateName(fi.Name); err != nil {
		return 0, err // not sticky: caller error
	}
	switch fi.Kind {
	case KindDatabase, KindStreaming, KindLog, KindOther:
	case "":
		fi.Kind = KindOther
	default:
		return 0, fmt.Errorf("tapeformat: unknown file kind %q", fi.Kind)
	}
	if len(fi.DBHeader) > MaxDBHeader {
		return 0, fmt.Errorf("tapeformat: file %q: database header snapshot of %d bytes exceeds %d", fi.Name, len(fi.DBHeader), MaxDBHeader)
	}
	set := w.label
	set.Volume = 0
	info := &fileInfo{Set: set, File: fileInfoRecord{Index: len(w.files), Name: fi.Name, Kind: fi.Kind, Size: fi.Size,
		ModTime: fi.ModTime.UTC(), DBHeader: fi.DBHeader}}
	infoJS, err := json.Marshal(info)
	if err != nil {
		return 0, w.fail(err)
	}
	if len(infoJS) > codec.MaxInfoLen {
		return 0, fmt.Errorf("tapeformat: file %q: file-info of %d bytes exceeds %d", fi.Name, len(infoJS), codec.MaxInfoLen)
	}
	w.curInfo, w.finfo = fi, infoJS
	recInfo := *info
	if w.encrypted() {
		// The header snapshot is database content: in an encrypted set
		// it is only in the file-info frame, inside the encrypted data,
		// and (codec none, which has no frame) sealed in the record.
		recInfo.File.DBHeader = nil
		if len(fi.DBHeader) > 0 && w.opts.Codec.Kind == codec.None {
			if recInfo.File.Sealed, err = w.sealJSON(sealedInfo{DBHeader: fi.DBHeader}); err != nil {
				return 0, w.fail(err)
			}
		}
		if w.finfo, err = json.Marshal(&recInfo); err != nil {
			return 0, w.fail(err)
		}
	}
	if w.opts.Codec.Kind != codec.None {
		// The frame carries the whole file-info; the first member
		// record only its file part (the label copy in every record
		// doubled the JSON a reader decodes per file).
		if w.finfo, err = json.Marshal(fileInfoLazy{File: recInfo.File}); err != nil {
			return 0, w.fail(err)
		}
	}
	first := segmentName(fi, w.opts.Codec, 1, w.encrypted())
	w.cur = &ManifestFile{
		Index: len(w.files), Name: fi.Name, Kind: fi.Kind, Size: fi.Size, DBHeader: fi.DBHeader,
		Members: strings.Replace(first, fmt.Sprintf(partFormat, 1), ".part*", 1),
		ModTime: fi.ModTime.UTC(), FirstVolume: w.vol,
	}
	w.curOff, w.part = 0, 0
	w.resetSeg()
	if w.opts.Codec.Kind != codec.None {
		// The file-info frame opens the file's data: a reader that lost
		// this member's header (and the label, and the manifest) still
		// knows the file and its set.
		w.seg = codec.AppendInfo(w.seg, w.opts.Codec.Kind, infoJS)
		w.segInfo = len(w.seg)
		if w.layout != nil {
			w.units = append(w.units, unitSpan{pos: 0, n: len(w.seg), info: true})
		}
	}
	return w.cur.Index, nil
}

func (w *Writer) resetSeg() {
	switch {
	case w.seg != nil:
	case w.encrypted():
		// Plaintext is gathered here and sealed a MiB at a time.
		w.seg = make([]byte, 0, sealFlush+w.opts.FrameSize+64<<10)
	default:
		w.seg = w.takeBuf()
	}
	w.seg = w.seg[:0]
	w.segFlushed = 0
	w.segStart, w.segLen, w.segChk, w.segInfo = w.curOff, 0, 0, 0
	w.segTable = w.segTable[:0]
	w.segUnits = nil
	w.units = nil
}

// WriteFrame appends one unit (from codec.Encoder.EncodeFrame with the
// writer's codec) holding the chunk meta of the open file. Chunks must come
// in file order without gaps. For codecs other than none, meta must equal
// the unit's own record.
func (w *Writer) WriteFrame(unit []byte, meta codec.ChunkMeta) error {
	if err := w.check(); err != nil {
		return err
	}
	if w.cur == nil {
		return w.fail(ErrNoFile)
	}
	if int(meta.FileIndex) != w.cur.Index || meta.Offset != w.curOff {
		return w.fail(fmt.Errorf("%w: file %d offset %d, expected file %d offset %d", ErrOrder,
			meta.FileIndex, meta.Offset, w.cur.Index, w.curOff))
	}
	if w.opts.Codec.Kind == codec.None {
		if len(unit) != int(meta.Length) {
			return w.fail(fmt.Errorf("tapeformat: raw unit of %d bytes for chunk of %d", len(unit), meta.Length))
		}
	} else {
		h, err := codec.ParseHeader(unit)
		if err != nil || h.UnitLen != len(unit) || h.Meta != meta || h.Kind != w.opts.Codec.Kind {
			return w.fail(fmt.Errorf("tapeformat: unit does not match its chunk meta or codec: %v", err))
		}
	}
	if w.segChk > 0 && w.segPlain()+len(unit) > w.opts.SegmentSize {
		if err := w.emitSegment(false); err != nil {
			return w.fail(err)
		}
	}
	at, local := w.segPlain(), len(w.seg)
	w.seg = append(w.seg, unit...)
	if w.opts.Codec.Kind != codec.None {
		if err := codec.StampSet(w.seg[local:], w.tag); err != nil {
			return w.fail(err)
		}
	}
	if w.layout != nil {
		w.units = append(w.units, unitSpan{pos: at, n: len(unit), meta: meta})
	}
	w.segLen += int64(meta.Length)
	w.segChk++
	switch {
	case w.encrypted():
		w.segUnits = append(w.segUnits, [2]uint32{uint32(len(unit)), meta.Length})
		if err := w.flushSeal(false); err != nil {
			return w.fail(fmt.Errorf("tapeformat: encrypting %s: %w", w.curInfo.Name, err))
		}
	case w.opts.Codec.Kind == codec.None:
		w.segTable = append(w.segTable, [2]uint32{meta.Length, meta.CRC32C})
	}
	w.curOff += int64(meta.Length)
	w.cur.Chunks++
	w.totals.Chunks++
	return nil
}

func (w *Writer) emitSegment(last bool) error {
	w.part++
	if w.part > maxParts {
		return fmt.Errorf("tapeformat: file %q needs more than %d segments of %s: raise the segment size (--segment-size, segment_size in a job)",
			w.curInfo.Name, maxParts, humanize.IBytes(uint64(w.opts.SegmentSize)))
	}
	name := segmentName(w.curInfo, w.opts.Codec, w.part, w.encrypted())
	size := w.curInfo.Size
	if last {
		size = w.curOff
	}
	rec := &memberRecord{Type: mtSegment, File: w.cur.Index, Name: w.curInfo.Name, Kind: w.curInfo.Kind,
		Part: w.part, Offset: w.segStart, Length: w.segLen, Chunks: w.segChk, Size: size, Last: last,
		Codec: w.opts.Codec.String(), Digest: DigestBLAKE3}
	if w.opts.Codec.Kind == codec.None && !w.encrypted() {
		rec.Table = w.segTable
	}
	if w.part == 1 {
		rec.Info = w.finfo
	}
	m := &member{name: name, units: w.units}
	if w.encrypted() {
		rec.InfoLen, rec.Units = w.segInfo, w.segUnits
		return w.sealSegment(m, rec)
	}
	hdr, err := w.header(name, int64(len(w.seg)), rec)
	if err != nil {
		return err
	}
	m.hdr = hdr
	if len(w.seg) < w.opts.RecordSize {
		// A short segment (a small file, a file's tail) can stay pending
		// behind later members of the same record: give it a copy of its
		// own size and keep the segment buffer for the next one, instead
		// of leaving a SegmentSize buffer to the garbage collector.
		m.data = bytes.Clone(w.seg)
	} else {
		m.data, m.buf = w.seg, w.seg
		w.seg = nil
	}
	if err := w.emitFileMember(m, w.cur, w.part); err != nil {
		return err
	}
	w.resetSeg()
	return nil
}

// emitFileMember writes a segment member of file mf and accounts for it.
func (w *Writer) emitFileMember(m *member, mf *ManifestFile, part int) error {
	if part == 1 {
		mf.FirstVolume = w.vol
	}
	mf.Segments++
	mf.StoredBytes += int64(len(m.data))
	w.totals.StoredBytes += int64(len(m.data))
	if err := w.emit(m); err != nil {
		return err
	}
	mf.LastVolume = w.vol
	return nil
}

// EndFile ends the open file. The last segment member is written. If the
// file's size was given to BeginFile it must match the bytes written.
func (w *Writer) EndFile(sum FileSummary) error {
	if err := w.check(); err != nil {
		return err
	}
	if w.cur == nil {
		return w.fail(ErrNoFile)
	}
	if w.curInfo.Size >= 0 && w.curInfo.Size != w.curOff {
		return w.fail(fmt.Errorf("tapeformat: file %q: %d bytes written, size %d declared", w.curInfo.Name, w.curOff, w.curInfo.Size))
	}
	if len(sum.Digest) != blake3Size {
		return w.fail(fmt.Errorf("tapeformat: file %q: BLAKE3 digest missing", w.curInfo.Name))
	}
	if err := w.emitSegment(true); err != nil {
		return w.fail(err)
	}
	w.cur.Size = w.curOff
	w.cur.BLAKE3 = hex.EncodeToString(sum.Digest)
	w.totals.Files++
	w.totals.Bytes += w.curOff
	w.files = append(w.files, w.cur)
	w.cur = nil
	if w.seg != nil && !w.encrypted() {
		w.release(&member{buf: w.seg})
		w.seg = nil
	}
	return nil
}

// SetManifestInfo sets the caller-supplied manifest fields (log generation
// range, extra key/values). Call any time before Close.
func (w *Writer) SetManifestInfo(mi ManifestInfo) { w.info = mi }

// Close writes the manifest, the archive trailer and pads the last record.
// It does not close the destination.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if err := w.check(); err != nil {
		w.closed = true
		return err
	}
	if w.cur != nil {
		w.closed = true
		return w.fail(ErrFileOpen)
	}
	w.closed = true
	w.closing = true
	w.totals.Members++ // the manifest
	vi := &w.volList[len(w.volList)-1]
	vi.Members = append(vi.Members, ManifestName)
	m := &member{name: ManifestName, keep: true}
	if err := w.buildManifest(m); err != nil {
		return w.fail(err)
	}
	// The manifest is the set's last member: an early warning while it
	// is written ends no volume (the trailer goes into the reserve). At
	// the end of the medium in the manifest, it is rewritten whole on the
	// next volume (it stays pending until the trailer is written), rebuilt
	// there to list that volume. A trailer that does not fit after a
	// manifest written whole is left out: the set ends with its manifest
	// (readers, GNU tar and Go's archive/tar take the end of the volume
	// for the end of the archive), and the manifest lists the volumes
	// really written, which a copy on one more volume would contradict.
	err := w.writeMember(m)
	for {
		if err == nil {
			err = w.trailer()
		}
		if err != errEOM {
			break
		}
		if m.end >= 0 && m.end <= w.committed {
			err = nil
			break
		}
		// switchVolume refuses the manifest's third move (tooSmall)
		err = w.switchVolume()
	}
	if err != nil {
		return w.fail(err)
	}
	if m.end < 0 || m.end > w.committed {
		// Never report a set complete whose manifest the destination
		// did not take whole.
		return w.fail(fmt.Errorf("tapeformat: the manifest was not written whole (%d of %d bytes of volume %d taken)", w.committed, m.end, w.vol))
	}
	w.pending = nil
	return nil
}

// buildManifest (re)builds the manifest member m from the volumes and
// members written so far: it is built again when it moves to another
// volume.
func (w *Writer) buildManifest(m *member) error {
	w.totals.Volumes = w.vol
	if w.info.SetType == "" {
		w.info.SetType = w.label.SetType
	}
	if w.info.GroupSignature == "" {
		w.info.GroupSignature = w.label.GroupSignature
	}
	if w.info.LogPrefix == "" {
		w.info.LogPrefix = w.label.LogPrefix
	}
	vl := make([]VolumeInfo, len(w.volList))
	for i, v := range w.volList {
		vl[i] = VolumeInfo{Volume: v.Volume, Members: append([]string(nil), v.Members...)}
	}
	man := Manifest{
		FormatVersion: FormatVersion, SetID: w.label.SetID, Codec: w.opts.Codec.String(),
		FrameSize: w.opts.FrameSize, Completed: time.Now().UTC(), Info: w.info, Files: []ManifestFile{},
		Volumes: vl, Totals: w.totals,
	}
	for _, f := range w.files {
		man.Files = append(man.Files, *f)
	}
	if w.encrypted() {
		// The digests and header snapshots say something of the files'
		// contents: sealed, the rest stays plain for verify, list and a
		// catalog rebuild without the identity.
		var sm sealedManifest
		for i := range man.Files {
			f := &man.Files[i]
			sm.Files = append(sm.Files, sealedFile{Index: f.Index, BLAKE3: f.BLAKE3, DBHeader: f.DBHeader})
			f.BLAKE3, f.DBHeader = "", nil
		}
		sealed, err := w.sealJSON(sm)
		if err != nil {
			return err
		}
		man.Sealed = sealed
	}
	js, err := json.MarshalIndent(man, "", " ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	sum := sha256.Sum256(js)
	hdr, err := w.header(ManifestName, int64(len(js)), &memberRecord{Type: mtManifest, File: -1,
		Length: int64(len(js)), SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return err
	}
	m.hdr, m.data = hdr, js
	return nil
}

// CreateFile starts a file (BeginFile) and returns a writer that chunks,
// hashes and encodes the data itself, for tests and small files. Closing it
// ends the file (EndFile). An empty file is stored as one empty chunk (so
// that the codec CLI outputs an empty file).
func (w *Writer) CreateFile(fi FileInfo) (io.WriteCloser, error) {
	idx, err := w.BeginFile(fi)
	if err != nil {
		return nil, err
	}
	if w.enc == nil || w.enc.Codec() != w.opts.Codec {
		if w.enc, err = codec.NewEncoder(w.opts.Codec, w.opts.FrameSize); err != nil {
			return nil, w.fail(err)
		}
	}
	return &fileWriter{w: w, idx: uint32(idx), h: blake3.New(), buf: make([]byte, 0, w.opts.FrameSize)}, nil
}

type fileWriter struct {
	w    *Writer
	idx  uint32
	h    hash.Hash
	buf  []byte
	unit []byte
	off  int64
	n    int
}

func (f *fileWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), cap(f.buf)-len(f.buf))
		f.buf = append(f.buf, p[:k]...)
		p = p[k:]
		n += k
		if len(f.buf) == cap(f.buf) {
			if err := f.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (f *fileWriter) flush() error {
	f.h.Write(f.buf)
	var meta codec.ChunkMeta
	f.unit, meta = f.w.enc.Encode(f.unit[:0], codec.ChunkMeta{FileIndex: f.idx, Offset: f.off}, f.buf)
	f.off += int64(len(f.buf))
	f.buf = f.buf[:0]
	f.n++
	return f.w.WriteFrame(f.unit, meta)
}

func (f *fileWriter) Close() error {
	if len(f.buf) > 0 || (f.n == 0 && f.w.opts.Codec.Kind != codec.None) {
		if err := f.flush(); err != nil {
			return err
		}
	}
	return f.w.EndFile(FileSummary{Digest: f.h.Sum(nil)})
}

// EndVolume ends the current volume now (trailer, padding, NextVolume) and
// starts the next one with its label, as after an early warning. Use it to
// split a set at a chosen size. Buffered data of the open file goes to the
// next volume.
func (w *Writer) EndVolume() error {
	if err := w.check(); err != nil {
		return err
	}
	return w.fail0(w.endVolume())
}
