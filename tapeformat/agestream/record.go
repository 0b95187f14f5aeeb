package agestream

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is the plaintext-visible integrity record of one encrypted member,
// for its member record: with it, `verify` without the identity checks
// every byte of the member, tells a damaged header from a foreign key, and
// knows the plaintext length of a truncated member. CRC-32C of ciphertext
// tells nothing about the plaintext.
//
//	{"plain":1048620,"size":1048892,"hcrc":3735928559,"crc":"base64..."}
type Record struct {
	// Plain is the plaintext length (the member's units), Size the age
	// file's (the tar member's data).
	Plain int64 `json:"plain"`
	Size  int64 `json:"size"`
	// Header is the CRC-32C of the header and the payload nonce
	// (member[:Header.PayloadOffset()]).
	Header uint32 `json:"hcrc"`
	// Chunks holds the CRC-32C of each sealed chunk, ciphertext and tag.
	Chunks CRCs `json:"crc"`
}

// CRCs is a list of CRC-32C values; as text (JSON), the standard padded
// base64 of their little-endian bytes, 4 per chunk (2.7 KiB of text for a
// 32 MiB member).
type CRCs []uint32

func (c CRCs) MarshalText() ([]byte, error) {
	b := make([]byte, 4*len(c))
	for i, v := range c {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return base64.StdEncoding.AppendEncode(nil, b), nil
}

func (c *CRCs) UnmarshalText(text []byte) error {
	b, err := base64.StdEncoding.AppendDecode(nil, text)
	if err != nil || len(b)%4 != 0 {
		return fmt.Errorf("%w: chunk CRC list is not base64 of 4-byte values", ErrRecord)
	}
	out := make(CRCs, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	*c = out
	return nil
}

// ComputeRecord computes the integrity record of a complete age file.
func ComputeRecord(member []byte) (Record, error) {
	h, err := ParseHeader(member)
	if err != nil {
		return Record{}, err
	}
	plain, err := PlaintextSize(h.Len, int64(len(member)))
	if err != nil {
		return Record{}, err
	}
	rec := Record{Plain: plain, Size: int64(len(member)), Header: crc32.Checksum(member[:h.PayloadOffset()], castagnoli)}
	for p := member[h.PayloadOffset():]; len(p) > 0; {
		n := min(len(p), SealedChunkSize)
		rec.Chunks = append(rec.Chunks, crc32.Checksum(p[:n], castagnoli))
		p = p[n:]
	}
	return rec, nil
}

// check reports whether the record can describe an age file with a
// header of headerLen bytes.
func (rec *Record) check(headerLen int) error {
	if rec.Plain < 0 || rec.Size != SealedSize(headerLen, rec.Plain) || int64(len(rec.Chunks)) != chunkCount(rec.Plain) {
		return fmt.Errorf("%w: plain %d, size %d, %d chunk CRCs for a %d-byte header", ErrRecord, rec.Plain, rec.Size, len(rec.Chunks), headerLen)
	}
	return nil
}

// Verify checks an encrypted member without its identity: the header's
// syntax, that the member's size is one the chunking produces, and, given
// its record, the header and every sealed chunk against their CRC-32C.
// An error means the whole member is lost (header damage, or a record
// that does not fit the header); otherwise the losses list the plaintext
// ranges that cannot be delivered (ErrChecksum, ErrTruncated), empty when
// every byte checks. The header returned tells the stanzas.
func Verify(member []byte, rec *Record) (*Header, []Loss, error) {
	h, err := ParseHeader(member)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		if _, err := PlaintextSize(h.Len, int64(len(member))); err != nil {
			l := layoutOf(h, member, -1)
			return h, []Loss{{Chunk: l.n - 1, Chunks: 1, Off: int64(l.n-1) * ChunkSize, Len: -1, Err: err}}, nil
		}
		return h, nil, nil
	}
	if err := rec.check(h.Len); err != nil {
		return h, nil, err
	}
	if got := crc32.Checksum(member[:h.PayloadOffset()], castagnoli); got != rec.Header {
		return h, nil, fmt.Errorf("%w: header checksum %08x, record says %08x", ErrHeader, got, rec.Header)
	}
	l := layoutOf(h, member, rec.Size)
	var losses lossList
	for i := range l.n {
		p := l.piece(i)
		if len(p) < l.expectPiece(i) {
			losses.addRun(i, l.n-i, l.plainOff(i), rec.Plain-l.plainOff(i), fmt.Errorf("%w: member ends %d bytes short", ErrTruncated, rec.Size-int64(len(member))))
			break
		}
		if crc32.Checksum(p, castagnoli) != rec.Chunks[i] {
			losses.add(i, l.plainOff(i), l.expectLen(i), ErrChecksum)
		}
	}
	if int64(len(member)) > rec.Size {
		losses.add(l.n, rec.Plain, 0, fmt.Errorf("%w: %d bytes after the recorded size", ErrTrailing, int64(len(member))-rec.Size))
	}
	return h, losses, nil
}
