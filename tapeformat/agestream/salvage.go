package agestream

import (
	"fmt"
)

// blockSize is the tar block: a member's data starts on a block boundary
// and is padded with zero bytes to the next one.
const blockSize = 512

// lastTries bounds the candidate ends tried per block boundary: the end is
// the boundary less the zero padding before it, or up to this many bytes
// more when the tag itself ends in zero bytes (1 in 65536 tags end in two
// zero bytes; a last chunk missed so is reported lost, never misread).
const lastTries = 3

// Salvage reads the age file at the start of region when its integrity
// record and its length are lost (the tar header of its member was
// damaged): region holds the file and whatever followed it on the medium
// (the member's zero padding, damaged headers, up to the next member
// found). It opens the header with ids, then the chunks in order. A chunk
// that does not open as a full chunk of the stream is tried as its last
// chunk, ending where the region can end it: the file is followed by zero
// padding to a 512-byte boundary, so its end is a block boundary less the
// zero bytes before it. Only an authenticated last chunk ends the stream;
// a chunk that opens neither way is lost and the next one is tried.
//
// It returns the plaintext (zeros in the lost ranges), the losses, and the
// length of the age file found in region, 0 when its last chunk was not
// found (the last loss then has Len -1: the plaintext may have ended
// anywhere in it). Errors are those of Open without a record: ErrHeader,
// or a *NoIdentityError that may be damage as well as a foreign key.
func Salvage(region []byte, ids []*Identity) (plain []byte, losses []Loss, size int, err error) {
	s, err := Open(region, ids, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	po := s.hdr.PayloadOffset()
	var ll lossList
	for i := 0; ; i++ {
		at := po + i*SealedChunkSize
		if at+TagSize > len(region) {
			ll.addRun(i, 1, int64(i)*ChunkSize, -1, fmt.Errorf("%w: the end of the stream was not found", ErrTruncated))
			return plain, ll, 0, nil
		}
		if at+SealedChunkSize <= len(region) {
			nonce := chunkNonce(int64(i), false)
			if out, err := s.aead.Open(plain, nonce[:], region[at:at+SealedChunkSize], nil); err == nil {
				plain = out
				continue
			}
		}
		if out, end, ok := s.openLast(plain, region, i, at); ok {
			return out, ll, end, nil
		}
		ll.add(i, int64(i)*ChunkSize, ChunkSize, fmt.Errorf("%w: chunk %d (damaged, or the stream's end damaged)", ErrAuth, i))
		// A failed Open may have written into plain's spare capacity;
		// the zeros are appended explicitly.
		plain = append(plain, make([]byte, ChunkSize)...)
	}
}

// openLast tries chunk i, which starts at region offset at, as the
// stream's last chunk, at every end the tar padding allows.
func (s *Stream) openLast(dst, region []byte, i, at int) ([]byte, int, bool) {
	minLen := TagSize + 1
	if i == 0 {
		minLen = TagSize // an empty plaintext is one empty chunk
	}
	lo, hi := at+minLen, min(at+SealedChunkSize, len(region))
	if lo > hi {
		return dst, 0, false
	}
	nonce := chunkNonce(int64(i), true)
	try := func(end int) ([]byte, bool) {
		if end < lo || end > hi {
			return dst, false
		}
		out, err := s.aead.Open(dst, nonce[:], region[at:end], nil)
		return out, err == nil
	}
	// Block boundaries B after lo, and the region's end (a region cut
	// short ends where the medium does).
	first := (lo + blockSize - 1) / blockSize * blockSize
	for b := first; b < hi+blockSize; b += blockSize {
		bound := min(b, len(region))
		z := 0
		for z < blockSize && bound-z > at && region[bound-z-1] == 0 {
			z++
		}
		if z == blockSize {
			// A block of zeros is no padding: an end before it is
			// tried at the boundary before.
			continue
		}
		for k := range lastTries {
			if out, ok := try(bound - z + k); ok {
				return out, bound - z + k, true
			}
			if k >= z {
				break
			}
		}
		if bound == len(region) {
			break
		}
	}
	return dst, 0, false
}
