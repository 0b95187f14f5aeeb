package agestream

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of the age v1 payload (age-encryption.org/v1, "Payload").
const (
	// ChunkSize is the plaintext carried by every sealed chunk but the last.
	ChunkSize = 64 << 10
	// TagSize is the Poly1305 tag that follows each chunk's ciphertext.
	TagSize = chacha20poly1305.Overhead
	// SealedChunkSize is a full chunk as stored: ciphertext and tag.
	SealedChunkSize = ChunkSize + TagSize
	// NonceSize is the random payload nonce between the header and chunk 0.
	NonceSize = 16
)

var (
	// ErrHeader: the age header (or the payload nonce after it) is damaged,
	// unparseable or fails its MAC. The member's whole plaintext is lost.
	ErrHeader = errors.New("agestream: damaged age header")
	// ErrNoIdentity: none of the identities opens any of the member's
	// recipient stanzas. Errors of this kind are *NoIdentityError.
	ErrNoIdentity = errors.New("agestream: no identity matches")
	// ErrAuth: a sealed chunk failed authentication (damaged, from another
	// stream, moved, or tampered with). Its plaintext is lost.
	ErrAuth = errors.New("agestream: chunk failed authentication")
	// ErrTruncated: the member ends before the stream's last chunk.
	ErrTruncated = errors.New("agestream: stream truncated")
	// ErrTrailing: the stream's last chunk is followed by more bytes.
	ErrTrailing = errors.New("agestream: data after the last chunk")
	// ErrChecksum: a sealed chunk does not match its CRC-32C in the record.
	ErrChecksum = errors.New("agestream: ciphertext checksum mismatch")
	// ErrRecord: an integrity record that cannot describe this member.
	ErrRecord = errors.New("agestream: inconsistent integrity record")
	// ErrRecipient: a recipient that cannot be parsed or is not allowed.
	ErrRecipient = errors.New("agestream: invalid recipient")
	// ErrPostQuantum: a post-quantum hybrid recipient given without
	// RecipientOptions.AllowPostQuantum.
	ErrPostQuantum = errors.New("agestream: post-quantum recipients are opt-in: Debian's age 1.1.1 cannot decrypt files encrypted to them")
	// ErrIdentity: an identity file that cannot be used.
	ErrIdentity = errors.New("agestream: invalid identity")
	// ErrWriteAfterClose: Write on a closed Writer.
	ErrWriteAfterClose = errors.New("agestream: write after close")
)

// SealedSize is the size of an age file whose header is headerLen bytes
// (Header.Len) and whose plaintext is plain bytes. Every chunk is full but
// the last, which holds 1..ChunkSize bytes, or none for an empty plaintext.
func SealedSize(headerLen int, plain int64) int64 {
	return int64(headerLen) + NonceSize + plain + TagSize*chunkCount(plain)
}

func chunkCount(plain int64) int64 {
	if plain == 0 {
		return 1
	}
	return (plain + ChunkSize - 1) / ChunkSize
}

// PlaintextSize inverts SealedSize: the plaintext size of a complete age
// file of size bytes with a header of headerLen bytes. It fails with
// ErrTruncated for a size no writer produces (a last chunk shorter than a
// tag, an empty last chunk after full ones), which is what a member cut
// short looks like.
func PlaintextSize(headerLen int, size int64) (int64, error) {
	payload := size - int64(headerLen) - NonceSize
	if payload < TagSize {
		return 0, fmt.Errorf("%w: %d bytes after a %d-byte header hold no chunk", ErrTruncated, size-int64(headerLen), headerLen)
	}
	n := (payload + SealedChunkSize - 1) / SealedChunkSize
	last := payload - (n-1)*SealedChunkSize
	if last < TagSize || last == TagSize && n > 1 {
		return 0, fmt.Errorf("%w: last sealed chunk of %d bytes", ErrTruncated, last)
	}
	return payload - n*TagSize, nil
}

// chunkNonce is the STREAM nonce of chunk i: an 88-bit big-endian counter
// and the last-chunk flag. Binding the index and the flag into every tag is
// what makes moved, duplicated and dropped-tail chunks fail authentication.
func chunkNonce(i int64, last bool) [chacha20poly1305.NonceSize]byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	if last {
		n[11] = 1
	}
	return n
}
