package codec

import (
	"encoding/binary"
	"fmt"
)

// File-info frames carry a description of the file (and of its set) at
// the start of its data, where the codec's command line tool skips it:
// zstd and lz4 skip skippable frames, gzip decodes an empty member. The
// description is opaque here (the set format's JSON); the frame gives it
// a checksum. WIRE (FORMAT.md, "File-info frame").
//
//	payload: "TSFI" | version 1 | 3 zero bytes | length L (4, LE) |
//	         CRC-32C (4, LE) of bytes 0..11 and of the L bytes | L bytes
//
//	zstd, lz4: 0x184D2A5A LE | 16+L LE | payload
//	gzip:      1f 8b 08 04 00000000 00 ff | XLEN=4+16+L | 'T' 'I' | 16+L |
//	           payload | 03 00 (empty final fixed-Huffman block) |
//	           CRC32 = 0 | ISIZE = 0
const (
	InfoMagic     = "TSFI"
	infoVersion   = 1
	infoHeaderLen = 16
	// MaxInfoLen is the largest description a file-info frame carries
	// (the gzip extra field holds at most 65535 bytes).
	MaxInfoLen  = 65535 - 4 - infoHeaderLen
	gzipInfoSI2 = 'I'
)

var infoMagic = []byte(InfoMagic)

// emptyDeflate is a final fixed-Huffman block holding only the end of
// block code: the shortest deflate stream, decoding to nothing.
var emptyDeflate = [2]byte{0x03, 0x00}

// AppendInfo appends to dst a file-info frame of codec k holding info.
// Codec none has no data stream to put it in; it panics for it and for
// info longer than MaxInfoLen.
func AppendInfo(dst []byte, k Kind, info []byte) []byte {
	if len(info) > MaxInfoLen || k == None {
		panic("tapeformat: codec: file-info frame too large or codec none")
	}
	n := infoHeaderLen + len(info)
	switch k {
	case Zstd, LZ4:
		dst = binary.LittleEndian.AppendUint32(dst, SkipMagic)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	case Gzip:
		dst = append(dst, gzipFixed[:]...)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(4+n))
		dst = append(dst, gzipSI1, gzipInfoSI2)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(n))
	default:
		panic("tapeformat: codec: unknown codec")
	}
	h := len(dst)
	dst = append(dst, InfoMagic...)
	dst = append(dst, infoVersion, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(info)))
	crc := UpdateChecksum(Checksum(dst[h:h+12]), info)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	dst = append(dst, info...)
	if k == Gzip {
		dst = append(dst, emptyDeflate[:]...)
		dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // CRC32 and ISIZE of nothing
	}
	return dst
}

// ParseInfo parses the file-info frame at the start of b: it returns the
// description and the frame's length. The checksum, the framing and (for
// gzip) the empty body are checked. When b holds only the start of what
// its framing says is a longer frame, err wraps ErrCorrupt and n is that
// length (> len(b)), so that a frame cut at a tear is told from damage.
func ParseInfo(b []byte) (info []byte, n int, err error) {
	var p, size, end int // payload start and size, frame end
	switch {
	case len(b) >= 8+infoHeaderLen && binary.LittleEndian.Uint32(b) == SkipMagic &&
		string(b[8:12]) == InfoMagic:
		size = int(binary.LittleEndian.Uint32(b[4:]))
		if size < infoHeaderLen || size > infoHeaderLen+MaxInfoLen {
			return nil, 0, ErrCorrupt
		}
		p, end = 8, 8+size
	case len(b) >= gzipPrefix+infoHeaderLen && [10]byte(b[:10]) == gzipFixed && b[12] == gzipSI1 && b[13] == gzipInfoSI2:
		size = int(binary.LittleEndian.Uint16(b[14:]))
		if int(binary.LittleEndian.Uint16(b[10:])) != 4+size || size < infoHeaderLen {
			return nil, 0, ErrCorrupt
		}
		p, end = gzipPrefix, gzipPrefix+size+len(emptyDeflate)+8
	default:
		return nil, 0, ErrCorrupt
	}
	if end > len(b) {
		// only the start of a frame: n says how long it is
		return nil, end, fmt.Errorf("%w: file-info frame of %d bytes cut after %d", ErrCorrupt, end, len(b))
	}
	if string(b[p:p+4]) != InfoMagic || b[p+4] != infoVersion || b[p+5]|b[p+6]|b[p+7] != 0 {
		return nil, 0, ErrCorrupt
	}
	if int(binary.LittleEndian.Uint32(b[p+8:])) != size-infoHeaderLen {
		return nil, 0, ErrCorrupt
	}
	info = b[p+infoHeaderLen : p+size]
	if p == gzipPrefix { // gzip: the body must be the empty stream
		t := b[p+size : end]
		if [2]byte(t[:2]) != emptyDeflate || binary.LittleEndian.Uint64(t[2:]) != 0 {
			return nil, 0, ErrCorrupt
		}
	}
	if UpdateChecksum(Checksum(b[p:p+12]), info) != binary.LittleEndian.Uint32(b[p+12:]) {
		return nil, 0, fmt.Errorf("%w: file-info checksum", ErrCorrupt)
	}
	return info, end, nil
}
