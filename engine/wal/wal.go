// Package wal is the transaction log of one storage group: an ESE-style
// sequence of fixed-size log files ("generations") holding opaque records
// that the engine encodes. The record framing follows pebble's record
// package (block-aligned chunks, CRC over type and payload); the file naming,
// headers and generation chain follow ESE.
//
// # Files
//
// The log files of a storage group live in one directory and share a prefix
// E00..E0F. The current (open) generation is always "E00.log"; closed
// generations are "E00XXXXXXXX.log" where XXXXXXXX is the generation in 8
// upper-case hex digits. Generations start at 1. Every file has the same
// fixed size (Options.LogSize, default 1 MiB); the current log is
// preallocated to it, so appends never extend the file.
//
// # File layout (all integers little-endian)
//
//	offset 0                4096                4096+32K            4096+64K        LogSize
//	+-----------------------+-------------------+-------------------+--- ... ---+------+
//	| header block (4 KiB)  | block 0 (32 KiB)  | block 1 (32 KiB)  |           | last |
//	+-----------------------+-------------------+-------------------+--- ... ---+------+
//	                                                          (the last block may be short)
//
//	header block (wire format, HeaderSize bytes):
//	  0  magic        [8]byte  "TSWALLOG"
//	  8  version      uint32   FormatVersion
//	 12  generation   uint32
//	 16  signature    [16]byte storage group signature
//	 32  created      int64    this file's creation time, unix nanoseconds
//	 40  prevCreated  int64    creation time of generation-1 (0 for generation 1)
//	 48  logSize      int64    size of every log file of the group
//	 56  blockSize    uint32   BlockSize
//	 60  prefix       [4]byte  "E00".."E0F", zero padded
//	 64  zero ...
//	4092 crc          uint32   masked CRC-32C of bytes [0, 4092)
//
//	block: a sequence of chunks; a chunk never crosses a block boundary:
//	+----------+-----------+--------+--- ... ---+
//	| CRC (4)  | length(2) | type(1)| payload   |     CRC = masked CRC-32C(type, payload)
//	+----------+-----------+--------+--- ... ---+
//	A block tail shorter than a chunk header (7 bytes) is zero padding; so is
//	a tail shorter than the end-of-generation chunk (15 bytes) directly
//	before that chunk.
//
// A record is one full chunk or a first chunk, zero or more middle chunks
// and a last chunk. A record never spans two files: when it does not fit in
// the rest of the current file (leaving room for the end-of-generation
// chunk), the writer closes the generation first. Closing appends an
// end-of-generation chunk (type ChunkEOG) whose 8-byte payload is the record
// count (uint32) and the end offset of the last record (uint32), then
// fsyncs, renames E00.log to its closed name and starts the next generation.
//
// # Rollover and crashes
//
// Closing generation N: append the end-of-generation chunk and fdatasync
// E00.log; write the header of N+1 to E00.tmp, preallocate, fdatasync;
// rename E00.log → E00<N>.log, SyncDir; rename E00.tmp → E00.log,
// SyncDir. Open/OpenAt repair every intermediate crash state: a leftover
// E00.tmp is removed; a sealed E00.log (marker present) is renamed and the
// next generation started; a missing E00.log after the closed generations
// is re-created as the next generation. The current log is preallocated
// and zero-filled, and OpenAt zeroes everything after the recovered end, so
// a torn tail never resurfaces as records.
//
// # Positions
//
// A Pos {Gen, Off} is a file offset in a generation; it is the LSN of the
// log. Append returns the start and the end of the record; the end of one
// record is not necessarily the start of the next (block padding, rollover).
//
// # Reading
//
// Closed generations are read strictly: any bad chunk, a zero region before
// the end-of-generation chunk, or a missing end-of-generation chunk is an
// error naming the file (LogReadVerifyFailure). The current E00.log is read
// tolerantly: reading stops at the first invalid chunk or zero region (the
// torn tail of a crash, never acknowledged) and the end of the last whole
// record is reported. Scan walks a chain of generations across directories
// and checks the header chain (signature, consecutive generations, previous
// creation time).
//
// # Errors
//
// Problems with log files are reported as *LogError values carrying the
// file, the generation and an ESE-like Code (see the Code constants);
// errors.Is(err, wal.MissingLogFile) works on any error wrapping one.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"regexp"
	"strconv"
)

// Wire-format constants. Changing any of them changes the on-disk format.
const (
	// HeaderSize is the size of the header block at the start of every log
	// file (wire format).
	HeaderSize = 4096
	// BlockSize is the size of the record blocks following the header
	// (wire format).
	BlockSize = 32 << 10
	// ChunkHeaderSize is CRC(4) + length(2) + type(1) (wire format).
	ChunkHeaderSize = 7
	// FormatVersion is the log file format version (wire format).
	FormatVersion = 1

	// Chunk types (wire format). Type 0 is never written: zeroes are not a chunk.
	ChunkFull   = 1
	ChunkFirst  = 2
	ChunkMiddle = 3
	ChunkLast   = 4
	ChunkEOG    = 5 // end of generation: payload records(uint32) | endOff(uint32)

	eogPayloadSize = 8
	eogChunkSize   = ChunkHeaderSize + eogPayloadSize

	// header field offsets (wire format)
	hdrMagic       = 0
	hdrVersion     = 8
	hdrGen         = 12
	hdrSignature   = 16
	hdrCreated     = 32
	hdrPrevCreated = 40
	hdrLogSize     = 48
	hdrBlockSize   = 56
	hdrPrefix      = 60
	hdrCRC         = HeaderSize - 4
)

// magic identifies a tapestream log file (wire format).
var magic = [8]byte{'T', 'S', 'W', 'A', 'L', 'L', 'O', 'G'}

// Size limits of a log file.
const (
	DefaultLogSize = 1 << 20
	MinLogSize     = HeaderSize + 2*BlockSize // 68 KiB
	MaxLogSize     = 1 << 31
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maskCRC is the LevelDB/pebble CRC mask: a CRC of data that embeds CRCs is
// not itself a CRC of the embedded data (wire format).
func maskCRC(c uint32) uint32 { return ((c >> 15) | (c << 17)) + 0xa282ead8 }

func chunkCRC(typ byte, payload []byte) uint32 {
	c := crc32.Update(0, crcTable, []byte{typ})
	return maskCRC(crc32.Update(c, crcTable, payload))
}

// Pos is a position in the log: generation and file offset. The zero Pos is
// before everything. Pos is comparable.
type Pos struct {
	Gen uint32
	Off uint32
}

// Less reports whether p is before q.
func (p Pos) Less(q Pos) bool {
	if p.Gen != q.Gen {
		return p.Gen < q.Gen
	}
	return p.Off < q.Off
}

// IsZero reports whether p is the zero Pos.
func (p Pos) IsZero() bool { return p == Pos{} }

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Gen, p.Off) }

// Code is an ESE-like error code of a log problem. A Code is an error, so
// errors.Is(err, wal.MissingLogFile) matches any *LogError with that code.
type Code int

// Log error codes (values are those of the ESE JET_err constants).
const (
	// LogFileCorrupt: a header is unreadable (bad magic or CRC) or a file
	// is malformed (e.g. shorter than its header says).
	LogFileCorrupt Code = -501
	// LogWriteFail: an I/O error while writing the log; the Writer is
	// unusable (sticky) and the engine must reopen and recover.
	LogWriteFail Code = -510
	// LogGenerationMismatch: the generation in a header is not the one its
	// file name says.
	LogGenerationMismatch Code = -513
	// BadLogVersion: unknown log format version.
	BadLogVersion Code = -514
	// InvalidLogSequence: the chain is broken: a generation's previous
	// creation time is not the creation time of the generation before it
	// (a replaced or reordered log), or generations are not consecutive.
	InvalidLogSequence Code = -515
	// MissingLogFile: a generation needed to continue the sequence is
	// missing (a gap); Gen and File name the missing generation.
	MissingLogFile Code = -528
	// BadLogSignature: the log belongs to another storage group.
	BadLogSignature Code = -530
	// LogFileSizeMismatch: the file size is not the group's log size.
	LogFileSizeMismatch Code = -541
	// LogReadVerifyFailure: a checksum mismatch, torn data, a zero region or
	// a missing end-of-generation marker in a closed generation.
	LogReadVerifyFailure Code = -612
)

var codeNames = map[Code]string{
	LogFileCorrupt:        "LogFileCorrupt",
	LogWriteFail:          "LogWriteFail",
	LogGenerationMismatch: "LogGenerationMismatch",
	BadLogVersion:         "BadLogVersion",
	InvalidLogSequence:    "InvalidLogSequence",
	MissingLogFile:        "MissingLogFile",
	BadLogSignature:       "BadLogSignature",
	LogFileSizeMismatch:   "LogFileSizeMismatch",
	LogReadVerifyFailure:  "LogReadVerifyFailure",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return fmt.Sprintf("JET_err%s (%d)", n, int(c))
	}
	return fmt.Sprintf("JET_err(%d)", int(c))
}

func (c Code) Error() string { return "wal: " + c.String() }

// LogError is a problem with one log file.
type LogError struct {
	Code Code
	Gen  uint32 // generation concerned (0 if unknown)
	File string // path of the file concerned (for MissingLogFile: the expected path)
	Off  int64  // file offset of the problem, -1 if not applicable
	Msg  string
	Err  error // underlying error, if any
}

func (e *LogError) Error() string {
	s := fmt.Sprintf("wal: %s", e.Code)
	if e.File != "" {
		s += ": " + e.File
	}
	if e.Gen != 0 {
		s += fmt.Sprintf(" (generation %d, 0x%X)", e.Gen, e.Gen)
	}
	if e.Off >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Off)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *LogError) Unwrap() error { return e.Err }

// Is reports whether target is e's Code.
func (e *LogError) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

func logErr(code Code, gen uint32, file string, off int64, err error, format string, args ...any) *LogError {
	return &LogError{Code: code, Gen: gen, File: file, Off: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

// Errors that are not about a log file.
var (
	ErrRecordTooLarge = errors.New("wal: record larger than the log file can hold")
	ErrClosed         = errors.New("wal: writer closed")
	ErrBadPos         = errors.New("wal: position is not in the log")
)

// Header is the decoded header block of a log file.
type Header struct {
	Version     uint32
	Gen         uint32
	Signature   [16]byte
	Created     int64 // unix nanoseconds
	PrevCreated int64 // creation time of generation Gen-1; 0 for generation 1
	LogSize     int64
	BlockSize   uint32
	Prefix      string
}

func (h *Header) encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b[hdrMagic:], magic[:])
	binary.LittleEndian.PutUint32(b[hdrVersion:], h.Version)
	binary.LittleEndian.PutUint32(b[hdrGen:], h.Gen)
	copy(b[hdrSignature:], h.Signature[:])
	binary.LittleEndian.PutUint64(b[hdrCreated:], uint64(h.Created))
	binary.LittleEndian.PutUint64(b[hdrPrevCreated:], uint64(h.PrevCreated))
	binary.LittleEndian.PutUint64(b[hdrLogSize:], uint64(h.LogSize))
	binary.LittleEndian.PutUint32(b[hdrBlockSize:], h.BlockSize)
	copy(b[hdrPrefix:hdrPrefix+4], h.Prefix)
	binary.LittleEndian.PutUint32(b[hdrCRC:], maskCRC(crc32.Checksum(b[:hdrCRC], crcTable)))
	return b
}

// decodeHeader parses and validates a header block; file is for errors.
func decodeHeader(b []byte, file string) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, logErr(LogFileCorrupt, 0, file, -1, nil, "file shorter than its header (%d bytes)", len(b))
	}
	if [8]byte(b[:8]) != magic {
		return h, logErr(LogFileCorrupt, 0, file, 0, nil, "not a log file (bad magic)")
	}
	if got, want := binary.LittleEndian.Uint32(b[hdrCRC:]), maskCRC(crc32.Checksum(b[:hdrCRC], crcTable)); got != want {
		return h, logErr(LogFileCorrupt, 0, file, 0, nil, "header checksum mismatch")
	}
	h.Version = binary.LittleEndian.Uint32(b[hdrVersion:])
	h.Gen = binary.LittleEndian.Uint32(b[hdrGen:])
	copy(h.Signature[:], b[hdrSignature:])
	h.Created = int64(binary.LittleEndian.Uint64(b[hdrCreated:]))
	h.PrevCreated = int64(binary.LittleEndian.Uint64(b[hdrPrevCreated:]))
	h.LogSize = int64(binary.LittleEndian.Uint64(b[hdrLogSize:]))
	h.BlockSize = binary.LittleEndian.Uint32(b[hdrBlockSize:])
	p := b[hdrPrefix : hdrPrefix+4]
	n := 0
	for n < len(p) && p[n] != 0 {
		n++
	}
	h.Prefix = string(p[:n])
	if h.Version != FormatVersion {
		return h, logErr(BadLogVersion, h.Gen, file, 0, nil, "format version %d, want %d", h.Version, FormatVersion)
	}
	if h.BlockSize != BlockSize || h.LogSize < MinLogSize || h.LogSize > MaxLogSize || h.Gen == 0 || !ValidPrefix(h.Prefix) {
		return h, logErr(LogFileCorrupt, h.Gen, file, 0, nil, "invalid header (gen %d, log size %d, block size %d, prefix %q)", h.Gen, h.LogSize, h.BlockSize, h.Prefix)
	}
	return h, nil
}

var prefixRE = regexp.MustCompile(`^E0[0-9A-F]$`)

// ValidPrefix reports whether prefix is a log prefix E00..E0F.
func ValidPrefix(prefix string) bool { return prefixRE.MatchString(prefix) }

// CurrentName returns the name of the current log file, e.g. "E00.log".
func CurrentName(prefix string) string { return prefix + ".log" }

// GenName returns the name of closed generation gen, e.g. "E000000001A.log".
func GenName(prefix string, gen uint32) string { return fmt.Sprintf("%s%08X.log", prefix, gen) }

// ParseGenName parses a closed generation's file name (no directory).
func ParseGenName(prefix, name string) (gen uint32, ok bool) {
	if len(name) != len(prefix)+8+4 || name[:len(prefix)] != prefix || name[len(name)-4:] != ".log" {
		return 0, false
	}
	hex := name[len(prefix) : len(prefix)+8]
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || v == 0 {
		return 0, false
	}
	return uint32(v), true
}

func tmpName(prefix string) string { return prefix + ".tmp" }

func genPath(dir, prefix string, gen uint32) string {
	return filepath.Join(dir, GenName(prefix, gen))
}

// blockEnd returns the end of the block containing off (off >= HeaderSize).
func blockEnd(off, logSize int64) int64 {
	e := HeaderSize + ((off-HeaderSize)/BlockSize+1)*BlockSize
	if e > logSize {
		e = logSize
	}
	return e
}

// recordEnd returns where a record of n payload bytes written at off ends,
// or -1 if it does not fit before logSize. It mirrors the writer's encoding.
func recordEnd(off int64, n int, logSize int64) int64 {
	for {
		if off >= logSize {
			return -1
		}
		be := blockEnd(off, logSize)
		if be-off < ChunkHeaderSize {
			off = be
			continue
		}
		take := min(int64(n), be-off-ChunkHeaderSize)
		off += ChunkHeaderSize + take
		n -= int(take)
		if n == 0 {
			return off
		}
	}
}

// eogEnd returns where the end-of-generation chunk written at off ends, or
// -1 if it does not fit.
func eogEnd(off, logSize int64) int64 {
	if off >= logSize {
		return -1
	}
	if be := blockEnd(off, logSize); be-off < eogChunkSize {
		off = be
	}
	if off+eogChunkSize > logSize {
		return -1
	}
	return off + eogChunkSize
}

// fits reports whether a record of n bytes at off leaves room for the
// end-of-generation chunk.
func fits(off int64, n int, logSize int64) bool {
	e := recordEnd(off, n, logSize)
	return e >= 0 && eogEnd(e, logSize) >= 0
}

// MaxRecordSize returns the largest record payload a log file of logSize
// bytes can hold.
func MaxRecordSize(logSize int64) int {
	lo, hi := 0, int(logSize) // fits(lo) is true, fits(hi) false
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fits(HeaderSize, mid, logSize) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

func checkLogSize(n int64) error {
	if n < MinLogSize || n > MaxLogSize || n%4096 != 0 {
		return fmt.Errorf("wal: log size %d: must be a multiple of 4096 in [%d, %d]", n, MinLogSize, MaxLogSize)
	}
	return nil
}
