package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Reader reads an object with parallel ranged GETs: Concurrency ranges of
// RangeSize bytes are fetched at once and delivered in order; each range
// is retried on its own. Every GET carries If-Match with the ETag seen at
// Open, so an object replaced mid-read fails with ErrObjectChanged rather
// than mixing two objects. Memory: Concurrency × RangeSize.
//
// A Reader is not safe for concurrent use; Close may be called from any
// goroutine.
type Reader struct {
	s    *Store
	info ObjectInfo

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	queue  chan *span
	tokens chan struct{}
	pool   sync.Pool

	cur    *span
	pos    int
	err    error
	closed atomic.Bool
}

// span is one range being fetched.
type span struct {
	off  int64
	buf  []byte
	done chan struct{}
	err  error
}

// Open opens key for reading. A missing object is ErrNotFound.
func (s *Store) Open(ctx context.Context, key string) (*Reader, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	n := s.opts.Concurrency
	r := &Reader{
		s: s, info: info, ctx: rctx, cancel: cancel,
		queue:  make(chan *span, n),
		tokens: make(chan struct{}, n),
	}
	r.wg.Add(1)
	go r.produce()
	return r, nil
}

// Info describes the object being read.
func (r *Reader) Info() ObjectInfo { return r.info }

// produce starts the fetch of every range in order, at most Concurrency
// ahead of the consumer.
func (r *Reader) produce() {
	defer r.wg.Done()
	defer close(r.queue)
	rs := r.s.opts.RangeSize
	for off := int64(0); off < r.info.Size; off += rs {
		select {
		case r.tokens <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		n := min(rs, r.info.Size-off)
		sp := &span{off: off, done: make(chan struct{})}
		if b, ok := r.pool.Get().([]byte); ok && int64(cap(b)) >= n {
			sp.buf = b[:n]
		} else {
			sp.buf = make([]byte, n)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			sp.err = r.fetch(sp)
			close(sp.done)
		}()
		r.queue <- sp // capacity Concurrency = tokens: never blocks long
	}
}

// fetch reads one range, retrying transient failures (including a body
// cut short) with the store's backoff.
func (r *Reader) fetch(sp *span) error {
	s := r.s
	rng := fmt.Sprintf("bytes=%d-%d", sp.off, sp.off+int64(len(sp.buf))-1)
	var err error
	for attempt := 1; ; attempt++ {
		err = r.fetchOnce(sp, rng)
		if err == nil || r.ctx.Err() != nil || errors.Is(err, ErrObjectChanged) {
			break
		}
		if attempt >= s.opts.MaxAttempts || !r.retryable(err) {
			break
		}
		d, derr := s.retryer.RetryDelay(attempt, err)
		if derr != nil {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
		}
	}
	if err != nil {
		if r.ctx.Err() != nil && !errors.Is(err, ErrObjectChanged) {
			err = ErrClosed
		}
		return &Error{Op: "read", Bucket: s.bucket, Key: r.info.Key, Offset: sp.off, Err: err}
	}
	return nil
}

func (r *Reader) retryable(err error) bool {
	var te *attemptTimeoutError
	return errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrShortRead) ||
		r.s.retryer.IsErrorRetryable(err)
}

func (r *Reader) fetchOnce(sp *span, rng string) error {
	d := r.s.timeoutFor(int64(len(sp.buf)))
	ctx, cancel := context.WithTimeout(r.ctx, d)
	defer cancel()
	out, err := r.s.api.GetObject(ctx, &s3.GetObjectInput{
		Bucket:  &r.s.bucket,
		Key:     &r.info.Key,
		Range:   &rng,
		IfMatch: aws.String(r.info.ETag),
	}, func(o *s3.Options) { o.RetryMaxAttempts = 1 }) // retried here, body included
	if err == nil {
		var n int
		n, err = io.ReadFull(out.Body, sp.buf)
		out.Body.Close()
		if errors.Is(err, io.EOF) || (err == nil && n < len(sp.buf)) {
			err = fmt.Errorf("%w: %d of %d bytes", ErrShortRead, n, len(sp.buf))
		}
	}
	switch {
	case err == nil:
		return nil
	case isPreconditionFailed(err):
		return fmt.Errorf("%w: ETag is no longer %s", ErrObjectChanged, r.info.ETag)
	case r.ctx.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &attemptTimeoutError{d}
	}
	return err
}

// Read delivers the object's bytes in order.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed.Load() {
		return 0, &Error{Op: "read", Bucket: r.s.bucket, Key: r.info.Key, Offset: -1, Err: ErrClosed}
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil {
		sp, ok := <-r.queue
		if !ok {
			r.err = io.EOF
			return 0, io.EOF
		}
		<-sp.done
		if sp.err != nil {
			r.err = sp.err
			r.cancel()
			return 0, r.err
		}
		r.cur, r.pos = sp, 0
	}
	n := copy(p, r.cur.buf[r.pos:])
	r.pos += n
	if r.pos == len(r.cur.buf) {
		r.pool.Put(r.cur.buf[:0])
		r.cur = nil
		<-r.tokens
	}
	return n, nil
}

// Close stops the fetches in flight and waits for them.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.cancel()
	// Drain so the producer, blocked on a full queue, can see the cancel.
	go func() {
		for range r.queue {
		}
	}()
	r.wg.Wait()
	return nil
}
