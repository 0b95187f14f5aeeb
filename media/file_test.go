package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestream/tapestream/tapeformat"
)

// record returns a record of size bytes identifying (tag, seq).
func record(size int, tag, seq int) []byte {
	p := make([]byte, size)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(p[i:], uint64(tag)<<48^uint64(seq)<<24^uint64(i))
	}
	binary.LittleEndian.PutUint32(p[0:], uint32(tag))
	binary.LittleEndian.PutUint32(p[4:], uint32(seq))
	return p
}

func recordID(p []byte) (tag, seq int) {
	return int(binary.LittleEndian.Uint32(p[0:])), int(binary.LittleEndian.Uint32(p[4:]))
}

func mustNotExist(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (err %v), want it absent", name, err)
	}
}

func TestFileSinkCommit(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	s, err := Open(name, Options{RecordSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; i < 3; i++ {
		r := record(4096, 1, i)
		want.Write(r)
		if n, err := s.Write(r); err != nil || n != len(r) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	mustNotExist(t, name)
	if _, err := os.Stat(name + PartialSuffix); err != nil {
		t.Fatalf("partial file: %v", err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, name+PartialSuffix)
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("content mismatch (%d bytes, %v)", len(got), err)
	}
	v := s.Volumes()
	if len(v) != 1 || v[0].Name != name || v[0].Bytes != 3*4096 || v[0].Records != 3 || v[0].FileNumber != -1 {
		t.Fatalf("volumes %+v", v)
	}
	if err := s.Abort(); err != nil {
		t.Fatalf("abort after commit: %v", err)
	}
	if _, err := os.Stat(name); err != nil {
		t.Fatalf("abort after commit removed the set: %v", err)
	}
	if _, err := s.Write(record(4096, 1, 9)); !errors.Is(err, ErrCommitted) {
		t.Fatalf("write after commit: %v", err)
	}
	if err := s.NextVolume(); err == nil {
		t.Fatal("NextVolume on a committed single file succeeded")
	}
}

func TestFileSinkExisting(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	os.WriteFile(name, []byte("old"), 0o644)
	_, err := Open(name, Options{})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("open over existing: %v", err)
	}
	var se *Error
	if !errors.As(err, &se) || se.Target != name {
		t.Fatalf("error does not name the file: %v", err)
	}
	s, err := Open(name, Options{Force: true, RecordSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(512, 2, 0))
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); len(b) != 512 {
		t.Fatalf("not replaced: %d bytes", len(b))
	}

	// The partial file of a writer that is alive is refused without Force;
	// one nobody holds (its writer was killed) is removed and reported.
	name2 := filepath.Join(dir, "other.tar")
	live, err := Open(name2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name2, Options{}); !errors.Is(err, ErrPartialExists) {
		t.Fatalf("open while another writer holds the partial file: %v", err)
	}
	live.Abort()
	os.WriteFile(name2+PartialSuffix, []byte("crashed"), 0o644)
	var report bytes.Buffer
	s, err = Open(name2, Options{Stderr: &report})
	if err != nil {
		t.Fatalf("open with a leftover partial file: %v", err)
	}
	if !strings.Contains(report.String(), "killed") {
		t.Fatalf("the leftover partial file was removed silently: %q", report.String())
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, name2+PartialSuffix)
}

func TestFileSinkCommitRace(t *testing.T) {
	// The final name appears while the set is written: Commit must not
	// clobber it, and Abort then removes only our partial file.
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	s, err := Open(name, Options{RecordSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(512, 1, 0))
	os.WriteFile(name, []byte("theirs"), 0o644)
	if err := s.Commit(); !errors.Is(err, ErrExists) {
		t.Fatalf("commit over a new file: %v", err)
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != "theirs" {
		t.Fatalf("other file clobbered: %q", b)
	}
	mustNotExist(t, name+PartialSuffix)
}

func TestFileSinkAbort(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	s, err := Open(name, Options{RecordSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(1024, 1, 0))
	// A bad record fails the Write; Abort from another goroutine is safe.
	if _, err := s.Write(make([]byte, 100)); !errors.Is(err, ErrRecordSize) {
		t.Fatalf("bad record: %v", err)
	}
	done := make(chan error)
	go func() { done <- s.Abort() }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, name)
	mustNotExist(t, name+PartialSuffix)
	if _, err := s.Write(record(1024, 1, 1)); !errors.Is(err, ErrAborted) {
		t.Fatalf("write after abort: %v", err)
	}
	if err := s.Commit(); !errors.Is(err, ErrAborted) {
		t.Fatalf("commit after abort: %v", err)
	}
	if err := s.Abort(); err != nil {
		t.Fatalf("second abort: %v", err)
	}
}

func TestFileSinkAbortConcurrent(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	s, err := Open(name, Options{RecordSize: 4096, VolumeSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rec := record(4096, 1, 0)
		for {
			_, err := s.Write(rec)
			switch {
			case err == nil:
			case errors.Is(err, tapeformat.ErrEarlyWarning):
			case errors.Is(err, tapeformat.ErrEndOfMedium):
				if s.NextVolume() != nil {
					return
				}
			default:
				if !errors.Is(err, ErrAborted) {
					t.Errorf("write: %v", err)
				}
				return
			}
			_ = s.Volumes()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(s.Volumes()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // let the writer get a few volumes in
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("abort left %d files, first %s", len(ents), ents[0].Name())
	}
}

func TestSplitVolumes(t *testing.T) {
	const rs = 4096
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	// reserve = 2*4096 + 10 KiB = 18432; volume 40960 = 10 records.
	// Early warning once 40960-used < 18432, i.e. after record 6 (24576);
	// records 7..10 fill the reserve; record 11 is end of medium.
	opts := Options{RecordSize: rs, VolumeSize: 10 * rs}
	if _, err := Open(name, Options{RecordSize: rs, VolumeSize: 5 * rs}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("too small volume: %v", err)
	}
	s, err := Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	var written [][]byte
	for i := 1; i <= 10; i++ {
		r := record(rs, 1, seq)
		n, err := s.Write(r)
		if n != rs {
			t.Fatalf("record %d: n=%d", i, n)
		}
		if i == 6 {
			if !errors.Is(err, tapeformat.ErrEarlyWarning) {
				t.Fatalf("record 6: want early warning, got %v", err)
			}
		} else if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		written = append(written, r)
		seq++
	}
	r := record(rs, 1, seq)
	if n, err := s.Write(r); n != 0 || !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Fatalf("record 11: n=%d err=%v, want end of medium", n, err)
	}
	if fi, _ := os.Stat(name + ".001" + PartialSuffix); fi.Size() != 10*rs {
		t.Fatalf("volume 1 size %d", fi.Size())
	}
	if err := s.NextVolume(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the interrupted record again, then more
		r := record(rs, 1, seq)
		if _, err := s.Write(r); err != nil {
			t.Fatal(err)
		}
		written = append(written, r)
		seq++
	}
	mustNotExist(t, name+".001")
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name + ".001.partial", name + ".002.partial", name} {
		mustNotExist(t, n)
	}
	vols := s.Volumes()
	if len(vols) != 2 || vols[0].Records != 10 || !vols[0].EarlyWarning || vols[1].Records != 3 || vols[1].Name != name+".002" {
		t.Fatalf("volumes %+v", vols)
	}

	// Read back through NAME (finds NAME.001) and from NAME.002.
	rd, err := OpenReader(name, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got [][]byte
	for v := 1; ; v++ {
		if rd.Volume() != v {
			t.Fatalf("volume %d, want %d", rd.Volume(), v)
		}
		data, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			got = append(got, data[:rs])
			data = data[rs:]
		}
		if err := rd.NextVolume(); err != nil {
			if !errors.Is(err, ErrNoMoreVolumes) {
				t.Fatal(err)
			}
			break
		}
	}
	if len(got) != len(written) {
		t.Fatalf("read %d records, wrote %d", len(got), len(written))
	}
	for i := range got {
		if !bytes.Equal(got[i], written[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	rd2, err := OpenReader(name+".002", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rd2.Volume() != 2 {
		t.Fatalf("volume %d", rd2.Volume())
	}
	rd2.Close()

	// A second set with Force and a single volume removes stale .002.
	if _, err := Open(name, opts); !errors.Is(err, ErrExists) {
		t.Fatalf("reopen without force: %v", err)
	}
	os.WriteFile(name+".003"+PartialSuffix, []byte("crashed"), 0o644)
	s, err = Open(name, Options{RecordSize: rs, VolumeSize: 10 * rs, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(rs, 2, 0))
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, name+".002")
	mustNotExist(t, name+".003"+PartialSuffix)
	if fi, err := os.Stat(name + ".001"); err != nil || fi.Size() != rs {
		t.Fatalf("new volume 1: %v", err)
	}
}

func TestSplitAbort(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "set.tar")
	s, err := Open(name, Options{RecordSize: 512, VolumeSize: 20 * 512, VolumeReserve: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		_, err := s.Write(record(512, 1, i))
		if errors.Is(err, tapeformat.ErrEndOfMedium) {
			if err := s.NextVolume(); err != nil {
				t.Fatal(err)
			}
			i--
			continue
		}
		if err != nil && !errors.Is(err, tapeformat.ErrEarlyWarning) {
			t.Fatal(err)
		}
	}
	if n := len(s.Volumes()); n != 3 {
		t.Fatalf("%d volumes", n)
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("abort left %v", ents)
	}
}

func TestFileReaderSingle(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "x")
	os.WriteFile(name, []byte("hello"), 0o644)
	r, err := OpenReader(name, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if string(b) != "hello" {
		t.Fatalf("%q", b)
	}
	if err := r.NextVolume(); !errors.Is(err, ErrNoMoreVolumes) {
		t.Fatalf("next volume: %v", err)
	}
	r.Close()
	if _, err := OpenReader(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{RecordSize: 1000}, {RecordSize: -512}, {Append: true, Overwrite: true}, {Append: true}, {VolumeSize: -1}} {
		if _, err := Open(filepath.Join(dir, "x"), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := Open("-", Options{VolumeSize: 1 << 20}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("volume size on stdout: %v", err)
	}
}

// BenchmarkFileSink measures file-sink throughput with 1 MiB records
// (MB/s as reported by the testing package; fsync at Commit included).
func BenchmarkFileSink(b *testing.B) {
	dir := b.TempDir()
	rec := record(DefaultRecordSize, 1, 0)
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	s, err := Open(filepath.Join(dir, "bench.tar"), Options{Force: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := s.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSplitFileSink is the same through 256 MiB split volumes.
func BenchmarkSplitFileSink(b *testing.B) {
	dir := b.TempDir()
	rec := record(DefaultRecordSize, 1, 0)
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	s, err := Open(filepath.Join(dir, "bench.tar"), Options{Force: true, VolumeSize: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		_, err := s.Write(rec)
		if errors.Is(err, tapeformat.ErrEndOfMedium) {
			if err := s.NextVolume(); err != nil {
				b.Fatal(err)
			}
			_, err = s.Write(rec)
		}
		if err != nil && !errors.Is(err, tapeformat.ErrEarlyWarning) {
			b.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "64MiB": 64 << 20, "1GB": 1e9, "512k": 512000, "2KiB": 2048} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseSize("lots"); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("bad size: %v", err)
	}
}
