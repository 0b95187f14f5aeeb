package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// fakeSession serves in-memory database "files" of sealed pages.
type fakeSession struct {
	files   map[string][]byte
	order   []string
	failAt  int64 // byte offset of files[order[0]] at which Read fails (-1: never)
	mu      sync.Mutex
	aborted error
	ended   bool
	trunc   bool
}

func pages(n int, seed byte) []byte {
	b := make([]byte, n*page.Size)
	for i := 0; i < n; i++ {
		p := b[i*page.Size : (i+1)*page.Size]
		page.Init(p, page.KindLeaf)
		for j := page.HeaderLen; j < page.Size; j += 7 {
			p[j] = seed + byte(i*j)
		}
		page.Seal(p, uint32(i))
	}
	return b
}

func newFake() *fakeSession {
	return &fakeSession{files: map[string][]byte{
		"A.edb": pages(100, 1), // not a whole number of frames
		"B.edb": pages(1, 2),
	}, order: []string{"A.edb", "B.edb"}, failAt: -1}
}

func (s *fakeSession) Type() ese.BackupType { return ese.Copy }
func (s *fakeSession) Group() engine.GroupInfo {
	return engine.GroupInfo{Name: "G", LogPrefix: "E00", Signature: "00"}
}
func (s *fakeSession) Databases() []string                                   { return []string{"A", "B"} }
func (s *fakeSession) PreviousSetID() string                                 { return "" }
func (s *fakeSession) LowGen() uint32                                        { return 1 }
func (s *fakeSession) HighGen() uint32                                       { return 1 }
func (s *fakeSession) Abort(err error)                                       { s.mu.Lock(); s.aborted = err; s.mu.Unlock() }
func (s *fakeSession) LogFiles(context.Context) ([]engine.BackupFile, error) { return nil, nil }
func (s *fakeSession) Truncate(context.Context) ([]string, error) {
	s.trunc = true
	return nil, nil
}
func (s *fakeSession) End(_ context.Context, ok bool, _ string) error { s.ended = ok; return nil }
func (s *fakeSession) DatabaseFiles(context.Context) ([]engine.BackupFile, error) {
	var out []engine.BackupFile
	for _, n := range s.order {
		out = append(out, engine.BackupFile{Name: n, Kind: ese.KindDatabase, Size: int64(len(s.files[n]))})
	}
	return out, nil
}
func (s *fakeSession) OpenFile(_ context.Context, name string) (source.File, error) {
	return &fakeFile{s: s, name: name, data: s.files[name]}, nil
}

type fakeFile struct {
	s    *fakeSession
	name string
	data []byte
	off  int
}

func (f *fakeFile) Info() engine.BackupFile {
	return engine.BackupFile{Name: f.name, Kind: ese.KindDatabase, Size: int64(len(f.data))}
}
func (f *fakeFile) Size() int64            { return int64(len(f.data)) }
func (f *fakeFile) HeaderSnapshot() []byte { return nil }
func (f *fakeFile) Verified() bool         { return false }
func (f *fakeFile) Close() error           { return nil }
func (f *fakeFile) Read(p []byte) (int, error) {
	if f.off >= len(f.data) {
		return 0, io.EOF
	}
	if f.name == f.s.order[0] && f.s.failAt >= 0 && int64(f.off) >= f.s.failAt {
		return 0, errors.New("source went away")
	}
	n := copy(p[:min(len(p), engine.ChunkSize)], f.data[f.off:])
	f.off += n
	return n, nil
}

// memSink is a single-volume sink in memory.
type memSink struct {
	bytes.Buffer
	committed, aborted bool
}

func (m *memSink) NextVolume() error           { return errors.New("single volume") }
func (m *memSink) Commit() error               { m.committed = true; return nil }
func (m *memSink) Abort() error                { m.aborted = true; return nil }
func (m *memSink) Volumes() []media.VolumeInfo { return nil }

func readBack(t *testing.T, set []byte) map[string][]byte {
	t.Helper()
	r, err := tapeformat.NewReader(bytes.NewReader(set), tapeformat.ReaderOptions{Strict: true, RecordSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for {
		fh, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out[fh.Name] = b
	}
	if _, err := r.Manifest(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBackupKeepsOrderEveryCodec(t *testing.T) {
	for _, c := range []string{"zstd", "lz4", "gzip", "none"} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/%d", c, workers), func(t *testing.T) {
				cdc, _ := codec.ParseCodec(c)
				s := newFake()
				dst := &memSink{}
				res, err := Backup(context.Background(), s, dst, Options{Codec: cdc, Workers: workers, RecordSize: 64 << 10})
				if err != nil {
					t.Fatal(err)
				}
				if !dst.committed || dst.aborted || !s.ended || s.aborted != nil || !s.trunc {
					t.Fatalf("committed=%v aborted=%v ended=%v sessionAbort=%v", dst.committed, dst.aborted, s.ended, s.aborted)
				}
				got := readBack(t, dst.Bytes())
				for _, n := range s.order {
					if !bytes.Equal(got[n], s.files[n]) {
						t.Fatalf("%s differs after the round trip", n)
					}
				}
				for _, f := range res.Files {
					sum := blake3.Sum256(s.files[f.Name])
					if f.BLAKE3 != fmt.Sprintf("%x", sum) {
						t.Fatalf("%s: BLAKE3 %s", f.Name, f.BLAKE3)
					}
				}
			})
		}
	}
}

// TestFirstErrorAbortsEverything: a corrupt page or a failing source stops
// every stage, aborts the session and the sink, and commits nothing.
func TestFirstErrorAbortsEverything(t *testing.T) {
	cases := map[string]func(s *fakeSession){
		"corrupt page": func(s *fakeSession) { s.files["A.edb"][37*page.Size+100] ^= 1 },
		"source error": func(s *fakeSession) { s.failAt = 20 * page.Size },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			s := newFake()
			damage(s)
			dst := &memSink{}
			_, err := Backup(context.Background(), s, dst, Options{Codec: codec.Codec{Kind: codec.Zstd}, Workers: 3, RecordSize: 64 << 10})
			if err == nil {
				t.Fatal("backup succeeded")
			}
			if name == "corrupt page" {
				var pe *page.PageError
				if !errors.As(err, &pe) || pe.Page != 37 || pe.DB != "A.edb" || pe.Code != page.CodeReadVerifyFailure {
					t.Fatalf("error %v does not name A.edb page 37 -1018", err)
				}
			}
			if dst.committed || !dst.aborted || s.aborted == nil || s.ended || s.trunc {
				t.Fatalf("committed=%v aborted=%v sessionAbort=%v ended=%v truncated=%v", dst.committed, dst.aborted, s.aborted, s.ended, s.trunc)
			}
		})
	}
}

func TestCanceledBackupAborts(t *testing.T) {
	s := newFake()
	s.files["A.edb"] = pages(4000, 3)
	ctx, cancel := context.WithCancel(context.Background())
	st := &Stats{}
	go func() {
		for st.Read.BytesOut.Load() < 1<<20 {
		}
		cancel()
	}()
	dst := &memSink{}
	_, err := Backup(ctx, s, dst, Options{Codec: codec.Codec{Kind: codec.LZ4}, Workers: 2, Stats: st, MaxRate: 8 << 20})
	if !errors.Is(err, context.Canceled) || !dst.aborted || s.aborted == nil || s.trunc {
		t.Fatalf("err=%v aborted=%v sessionAbort=%v", err, dst.aborted, s.aborted)
	}
}
