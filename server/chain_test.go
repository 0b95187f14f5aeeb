package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/server"
	"github.com/tapestream/tapestream/workload"
)

// TestRemoteIncrementalWeek: through the store server, while the mail
// workload writes through its data API, a week of one full and six
// incrementals with mail between them. Each incremental continues the one
// before (sharing at most the generations the checkpoint had not passed)
// and truncates what it copied, so the logs on disk do not pile up. The
// chain restores to exactly the source (store dump); the chain with one
// incremental left out is refused, and the target directory is unchanged.
func TestRemoteIncrementalWeek(t *testing.T) {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken})
	r := remote(t, ts.url, testToken)
	ctx := context.Background()
	if _, err := workload.Run(ctx, r.Store("SG1"), workload.RunOptions{Workload: workload.Workload{Seed: 7, Streams: 3}, StopAfterBytes: 512 << 10}); err != nil {
		t.Fatal(err)
	}
	w := startWriter(r.Store("SG1"), 3)
	sets := t.TempDir()
	var week []*backup.Result
	var srcs []restore.SetSource
	overlaps := 0
	for night := range 7 {
		typ := ese.Incremental
		if night == 0 {
			typ = ese.Full
		}
		time.Sleep(250 * time.Millisecond) // the day's mail
		if night == 6 {
			// The last night the writers stop first, so that the source
			// can be compared with the restore at the same instant.
			w.stop(t)
		}
		path := filepath.Join(sets, fmt.Sprintf("night%d.tar", night))
		res, err := runBackup(t, ctx, r, "SG1", typ, path)
		if err != nil {
			if night < 6 {
				w.stop(t)
			}
			t.Fatalf("night %d (%s): %v", night, typ, err)
		}
		gens, _, err := wal.ListGenerations(vfs.OS, filepath.Join(dir, "SG1"), "E00")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("night %d %-11s logs %d-%d, %d truncated, %d bytes written, closed logs left %v", night, typ, res.LowGen, res.HighGen, len(res.Truncated), res.BytesOut, gens)
		if night > 0 {
			prev := week[night-1]
			if res.PreviousSetID != prev.SetID || res.LowGen > prev.HighGen+1 || res.HighGen <= prev.HighGen {
				t.Fatalf("night %d: logs %d-%d continuing %s do not continue night %d's %d-%d (%s)", night, res.LowGen, res.HighGen, res.PreviousSetID, night-1, prev.LowGen, prev.HighGen, prev.SetID)
			}
			// An incremental copies the logs since the last full or
			// incremental, not every log since the full.
			if night > 1 && res.LowGen <= prev.LowGen {
				t.Fatalf("night %d starts at %d, not past night %d's start %d: the logs since the full piled up", night, res.LowGen, night-1, prev.LowGen)
			}
			if len(res.Truncated) == 0 {
				t.Fatalf("night %d: the incremental truncated nothing", night)
			}
			if res.LowGen <= prev.HighGen {
				overlaps++
			}
		}
		if len(gens) > 0 && gens[0] <= res.LowGen && night > 0 {
			t.Fatalf("night %d: the oldest closed log %d is one the incremental copied from (%d)", night, gens[0], res.LowGen)
		}
		week = append(week, res)
		srcs = append(srcs, restore.SetSource{Path: path})
	}
	// The first repeats the full's own logs (a full truncates only below
	// its frozen checkpoint); a later one what the checkpoint had not
	// passed when the one before truncated. Their copies are compared.
	t.Logf("%d of 6 incrementals repeated generations of the set before them", overlaps)
	g, err := ts.eng.Group("SG1")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := g.Dump(&want, ""); err != nil {
		t.Fatal(err)
	}

	to := filepath.Join(t.TempDir(), "restored")
	res, err := restore.RestoreGroup(ctx, srcs, restore.GroupOptions{To: to, Group: "RSG1"})
	if err != nil {
		t.Fatalf("restore of the week: %v", err)
	}
	if res.LowGen != week[0].LowGen || res.HighGen != week[6].HighGen || len(res.Sets) != 7 {
		t.Fatalf("restore of the week: %+v", res)
	}
	eng, err := engine.OpenServer(to, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rg, _ := eng.Group("RSG1")
	var got bytes.Buffer
	err = rg.Dump(&got, "")
	if cerr := eng.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("restored week dumps %d lines, the source %d: they differ", strings.Count(got.String(), "\n"), strings.Count(want.String(), "\n"))
	}

	// Wednesday's incremental left out: refused, nothing written.
	before := tree(t, to)
	gap := slices.Delete(slices.Clone(srcs), 3, 4)
	if _, err := restore.RestoreGroup(ctx, gap, restore.GroupOptions{To: to, Group: "GAP"}); err == nil || !strings.Contains(err.Error(), "refusing to restore") {
		t.Fatalf("restore without night 3: %v", err)
	}
	if after := tree(t, to); after != before {
		t.Fatalf("a refused restore changed %s:\nbefore\n%s\nafter\n%s", to, before, after)
	}
}

// tree lists every file under dir with its size and modification time.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b.String()
}
