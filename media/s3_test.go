package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media/s3store"
	"github.com/tapestream/tapestream/media/s3store/s3test"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// s3Env starts versitygw with a fresh bucket and puts the standard AWS
// environment (keys, region, AWS_ENDPOINT_URL) in place: the targets in
// these tests carry no endpoint or credentials of their own.
func s3Env(t *testing.T) (*s3test.Server, string) {
	t.Helper()
	srv := s3test.Start(t)
	bucket := fmt.Sprintf("sink%d", time.Now().UnixNano()%1e9)
	if err := srv.CreateBucket(bucket, false); err != nil {
		t.Fatal(err)
	}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	return srv, bucket
}

func s3Store(t *testing.T, bucket string) *s3store.Store {
	t.Helper()
	st, err := s3store.New(context.Background(), s3store.Options{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// teeVolumes records what the sink is given, volume by volume.
type teeVolumes struct {
	s    Sink
	vols [][]byte
}

func (w *teeVolumes) Write(p []byte) (int, error) {
	if len(w.vols) == 0 {
		w.vols = append(w.vols, nil)
	}
	n, err := w.s.Write(p)
	w.vols[len(w.vols)-1] = append(w.vols[len(w.vols)-1], p[:n]...)
	return n, err
}

func (w *teeVolumes) NextVolume() error {
	if err := w.s.NextVolume(); err != nil {
		return err
	}
	w.vols = append(w.vols, nil)
	return nil
}

type setFile struct {
	name string
	data []byte
}

func testSetFiles() []setFile {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 11<<20)
	for i := range big {
		big[i] = byte(r.IntN(7)) // compressible, but not to nothing
	}
	small := []byte(strings.Repeat("mail ", 3000))
	return []setFile{{"Mailbox1.edb", big}, {"E0000000A1.log", small}, {"E0000000A2.log", big[:1<<20]}}
}

// writeTapeSet writes testSetFiles as a tapeformat set to w.
func writeTapeSet(t *testing.T, w tapeformat.VolumeWriter, rs int) {
	t.Helper()
	c, _ := codec.ParseCodec("zstd")
	tw, err := tapeformat.NewWriter(w, tapeformat.WriterOptions{Codec: c, RecordSize: rs, SegmentSize: 256 << 10, FrameSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Begin(tapeformat.Label{SetID: tapeformat.NewSetID(), SetType: ese.Full, StorageGroup: "SG1",
		Databases: []string{"Mailbox1"}, Created: time.Now().UTC(), Host: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range testSetFiles() {
		fw, err := tw.CreateFile(tapeformat.FileInfo{Name: f.name, Kind: tapeformat.KindOther, Size: int64(len(f.data))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(f.data); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// readTapeSet reads a set back through OpenReader and tapeformat, checks
// every file, and returns the raw bytes of each volume.
func readTapeSet(t *testing.T, source string, rs int) {
	t.Helper()
	r, err := OpenReader(source, Options{RecordSize: rs})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr, err := tapeformat.NewReader(r, tapeformat.ReaderOptions{RecordSize: rs, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	want := testSetFiles()
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d files, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != want[i].name || !bytes.Equal(got, want[i].data) {
			t.Fatalf("file %d: %s, %d bytes; want %s, %d bytes", i, h.Name, len(got), want[i].name, len(want[i].data))
		}
	}
	if _, err := tr.Manifest(); err != nil {
		t.Fatal(err)
	}
	if d := tr.Damage(); len(d) != 0 {
		t.Fatalf("damage: %v", d)
	}
}

// rawVolumes reads each volume of a source as raw bytes.
func rawVolumes(t *testing.T, source string) [][]byte {
	t.Helper()
	r, err := OpenReader(source, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var vols [][]byte
	for {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		vols = append(vols, b)
		if err := r.NextVolume(); errors.Is(err, ErrNoMoreVolumes) {
			return vols
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// TestS3SinkSet: a tapeformat set written through the sink to
// s3://BUCKET/prefix/SG1-full.tar lands as key prefix/SG1-full.tar and
// reads back through OpenReader + tapeformat byte for byte; the target
// cannot be written again.
func TestS3SinkSet(t *testing.T) {
	_, bucket := s3Env(t)
	target := "s3://" + bucket + "/prefix/SG1-full.tar"
	if Classify(target) != KindS3 {
		t.Fatalf("Classify(%q) = %v", target, Classify(target))
	}
	const rs = 64 << 10
	s, err := Open(target, Options{RecordSize: rs})
	if err != nil {
		t.Fatal(err)
	}
	tee := &teeVolumes{s: s}
	writeTapeSet(t, tee, rs)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	vols := s.Volumes()
	st := s3Store(t, bucket)
	info, err := st.Stat(context.Background(), "prefix/SG1-full.tar")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Name != target || vols[0].Bytes != info.Size || vols[0].Bytes != int64(len(tee.vols[0])) {
		t.Fatalf("volumes %+v, object %d bytes, written %d", vols, info.Size, len(tee.vols[0]))
	}
	if !strings.HasSuffix(info.CRC32C, "-2") {
		t.Fatalf("want a 2-part object (8 MiB first part), checksum %q", info.CRC32C)
	}
	got := rawVolumes(t, target)
	if len(got) != 1 || !bytes.Equal(got[0], tee.vols[0]) {
		t.Fatal("object differs from the bytes written")
	}
	readTapeSet(t, target, rs)

	if _, err := Open(target, Options{RecordSize: rs}); !errors.Is(err, ErrExists) {
		t.Fatalf("second open of a committed target: %v", err)
	}
	if _, err := Open(target, Options{Force: true}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("force: %v", err)
	}
}

// TestS3SinkVolumes: with a volume size the set is split into objects
// KEY.001, KEY.002, … (each a complete archive), read back across volumes
// from KEY or from KEY.001.
func TestS3SinkVolumes(t *testing.T) {
	_, bucket := s3Env(t)
	target := "s3://" + bucket + "/sets/SG1-split.tar"
	const rs = 64 << 10
	s, err := Open(target, Options{RecordSize: rs, VolumeSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tee := &teeVolumes{s: s}
	writeTapeSet(t, tee, rs)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	vols := s.Volumes()
	if len(vols) < 2 || len(vols) != len(tee.vols) {
		t.Fatalf("%d volumes, %d written", len(vols), len(tee.vols))
	}
	st := s3Store(t, bucket)
	for i, v := range vols {
		key := fmt.Sprintf("sets/SG1-split.tar.%03d", i+1)
		info, err := st.Stat(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != "s3://"+bucket+"/"+key || v.Bytes != info.Size || v.Bytes > 4<<20 {
			t.Fatalf("volume %+v, object %s %d bytes", v, key, info.Size)
		}
	}
	got := rawVolumes(t, target)
	if len(got) != len(tee.vols) {
		t.Fatalf("read %d volumes", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], tee.vols[i]) {
			t.Fatalf("volume %d differs", i+1)
		}
	}
	readTapeSet(t, target, rs)
	readTapeSet(t, target+".001", rs)
}

// TestS3SinkAbort: an aborted set leaves no object and no pending upload,
// also when Abort comes from another goroutine while writes go on.
func TestS3SinkAbort(t *testing.T) {
	_, bucket := s3Env(t)
	target := "s3://" + bucket + "/ab/set.tar"
	s, err := Open(target, Options{VolumeSize: 12 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte{7}, DefaultRecordSize)
	errc := make(chan error, 1)
	go func() {
		for {
			_, err := s.Write(rec)
			if errors.Is(err, tapeformat.ErrEarlyWarning) {
				err = s.NextVolume()
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrAborted) {
		t.Fatalf("write after abort: %v", err)
	}
	st := s3Store(t, bucket)
	ctx := context.Background()
	if objs, err := st.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("objects after abort: %v %v", objs, err)
	}
	if p, err := st.ListPending(ctx, ""); err != nil || len(p) != 0 {
		t.Fatalf("pending uploads after abort: %v %v", p, err)
	}
	if err := s.Commit(); !errors.Is(err, ErrAborted) {
		t.Fatalf("commit after abort: %v", err)
	}
}

// TestS3SinkResume: a sink whose process died (no Commit, no Abort) left
// its upload and state file; the next Open of the same target with the
// same StateDir resumes it, and the set written again commits intact.
func TestS3SinkResume(t *testing.T) {
	_, bucket := s3Env(t)
	target := "s3://" + bucket + "/r/set.tar"
	so := S3Options{StateDir: t.TempDir()}
	data := make([]byte, 20<<20)
	rand.NewChaCha8([32]byte{3, 4}).Read(data)
	write := func(s Sink, n int) {
		for off := 0; off < n; off += DefaultRecordSize {
			if _, err := s.Write(data[off : off+DefaultRecordSize]); err != nil {
				t.Fatal(err)
			}
		}
	}
	s1, err := OpenS3(target, Options{}, so)
	if err != nil {
		t.Fatal(err)
	}
	write(s1, 18<<20) // two 8 MiB parts sent, then "the process dies"
	st := s3Store(t, bucket)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(so.StateDir)
		if len(ents) == 1 {
			if us, err := s3store.ReadState(so.StateDir + "/" + ents[0].Name()); err == nil && len(us.Parts) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no state file with 2 parts")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s2, err := OpenS3(target, Options{}, so)
	if err != nil {
		t.Fatal(err)
	}
	write(s2, len(data))
	if err := s2.Commit(); err != nil {
		t.Fatal(err)
	}
	got := rawVolumes(t, target)
	if len(got) != 1 || !bytes.Equal(got[0], data) {
		t.Fatal("resumed object differs")
	}
	if ents, _ := os.ReadDir(so.StateDir); len(ents) != 0 {
		t.Fatalf("state files left: %v", ents)
	}
	if p, _ := st.ListPending(ctx, ""); len(p) != 0 {
		t.Fatalf("pending: %v", p)
	}
	s1.Abort() // the dead writer's handle: its upload is gone, nothing to do
	if _, err := st.Stat(ctx, "r/set.tar"); err != nil {
		t.Fatalf("the stale handle's Abort removed the committed set: %v", err)
	}
}
