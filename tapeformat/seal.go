package tapeformat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/tapestream/tapestream/tapeformat/agestream"
)

// Encryption on the writing side (FORMAT.md 5.3): each segment's data is
// sealed into one age file on a goroutine of its own while the next
// segment fills, and the members are written in order as their seals
// complete. The writer's goroutine only copies units and writes records.

// maxSealing bounds the segments being encrypted at once. One core seals
// about 600 MB/s of stored data, more than a core compresses; two keep a
// writer fed at twice that while holding two more segments in memory.
const maxSealing = 2

// sealJob is a segment being encrypted.
type sealJob struct {
	m     *member
	rec   *memberRecord
	mf    *ManifestFile
	plain []byte
	out   []byte
	age   agestream.Record
	err   error
	done  chan struct{}
}

func (w *Writer) encrypted() bool { return len(w.opts.Recipients) > 0 }

// bufCap is the capacity of the segment buffers the Writer recycles: a
// segment, or the age file of one (1/4096 larger, and its header).
func (w *Writer) bufCap() int {
	if !w.encrypted() {
		return w.opts.SegmentSize
	}
	return int(agestream.SealedSize(64<<10, int64(w.opts.SegmentSize)))
}

// appendBuf is an io.Writer appending to a slice.
type appendBuf struct{ b []byte }

func (a *appendBuf) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

// sealSegment starts encrypting the segment in w.seg as member m (its
// record rec still without the age record and size) and gives the Writer
// a new segment buffer. The oldest seals are written first when two are
// in flight.
func (w *Writer) sealSegment(m *member, rec *memberRecord) error {
	for len(w.sealing) >= maxSealing {
		if err := w.emitSealed(); err != nil {
			return err
		}
	}
	j := &sealJob{m: m, rec: rec, mf: w.cur, done: make(chan struct{})}
	var out []byte
	if len(w.seg) < w.opts.RecordSize {
		// A short segment (a log, a file's tail): sealed from a copy into
		// a buffer of its size, and the segment buffer is kept.
		j.plain = bytes.Clone(w.seg)
		out = make([]byte, 0, agestream.SealedSize(1024*len(w.opts.Recipients)+64, int64(len(w.seg))))
	} else {
		j.plain = w.seg
		w.seg = nil
		out = w.takeBuf()
	}
	rs := w.opts.Recipients
	go func() {
		defer close(j.done)
		ab := &appendBuf{b: out}
		aw, err := agestream.NewWriter(ab, rs)
		if err == nil {
			_, err = aw.Write(j.plain)
		}
		if err == nil {
			err = aw.Close()
		}
		if err == nil {
			j.age, err = aw.Record()
		}
		j.out, j.err = ab.b, err
	}()
	w.sealing = append(w.sealing, j)
	w.resetSeg()
	return nil
}

// takeBuf returns a recycled segment buffer, or a new one.
func (w *Writer) takeBuf() []byte {
	if n := len(w.free); n > 0 {
		b := w.free[n-1]
		w.free = w.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, w.bufCap())
}

// emitSealed waits for the oldest seal and writes its member.
func (w *Writer) emitSealed() error {
	j := w.sealing[0]
	w.sealing[0] = nil
	w.sealing = w.sealing[1:]
	<-j.done
	if j.err != nil {
		return fmt.Errorf("tapeformat: encrypting %s: %w", j.m.name, j.err)
	}
	if cap(j.plain) >= w.bufCap() {
		w.release(&member{buf: j.plain})
	}
	age := j.age
	j.rec.Age = &age
	hdr, err := w.header(j.m.name, int64(len(j.out)), j.rec)
	if err != nil {
		return err
	}
	j.m.hdr, j.m.data = hdr, j.out
	if cap(j.out) >= w.bufCap() {
		j.m.buf = j.out
	}
	if w.layout != nil {
		j.m.rec = j.rec
	}
	return w.emitFileMember(j.m, j.mf, j.rec.Part)
}

// drainSealing writes every segment still being sealed.
func (w *Writer) drainSealing() error {
	for len(w.sealing) > 0 {
		if err := w.emitSealed(); err != nil {
			return err
		}
	}
	return nil
}

// sealJSON encrypts v's JSON to the set's recipients, as base64 text for
// a JSON field (FORMAT.md 5.3, "Sealed fields").
func (w *Writer) sealJSON(v any) (string, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	aw, err := agestream.NewWriter(&buf, w.opts.Recipients)
	if err != nil {
		return "", err
	}
	if _, err := aw.Write(js); err != nil {
		return "", err
	}
	if err := aw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// unsealJSON decrypts a sealed field into v. Every chunk must open: a
// sealed field is small and has no other copy to salvage from.
func unsealJSON(text string, ids []*agestream.Identity, v any) error {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return fmt.Errorf("%w: sealed field: %v", ErrDamaged, err)
	}
	s, err := agestream.Open(b, ids, nil)
	if err != nil {
		return err
	}
	plain, losses := s.Decrypt(nil)
	if len(losses) > 0 {
		return fmt.Errorf("%w: sealed field: %v", ErrDamaged, losses[0])
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%w: sealed field: %v", ErrDamaged, err)
	}
	return nil
}
