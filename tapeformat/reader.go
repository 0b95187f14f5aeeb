package tapeformat

import (
	"bufio"
	"bytes"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/tapestream/tapestream/tapeformat/agestream"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The Reader is split by concern:
//
//	reader.go   the API: options, Next, NextChunk, Read, reports
//	member.go   the tar layer: headers, member records, resync, volumes,
//	            what follows the set
//	units.go    the unit layer: units and file-info frames of a member's
//	            data, decoded ahead in parallel within a byte budget
//	salvage.go  accounting: which file a chunk belongs to, in-order
//	            delivery, holes, late and duplicate chunks, chunks of files
//	            not yet known, losses and warnings
//	check.go    the label, the manifest and the file digests
//	decrypt.go  encrypted sets: members opened or checked sealed, lost
//	            ciphertext chunks as holes in the plaintext

// Reader defaults (configurable in ReaderOptions).
const (
	// DefaultReadAhead bounds the uncompressed bytes decoded ahead.
	DefaultReadAhead = 32 << 20
	// DefaultMaxPending bounds the chunks held for files not yet
	// identified: one segment of the 32 MiB default that sets written
	// before the default became 4 MiB have.
	DefaultMaxPending = 32 << 20
)

// ReaderOptions configures a Reader. Zero values select defaults.
type ReaderOptions struct {
	// RecordSize is the read buffer size; it must be at least the tape
	// block size when reading a tape (default DefaultRecordSize).
	RecordSize int
	// MaxMemberSize caps the stored size of a segment member, which the
	// Reader buffers whole (default DefaultMaxMemberSize). The buffer
	// grows with the data actually read, not with the size a header
	// declares.
	MaxMemberSize int64
	// MaxManifestSize caps the manifest (default DefaultMaxManifestSize).
	MaxManifestSize int64
	// MaxFrameSize caps the uncompressed size of one chunk (default
	// codec.MaxFrameSize).
	MaxFrameSize int
	// Workers decode the units of a member in parallel (default
	// GOMAXPROCS; 1 decodes in the reading goroutine).
	Workers int
	// ReadAhead bounds the uncompressed bytes of the units being decoded
	// ahead, whatever Workers is (default DefaultReadAhead; one unit is
	// always allowed).
	ReadAhead int64
	// MaxPending bounds the bytes of verified chunks held while their
	// file is not yet identified (its member header was lost; the next
	// member, a file-info frame or the manifest may name it), default
	// DefaultMaxPending. Chunks beyond it are reported lost.
	MaxPending int64
	// Strict makes any damage a fatal *FormatError. Otherwise (salvage
	// mode) damaged chunks are skipped and reported by Damage.
	Strict bool
	// Identities decrypt an encrypted set (FORMAT.md 5.3). Without any,
	// an encrypted set is read sealed (see Sealed): its structure and
	// every byte of its ciphertext are checked, its contents are not.
	// An identity that opens none of the set's members is a *KeyError.
	// A member's plaintext is buffered beside its data (one more member
	// buffer) and decrypted on up to Workers goroutines.
	Identities []*agestream.Identity
}

// FileHeader describes a file of the set as read.
type FileHeader struct {
	Index int
	Name  string // relative slash path, validated with ValidateName
	Kind  string
	// Size is the file's size as the set declares it: from the file-info
	// (format version 3) or the member record, -1 if not known before
	// the end. It is authenticated in format version 3; the manifest
	// has the last word (a disagreement is reported by Damage).
	Size    int64
	ModTime time.Time // zero if not known
	// DBHeader is the database header snapshot taken at backup time
	// (format version 3: from the file-info; empty for older sets,
	// whose snapshots are only in the manifest).
	DBHeader []byte
}

// Chunk is a verified chunk of the current file. Data is valid until the
// next call on the Reader (or the caller's, after TakeData).
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
	switch {
	case l.Offset < 0:
		return fmt.Sprintf("%s: %s", l.File, l.Reason)
	case l.Length < 0:
		return fmt.Sprintf("%s [%d,end): %s", l.File, l.Offset, l.Reason)
	}
	return fmt.Sprintf("%s [%d,+%d): %s", l.File, l.Offset, l.Length, l.Reason)
}

// Warning is something found in a set that cost no data by itself (the
// data it did cost is in Damage). With Damage false the set is intact:
// bytes after its end, a second set concatenated after it, a duplicated
// member, a member of another set inserted, a file whose digest could not
// be checked because its chunks came out of order. With Damage true the
// set is damaged and the reader got around it: a damaged label, member
// header, file-info or chunk record (a strict reader fails on those).
type Warning struct {
	Volume int    `json:"volume"`
	Offset int64  `json:"offset"` // in the volume
	Member string `json:"member,omitempty"`
	File   string `json:"file,omitempty"`
	What   string `json:"what"`
	Damage bool   `json:"damage,omitempty"`
}

func (w Warning) String() string {
	s := fmt.Sprintf("volume %d offset %d", w.Volume, w.Offset)
	if w.Member != "" {
		s += fmt.Sprintf(" member %q", w.Member)
	}
	if w.File != "" {
		s += fmt.Sprintf(" file %q", w.File)
	}
	return s + ": " + w.What
}

// Reader reads a backup set front to back.
type Reader struct {
	opts ReaderOptions
	src  io.Reader
	vr   VolumeReader
	br   *bufio.Reader // grown to hold a whole member header (growBuffer)
	vol  int
	off  int64 // offset in the current volume

	label     Label
	labeled   bool // set id, codec and digest known
	labelFull bool // the typed label fields are known
	enc       bool // the set is encrypted
	version   int  // format version of the set
	tag       uint64
	codec     codec.Codec
	dec       *codec.Decoder

	files map[int]*fileState
	open  *fileState // the file chunks are delivered to (announced last)
	hash  hash.Hash  // digest of the open file
	queue []event    // for Next and NextChunk, in order, from queue[qh]
	qh    int
	cur   *fileState // the file Next returned last
	chunk Chunk
	out   []byte
	rd    []byte
	rdPos int64

	// member being parsed (units.go)
	mem        []byte
	memPos     int
	memRec     *memberRecord // nil: salvaged bytes without a header
	memName    string
	memOff     int64 // volume offset of the member data
	memVol     int
	memTable   int
	memCOff    int64
	memTorn    bool
	memFile    int  // file of the member (-1: unknown)
	memDup     bool // a duplicate of this member was reported
	memLate    bool // a late chunk of this member was reported
	memRewrite bool // the member torn at the end of the last volume, rewritten
	memBuf     []byte
	active     bool
	pendingHdr *pendingHeader
	torn       [2]int // file and part of the member torn at the end of the last volume

	// encrypted members (decrypt.go)
	holes    []hole  // plaintext ranges of the member lost
	holeSaid int     // holes reported so far
	starts   []int   // where the member's units start in its plaintext
	salvAge  []ageAt // age files found in a damaged region, read in turn

	// chunks of files not yet identified (salvage.go)
	pend      []pendChunk
	pendBytes int64

	manifest  *Manifest
	manRead   bool
	done      bool
	finalized bool
	err       error
	losses    []Loss
	warnings  []Warning
	// warnings beyond maxWarnings: counted
	moreWarnings int
	moreDamage   bool
	reason       string // the last damage, for the losses it causes

	// Parallel decoding of the current member's units (units.go).
	ahead      []*aheadUnit
	aheadBytes int64
	scan       int
	decs       chan *codec.Decoder
	ndecs      int
	outFree    [][]byte
	outBytes   int64
}

// NewReader returns a Reader of the set in r, which may be a VolumeReader
// for sets spanning volumes. It reads the label of the first volume; in
// salvage mode a damaged label is rebuilt from the next member record or
// file-info (Label says what is known).
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
	if opts.ReadAhead <= 0 {
		opts.ReadAhead = DefaultReadAhead
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	rd := &Reader{opts: opts, src: r, br: bufio.NewReaderSize(r, opts.RecordSize), vol: 1, files: map[int]*fileState{}, memFile: -1}
	rd.vr, _ = r.(VolumeReader)
	rd.dec = codec.NewDecoder(opts.MaxFrameSize)
	if err := rd.readLabel(); err != nil {
		if opts.Strict || !rd.recoverLabel(err) {
			return nil, err
		}
	}
	return rd, nil
}

// Label returns the set's label: the label member of the first volume, or
// (if it was damaged) the copy in the first file-info or member record
// met. Volume is 1.
func (r *Reader) Label() Label { return r.label }

// Volume returns the number of the volume being read.
func (r *Reader) Volume() int { return r.vol }

// Next advances to the next file of the set and returns its header. Files
// come in the order the set holds them; a file whose first members were
// lost comes when another member, its file-info or the manifest names it
// (then possibly after files with a higher index). It returns io.EOF after
// the last file; Manifest, Damage and Warnings are then final.
func (r *Reader) Next() (*FileHeader, error) {
	for {
		ev, err := r.event()
		if err != nil {
			r.cur = nil
			return nil, err
		}
		if ev.chunk {
			continue // the caller did not want the rest of the last file
		}
		r.cur, r.rd, r.rdPos = ev.f, nil, 0
		h := ev.f.hdr
		return &h, nil
	}
}

// NextChunk returns the next verified chunk of the current file, or io.EOF
// at its end. In salvage mode chunks may skip lost ranges, and a chunk of
// a range skipped earlier in the same file may come late (Meta.Offset
// tells where the chunk goes).
func (r *Reader) NextChunk() (*Chunk, error) {
	if r.cur == nil {
		return nil, ErrNoFile
	}
	if err := r.RequireIdentity(); err != nil {
		return nil, err
	}
	ev, err := r.event()
	if err != nil {
		return nil, err
	}
	if !ev.chunk || ev.f != r.cur {
		r.unread(ev)
		return nil, io.EOF
	}
	if ev.own { // a chunk held while its file was unknown: its own buffer
		r.putOut(r.out)
		r.out = ev.data
	}
	r.chunk = Chunk{Meta: ev.meta, Data: ev.data}
	return &r.chunk, nil
}

// Read reads the current file's data in order. A lost range is an error
// (*FormatError wrapping ErrDamaged); use NextChunk to salvage around it.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.rd) == 0 {
		c, err := r.NextChunk()
		if err == io.EOF {
			if r.cur != nil && r.rdPos < r.cur.size() {
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

// Manifest returns the manifest once Next has returned io.EOF.
func (r *Reader) Manifest() (*Manifest, error) {
	if r.manifest == nil {
		return nil, ErrNoManifest
	}
	return r.manifest, nil
}

// Damage returns the lost byte ranges found so far; complete once Next has
// returned io.EOF. Every byte of every file the set is known to hold is
// either delivered by NextChunk or in a Loss.
func (r *Reader) Damage() []Loss { return slices.Clone(r.losses) }

// Warnings returns what was found that cost no data by itself (see
// Warning); complete once Next has returned io.EOF. At most 1000 are kept;
// a last one counts the others.
func (r *Reader) Warnings() []Warning {
	w := slices.Clone(r.warnings)
	if r.moreWarnings > 0 {
		w = append(w, Warning{Volume: r.vol, Offset: r.off, What: fmt.Sprintf("%d more warnings", r.moreWarnings), Damage: r.moreDamage})
	}
	return w
}

// Close releases the Reader's decoders.
func (r *Reader) Close() error {
	r.drainAhead()
	r.dec.Close()
	if r.decs != nil {
		for range r.ndecs {
			(<-r.decs).Close()
		}
		r.ndecs = 0
	}
	return nil
}

// growBuffer makes the read buffer hold n bytes: readHeader parses a
// member header in the buffer before it consumes it. The buffer starts at
// RecordSize (a reader per small set must not cost a MiB) and grows only
// for a pax header larger than it, up to maxPaxSize.
func (r *Reader) growBuffer(n int) {
	if r.br.Size() >= n {
		return
	}
	b, _ := r.br.Peek(r.br.Buffered())
	rest := bytes.Clone(b)
	r.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(rest), r.src), n)
}

func (r *Reader) ferr(off int64, member string, err error) *FormatError {
	return &FormatError{Volume: r.vol, Offset: off, Member: member, Err: err}
}

// damage records a damage event (the reason of the losses it causes); in
// strict mode it is fatal.
func (r *Reader) damage(off int64, member string, err error) error {
	fe := r.ferr(off, member, err)
	r.reason = fe.Error()
	if r.opts.Strict {
		return fe
	}
	r.addWarning(Warning{Volume: r.vol, Offset: off, Member: member, What: err.Error(), Damage: true})
	return nil
}

func (r *Reader) warn(off int64, member, file, what string) {
	r.addWarning(Warning{Volume: r.vol, Offset: off, Member: member, File: file, What: what})
}

// maxWarnings bounds the warnings kept (a long damaged region can make
// one per unit); the rest are counted.
const maxWarnings = 1000

func (r *Reader) addWarning(w Warning) {
	if len(r.warnings) < maxWarnings {
		r.warnings = append(r.warnings, w)
		return
	}
	r.moreWarnings++
	r.moreDamage = r.moreDamage || w.Damage
}
