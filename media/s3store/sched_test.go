package s3store

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// fakeAPI is an in-process stand-in for the multipart calls, for unit
// tests of part scheduling only (integration tests use versitygw). It
// checks each part's CRC32C, counts parts in flight, and can hold or fail
// parts.
type fakeAPI struct {
	api // unimplemented calls panic

	mu        sync.Mutex
	inflight  int
	maxFlight int
	sizes     map[int32]int64
	completed int
	aborted   int
	hold      chan struct{} // UploadPart waits on it when non-nil
	failPart  int32         // this part always fails with a 500
	calls     atomic.Int64
}

type fakeHTTPError struct{ code int }

func (e fakeHTTPError) Error() string       { return fmt.Sprintf("HTTP %d", e.code) }
func (e fakeHTTPError) HTTPStatusCode() int { return e.code }

func (f *fakeAPI) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("up-1")}, nil
}

func (f *fakeAPI) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, fakeHTTPError{404}
}

func (f *fakeAPI) UploadPart(ctx context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.inflight++
	f.maxFlight = max(f.maxFlight, f.inflight)
	hold := f.hold
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	body, _ := io.ReadAll(in.Body)
	if int64(len(body)) != *in.ContentLength || crcString(crc32.Checksum(body, castagnoli)) != *in.ChecksumCRC32C {
		return nil, errors.New("fake: part checksum or length mismatch")
	}
	if *in.PartNumber == f.failPart {
		return nil, fakeHTTPError{500}
	}
	time.Sleep(2 * time.Millisecond)
	f.mu.Lock()
	f.sizes[*in.PartNumber] = int64(len(body))
	f.mu.Unlock()
	return &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf(`"e%d"`, *in.PartNumber)), ChecksumCRC32C: in.ChecksumCRC32C}, nil
}

func (f *fakeAPI) CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	f.mu.Lock()
	f.completed++
	f.mu.Unlock()
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (f *fakeAPI) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	f.mu.Lock()
	f.aborted++
	f.mu.Unlock()
	return &s3.AbortMultipartUploadOutput{}, nil
}

func fakeStore(t *testing.T, f *fakeAPI, conc int) *Store {
	t.Helper()
	f.sizes = map[int32]int64{}
	// Parts far below S3's 5 MiB minimum: the fake does not care, and
	// New's validation is bypassed.
	o := Options{Bucket: "b", Concurrency: conc, PartSize: 64 << 10, MaxPartSize: 256 << 10, PartGrowEvery: 3,
		MaxAttempts: 3, MaxBackoff: time.Millisecond}
	o.setDefaults()
	return &Store{bucket: "b", opts: o, api: f, retryer: newRetryer(o), grow: o.PartGrowEvery}
}

// TestScheduleParts: parts follow the growing schedule, at most
// Concurrency are in flight, and buffers are reused: at most
// Concurrency+1 per part size.
func TestScheduleParts(t *testing.T) {
	f := &fakeAPI{}
	const conc = 3
	s := fakeStore(t, f, conc)
	u, err := s.Create(context.Background(), "k", UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 3×64 + 3×128 + 3×256 + 2×256 KiB = 1856 KiB = 11 parts.
	total := 1856 << 10
	buf := make([]byte, 16<<10)
	for off := 0; off < total; off += len(buf) {
		if _, err := u.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	flushNow(t, u)
	want := []int64{64, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256}
	if len(f.sizes) != len(want) {
		t.Fatalf("%d parts: %v", len(f.sizes), f.sizes)
	}
	for i, w := range want {
		if f.sizes[int32(i+1)] != w<<10 {
			t.Fatalf("part %d: %d bytes, want %d KiB", i+1, f.sizes[int32(i+1)], w)
		}
	}
	if f.maxFlight > conc || f.maxFlight < 2 {
		t.Fatalf("max parts in flight %d, concurrency %d", f.maxFlight, conc)
	}
	if u.allocs > 3*(conc+1) {
		t.Fatalf("%d buffers allocated for 3 part sizes, bound %d", u.allocs, 3*(conc+1))
	}
	t.Logf("max in flight %d, buffers allocated %d", f.maxFlight, u.allocs)
}

// TestScheduleFailure: a part that keeps failing (500, retried) fails the
// upload: Write or Commit reports it, naming the part; nothing is
// completed; Abort aborts the upload.
func TestScheduleFailure(t *testing.T) {
	f := &fakeAPI{failPart: 4}
	s := fakeStore(t, f, 2)
	u, _ := s.Create(context.Background(), "k", UploadOptions{})
	var werr error
	buf := make([]byte, 16<<10)
	for i := 0; i < 1000 && werr == nil; i++ {
		_, werr = u.Write(buf)
	}
	_, cerr := u.Commit(context.Background())
	if cerr == nil {
		t.Fatal("commit succeeded with a failed part")
	}
	errContains(t, cerr, "upload part 4", "s3://b/k", "HTTP 500")
	if werr == nil {
		t.Fatal("writes went on after a part failed for good")
	}
	if f.completed != 0 {
		t.Fatal("complete called")
	}
	if err := u.Abort(context.Background()); err != nil || f.aborted != 1 {
		t.Fatalf("abort: %v, %d aborts", err, f.aborted)
	}
}

// TestScheduleBackpressure: with every part held by the server, Write
// blocks once Concurrency parts are in flight and the next is full; Abort
// from another goroutine releases it with ErrAborted.
func TestScheduleBackpressure(t *testing.T) {
	f := &fakeAPI{hold: make(chan struct{})}
	s := fakeStore(t, f, 2)
	u, _ := s.Create(context.Background(), "k", UploadOptions{})
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 16<<10)
		for {
			if _, err := u.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("write returned: %v", err)
	default:
	}
	if c := f.calls.Load(); c != 2 {
		t.Fatalf("%d parts sent while blocked, want 2", c)
	}
	if err := u.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrAborted) {
			t.Fatalf("blocked write: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still blocked after Abort")
	}
	if f.aborted != 1 {
		t.Fatalf("%d aborts", f.aborted)
	}
}
