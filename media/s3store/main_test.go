package s3store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapestream/tapestream/media/s3store/s3test"
)

// shared is one versitygw for the tests that do not kill it (nil when the
// binary is missing; s3test.Require then skips or fails each test).
var shared *s3test.Server

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	var code int
	func() {
		if bin, ok := s3test.Binary(); ok {
			dir, err := os.MkdirTemp("", "s3store-test")
			if err != nil {
				panic(err)
			}
			defer os.RemoveAll(dir)
			shared, err = s3test.StartBinary(bin, dir)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			defer shared.Stop()
		}
		code = m.Run()
	}()
	os.Exit(code)
}

var bucketSeq atomic.Int64

// server returns the shared server, or skips/fails the test without one.
func server(t testing.TB) *s3test.Server {
	t.Helper()
	s3test.Require(t)
	if shared == nil {
		t.Fatal("versitygw present but not started")
	}
	return shared
}

// newBucket creates a fresh bucket on srv.
func newBucket(t testing.TB, srv *s3test.Server, lock bool) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	if err := srv.CreateBucket(name, lock); err != nil {
		t.Fatal(err)
	}
	return name
}

// testOptions: small parts, fast retries, explicit credentials.
func testOptions(srv *s3test.Server, bucket string) Options {
	return Options{
		Bucket:          bucket,
		Endpoint:        srv.Endpoint,
		Region:          s3test.Region,
		AccessKeyID:     s3test.AccessKey,
		SecretAccessKey: s3test.SecretKey,
		PartSize:        MinPartSize,
		MaxPartSize:     4 * MinPartSize,
		PartGrowEvery:   2,
		RangeSize:       1 << 20,
		MaxAttempts:     6,
		MaxBackoff:      50 * time.Millisecond,
		RequestTimeout:  10 * time.Second,
		Logf:            func(string, ...any) {},
	}
}

func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testData is n deterministic pseudo-random bytes: a ChaCha8 block of
// 1 MiB, each copy stamped with its index (cheap under -race), so that
// misplaced or repeated MiB are caught.
func testData(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	block := make([]byte, 1<<20)
	rand.NewChaCha8(key).Read(block)
	b := make([]byte, n)
	for off, i := 0, uint64(0); off < n; off, i = off+len(block), i+1 {
		k := copy(b[off:], block)
		var stamp [8]byte
		binary.LittleEndian.PutUint64(stamp[:], i^seed<<32)
		copy(b[off:off+min(k, 8)], stamp[:])
	}
	return b
}

// writeAll writes data in chunks of chunk bytes.
func writeAll(t testing.TB, w io.Writer, data []byte, chunk int) {
	t.Helper()
	for off := 0; off < len(data); off += chunk {
		if _, err := w.Write(data[off:min(off+chunk, len(data))]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
}

func readObject(t testing.TB, s *Store, key string) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return got
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes, want %d; first difference at %d", what, len(got), len(want), i)
	}
}

func errContains(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}
