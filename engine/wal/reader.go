package wal

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/tapestream/tapestream/engine/vfs"
)

// GenInfo describes one generation as read or verified.
type GenInfo struct {
	Header   Header
	File     string
	Records  int   // whole records read
	Bytes    int64 // their payload bytes
	End      Pos   // end of the last whole record ({Gen, HeaderSize} if none)
	Complete bool  // the generation ends with its end-of-generation marker
	// Torn is set by a tolerant read of the current log that stopped at
	// invalid data (as opposed to a clean zero region): the unacknowledged
	// tail of a crash.
	Torn bool
}

// RecordFunc receives a record's payload and its start and end positions.
// rec is only valid during the call. A non-nil error stops the read and is
// returned as is.
type RecordFunc func(rec []byte, start, end Pos) error

// parser decodes the chunk stream of one file, block by block. It is shared
// by the file readers and the StreamVerifier.
type parser struct {
	file    string
	strict  bool
	fn      RecordFunc
	info    *GenInfo
	rec     []byte
	inRec   bool
	recLen  int64
	start   int64
	lastEnd int64
	done    bool
	// eogPad: the previous block ended with zero padding that only the
	// end-of-generation chunk may follow.
	eogPad bool
}

func newParser(file string, h Header, strict bool, fn RecordFunc, info *GenInfo) *parser {
	info.Header = h
	info.File = file
	info.End = Pos{h.Gen, HeaderSize}
	return &parser{file: file, strict: strict, fn: fn, info: info, lastEnd: HeaderSize}
}

// bad handles invalid data at off: an error when strict, the end of the
// log when tolerant.
func (p *parser) bad(off int64, torn bool, msg string) error {
	if p.strict {
		return logErr(LogReadVerifyFailure, p.info.Header.Gen, p.file, off, nil, "%s", msg)
	}
	p.done = true
	p.info.Torn = torn
	return nil
}

// block parses the block at file offset boff of nominal length blen; data
// holds its bytes and is shorter than blen only at the end of the file.
func (p *parser) block(data []byte, boff int64, blen int) error {
	gen := p.info.Header.Gen
	pos := 0
	for !p.done {
		rem := blen - pos
		if rem < ChunkHeaderSize {
			return nil // block tail padding
		}
		off := boff + int64(pos)
		if pos+ChunkHeaderSize > len(data) {
			return p.bad(off, true, "unexpected end of file")
		}
		h := data[pos : pos+ChunkHeaderSize]
		crc := binary.LittleEndian.Uint32(h[0:4])
		length := int(binary.LittleEndian.Uint16(h[4:6]))
		typ := h[6]
		if crc == 0 && length == 0 && typ == 0 {
			if rem < eogChunkSize && !p.eogPad {
				// Padding before an end-of-generation chunk, which must
				// start the next block (else a lost short record at
				// this block's tail would go unnoticed).
				p.eogPad = true
				return nil
			}
			return p.bad(off, false, "zero region before the end-of-generation marker")
		}
		if typ < ChunkFull || typ > ChunkEOG {
			return p.bad(off, true, "invalid chunk type")
		}
		if ChunkHeaderSize+length > rem {
			return p.bad(off, true, "chunk crosses a block boundary")
		}
		if pos+ChunkHeaderSize+length > len(data) {
			return p.bad(off, true, "unexpected end of file")
		}
		payload := data[pos+ChunkHeaderSize : pos+ChunkHeaderSize+length]
		if chunkCRC(typ, payload) != crc {
			return p.bad(off, true, "chunk checksum mismatch")
		}
		if p.eogPad && typ != ChunkEOG {
			return p.bad(off, true, "zero padding not followed by the end-of-generation marker")
		}
		pos += ChunkHeaderSize + length
		end := boff + int64(pos)
		switch typ {
		case ChunkFull, ChunkFirst:
			if p.inRec {
				return p.bad(off, true, "record not terminated")
			}
			p.inRec, p.start, p.recLen, p.rec = true, off, 0, p.rec[:0]
		case ChunkMiddle, ChunkLast:
			if !p.inRec {
				return p.bad(off, true, "chunk without a first chunk")
			}
		case ChunkEOG:
			if p.inRec {
				return p.bad(off, true, "record not terminated before the end-of-generation marker")
			}
			if length != eogPayloadSize {
				return p.bad(off, true, "bad end-of-generation marker")
			}
			n := binary.LittleEndian.Uint32(payload[0:4])
			e := binary.LittleEndian.Uint32(payload[4:8])
			if int(n) != p.info.Records || int64(e) != p.lastEnd {
				return logErr(LogFileCorrupt, gen, p.file, off, nil,
					"end-of-generation marker says %d records ending at %d, the log has %d ending at %d",
					n, e, p.info.Records, p.lastEnd)
			}
			p.info.Complete = true
			p.done = true
			return nil
		}
		p.recLen += int64(length)
		if p.fn != nil {
			p.rec = append(p.rec, payload...)
		}
		if typ == ChunkFull || typ == ChunkLast {
			p.inRec = false
			p.lastEnd = end
			p.info.Records++
			p.info.Bytes += p.recLen
			p.info.End = Pos{gen, uint32(end)}
			if p.fn != nil {
				if err := p.fn(p.rec, Pos{gen, uint32(p.start)}, Pos{gen, uint32(end)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// finish is called at the end of the file.
func (p *parser) finish() error {
	if p.strict && !p.info.Complete {
		return logErr(LogReadVerifyFailure, p.info.Header.Gen, p.file, -1, nil, "missing end-of-generation marker")
	}
	return nil
}

// ReadHeader reads and validates the header of the log file at path.
func ReadHeader(fsys vfs.FS, path string) (Header, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return readHeader(f, path)
}

func readHeader(f vfs.File, path string) (Header, error) {
	b := make([]byte, HeaderSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !(err == io.EOF) {
		return Header{}, logErr(LogFileCorrupt, 0, path, 0, err, "reading header")
	}
	return decodeHeader(b[:n], path)
}

// readFile reads one log file. check (optional) vets the header before any
// record is read. Strict reads require the end-of-generation marker and the
// full file size.
func readFile(fsys vfs.FS, path string, strict bool, check func(Header) error, fn RecordFunc) (GenInfo, error) {
	var info GenInfo
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return info, err
	}
	defer f.Close()
	h, err := readHeader(f, path)
	if err != nil {
		return info, err
	}
	info.Header, info.File, info.End = h, path, Pos{h.Gen, HeaderSize}
	if check != nil {
		if err := check(h); err != nil {
			return info, err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return info, err
	}
	size := fi.Size()
	if strict && size != h.LogSize {
		return info, logErr(LogFileSizeMismatch, h.Gen, path, -1, nil, "file size %d, header says %d", size, h.LogSize)
	}
	p := newParser(path, h, strict, fn, &info)
	buf := make([]byte, BlockSize)
	for off := int64(HeaderSize); off < h.LogSize && !p.done; {
		be := blockEnd(off, h.LogSize)
		blen := int(be - off)
		n := 0
		if off < size {
			n, err = f.ReadAt(buf[:blen], off)
			if err != nil && err != io.EOF {
				return info, logErr(LogReadVerifyFailure, h.Gen, path, off, err, "read failed")
			}
		}
		if err := p.block(buf[:n], off, blen); err != nil {
			return info, err
		}
		off = be
	}
	return info, p.finish()
}

var currentRE = regexp.MustCompile(`^E0[0-9A-F]\.log$`)

// VerifyGeneration reads the whole log file at path and checks every chunk,
// like eseutil /ml. A closed generation (E00XXXXXXXX.log) is checked
// strictly and its header generation must match its name; a current log
// (E00.log) is read tolerantly (GenInfo.End is its valid end).
func VerifyGeneration(fsys vfs.FS, path string) (GenInfo, error) {
	base := filepath.Base(path)
	if currentRE.MatchString(base) {
		return readFile(fsys, path, false, nil, nil)
	}
	var check func(Header) error
	if len(base) == 3+8+4 {
		if gen, ok := ParseGenName(base[:3], base); ok {
			check = func(h Header) error {
				if h.Gen != gen {
					return logErr(LogGenerationMismatch, gen, path, 0, nil, "header generation is %d", h.Gen)
				}
				return nil
			}
		}
	}
	return readFile(fsys, path, true, check, nil)
}

// ListGenerations lists the closed generations in dir (ascending) and
// whether the current log exists.
func ListGenerations(fsys vfs.FS, dir, prefix string) (closed []uint32, hasCurrent bool, err error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if e.Name() == CurrentName(prefix) {
			hasCurrent = true
		} else if g, ok := ParseGenName(prefix, e.Name()); ok {
			closed = append(closed, g)
		}
	}
	sort.Slice(closed, func(i, j int) bool { return closed[i] < closed[j] })
	return closed, hasCurrent, nil
}

// ReadGeneration reads generation gen of the log in dir: the closed file
// E00XXXXXXXX.log strictly if it exists, else E00.log tolerantly if its
// header has generation gen. fn may be nil. If neither exists the error is
// a *LogError MissingLogFile naming the generation.
func ReadGeneration(fsys vfs.FS, dir, prefix string, gen uint32, fn RecordFunc) (GenInfo, error) {
	path := genPath(dir, prefix, gen)
	if _, err := fsys.Stat(path); err == nil {
		return readFile(fsys, path, true, func(h Header) error {
			if h.Gen != gen {
				return logErr(LogGenerationMismatch, gen, path, 0, nil, "header generation is %d", h.Gen)
			}
			return nil
		}, fn)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return GenInfo{}, err
	}
	cur := filepath.Join(dir, CurrentName(prefix))
	h, err := ReadHeader(fsys, cur)
	if err == nil && h.Gen == gen {
		return readFile(fsys, cur, false, nil, fn)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return GenInfo{}, err
	}
	return GenInfo{}, logErr(MissingLogFile, gen, path, -1, nil, "log generation not found")
}

// ScanOptions configures Scan.
type ScanOptions struct {
	// Dirs are searched in order for each generation (e.g. a restore's
	// temporary log directory, then the storage group's log directory).
	Dirs   []string
	Prefix string // default "E00"
	// Signature is the storage group's signature; the zero value accepts
	// the signature of the first generation read (and requires the others
	// to have it).
	Signature [16]byte
	// FromGen is the first generation to read (e.g. the checkpoint's); 0
	// means the lowest generation present. A missing FromGen is an error.
	FromGen uint32
	// ToGen, if not 0, is the last generation to read; it must exist. If 0
	// the scan goes on through the current log.
	ToGen uint32
}

// ScanResult is what Scan read.
type ScanResult struct {
	Gens []GenInfo
	// End is the end of the last whole record read (zero if nothing was
	// read): the position to pass to OpenAt after replaying.
	End Pos
	// Current reports that the last generation read was a current log
	// (E00.log, read tolerantly).
	Current bool
}

type curLog struct {
	path string
	hdr  Header
}

// Scan reads the generations FromGen, FromGen+1, ... of a log stream, the
// closed files first, then the current E00.log, calling fn (may be nil) for
// every record in order. It checks the header chain: every header carries
// the expected signature (BadLogSignature), generations are consecutive
// (MissingLogFile names the gap) and each header's previous creation time
// is the creation time of the header before it (InvalidLogSequence).
// Closed generations are read strictly, the current log tolerantly.
func Scan(fsys vfs.FS, opts ScanOptions, fn RecordFunc) (ScanResult, error) {
	var res ScanResult
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "E00"
	}
	if len(opts.Dirs) == 0 {
		return res, errors.New("wal: Scan: no directories")
	}
	closed := map[uint32]string{}
	var maxClosed uint32
	var currents []curLog
	for _, dir := range opts.Dirs {
		gens, hasCur, err := ListGenerations(fsys, dir, prefix)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return res, err
		}
		for _, g := range gens {
			if _, ok := closed[g]; !ok {
				closed[g] = genPath(dir, prefix, g)
			}
			maxClosed = max(maxClosed, g)
		}
		if hasCur {
			p := filepath.Join(dir, CurrentName(prefix))
			h, err := ReadHeader(fsys, p)
			if err != nil {
				return res, err
			}
			currents = append(currents, curLog{p, h})
		}
	}
	g := opts.FromGen
	if g == 0 {
		for c := range closed {
			if g == 0 || c < g {
				g = c
			}
		}
		for _, c := range currents {
			if g == 0 || c.hdr.Gen < g {
				g = c.hdr.Gen
			}
		}
		if g == 0 {
			return res, nil // no log at all
		}
	}
	sig, haveSig := opts.Signature, opts.Signature != [16]byte{}
	var prev *Header
	var lastGen uint32
	missingPath := func(g uint32) string { return genPath(opts.Dirs[0], prefix, g) }
	for ; opts.ToGen == 0 || g <= opts.ToGen; g++ {
		path, isClosed := closed[g]
		var cur *curLog
		if !isClosed {
			for i := range currents {
				if currents[i].hdr.Gen == g {
					cur = &currents[i]
					break
				}
			}
		}
		if !isClosed && cur == nil {
			needed := g <= maxClosed || (opts.ToGen != 0 && g <= opts.ToGen) || len(res.Gens) == 0
			for _, c := range currents {
				if c.hdr.Gen > g {
					needed = true
				}
			}
			if needed {
				return res, logErr(MissingLogFile, g, missingPath(g), -1, nil, "log generation missing from the sequence")
			}
			break
		}
		if cur != nil {
			path = cur.path
		}
		want := g
		check := func(h Header) error {
			if h.Gen != want {
				return logErr(LogGenerationMismatch, want, path, 0, nil, "header generation is %d", h.Gen)
			}
			if !haveSig {
				sig, haveSig = h.Signature, true
			} else if h.Signature != sig {
				return logErr(BadLogSignature, h.Gen, path, 0, nil, "log belongs to another storage group (signature %x, want %x)", h.Signature, sig)
			}
			if prev != nil {
				// PrevCreated 0 on a generation > 1: started by OpenAt
				// without access to its predecessor (see OpenAt).
				if h.PrevCreated != prev.Created && h.PrevCreated != 0 {
					return logErr(InvalidLogSequence, h.Gen, path, 0, nil,
						"previous generation's creation time is %d, generation %d was created at %d (replaced or reordered log)",
						h.PrevCreated, prev.Gen, prev.Created)
				}
				if h.LogSize != prev.LogSize {
					return logErr(LogFileSizeMismatch, h.Gen, path, 0, nil, "log size %d, previous generation has %d", h.LogSize, prev.LogSize)
				}
			}
			return nil
		}
		info, err := readFile(fsys, path, cur == nil, check, fn)
		if err != nil {
			return res, err
		}
		h := info.Header
		prev = &h
		res.Gens = append(res.Gens, info)
		res.End = info.End
		lastGen = g
		if cur != nil {
			res.Current = true
			break
		}
	}
	if opts.ToGen != 0 && lastGen < opts.ToGen {
		return res, logErr(MissingLogFile, lastGen+1, missingPath(lastGen+1), -1, nil, "log generation missing from the sequence")
	}
	if opts.ToGen == 0 && !res.Current {
		for _, c := range currents {
			if c.hdr.Gen < g {
				return res, logErr(InvalidLogSequence, c.hdr.Gen, c.path, -1, nil, "current log is generation %d but the sequence reached generation %d", c.hdr.Gen, g-1)
			}
		}
	}
	return res, nil
}

// StreamVerifier checks the bytes of one closed log file as they arrive (as
// the backup reads a log through a chunked API). Write never keeps more than
// one block; it returns the first problem found. Finish reports the result.
type StreamVerifier struct {
	name    string
	sig     [16]byte
	buf     []byte
	off     int64 // file offset of buf[0] once the header is parsed
	total   int64
	haveHdr bool
	p       *parser
	info    GenInfo
	err     error
}

// NewStreamVerifier returns a verifier of one closed generation's bytes.
// A non-zero expectSig must equal the header's signature (BadLogSignature).
func NewStreamVerifier(expectSig [16]byte) *StreamVerifier {
	return &StreamVerifier{sig: expectSig, name: "(stream)"}
}

// SetName sets the file name used in errors.
func (v *StreamVerifier) SetName(name string) { v.name = name }

// Write consumes the next bytes of the file.
func (v *StreamVerifier) Write(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n := len(b)
	v.total += int64(n)
	for len(b) > 0 {
		if !v.haveHdr {
			take := min(len(b), HeaderSize-len(v.buf))
			v.buf = append(v.buf, b[:take]...)
			b = b[take:]
			if len(v.buf) < HeaderSize {
				continue
			}
			h, err := decodeHeader(v.buf, v.name)
			if err == nil && v.sig != [16]byte{} && h.Signature != v.sig {
				err = logErr(BadLogSignature, h.Gen, v.name, 0, nil, "log belongs to another storage group")
			}
			if err != nil {
				v.err = err
				return 0, err
			}
			v.haveHdr = true
			v.p = newParser(v.name, h, true, nil, &v.info)
			v.off = HeaderSize
			v.buf = make([]byte, 0, BlockSize)
			continue
		}
		h := v.info.Header
		if v.off >= h.LogSize {
			v.err = logErr(LogFileSizeMismatch, h.Gen, v.name, -1, nil, "more bytes than the log size %d", h.LogSize)
			return 0, v.err
		}
		blen := int(blockEnd(v.off, h.LogSize) - v.off)
		if v.p.done { // after the marker: only count
			take := min(len(b), blen-len(v.buf))
			v.buf = v.buf[:len(v.buf)+take]
			b = b[take:]
		} else if len(v.buf) == 0 && len(b) >= blen {
			if err := v.p.block(b[:blen], v.off, blen); err != nil {
				v.err = err
				return 0, err
			}
			b = b[blen:]
			v.off += int64(blen)
			continue
		} else {
			take := min(len(b), blen-len(v.buf))
			v.buf = append(v.buf, b[:take]...)
			b = b[take:]
			if len(v.buf) == blen {
				if err := v.p.block(v.buf, v.off, blen); err != nil {
					v.err = err
					return 0, err
				}
			}
		}
		if len(v.buf) == blen {
			v.off += int64(blen)
			v.buf = v.buf[:0]
		}
	}
	return n, nil
}

// Finish checks that the whole file arrived and ended with its
// end-of-generation marker.
func (v *StreamVerifier) Finish() (GenInfo, error) {
	if v.err != nil {
		return v.info, v.err
	}
	if !v.haveHdr {
		return v.info, logErr(LogFileCorrupt, 0, v.name, -1, nil, "file shorter than its header (%d bytes)", v.total)
	}
	h := v.info.Header
	if v.total != h.LogSize {
		return v.info, logErr(LogFileSizeMismatch, h.Gen, v.name, -1, nil, "file size %d, header says %d", v.total, h.LogSize)
	}
	if err := v.p.finish(); err != nil {
		return v.info, err
	}
	return v.info, nil
}
