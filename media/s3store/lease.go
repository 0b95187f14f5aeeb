package s3store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// LeaseFormat is the format field of a lease object.
const LeaseFormat = "tapestream-s3-lease/1"

// leaseBody is the content of a lease object.
type leaseBody struct {
	Format   string    `json:"format"`
	Owner    string    `json:"owner"`
	TTL      float64   `json:"ttl_seconds"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	Released bool      `json:"released,omitempty"`
}

// Lease is a time-limited exclusive claim on a name, held as an object
// written with conditional requests: taken with If-None-Match: * (or, once
// expired or released, If-Match on the ETag read), renewed and released
// with If-Match. Of several hosts racing for a lease, exactly one write
// succeeds. Expiry is judged on the server's clock (the object's
// Last-Modified against the Date of the response, both to the second; a
// server that caches its Date header makes expiry late, never early), so
// hosts' clocks need not agree.
type Lease struct {
	s     *Store
	key   string
	owner string
	ttl   time.Duration

	mu       sync.Mutex
	etag     string
	acquired time.Time
	expires  time.Time // local estimate
	done     bool
}

// LeaseError reports a lease held by someone else, with the server's
// times: when it expires unless renewed, and the time of the answer.
type LeaseError struct {
	Owner   string
	Expires time.Time
	Now     time.Time
}

func (e *LeaseError) Error() string {
	return fmt.Sprintf("held by %q until %s (server time %s)", e.Owner,
		e.Expires.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// AcquireLease takes the lease object key for owner for ttl. If another
// owner holds an unexpired lease it fails with ErrLeaseHeld (and a
// *LeaseError naming the holder).
func (s *Store) AcquireLease(ctx context.Context, key, owner string, ttl time.Duration) (*Lease, error) {
	if owner == "" || ttl <= 0 {
		return nil, s.newErr("lease", key, fmt.Errorf("%w: lease needs an owner and a positive TTL", ErrInvalidOptions))
	}
	l := &Lease{s: s, key: key, owner: owner, ttl: ttl}
	for range 3 {
		now := time.Now().UTC()
		body := leaseBody{Format: LeaseFormat, Owner: owner, TTL: ttl.Seconds(), Acquired: now, Renewed: now}
		err := l.put(ctx, body, "", true)
		if err == nil {
			return l, nil
		}
		if !isPreconditionFailed(err) {
			return nil, s.newErr("lease", key, err)
		}
		cur, etag, held, err := s.readLease(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // released by a delete meanwhile: try again
		}
		if err != nil {
			return nil, err
		}
		if held != nil && !cur.Released {
			return nil, s.newErr("lease", key, fmt.Errorf("%w: %w", ErrLeaseHeld, held))
		}
		err = l.put(ctx, body, etag, false)
		if err == nil {
			if !cur.Released {
				s.logf("s3store: s3://%s/%s: took over the lease of %q, expired", s.bucket, key, cur.Owner)
			}
			return l, nil
		}
		if isPreconditionFailed(err) || isNotFound(err) {
			return nil, s.newErr("lease", key, fmt.Errorf("%w: taken by another owner first", ErrLeaseHeld))
		}
		return nil, s.newErr("lease", key, err)
	}
	return nil, s.newErr("lease", key, fmt.Errorf("%w: the lease object keeps changing", ErrLeaseHeld))
}

// put writes the lease object: If-None-Match: * when create, else If-Match
// etag.
func (l *Lease) put(ctx context.Context, b leaseBody, etag string, create bool) error {
	data, _ := json.Marshal(b)
	in := &s3.PutObjectInput{
		Bucket:        &l.s.bucket,
		Key:           &l.key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/json"),
	}
	if create {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := l.s.api.PutObject(withAttemptTimeout(ctx, l.s.opts.RequestTimeout), in)
	if err != nil {
		return err
	}
	if out.ETag == nil {
		return errors.New("server returned no ETag for the lease object")
	}
	l.mu.Lock()
	l.etag = *out.ETag
	if create || l.acquired.IsZero() {
		l.acquired = b.Acquired
	}
	l.expires = time.Now().Add(l.ttl)
	l.mu.Unlock()
	return nil
}

// readLease reads a lease object; held is nil when it has expired by the
// server's clock.
func (s *Store) readLease(ctx context.Context, key string) (b leaseBody, etag string, held *LeaseError, err error) {
	out, err := s.api.GetObject(withAttemptTimeout(ctx, s.opts.RequestTimeout), &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			err = ErrNotFound
		}
		return b, "", nil, s.newErr("read lease", key, err)
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, 1<<16))
	out.Body.Close()
	if err != nil {
		return b, "", nil, s.newErr("read lease", key, err)
	}
	if err := json.Unmarshal(data, &b); err != nil || b.Format != LeaseFormat {
		return b, "", nil, s.newErr("read lease", key, fmt.Errorf("not a lease object (%s)", LeaseFormat))
	}
	now := time.Now()
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		if t, err := http.ParseTime(raw.Header.Get("Date")); err == nil {
			now = t
		}
	}
	written := aws.ToTime(out.LastModified)
	until := written.Add(time.Duration(b.TTL * float64(time.Second)))
	if written.IsZero() || !now.After(until) {
		held = &LeaseError{Owner: b.Owner, Expires: until, Now: now}
	}
	return b, aws.ToString(out.ETag), held, nil
}

// Key is the lease object's key.
func (l *Lease) Key() string { return l.key }

// Expires is when the lease expires unless renewed (local clock).
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Renew extends the lease by its TTL. ErrLeaseLost if it was taken over.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	etag, done, acquired := l.etag, l.done, l.acquired
	l.mu.Unlock()
	if done {
		return l.s.newErr("renew lease", l.key, ErrLeaseLost)
	}
	body := leaseBody{Format: LeaseFormat, Owner: l.owner, TTL: l.ttl.Seconds(), Acquired: acquired, Renewed: time.Now().UTC()}
	err := l.put(ctx, body, etag, false)
	if isPreconditionFailed(err) || isNotFound(err) {
		err = ErrLeaseLost
	}
	return l.s.newErr("renew lease", l.key, err)
}

// Release gives the lease up: a delete conditional on the lease's ETag
// (or, on a server without conditional deletes, an If-Match write of a
// released marker). ErrLeaseLost if it had been taken over meanwhile.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	etag, done, acquired := l.etag, l.done, l.acquired
	l.done = true
	l.mu.Unlock()
	if done {
		return nil
	}
	_, err := l.s.api.DeleteObject(withAttemptTimeout(ctx, l.s.opts.RequestTimeout), &s3.DeleteObjectInput{Bucket: &l.s.bucket, Key: &l.key, IfMatch: &etag})
	if isUnsupported(err) {
		l.s.logf("s3store: server does not support If-Match on DeleteObject (%v); releasing s3://%s/%s with a marker", err, l.s.bucket, l.key)
		now := time.Now().UTC()
		err = l.put(ctx, leaseBody{Format: LeaseFormat, Owner: l.owner, TTL: l.ttl.Seconds(), Acquired: acquired, Renewed: now, Released: true}, etag, false)
	}
	if isPreconditionFailed(err) || isNotFound(err) {
		err = ErrLeaseLost
	}
	return l.s.newErr("release lease", l.key, err)
}
