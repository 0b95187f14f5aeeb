// Package codec implements the per-chunk compression units of a tapestream
// backup set: one unit is the chunk metadata (file index, offset, length,
// CRC32C) followed by exactly one frame of a standard codec (zstd, lz4,
// gzip) that the codec's own command line tool decodes while ignoring the
// metadata. The wire layout is specified in ../FORMAT.md.
package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Kind identifies a codec. The numeric values are WIRE CONSTANTS (they are
// stored in every chunk record) and must never change.
type Kind uint8

const (
	None Kind = 0 // WIRE CONSTANT
	Zstd Kind = 1 // WIRE CONSTANT
	LZ4  Kind = 2 // WIRE CONSTANT
	Gzip Kind = 3 // WIRE CONSTANT
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	case LZ4:
		return "lz4"
	case Gzip:
		return "gzip"
	}
	return "codec(" + strconv.Itoa(int(k)) + ")"
}

// Codec is a codec with its compression level.
type Codec struct {
	Kind Kind
	// Level: for zstd a klauspost EncoderLevel (1 fastest .. 4 best); for
	// gzip a flate level (1..9); for lz4 0 (fast) or 1..9 (HC level). 0 means
	// the codec's default.
	Level int
}

// Ext returns the file name extension of the codec's stream (".zst", ".lz4",
// ".gz" or "").
func (c Codec) Ext() string {
	switch c.Kind {
	case Zstd:
		return ".zst"
	case LZ4:
		return ".lz4"
	case Gzip:
		return ".gz"
	}
	return ""
}

// String returns the canonical textual form accepted by ParseCodec.
func (c Codec) String() string {
	if c.Level == 0 || c.Kind == None {
		return c.Kind.String()
	}
	return c.Kind.String() + ":" + strconv.Itoa(c.Level)
}

// Sentinel errors.
var (
	ErrUnknownCodec = errors.New("tapeformat: codec: unknown codec")
	ErrCorrupt      = errors.New("tapeformat: codec: corrupt unit")
	ErrChecksum     = errors.New("tapeformat: codec: CRC32C mismatch")
	ErrTooLarge     = errors.New("tapeformat: codec: unit exceeds size limit")
)

// ParseCodec parses "zstd", "zstd:fastest|default|better|best", "zstd:N"
// (zstd command line level 1..22, mapped to the nearest klauspost level),
// "lz4", "lz4:N", "gzip", "gzip:N" (1..9) and "none".
func ParseCodec(s string) (Codec, error) {
	name, lvl, hasLvl := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	var c Codec
	switch name {
	case "zstd", "zst":
		c.Kind = Zstd
	case "lz4":
		c.Kind = LZ4
	case "gzip", "gz":
		c.Kind = Gzip
	case "none", "":
		c.Kind = None
	default:
		return c, fmt.Errorf("%w: %q", ErrUnknownCodec, s)
	}
	if !hasLvl {
		return c, nil
	}
	if c.Kind == Zstd {
		switch lvl {
		case "fastest":
			c.Level = int(zstd.SpeedFastest)
			return c, nil
		case "default":
			c.Level = int(zstd.SpeedDefault)
			return c, nil
		case "better":
			c.Level = int(zstd.SpeedBetterCompression)
			return c, nil
		case "best":
			c.Level = int(zstd.SpeedBestCompression)
			return c, nil
		}
	}
	n, err := strconv.Atoi(lvl)
	if err != nil || c.Kind == None {
		return c, fmt.Errorf("%w: bad level in %q", ErrUnknownCodec, s)
	}
	switch c.Kind {
	case Zstd:
		if n < 1 || n > 22 {
			return c, fmt.Errorf("%w: zstd level %d out of 1..22", ErrUnknownCodec, n)
		}
		c.Level = int(zstd.EncoderLevelFromZstd(n))
	case Gzip:
		if n < 1 || n > 9 {
			return c, fmt.Errorf("%w: gzip level %d out of 1..9", ErrUnknownCodec, n)
		}
		c.Level = n
	case LZ4:
		if n < 0 || n > 9 {
			return c, fmt.Errorf("%w: lz4 level %d out of 0..9", ErrUnknownCodec, n)
		}
		c.Level = n
	}
	return c, nil
}

// ChunkMeta describes one chunk of a backed-up file.
type ChunkMeta struct {
	FileIndex uint32 // index of the file in the set (0-based, in set order)
	Offset    int64  // offset of the chunk in the file
	Length    uint32 // uncompressed length
	CRC32C    uint32 // CRC-32C (Castagnoli) of the uncompressed bytes
}

// End returns Offset+Length.
func (m ChunkMeta) End() int64 { return m.Offset + int64(m.Length) }

var recordMagic = []byte(RecordMagic)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// UpdateChecksum continues a CRC-32C with b.
func UpdateChecksum(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }

// Chunk record: WIRE CONSTANTS.
const (
	// ChunkRecordLen is the size of the chunk record writers emit
	// (version 2: with the set tag).
	ChunkRecordLen = 44
	// ChunkRecordLenV1 is the size of a version 1 chunk record (format
	// versions 1 and 2): no set tag.
	ChunkRecordLenV1 = 36
	RecordMagic      = "TSCH"     // first 4 bytes of the chunk record
	RecordVer        = 2          // chunk record version written
	SkipMagic        = 0x184D2A5A // zstd/lz4 skippable frame magic used (little endian)
	// FlagStored marks a unit whose codec frame holds the data uncompressed
	// (zstd raw blocks, lz4 uncompressed blocks, deflate stored blocks).
	FlagStored = 1
	// skipPrefix is the skippable frame header (magic + size) before the record.
	skipPrefix = 8
	// gzipPrefix is the gzip header bytes before the record: ID1 ID2 CM FLG
	// MTIME(4) XFL OS XLEN(2) SI1 SI2 LEN(2).
	gzipPrefix = 16
	gzipSI1    = 'T'
	gzipSI2    = 'S'
)

// Header is a parsed chunk record plus the unit geometry.
type Header struct {
	Meta       ChunkMeta
	Kind       Kind
	Flags      uint16
	PayloadLen uint32 // bytes of codec payload after the record (see FORMAT.md)
	UnitLen    int    // total length of the unit
	// Version is the chunk record version: 1 (36 bytes, format versions
	// 1 and 2) or 2 (44 bytes, with SetTag).
	Version int
	// SetTag identifies the set the chunk was written for (version 2
	// records; 0 in version 1). See SetTagOf.
	SetTag uint64
}

func recordLen(version int) int {
	if version == 1 {
		return ChunkRecordLenV1
	}
	return ChunkRecordLen
}

func putRecord(b []byte, k Kind, flags uint16, m ChunkMeta, payload uint32) {
	copy(b[0:4], RecordMagic)
	b[4] = RecordVer
	b[5] = byte(k)
	binary.LittleEndian.PutUint16(b[6:], flags)
	binary.LittleEndian.PutUint32(b[8:], m.FileIndex)
	binary.LittleEndian.PutUint64(b[12:], uint64(m.Offset))
	binary.LittleEndian.PutUint32(b[20:], m.Length)
	binary.LittleEndian.PutUint32(b[24:], payload)
	binary.LittleEndian.PutUint32(b[28:], m.CRC32C)
	binary.LittleEndian.PutUint64(b[32:], 0) // set tag: StampSet
	binary.LittleEndian.PutUint32(b[40:], Checksum(b[:40]))
}

// parseRecord parses a record of n bytes (36: version 1, 44: version 2).
func parseRecord(b []byte, n int) (Header, bool) {
	var h Header
	if len(b) < n || string(b[0:4]) != RecordMagic {
		return h, false
	}
	switch {
	case n == ChunkRecordLenV1 && b[4] == 1:
		if binary.LittleEndian.Uint32(b[32:]) != Checksum(b[:32]) {
			return h, false
		}
	case n == ChunkRecordLen && b[4] == 2:
		if binary.LittleEndian.Uint32(b[40:]) != Checksum(b[:40]) {
			return h, false
		}
		h.SetTag = binary.LittleEndian.Uint64(b[32:])
	default:
		return h, false
	}
	h.Version = int(b[4])
	h.Kind = Kind(b[5])
	h.Flags = binary.LittleEndian.Uint16(b[6:])
	h.Meta.FileIndex = binary.LittleEndian.Uint32(b[8:])
	off := binary.LittleEndian.Uint64(b[12:])
	if off > 1<<62 {
		return h, false
	}
	h.Meta.Offset = int64(off)
	h.Meta.Length = binary.LittleEndian.Uint32(b[20:])
	h.PayloadLen = binary.LittleEndian.Uint32(b[24:])
	h.Meta.CRC32C = binary.LittleEndian.Uint32(b[28:])
	return h, true
}

// PrefixLen is the number of bytes a unit has before its chunk record.
func PrefixLen(k Kind) int {
	if k == Gzip {
		return gzipPrefix
	}
	return skipPrefix
}

// MinHeaderLen is the number of bytes ParseHeader needs.
const MinHeaderLen = gzipPrefix + ChunkRecordLen

// gzipFixed is the fixed part of a unit's gzip header: ID1 ID2 CM=8
// FLG=FEXTRA MTIME=0 XFL=0 OS=255. Writers never vary it, so readers
// check every byte of it.
var gzipFixed = [10]byte{0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255}

// ParseHeader parses the unit starting at b[0]; b must hold the prefix and
// the record (at least PrefixLen+ChunkRecordLen bytes for a version 2
// record; MinHeaderLen always suffices). It validates the record checksum
// and the prefix. Both record versions are accepted.
func ParseHeader(b []byte) (Header, error) {
	if len(b) >= skipPrefix+ChunkRecordLenV1 && binary.LittleEndian.Uint32(b) == SkipMagic {
		n := int(binary.LittleEndian.Uint32(b[4:]))
		if n == ChunkRecordLen || n == ChunkRecordLenV1 {
			if h, ok := parseRecord(b[skipPrefix:], n); ok && (h.Kind == Zstd || h.Kind == LZ4) {
				h.UnitLen = skipPrefix + n + int(h.PayloadLen)
				return h, nil
			}
		}
	}
	if len(b) >= gzipPrefix+ChunkRecordLenV1 && [10]byte(b[:10]) == gzipFixed && b[12] == gzipSI1 && b[13] == gzipSI2 {
		n := int(binary.LittleEndian.Uint16(b[14:]))
		if (n == ChunkRecordLen || n == ChunkRecordLenV1) && int(binary.LittleEndian.Uint16(b[10:])) == 4+n {
			if h, ok := parseRecord(b[gzipPrefix:], n); ok && h.Kind == Gzip {
				h.UnitLen = gzipPrefix + n + int(h.PayloadLen) + 8
				return h, nil
			}
		}
	}
	return Header{}, ErrCorrupt
}

// recordAt returns the offset of the chunk record in a unit.
func recordAt(h Header) int { return PrefixLen(h.Kind) }

// payloadAt returns the offset of the codec payload in a unit.
func payloadAt(h Header) int { return PrefixLen(h.Kind) + recordLen(h.Version) }

// StampSet writes the set tag into the version 2 chunk record of unit and
// updates the record's checksum. Encoders write tag 0; the set writer,
// which knows the set, stamps every unit as it stores it.
func StampSet(unit []byte, tag uint64) error {
	h, err := ParseHeader(unit)
	if err != nil {
		return err
	}
	if h.Version != RecordVer {
		return fmt.Errorf("%w: chunk record version %d cannot carry a set tag", ErrCorrupt, h.Version)
	}
	rec := unit[recordAt(h):]
	binary.LittleEndian.PutUint64(rec[32:], tag)
	binary.LittleEndian.PutUint32(rec[40:], Checksum(rec[:40]))
	return nil
}

// SetTagOf returns the 64-bit set tag of a set id: the first 8 bytes,
// little endian, of the SHA-256 of the id's text. WIRE: stored in every
// version 2 chunk record.
func SetTagOf(setID string) uint64 {
	s := sha256.Sum256([]byte(setID))
	return binary.LittleEndian.Uint64(s[:8])
}

// FindUnit returns the index of the first position in b at which a unit
// with a valid chunk record, or a valid file-info frame, starts, or -1.
// Used to resynchronise after damage.
func FindUnit(b []byte) int {
	u := findMagic(b, recordMagic, func(p int) int {
		for _, pre := range [...]int{skipPrefix, gzipPrefix} {
			if p >= pre {
				if _, err := ParseHeader(b[p-pre:]); err == nil {
					return p - pre
				}
			}
		}
		return -1
	})
	lim := b
	if u >= 0 { // an info frame before u has its magic before u+gzipPrefix
		lim = b[:min(len(b), u+gzipPrefix+len(infoMagic))]
	}
	i := findMagic(lim, infoMagic, func(p int) int {
		for _, pre := range [...]int{skipPrefix, gzipPrefix} {
			if p >= pre {
				if _, _, err := ParseInfo(b[p-pre:]); err == nil && p-pre < len(lim) {
					return p - pre
				}
			}
		}
		return -1
	})
	if u < 0 || i >= 0 && i < u {
		return i
	}
	return u
}

// findMagic returns the first start at(p) >= 0 for an occurrence p of magic.
func findMagic(b, magic []byte, at func(p int) int) int {
	base := 0
	for {
		i := bytes.Index(b[base:], magic)
		if i < 0 {
			return -1
		}
		p := base + i
		if s := at(p); s >= 0 {
			return s
		}
		base = p + 1
	}
}
