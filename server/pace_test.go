package server_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/server"
)

// TestPacedRemoteBackups: two groups backed up at once through the store
// server, while the mail workload commits to both over the data API,
// share one paced budget; the commit pressure they are paced by comes
// over the wire.
func TestPacedRemoteBackups(t *testing.T) {
	dir := initStore(t, "SG1", "SG2")
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	groups := []string{"SG1", "SG2"}
	var writers []*writer
	for _, g := range groups {
		writers = append(writers, startWriter(r.Store(g), 2))
	}
	waitFor(t, "commits on both groups", func() bool {
		for _, g := range groups {
			if p, err := r.Pressure(ctx, g); err != nil || p.Commits < 20 {
				return false
			}
		}
		return true
	})
	st, err := r.Status(ctx, "SG1")
	if err != nil || st.Pressure == nil || st.Pressure.Commits == 0 || st.Pressure.Baseline <= 0 {
		t.Fatalf("group status pressure: %+v, %v", st, err)
	}
	ctl := pace.New(pace.Config{Interval: 20 * time.Millisecond})
	sets := t.TempDir()
	var reqs []backup.Request
	for _, g := range groups {
		reqs = append(reqs, backup.Request{Group: g, Target: filepath.Join(sets, g+".tar"), Options: backup.Options{
			Type: ese.Full, Pipeline: pipeline.Options{Codec: mustCodec(t, "zstd"), Workers: 2, Pace: ctl},
		}})
	}
	var outs []backup.Outcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		outs = backup.RunGroups(ctx, r, reqs)
	}()
	wg.Wait()
	for _, w := range writers {
		w.stop(t)
	}
	for _, o := range outs {
		if o.Err != nil {
			t.Fatalf("%s: %v", o.Request.Group, o.Err)
		}
	}
	sum := ctl.Summary()
	if len(sum.Groups) != 2 || len(sum.Notes) != 0 || len(sum.Series) < 2 {
		t.Fatalf("pace summary %+v", sum)
	}
	for _, g := range groups {
		if sum.Baseline(g) <= 0 {
			t.Errorf("%s: no baseline from the server (%v)", g, sum.Baselines)
		}
	}
}
