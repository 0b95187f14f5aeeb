package agestream

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"filippo.io/age"
)

// Writer encrypts one member's data into a standard age file (age.Encrypt:
// `age -d` decrypts it) and computes its Record on the way.
//
// A tar member's size precedes its data, so the size of the age file must
// be known before it is written to the archive. The segment writer buffers
// a segment anyway; encrypting into that buffer and taking its length is
// exact by construction. (SealedSize gives the same number from the header
// length in advance, but the header's length depends on the recipients'
// key types and sizes, so it is only used for checking.)
type Writer struct {
	cw    *crcWriter
	w     io.WriteCloser
	plain int64
	err   error
	done  bool
}

// NewWriter writes the header and payload nonce of a new age file to dst,
// encrypted to every recipient (each of them decrypts alone), with a fresh
// random file key. age refuses to mix post-quantum and classic recipients.
func NewWriter(dst io.Writer, recipients []*Recipient) (*Writer, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("%w: no recipients", ErrRecipient)
	}
	rs := make([]age.Recipient, len(recipients))
	for i, r := range recipients {
		rs[i] = r.r
	}
	cw := &crcWriter{dst: dst}
	w, err := age.Encrypt(cw, rs...)
	if err != nil {
		if cw.err != nil {
			return nil, cw.err
		}
		return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	// age.Encrypt has written exactly the header and the nonce: the stream
	// writer holds back every chunk until it knows whether it is the last.
	cw.startPayload()
	return &Writer{cw: cw, w: w}, nil
}

// Write encrypts p. Errors are sticky.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, ErrWriteAfterClose
	}
	n, err := w.w.Write(p)
	w.plain += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close seals the last chunk. It does not close dst.
func (w *Writer) Close() error {
	if w.done || w.err != nil {
		return w.err
	}
	w.done = true
	if err := w.w.Close(); err != nil {
		w.err = err
		return err
	}
	w.cw.finish()
	if w.cw.err != nil {
		w.err = w.cw.err
	}
	return w.err
}

// Record returns the member's integrity record; valid after a successful
// Close.
func (w *Writer) Record() (Record, error) {
	if !w.done || w.err != nil {
		return Record{}, errors.Join(errors.New("agestream: Record before a successful Close"), w.err)
	}
	return Record{Plain: w.plain, Size: w.cw.n, Header: w.cw.header, Chunks: w.cw.chunks}, nil
}

// crcWriter passes writes through and keeps the CRC-32C of the header and
// nonce, then of every SealedChunkSize bytes of payload.
type crcWriter struct {
	dst     io.Writer
	n       int64
	crc     uint32
	inChunk int
	payload bool
	header  uint32
	chunks  []uint32
	err     error
}

func (c *crcWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.dst.Write(p)
	c.n += int64(n)
	for q := p[:n]; len(q) > 0; {
		k := len(q)
		if c.payload {
			k = min(k, SealedChunkSize-c.inChunk)
		}
		c.crc = crc32.Update(c.crc, castagnoli, q[:k])
		q = q[k:]
		if c.payload {
			c.inChunk += k
			if c.inChunk == SealedChunkSize {
				c.chunks = append(c.chunks, c.crc)
				c.crc, c.inChunk = 0, 0
			}
		}
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

func (c *crcWriter) startPayload() {
	c.header, c.crc, c.payload = c.crc, 0, true
}

func (c *crcWriter) finish() {
	if c.inChunk > 0 {
		c.chunks = append(c.chunks, c.crc)
		c.crc, c.inChunk = 0, 0
	}
}
