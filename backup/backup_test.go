package backup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/internal/fakesource"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

func opts() backup.Options {
	return backup.Options{Type: ese.Copy, Pipeline: pipeline.Options{Codec: codec.Codec{Kind: codec.Zstd}, Workers: 2}, Media: media.Options{RecordSize: 64 << 10}}
}

// A backup that succeeds commits the set, records it, then truncates and
// ends the session, in that order.
func TestRunCommitsRecordsTruncatesEnds(t *testing.T) {
	s := fakesource.New()
	set := filepath.Join(t.TempDir(), "set.tar")
	o := opts()
	o.Type = ese.Full
	var recorded bool
	o.Recorder = backup.RecorderFunc(func(_ context.Context, res *backup.Result) error {
		if _, err := os.Stat(set); err != nil {
			t.Errorf("recorded before the set was durable: %v", err)
		}
		if s.Truncated() || s.Ended() {
			t.Error("recorded after truncation or end")
		}
		recorded = true
		return nil
	})
	res, err := backup.Run(context.Background(), fakesource.Source{S: s}, "G", set, o)
	if err != nil {
		t.Fatal(err)
	}
	if !recorded || !s.Truncated() || !s.Ended() || s.Aborted() != nil {
		t.Fatalf("recorded=%v truncated=%v ended=%v aborted=%v", recorded, s.Truncated(), s.Ended(), s.Aborted())
	}
	if len(res.Files) != 2 || res.Target != set || len(res.Volumes) != 1 {
		t.Fatalf("result %+v", res)
	}
	infos, chain, err := restore.Verify(context.Background(), []restore.SetSource{{Path: set}}, restore.Options{Sink: media.Options{RecordSize: 64 << 10}})
	if err != nil || len(chain) > 0 || len(infos[0].Problems) > 0 {
		t.Fatalf("verify: %v %v %v", err, chain, infos[0].Problems)
	}
}

// The first error aborts the session and the set: nothing committed,
// nothing truncated, no file left behind.
func TestRunFailureAbortsEverything(t *testing.T) {
	cases := map[string]func(s *fakesource.Session, o *backup.Options){
		"corrupt page": func(s *fakesource.Session, o *backup.Options) { s.Files["A.edb"][37*page.Size+100] ^= 1 },
		"source error": func(s *fakesource.Session, o *backup.Options) { s.FailAt = 20 * page.Size },
		"check refuses": func(s *fakesource.Session, o *backup.Options) {
			o.Check = func(source.Session) error { return errors.New("no") }
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			s := fakesource.New()
			o := opts()
			damage(s, &o)
			set := filepath.Join(t.TempDir(), "set.tar")
			_, err := backup.Run(context.Background(), fakesource.Source{S: s}, "G", set, o)
			if err == nil {
				t.Fatal("backup succeeded")
			}
			if name == "corrupt page" && !page.IsCorruption(err) {
				t.Fatalf("error %v is not a page error", err)
			}
			if s.Aborted() == nil || s.Ended() || s.Truncated() {
				t.Fatalf("sessionAbort=%v ended=%v truncated=%v", s.Aborted(), s.Ended(), s.Truncated())
			}
			if ents, _ := os.ReadDir(filepath.Dir(set)); len(ents) != 0 {
				t.Fatalf("left behind: %v", ents)
			}
		})
	}
}

// A set that is durable but cannot be recorded keeps every log.
func TestRecordFailureTruncatesNothing(t *testing.T) {
	s := fakesource.New()
	o := opts()
	o.Recorder = backup.RecorderFunc(func(context.Context, *backup.Result) error { return errors.New("catalog full") })
	set := filepath.Join(t.TempDir(), "set.tar")
	res, err := backup.Run(context.Background(), fakesource.Source{S: s}, "G", set, o)
	if err == nil || res == nil {
		t.Fatalf("err=%v res=%v", err, res)
	}
	if s.Truncated() || s.Ended() || s.Aborted() == nil {
		t.Fatalf("truncated=%v ended=%v aborted=%v", s.Truncated(), s.Ended(), s.Aborted())
	}
	if _, err := os.Stat(set); err != nil {
		t.Fatalf("the durable set is gone: %v", err)
	}
}

// RunGroups: one group's failure does not stop another; a retry runs with
// the request it returns.
func TestRunGroupsIsolatesAndRetries(t *testing.T) {
	dir := t.TempDir()
	good, bad := fakesource.New(), fakesource.New()
	bad.FailAt = 0
	src := multiSource{"G1": good, "G2": bad}
	retried := false
	reqs := []backup.Request{
		{Group: "G1", Target: filepath.Join(dir, "g1.tar"), Options: opts()},
		{Group: "G2", Target: filepath.Join(dir, "g2.tar"), Options: opts(), Retry: func(err error, prev backup.Request) (backup.Request, bool) {
			retried = true
			bad.FailAt = -1
			prev.Target = filepath.Join(dir, "g2-retry.tar")
			return prev, true
		}},
	}
	outs := backup.RunGroups(context.Background(), src, reqs)
	if outs[0].Err != nil || outs[1].Err != nil || !retried {
		t.Fatalf("outcomes: %v / %v, retried %v", outs[0].Err, outs[1].Err, retried)
	}
	if outs[1].Request.Target != filepath.Join(dir, "g2-retry.tar") {
		t.Fatalf("retry target %s", outs[1].Request.Target)
	}
	for _, n := range []string{"g1.tar", "g2-retry.tar"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}

type multiSource map[string]*fakesource.Session

func (m multiSource) Prepare(context.Context) ([]engine.GroupInfo, error) { return nil, nil }
func (m multiSource) Begin(ctx context.Context, group string, typ ese.BackupType, dbs []string) (source.Session, error) {
	return fakesource.Source{S: m[group]}.Begin(ctx, group, typ, dbs)
}
func (m multiSource) Close() error { return nil }

// A set written to a stream is not known durable: a full truncates
// nothing and says so (issue 15: `backup -o - | cat > FILE` where cat
// fails must not have deleted logs).
func TestStreamTruncatesNothing(t *testing.T) {
	s := fakesource.New()
	o := opts()
	o.Type = ese.Full
	var out bytes.Buffer
	o.Media.Stdout = &out
	res, err := backup.Run(context.Background(), fakesource.Source{S: s}, "G", "-", o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Truncated() || !s.Ended() || res.TruncationSkipped == "" || out.Len() == 0 {
		t.Fatalf("truncated=%v ended=%v skipped=%q bytes=%d", s.Truncated(), s.Ended(), res.TruncationSkipped, out.Len())
	}
}
