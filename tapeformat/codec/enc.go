package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxFrameSize is the largest chunk (uncompressed) a unit may carry.
// WIRE LIMIT: readers reject larger chunks.
const MaxFrameSize = 16 << 20

// zstdRawBlock is the maximum zstd block size (128 KiB).
const zstdRawBlock = 128 << 10

// Encoder encodes chunks into units. It keeps its compressor state between
// calls; it is NOT safe for concurrent use (use one per goroutine).
type Encoder struct {
	c        Codec
	zenc     *zstd.Encoder
	lz4Hdr   []byte // LZ4 frame header (magic, FLG, BD, HC) of every unit
	lz4Block int    // LZ4 block maximum size
	lz4c     interface {
		CompressBlock(src, dst []byte) (int, error)
	}
	fw       *flate.Writer
	fstore   *flate.Writer
	buf      appendWriter
	maxFrame int
}

type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

// NewEncoder returns an encoder for chunks of at most frameSize bytes.
func NewEncoder(c Codec, frameSize int) (*Encoder, error) {
	if frameSize <= 0 || frameSize > MaxFrameSize {
		return nil, fmt.Errorf("tapeformat: codec: frame size %d out of range 1..%d", frameSize, MaxFrameSize)
	}
	e := &Encoder{c: c, maxFrame: frameSize}
	switch c.Kind {
	case None:
	case Zstd:
		lvl := zstd.EncoderLevel(c.Level)
		if c.Level == 0 {
			lvl = zstd.SpeedFastest
		}
		win := 1 << 10
		for win < frameSize && win < 8<<20 {
			win <<= 1
		}
		var err error
		e.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(win), zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, err
		}
	case LZ4:
		bs := lz4.Block4Mb
		switch {
		case frameSize <= 64<<10:
			bs = lz4.Block64Kb
		case frameSize <= 256<<10:
			bs = lz4.Block256Kb
		case frameSize <= 1<<20:
			bs = lz4.Block1Mb
		}
		// Units are built here from lz4 blocks: through lz4.Writer every
		// chunk was copied into its block buffer and hashed with XXH32
		// again, though the chunk record's CRC-32C covers the content
		// (without both, an lz4 backup took 6% less time). The frame header (its checksum byte is an
		// XXH32 the package does not export) is taken from an empty
		// frame the Writer makes.
		var hdr appendWriter
		w := lz4.NewWriter(&hdr)
		if err := w.Apply(lz4.BlockSizeOption(bs), lz4.ChecksumOption(false), lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		// magic, FLG, BD, HC, then the end mark: FLG must say independent
		// blocks, no block or content checksum, no size, no dictionary.
		if len(hdr.b) != 11 || hdr.b[4] != 0x60 {
			return nil, fmt.Errorf("tapeformat: codec: unexpected lz4 frame header % x", hdr.b)
		}
		e.lz4Hdr, e.lz4Block = hdr.b[:7], int(bs)
		if c.Level > 0 {
			e.lz4c = &lz4.CompressorHC{Level: lz4.CompressionLevel(1 << (8 + c.Level))}
		} else {
			e.lz4c = &lz4.Compressor{}
		}
	case Gzip:
		lvl := c.Level
		if lvl == 0 {
			lvl = 6
		}
		var err error
		if e.fw, err = flate.NewWriter(nil, lvl); err != nil {
			return nil, err
		}
		if e.fstore, err = flate.NewWriter(nil, flate.NoCompression); err != nil {
			return nil, err
		}
	default:
		return nil, ErrUnknownCodec
	}
	return e, nil
}

// Codec returns the encoder's codec.
func (e *Encoder) Codec() Codec { return e.c }

// EncodeFrame appends to dst one self-contained unit holding src: the chunk
// record (for zstd and lz4 a skippable frame, for gzip the gzip header's
// extra field) followed by one codec frame that decodes to exactly src. For
// codec none the unit is src itself (the metadata travels in the segment
// member's pax header, see FORMAT.md). meta.Length and meta.CRC32C are
// computed from src; FileIndex and Offset are taken from meta. Data that does
// not shrink is stored in the codec's uncompressed form.
//
// EncodeFrame panics if len(src) exceeds the encoder's frame size.
func (e *Encoder) EncodeFrame(dst []byte, meta ChunkMeta, src []byte) []byte {
	dst, _ = e.Encode(dst, meta, src)
	return dst
}

// Encode is EncodeFrame that also returns the completed metadata.
func (e *Encoder) Encode(dst []byte, meta ChunkMeta, src []byte) ([]byte, ChunkMeta) {
	if len(src) > e.maxFrame {
		panic("tapeformat: codec: chunk larger than frame size")
	}
	meta = Describe(meta, src)
	switch e.c.Kind {
	case None:
		return append(dst, src...), meta
	case Zstd:
		return e.encodeZstd(dst, meta, src), meta
	case LZ4:
		return e.encodeLZ4(dst, meta, src), meta
	case Gzip:
		return e.encodeGzip(dst, meta, src), meta
	}
	panic("unreachable")
}

// Describe completes meta for the chunk src: its length and CRC-32C. With
// codec none the unit is src itself, and a caller that already holds src
// needs only this instead of Encode's copy.
func Describe(meta ChunkMeta, src []byte) ChunkMeta {
	meta.Length = uint32(len(src))
	meta.CRC32C = Checksum(src)
	return meta
}

func skippable(dst []byte) ([]byte, int) {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, SkipMagic)
	dst = binary.LittleEndian.AppendUint32(dst, ChunkRecordLen)
	dst = append(dst, make([]byte, ChunkRecordLen)...)
	return dst, start + skipPrefix
}

func (e *Encoder) encodeZstd(dst []byte, meta ChunkMeta, src []byte) []byte {
	dst, rec := skippable(dst)
	fstart := len(dst)
	dst = e.zenc.EncodeAll(src, dst)
	var flags uint16
	if len(dst)-fstart >= zstdRawLen(len(src)) {
		dst = appendZstdRaw(dst[:fstart], src)
		flags = FlagStored
	}
	putRecord(dst[rec:], Zstd, flags, meta, uint32(len(dst)-fstart))
	return dst
}

// zstdRawLen is the size of a raw zstd frame holding n bytes.
func zstdRawLen(n int) int {
	blocks := (n + zstdRawBlock - 1) / zstdRawBlock
	if blocks == 0 {
		blocks = 1
	}
	return 4 + 1 + 4 + 3*blocks + n
}

// appendZstdRaw appends a zstd frame (RFC 8878) made of raw blocks: magic,
// frame header descriptor 0xA0 (4-byte Frame_Content_Size, Single_Segment,
// no checksum, no dictionary), the content size, then Raw_Block(s) of at most
// 128 KiB.
func appendZstdRaw(dst, src []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 0xFD2FB528)
	dst = append(dst, 0xA0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(src)))
	for {
		n := min(len(src), zstdRawBlock)
		last := 0
		if n == len(src) {
			last = 1
		}
		h := uint32(n)<<3 | 0<<1 | uint32(last) // Block_Type 0 = Raw_Block
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, src[:n]...)
		src = src[n:]
		if last == 1 {
			return dst
		}
	}
}

func (e *Encoder) encodeLZ4(dst []byte, meta ChunkMeta, src []byte) []byte {
	dst, rec := skippable(dst)
	fstart := len(dst)
	dst = append(dst, e.lz4Hdr...)
	for p := src; len(p) > 0; {
		blk := p[:min(len(p), e.lz4Block)]
		p = p[len(blk):]
		at := len(dst)
		dst = slices.Grow(dst, 4+lz4.CompressBlockBound(len(blk)))
		out := dst[at+4 : at+4+lz4.CompressBlockBound(len(blk))]
		n, err := e.lz4c.CompressBlock(blk, out)
		if err != nil { // cannot happen: out has the bound's room
			panic(fmt.Sprint("tapeformat: codec: lz4: ", err))
		}
		if n == 0 || n >= len(blk) { // incompressible: an uncompressed block
			dst = binary.LittleEndian.AppendUint32(dst[:at], uint32(len(blk))|1<<31)
			dst = append(dst, blk...)
			continue
		}
		dst = dst[:at+4+n]
		binary.LittleEndian.PutUint32(dst[at:], uint32(n))
	}
	dst = binary.LittleEndian.AppendUint32(dst, 0) // end mark
	var flags uint16
	if len(dst)-fstart >= len(src) {
		flags = FlagStored
	}
	putRecord(dst[rec:], LZ4, flags, meta, uint32(len(dst)-fstart))
	return dst
}

// encodeGzip writes one gzip member (RFC 1952) by hand, because the chunk
// record in the FEXTRA field must be written before the payload length is
// known: ID1 ID2 CM=8 FLG=FEXTRA MTIME=0 XFL=0 OS=255 XLEN=40, subfield
// 'T”S' LEN=36 <record>, deflate data, CRC32 (IEEE), ISIZE.
func (e *Encoder) encodeGzip(dst []byte, meta ChunkMeta, src []byte) []byte {
	dst = append(dst, 0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255)
	dst = binary.LittleEndian.AppendUint16(dst, 4+ChunkRecordLen)
	dst = append(dst, gzipSI1, gzipSI2)
	dst = binary.LittleEndian.AppendUint16(dst, ChunkRecordLen)
	rec := len(dst)
	dst = append(dst, make([]byte, ChunkRecordLen)...)
	fstart := len(dst)
	e.buf.b = dst
	e.fw.Reset(&e.buf)
	e.fw.Write(src)
	e.fw.Close()
	dst = e.buf.b
	var flags uint16
	if len(dst)-fstart > len(src)+5*((len(src)+65534)/65535)+5 {
		e.buf.b = dst[:fstart]
		e.fstore.Reset(&e.buf)
		e.fstore.Write(src)
		e.fstore.Close()
		dst = e.buf.b
	}
	if len(dst)-fstart >= len(src) {
		flags = FlagStored
	}
	e.buf.b = nil
	payload := len(dst) - fstart
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(src))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(src)))
	putRecord(dst[rec:], Gzip, flags, meta, uint32(payload))
	return dst
}

// Decoder decodes units. NOT safe for concurrent use.
type Decoder struct {
	zdec     *zstd.Decoder
	lzr      *lz4.Reader
	fr       io.ReadCloser
	br       bytes.Reader
	maxFrame int
}

// NewDecoder returns a decoder that accepts chunks of at most maxFrame
// uncompressed bytes (0 means MaxFrameSize).
func NewDecoder(maxFrame int) *Decoder {
	if maxFrame <= 0 || maxFrame > MaxFrameSize {
		maxFrame = MaxFrameSize
	}
	return &Decoder{maxFrame: maxFrame}
}

// Close releases the decoder's resources.
func (d *Decoder) Close() {
	if d.zdec != nil {
		d.zdec.Close()
	}
}

// DecodeFrame decodes the single unit in unit (exactly one unit, as sized by
// ParseHeader), appends the chunk's bytes to dst and returns them with the
// chunk's metadata. The output is capped at the declared length (no
// decompression bombs) and checked against the CRC-32C. On error dst is
// returned unextended; if the record itself was valid, the returned meta
// says which chunk was lost.
func (d *Decoder) DecodeFrame(dst, unit []byte) ([]byte, ChunkMeta, error) {
	h, err := ParseHeader(unit)
	if err != nil {
		return dst, ChunkMeta{}, err
	}
	if h.UnitLen != len(unit) {
		return dst, h.Meta, fmt.Errorf("%w: unit length %d, record says %d", ErrCorrupt, len(unit), h.UnitLen)
	}
	if int(h.Meta.Length) > d.maxFrame {
		return dst, h.Meta, fmt.Errorf("%w: chunk of %d bytes", ErrTooLarge, h.Meta.Length)
	}
	start := len(dst)
	dst = grow(dst, int(h.Meta.Length))
	out := dst[start : start+int(h.Meta.Length)]
	payload := unit[payloadAt(h):]
	switch h.Kind {
	case Zstd:
		err = d.zstd(out, payload)
	case LZ4:
		err = d.lz4(out, payload)
	case Gzip:
		err = d.gzip(out, payload[:len(payload)-8], payload[len(payload)-8:])
	default:
		err = ErrCorrupt
	}
	if err == nil && Checksum(out) != h.Meta.CRC32C {
		err = ErrChecksum
	}
	if err != nil {
		return dst[:start], h.Meta, err
	}
	return dst, h.Meta, nil
}

// Verify checks that data matches meta (length and CRC-32C); used for the
// codec none, whose units carry no record.
func Verify(meta ChunkMeta, data []byte) error {
	if len(data) != int(meta.Length) {
		return fmt.Errorf("%w: %d bytes, expected %d", ErrCorrupt, len(data), meta.Length)
	}
	if Checksum(data) != meta.CRC32C {
		return ErrChecksum
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func (d *Decoder) zstd(out, payload []byte) error {
	if d.zdec == nil {
		var err error
		// The frame's own XXH64 content checksum is left to the zstd CLI
		// (a recovery without tapestream): DecodeFrame checks the
		// chunk's CRC-32C over the same bytes, and the second pass cost
		// ~4% of a restore's CPU.
		d.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(d.maxFrame)), zstd.WithDecoderMaxWindow(uint64(max(d.maxFrame, 1<<20))),
			zstd.WithDecoderLowmem(true), zstd.IgnoreChecksum(true))
		if err != nil {
			return err
		}
	}
	// Decode into out's backing array; a frame declaring or producing more
	// than len(out) bytes is rejected.
	res, err := d.zdec.DecodeAll(payload, out[:0:len(out)])
	if err != nil {
		return fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(res) != len(out) {
		return fmt.Errorf("%w: zstd frame decodes to %d bytes, expected %d", ErrCorrupt, len(res), len(out))
	}
	if len(out) > 0 && &res[0] != &out[0] {
		copy(out, res)
	}
	return nil
}

func readExact(r io.Reader, out []byte) error {
	if _, err := io.ReadFull(r, out); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var one [1]byte
	for range 4 {
		n, err := r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: frame decodes to more than %d bytes", ErrCorrupt, len(out))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return fmt.Errorf("%w: frame does not end", ErrCorrupt)
}

func (d *Decoder) lz4(out, payload []byte) error {
	d.br.Reset(payload)
	if d.lzr == nil {
		d.lzr = lz4.NewReader(&d.br)
		if err := d.lzr.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return err
		}
	} else {
		d.lzr.Reset(&d.br)
	}
	if err := readExact(d.lzr, out); err != nil {
		return err
	}
	if d.br.Len() != 0 {
		return fmt.Errorf("%w: trailing bytes after lz4 frame", ErrCorrupt)
	}
	return nil
}

func (d *Decoder) gzip(out, deflate, trailer []byte) error {
	d.br.Reset(deflate)
	if d.fr == nil {
		d.fr = flate.NewReader(&d.br)
	} else {
		d.fr.(flate.Resetter).Reset(&d.br, nil)
	}
	if err := readExact(d.fr, out); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(trailer) != crc32.ChecksumIEEE(out) ||
		binary.LittleEndian.Uint32(trailer[4:]) != uint32(len(out)) {
		return fmt.Errorf("%w: gzip trailer mismatch", ErrCorrupt)
	}
	return nil
}
