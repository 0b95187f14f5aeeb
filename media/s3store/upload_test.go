package s3store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tapestream/tapestream/media/s3store/s3test"
)

// TestRoundTrip uploads objects of several sizes (empty, under one part,
// exactly one part, many parts with the part size growing 5 → 10 → 20 MiB)
// and reads them back with parallel ranged GETs, checking the parts'
// sizes and the composite checksum the server reports.
func TestRoundTrip(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	const mib = 1 << 20
	for i, tc := range []struct {
		size      int
		wantParts []int64 // part sizes, MiB; nil: single PutObject
	}{
		{0, nil},
		{1000, nil},
		{5*mib - 1, nil},
		{5 * mib, []int64{5}},
		{5*mib + 1, []int64{5, 0}},
		{57*mib + 12345, []int64{5, 5, 10, 10, 20, 7}},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			data := testData(uint64(i), tc.size)
			key := fmt.Sprintf("dir/obj-%d", tc.size)
			u, err := s.Create(ctx, key, UploadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, u, data, 1<<20-512*3) // record-ish chunks that straddle parts
			info, err := u.Commit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(tc.size) {
				t.Fatalf("size %d", info.Size)
			}
			parts := u.Parts()
			if tc.wantParts == nil {
				if u.UploadID() != "" || !strings.HasSuffix(info.CRC32C, "") || strings.Contains(info.CRC32C, "-") {
					t.Fatalf("want a single PutObject, got upload %q, checksum %q", u.UploadID(), info.CRC32C)
				}
			} else {
				if len(parts) != len(tc.wantParts) {
					t.Fatalf("%d parts, want %d", len(parts), len(tc.wantParts))
				}
				var last int64
				for j, p := range parts {
					want := tc.wantParts[j] * mib
					if j == len(parts)-1 {
						want = int64(tc.size) - last
					}
					if p.Size != want {
						t.Fatalf("part %d: %d bytes, want %d", p.Number, p.Size, want)
					}
					last += p.Size
				}
				crcs := make([]uint32, len(parts))
				for j, p := range parts {
					crcs[j] = p.CRC32C
				}
				if want := compositeCRC(crcs); info.CRC32C != want {
					t.Fatalf("object checksum %q, want composite %q", info.CRC32C, want)
				}
			}
			mustEqual(t, key, readObject(t, s, key), data)
		})
	}
}

// TestNeverOverwrite: an existing object is refused at Create, and at
// Commit when it appeared meanwhile (multipart: HEAD + If-None-Match on
// complete; single part: If-None-Match on PutObject); the loser's upload
// is aborted and the winner's object intact.
func TestNeverOverwrite(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()

	for _, size := range []int{100, 12 << 20} {
		key := fmt.Sprintf("set-%d", size)
		first, second := testData(1, size), testData(2, size)
		u1, err := s.Create(ctx, key, UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u2, err := s.Create(ctx, key, UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, u1, first, 1<<20)
		writeAll(t, u2, second, 1<<20)
		if _, err := u1.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = u2.Commit(ctx)
		if !errors.Is(err, ErrExists) {
			t.Fatalf("second commit: %v, want ErrExists", err)
		}
		errContains(t, err, "s3://"+bucket+"/"+key)
		if err := u2.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, key, readObject(t, s, key), first)
		if _, err := s.Create(ctx, key, UploadOptions{}); !errors.Is(err, ErrExists) {
			t.Fatalf("create over existing: %v", err)
		}
	}

	// The conditional complete alone (no HEAD): the server refuses it.
	key := "raw"
	if err := putRaw(s, key, []byte("x")); err != nil {
		t.Fatal(err)
	}
	u := s.newUpload(key, UploadOptions{}, PartSchedule{First: MinPartSize, Max: MinPartSize, Every: 1})
	writeAll(t, u, testData(3, MinPartSize+10), 1<<20)
	flushNow(t, u)
	id := u.UploadID()
	var parts []PartInfo = u.Parts()
	_, err := s.api.CompleteMultipartUpload(ctx, completeInput(s, key, id, parts, true))
	if !isPreconditionFailed(err) {
		t.Fatalf("conditional complete over an existing object: %v, want 412", err)
	}
	if err := u.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, key, readObject(t, s, key), []byte("x"))
}

// TestAbortLeavesNothing: an aborted upload leaves neither object nor
// pending multipart upload nor state file; after Abort every call fails.
func TestAbortLeavesNothing(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	state := t.TempDir() + "/state"
	u, err := s.Create(ctx, "a/b", UploadOptions{StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, testData(4, 23<<20), 1<<20)
	if p, _ := s.ListPending(ctx, "a/"); len(p) != 1 {
		t.Fatalf("pending uploads: %v", p)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatal(err)
	}
	if err := u.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.ListPending(ctx, "a/"); len(p) != 0 {
		t.Fatalf("pending uploads after abort: %v", p)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("state file after abort: %v", err)
	}
	if _, err := s.Stat(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat after abort: %v", err)
	}
	if _, err := u.Write([]byte("x")); !errors.Is(err, ErrAborted) {
		t.Fatalf("write after abort: %v", err)
	}
	if _, err := u.Commit(ctx); !errors.Is(err, ErrAborted) {
		t.Fatalf("commit after abort: %v", err)
	}
}

// TestConfirmCatchesMissingPart: a complete that the server accepts with a
// part missing (here: the caller's part list is cut, as a buggy client or
// server could) must not pass the confirmation: size and composite
// checksum differ, the object is removed, Commit fails.
func TestConfirmCatchesMissingPart(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	s := newStore(t, testOptions(srv, bucket))
	ctx := context.Background()
	u, err := s.Create(ctx, "cut", UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, testData(5, 3*MinPartSize), 1<<20)
	flushNow(t, u)
	parts := u.Parts()
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	// Complete with parts 1 and 2 only, as if part 3 had been lost.
	if _, err := s.api.CompleteMultipartUpload(ctx, completeInput(s, "cut", u.UploadID(), parts[:2], false)); err != nil {
		t.Fatal(err)
	}
	crcs := []uint32{parts[0].CRC32C, parts[1].CRC32C, parts[2].CRC32C}
	_, err = u.confirm(ctx, 3*MinPartSize, compositeCRC(crcs), 3)
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("confirm: %v, want ErrSizeMismatch", err)
	}
	if _, err := s.Stat(ctx, "cut"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bad object not removed: %v", err)
	}
	// Same size, different parts: the checksum catches it.
	u2, err := s.Create(ctx, "swap", UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u2, testData(6, 2*MinPartSize), 1<<20)
	flushNow(t, u2)
	p2 := u2.Parts()
	if _, err := s.api.CompleteMultipartUpload(ctx, completeInput(s, "swap", u2.UploadID(), p2, false)); err != nil {
		t.Fatal(err)
	}
	_, err = u2.confirm(ctx, 2*MinPartSize, compositeCRC([]uint32{p2[1].CRC32C, p2[0].CRC32C}), 2)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("confirm: %v, want ErrChecksum", err)
	}
}

// TestEnvironmentOnly: the standard AWS environment alone (keys, region,
// AWS_ENDPOINT_URL) reaches the server, path-style; so does a shared
// config + credentials profile.
func TestEnvironmentOnly(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, false)
	home := t.TempDir()
	cfg := fmt.Sprintf("[profile vgw]\nregion = %s\nendpoint_url = %s\n", "us-east-1", srv.Endpoint)
	creds := fmt.Sprintf("[vgw]\naws_access_key_id = %s\naws_secret_access_key = %s\n", "tapestream-test", "tapestream-test-secret")
	os.WriteFile(home+"/config", []byte(cfg), 0o600)
	os.WriteFile(home+"/credentials", []byte(creds), 0o600)

	// Run in a child process: the environment is process-wide.
	for _, env := range [][]string{
		srv.Env(),
		{"AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials", "AWS_PROFILE=vgw"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(cleanAWSEnv(), childEnv+"=envput", "S3STORE_TEST_URL=s3://"+bucket+"/env/obj")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child with %v: %v\n%s", env, err, out)
		}
		s := newStore(t, testOptions(srv, bucket))
		mustEqual(t, "env object", readObject(t, s, "env/obj"), []byte("written with the environment only\n"))
		if err := s.Delete(context.Background(), "env/obj"); err != nil {
			t.Fatal(err)
		}
	}
}

func cleanAWSEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AWS_") {
			env = append(env, e)
		}
	}
	return env
}

func putRaw(s *Store, key string, data []byte) error {
	_, err := s.api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: strings.NewReader(string(data))})
	return err
}

func TestParseURL(t *testing.T) {
	o, key, err := ParseURL("s3://bkt/pre/fix/SG1-full.tar?endpoint=https://h:9000&region=eu-1&profile=p&ca=/x.pem&path_style=false")
	if err != nil {
		t.Fatal(err)
	}
	if o.Bucket != "bkt" || key != "pre/fix/SG1-full.tar" || o.Endpoint != "https://h:9000" || o.Region != "eu-1" ||
		o.Profile != "p" || o.CAFile != "/x.pem" || o.PathStyle != "false" {
		t.Fatalf("%+v %q", o, key)
	}
	for _, bad := range []string{"s3:/x", "http://b/k", "s3://b/k?colour=red", "s3://b/k?path_style=maybe", "s3:b"} {
		if _, _, err := ParseURL(bad); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestScheduleReaches5TiB(t *testing.T) {
	o := Options{PartSize: DefaultPartSize, MaxPartSize: DefaultMaxPartSize}
	g, err := growEvery(o)
	if err != nil {
		t.Fatal(err)
	}
	sc := PartSchedule{First: o.PartSize, Max: o.MaxPartSize, Every: g}
	if got := sc.total(MaxParts); got < TargetObjectSize {
		t.Fatalf("10,000 parts reach %d bytes", got)
	}
	if (PartSchedule{First: o.PartSize, Max: o.MaxPartSize, Every: g + 1}).total(MaxParts) >= TargetObjectSize {
		t.Fatalf("grow period %d is not the largest", g)
	}
	if g != 812 || sc.size(1) != 8<<20 || sc.size(812) != 8<<20 || sc.size(813) != 16<<20 || sc.size(10000) != 1<<30 {
		t.Fatalf("schedule %+v: sizes %d %d %d", sc, sc.size(812), sc.size(813), sc.size(10000))
	}
	// Part size at 100 GiB: 128 MiB.
	var total int64
	n := int32(1)
	for ; total < 100<<30; n++ {
		total += sc.size(n)
	}
	if sc.size(n) != 128<<20 {
		t.Fatalf("part size at 100 GiB: %d", sc.size(n))
	}
	if _, err := growEvery(Options{PartSize: MinPartSize, MaxPartSize: 64 << 20}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("max part 64 MiB cannot reach 5 TiB: %v", err)
	}
}

// deadline for tests that wait on background work.
func deadline(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// flushNow sends the part being filled and waits for every part in
// flight, as Commit does before completing.
func flushNow(t testing.TB, u *Upload) {
	t.Helper()
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if len(u.buf) > 0 {
		if err := u.flushPart(); err != nil {
			t.Fatal(err)
		}
	}
	u.wg.Wait()
	if err := u.check("flush"); err != nil {
		t.Fatal(err)
	}
}

// TestTLSCustomCA: an HTTPS server whose certificate a private CA signed
// is reached with Options.CAFile, and with AWS_CA_BUNDLE from the
// environment alone; without the CA the TLS handshake fails.
func TestTLSCustomCA(t *testing.T) {
	srv, ca := s3test.StartTLS(t)
	bucket := newBucket(t, srv, false)
	o := testOptions(srv, bucket)
	o.CAFile = ca
	s := newStore(t, o)
	ctx := context.Background()
	u, err := s.Create(ctx, "tls/obj", UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := testData(30, 7<<20)
	writeAll(t, u, data, 1<<20)
	if _, err := u.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "tls/obj", readObject(t, s, "tls/obj"), data)

	o.CAFile = ""
	o.MaxAttempts = 1
	if _, err := newStore(t, o).Stat(ctx, "tls/obj"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v", err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(cleanAWSEnv(), childEnv+"=envput", "S3STORE_TEST_URL=s3://"+bucket+"/env/obj", "AWS_CA_BUNDLE="+ca)
	cmd.Env = append(cmd.Env, srv.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child with AWS_CA_BUNDLE: %v\n%s", err, out)
	}
	mustEqual(t, "env/obj", readObject(t, s, "env/obj"), []byte("written with the environment only\n"))
}
