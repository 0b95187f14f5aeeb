package agestream

import (
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Loss is a plaintext range of a member that cannot be delivered.
type Loss struct {
	// Chunk is the first sealed chunk concerned, Chunks how many.
	Chunk, Chunks int
	// Off and Len are the plaintext range. Len is -1 when the member was
	// cut and nothing tells how long the stream was (no record): the loss
	// runs from Off to the end of the stream.
	Off, Len int64
	// Err wraps ErrAuth, ErrChecksum, ErrTruncated or ErrTrailing (the
	// last with Len 0: bytes after the stream were ignored, none lost).
	Err error
}

func (l Loss) String() string {
	if l.Len < 0 {
		return fmt.Sprintf("plaintext from %d to the end (chunk %d on): %v", l.Off, l.Chunk, l.Err)
	}
	return fmt.Sprintf("plaintext [%d, %d) (chunks %d..%d): %v", l.Off, l.Off+l.Len, l.Chunk, l.Chunk+l.Chunks-1, l.Err)
}

type lossList []Loss

var lossKinds = []error{ErrAuth, ErrChecksum, ErrTruncated, ErrTrailing}

func lossKind(err error) error {
	for _, k := range lossKinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

// add records chunk i's loss, merging runs of the same kind so that a
// damaged stretch is one line of a report.
func (ls *lossList) add(i int, off, n int64, err error) { ls.addRun(i, 1, off, n, err) }

func (ls *lossList) addRun(first, chunks int, off, n int64, err error) {
	if k := len(*ls); k > 0 {
		p := &(*ls)[k-1]
		// A loss of unknown length stays apart: the plaintext returned
		// ends where it starts.
		if p.Chunk+p.Chunks == first && p.Len >= 0 && n >= 0 && p.Off+p.Len == off && lossKind(p.Err) == lossKind(err) {
			p.Chunks += chunks
			p.Len += n
			return
		}
	}
	*ls = append(*ls, Loss{Chunk: first, Chunks: chunks, Off: off, Len: n, Err: err})
}

// layout places the sealed chunks of a member: chunk i is at a fixed
// offset, so a damaged chunk never moves its neighbours.
type layout struct {
	data  []byte
	po    int
	n     int
	plain int64 // from the record, or -1
}

// layoutOf lays out member after header h; size is the recorded size, or
// -1 to take the member's own.
func layoutOf(h *Header, member []byte, size int64) layout {
	l := layout{data: member, po: h.PayloadOffset(), plain: -1}
	payload := int64(len(member) - l.po)
	if size >= 0 {
		if int64(len(member)) > size {
			l.data = member[:size]
		}
		payload = size - int64(l.po)
		l.plain, _ = PlaintextSize(h.Len, size)
	}
	l.n = max(1, int((payload+SealedChunkSize-1)/SealedChunkSize))
	return l
}

func (l *layout) piece(i int) []byte {
	s := l.po + i*SealedChunkSize
	if s >= len(l.data) {
		return nil
	}
	return l.data[s:min(s+SealedChunkSize, len(l.data))]
}

func (l *layout) plainOff(i int) int64 { return int64(i) * ChunkSize }

// expectLen is chunk i's plaintext length, -1 if unknown (a cut member
// without record).
func (l *layout) expectLen(i int) int64 {
	if l.plain >= 0 {
		return min(ChunkSize, l.plain-l.plainOff(i))
	}
	if p := len(l.piece(i)); p >= TagSize && (i < l.n-1 || p > TagSize || i == 0) {
		return int64(p - TagSize)
	}
	return -1
}

func (l *layout) expectPiece(i int) int { return int(l.expectLen(i)) + TagSize }

// Stream is an opened encrypted member: its header unwrapped, its payload
// key derived. Its methods may be called concurrently.
type Stream struct {
	hdr  *Header
	aead cipher.AEAD
	l    layout
	rec  *Record

	memberLen int
}

// Open parses member's header and unwraps its file key with the first of
// ids that matches. rec, if the member record carries one, lets Open tell a
// damaged header (ErrHeader) from a foreign key (ErrNoIdentity) and know
// the stream's true length when the member was cut. Any error but
// ErrNoIdentity means the member's whole plaintext is lost.
func Open(member []byte, ids []*Identity, rec *Record) (*Stream, error) {
	h, err := ParseHeader(member)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if err := rec.check(h.Len); err != nil {
			return nil, err
		}
		if got := crc32.Checksum(member[:h.PayloadOffset()], castagnoli); got != rec.Header {
			return nil, fmt.Errorf("%w: header checksum %08x, record says %08x", ErrHeader, got, rec.Header)
		}
	}
	ageIDs := make([]age.Identity, len(ids))
	tried := make([]Description, len(ids))
	for i, id := range ids {
		ageIDs[i], tried[i] = id.id, id.desc
	}
	var fileKey []byte
	if len(ids) > 0 {
		fileKey, err = age.DecryptHeader(h.raw, ageIDs...)
	}
	if len(ids) == 0 || errors.As(err, new(*age.NoIdentityMatchError)) {
		return nil, &NoIdentityError{Stanzas: h.Stanzas, Tried: tried, MaybeDamaged: rec == nil}
	}
	if err != nil {
		// "bad header MAC", or a stanza of a matching type that does not
		// decode: the header is not what was written.
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	return newStream(h, fileKey, member, rec), nil
}

func newStream(h *Header, fileKey, member []byte, rec *Record) *Stream {
	// age-encryption.org/v1: payload key = HKDF-SHA-256(ikm = file key,
	// salt = nonce, info = "payload"). age does not export it.
	nonce := member[h.Len:h.PayloadOffset()]
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, fileKey, nonce, []byte("payload")), key); err != nil {
		panic("agestream: HKDF: " + err.Error()) // cannot fail for 32 bytes
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		panic("agestream: " + err.Error()) // the key has the right size
	}
	size := int64(-1)
	if rec != nil {
		size = rec.Size
	}
	return &Stream{hdr: h, aead: aead, l: layoutOf(h, member, size), rec: rec, memberLen: len(member)}
}

// Header returns the member's parsed header.
func (s *Stream) Header() *Header { return s.hdr }

// Chunks is the number of sealed chunks the member holds (or, with a
// record, held when written).
func (s *Stream) Chunks() int { return s.l.n }

// ChunkRange is chunk i's plaintext range; n is -1 when the member is cut
// inside chunk i and nothing tells its length.
func (s *Stream) ChunkRange(i int) (off, n int64) { return s.l.plainOff(i), s.l.expectLen(i) }

// DecryptChunk appends chunk i's plaintext to dst. Each chunk is opened on
// its own, with the nonce of its position and the last-chunk flag where
// the member says the stream ends, so a chunk from another stream or
// another position never authenticates. Errors:
//
//   - ErrAuth: nothing is appended; the chunk's plaintext is lost.
//   - ErrTruncated: the member ends before the stream does. If chunk i is
//     a whole chunk that authenticates as not last, its plaintext is
//     appended (it is genuine) and what followed is lost.
//   - ErrTrailing: chunk i authenticates as the stream's last although
//     the member goes on; its plaintext is appended.
func (s *Stream) DecryptChunk(dst []byte, i int) ([]byte, error) {
	if i < 0 || i >= s.l.n {
		return dst, fmt.Errorf("agestream: chunk %d of %d", i, s.l.n)
	}
	return s.open(dst, i, s.l.piece(i))
}

// open is DecryptChunk with chunk i's sealed bytes in p, which dst must
// not overlap: a failed Open zeroes its output, and p is read again after
// one (the other last-chunk flag, the record's checksum).
func (s *Stream) open(dst []byte, i int, p []byte) ([]byte, error) {
	last := i == s.l.n-1
	if want := s.l.expectLen(i); s.rec != nil && len(p) < int(want)+TagSize {
		return dst, fmt.Errorf("%w: chunk %d has %d of %d bytes", ErrTruncated, i, len(p), want+TagSize)
	}
	if len(p) < TagSize || len(p) == TagSize && i > 0 {
		return dst, fmt.Errorf("%w: chunk %d has %d bytes", ErrTruncated, i, len(p))
	}
	nonce := chunkNonce(int64(i), last)
	if out, err := s.aead.Open(dst, nonce[:], p, nil); err == nil {
		return out, nil
	}
	if len(p) == SealedChunkSize && s.rec == nil {
		// A whole chunk under the other flag: the stream was cut at a chunk
		// boundary (last), or ended early inside the member (not last).
		nonce = chunkNonce(int64(i), !last)
		if out, err := s.aead.Open(dst, nonce[:], p, nil); err == nil {
			if last {
				return out, fmt.Errorf("%w: member ends after chunk %d, which is not the stream's last", ErrTruncated, i)
			}
			return out, fmt.Errorf("%w: chunk %d is the stream's last; the member has %d more bytes", ErrTrailing, i, len(s.l.data)-s.l.po-(i+1)*SealedChunkSize)
		}
	}
	why := "damaged, moved, or from another stream"
	if s.rec != nil && i < len(s.rec.Chunks) {
		if crc32.Checksum(p, castagnoli) == s.rec.Chunks[i] {
			why = "its checksum matches the record: tampered with, not damaged"
		} else {
			why = "checksum mismatch: damaged"
		}
	}
	return dst, fmt.Errorf("%w: chunk %d (%s)", ErrAuth, i, why)
}

// Decrypt appends the member's whole plaintext to dst, chunk by chunk,
// with zero bytes in place of every lost range, and lists the losses. The
// losses are exact: a damaged chunk costs its own 64 KiB and nothing else;
// bytes returned outside the losses are authenticated. When the member is
// cut short the plaintext ends where its data does, and the last loss
// (ErrTruncated) starts there: with the length the record gives, or with
// Len -1 (unknown) without a record.
func (s *Stream) Decrypt(dst []byte) ([]byte, []Loss) { return s.DecryptParallel(dst, 1) }

// DecryptParallel is Decrypt on up to workers goroutines: the chunks are
// opened concurrently, each into its place (chunk i's plaintext is at
// i*ChunkSize), and the losses are then drawn up in order exactly as
// Decrypt does. A restore reads members of up to the set's segment size
// (4 MiB by default, 32 MiB in older sets); one core opens about 700 MB/s
// of them, which a restore on several cores must not wait for.
func (s *Stream) DecryptParallel(dst []byte, workers int) ([]byte, []Loss) {
	return s.decrypt(dst, false, workers)
}

// DecryptInPlace is DecryptParallel into the member's own buffer, which
// it overwrites: the plaintext returned starts at the member's first
// byte. Each chunk is opened where it lies (from a copy, see open) and
// then moved down to its place, which never reaches a chunk not yet
// moved (chunk i's plaintext ends at (i+1)*ChunkSize, before chunk i+1's
// sealed bytes). A restore so holds one buffer per member instead of two
// (peak RSS of a 1 GiB restore 69 MiB instead of 141, where a plain set
// takes 68). The Stream must not be used afterwards, but for Header.
func (s *Stream) DecryptInPlace(workers int) ([]byte, []Loss) {
	return s.decrypt(nil, true, workers)
}

func (s *Stream) decrypt(dst []byte, inPlace bool, workers int) ([]byte, []Loss) {
	start := len(dst)
	// Only chunks with data in the member can yield plaintext: a record
	// is no licence to allocate what it claims.
	have := 0
	if n := len(s.l.data) - s.l.po; n > 0 {
		have = min(s.l.n, (n+SealedChunkSize-1)/SealedChunkSize)
	}
	// slot is where chunk i's plaintext is opened.
	slot := func(i int) int { return start + i*ChunkSize }
	if inPlace {
		dst = s.l.data
		slot = func(i int) int { return s.l.po + i*SealedChunkSize }
	} else {
		dst = slices.Grow(dst, have*ChunkSize)[:start+have*ChunkSize]
	}
	type result struct {
		n   int
		err error
	}
	res := make([]result, s.l.n)
	open := func(i int, scratch []byte) {
		p := s.l.piece(i)
		if inPlace {
			p = append(scratch[:0], p...)
		}
		at := slot(i)
		out, err := s.open(dst[at:at:min(at+ChunkSize, len(dst))], i, p)
		res[i] = result{len(out), err}
	}
	newScratch := func() []byte {
		if inPlace {
			return make([]byte, SealedChunkSize)
		}
		return nil
	}
	if workers <= 1 || have < 2 {
		scratch := newScratch()
		for i := range have {
			open(i, scratch)
		}
	} else {
		var wg sync.WaitGroup
		next := make(chan int, have)
		for i := range have {
			next <- i
		}
		close(next)
		for range min(workers, have) {
			wg.Go(func() {
				scratch := newScratch()
				for i := range next {
					open(i, scratch)
				}
			})
		}
		wg.Wait()
	}
	for i := have; i < s.l.n; i++ {
		// No data: DecryptChunk says how the member ends.
		_, err := s.DecryptChunk(nil, i)
		res[i] = result{0, err}
	}
	var losses lossList
	for i := range s.l.n {
		at := start + i*ChunkSize
		got, err := int64(res[i].n), res[i].err
		if inPlace && got > 0 {
			copy(dst[at:], dst[slot(i):slot(i)+int(got)])
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrTrailing):
			losses.add(i+1, s.l.plainOff(i)+got, 0, err)
			return dst[:at+int(got)], losses
		case errors.Is(err, ErrTruncated):
			// The member ends here. A record tells how much is missing, but
			// nothing is zero-filled past the member's data.
			off := s.l.plainOff(i) + got
			first, n := i, int64(-1)
			if got > 0 {
				first++
			}
			if s.l.plain >= 0 {
				n = s.l.plain - off
			}
			losses.addRun(first, max(1, s.l.n-first), off, n, err)
			return dst[:at+int(got)], losses
		default:
			n := s.l.expectLen(i)
			if s.rec == nil && i == s.l.n-1 {
				// Without a record a bad last chunk may as well be a cut
				// one: the stream's end is unproven.
				n = -1
			}
			losses.add(i, s.l.plainOff(i), n, err)
			if n < 0 {
				return dst[:at], losses
			}
			// A failed Open may have scribbled over its output.
			clear(dst[at : at+int(n)])
			got = n
		}
		if i == s.l.n-1 {
			dst = dst[:at+int(got)]
		}
	}
	if extra := s.memberLen - len(s.l.data); extra > 0 {
		losses.add(s.l.n, s.l.plain, 0, fmt.Errorf("%w: %d bytes after the recorded size", ErrTrailing, extra))
	}
	return dst, losses
}
