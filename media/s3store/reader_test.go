package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// TestRangedReads: readers with different concurrency and range sizes
// (ranges not dividing the object, one range larger than the object)
// return the object byte for byte, through small and odd Read buffers.
func TestRangedReads(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	data := testData(20, 13<<20+777)
	s := newStore(t, testOptions(srv, bucket))
	u, _ := s.Create(context.Background(), "obj", UploadOptions{})
	writeAll(t, u, data, 1<<20)
	if _, err := u.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		conc  int
		rng   int64
		chunk int
	}{{1, 1 << 20, 1 << 20}, {4, 1<<20 + 512, 4093}, {8, 300 << 10, 1 << 22}, {3, 64 << 20, 65536}} {
		o := testOptions(srv, bucket)
		o.Concurrency, o.RangeSize = c.conc, c.rng
		s := newStore(t, o)
		r, err := s.Open(context.Background(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 0, len(data))
		buf := make([]byte, c.chunk)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		mustEqual(t, fmt.Sprintf("%+v", c), got, data)
	}
}

// TestReadObjectChanged: an object replaced while being read fails the
// next range with ErrObjectChanged, naming bucket, key and offset, instead
// of splicing two objects; Close stops the fetches in flight.
func TestReadObjectChanged(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	o := testOptions(srv, bucket)
	o.Concurrency, o.RangeSize = 2, 1<<20
	s := newStore(t, o)
	ctx := context.Background()
	if err := putRaw(s, "obj", testData(21, 8<<20)); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	if err := putRaw(s, "obj", testData(22, 8<<20)); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, ErrObjectChanged) {
		t.Fatalf("read after replace: %v", err)
	}
	var se *Error
	if !errors.As(err, &se) || se.Offset < 3<<20 || se.Key != "obj" || se.Bucket != bucket {
		t.Fatalf("error %#v", err)
	}
	errContains(t, err, fmt.Sprintf("s3://%s/obj at offset %d", bucket, se.Offset))
	r.Close()

	// Close with ranges in flight returns promptly and Read then fails.
	r, err = s.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := s.Open(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
}

// TestObjectLock: an upload with Object Lock retention carries it (mode
// and retain-until reported by HEAD), multipart and single.
func TestObjectLock(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, true)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, size := range []int{10, 11 << 20} {
		key := fmt.Sprintf("locked-%d", size)
		u, err := s.Create(ctx, key, UploadOptions{LockMode: "GOVERNANCE", RetainUntil: until})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, u, testData(23, size), 1<<20)
		if _, err := u.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		info, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if info.LockMode != "GOVERNANCE" || !info.RetainUntil.Equal(until) {
			t.Fatalf("%s: lock %q until %v, want GOVERNANCE until %v", key, info.LockMode, info.RetainUntil, until)
		}
	}
	if _, err := s.Create(ctx, "x", UploadOptions{LockMode: "FOREVER", RetainUntil: until}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("bad lock mode: %v", err)
	}
}
