package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/internal/fakesource"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// run streams a fake session into an in-memory set and closes it.
func run(ctx context.Context, s *fakesource.Session, opts Options) ([]byte, []FileResult, error) {
	return runSession(ctx, s, opts)
}

func runSession(ctx context.Context, s source.Session, opts Options) ([]byte, []FileResult, error) {
	var buf bytes.Buffer
	tw, err := tapeformat.NewWriter(&buf, tapeformat.WriterOptions{Codec: opts.Codec, RecordSize: 64 << 10})
	if err != nil {
		return nil, nil, err
	}
	if err := tw.Begin(tapeformat.Label{SetID: tapeformat.NewSetID(), SetType: "copy", StorageGroup: "G"}); err != nil {
		return nil, nil, err
	}
	files, err := Run(ctx, s, tw, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), files, nil
}

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

func TestRunKeepsOrderEveryCodec(t *testing.T) {
	for _, c := range []string{"zstd", "lz4", "gzip", "none"} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/%d", c, workers), func(t *testing.T) {
				cdc, _ := codec.ParseCodec(c)
				s := fakesource.New()
				set, files, err := run(context.Background(), s, Options{Codec: cdc, Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				got := readBack(t, set)
				for _, n := range s.Order {
					if !bytes.Equal(got[n], s.Files[n]) {
						t.Fatalf("%s differs after the round trip", n)
					}
				}
				if len(files) != len(s.Order) {
					t.Fatalf("%d files reported", len(files))
				}
				for _, f := range files {
					sum := blake3.Sum256(s.Files[f.Name])
					if f.BLAKE3 != fmt.Sprintf("%x", sum) {
						t.Fatalf("%s: BLAKE3 %s", f.Name, f.BLAKE3)
					}
				}
			})
		}
	}
}

// Pages that came from a source that did not verify them are checked: a
// corrupt page ends the run with an error naming file, page and code; with
// NoVerify it passes through (the engine of a remote store verified it).
func TestRunVerifiesUnverifiedSources(t *testing.T) {
	s := fakesource.New()
	s.Files["A.edb"][37*page.Size+100] ^= 1
	_, _, err := run(context.Background(), s, Options{Codec: codec.Codec{Kind: codec.Zstd}, Workers: 3})
	var pe *page.PageError
	if !errors.As(err, &pe) || pe.Page != 37 || pe.DB != "A.edb" || pe.Code != page.CodeReadVerifyFailure {
		t.Fatalf("error %v does not name A.edb page 37 -1018", err)
	}
	s = fakesource.New()
	s.Files["A.edb"][37*page.Size+100] ^= 1
	if _, _, err := run(context.Background(), s, Options{Codec: codec.Codec{Kind: codec.Zstd}, Workers: 3, NoVerify: true}); err != nil {
		t.Fatalf("NoVerify: %v", err)
	}
}

func TestRunStopsAtTheFirstError(t *testing.T) {
	s := fakesource.New()
	s.FailAt = 20 * page.Size
	if _, _, err := run(context.Background(), s, Options{Codec: codec.Codec{Kind: codec.LZ4}, Workers: 2}); err == nil || err.Error() != "source went away" {
		t.Fatalf("source failure: %v", err)
	}
	s = fakesource.New()
	s.Files["A.edb"] = fakesource.Pages(4000, 3)
	ctx, cancel := context.WithCancel(context.Background())
	st := &Stats{}
	go func() {
		for st.Read.BytesOut.Load() < 1<<20 {
		}
		cancel()
	}()
	if _, _, err := run(ctx, s, Options{Codec: codec.Codec{Kind: codec.LZ4}, Workers: 2, Stats: st, MaxRate: 8 << 20}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}
