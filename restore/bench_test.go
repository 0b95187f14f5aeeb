package restore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

// BenchmarkRestore restores a set of a 16 MiB mail store (written with
// each codec) into a fresh store root per iteration, with and without
// recovery. `go run ./bench` measures the same against tar | zstd -d on a
// 1 GiB store.
func BenchmarkRestore(b *testing.B) {
	dir := b.TempDir()
	store := filepath.Join(dir, "store")
	dbs := []string{"Mailbox1", "Public"}
	if err := engine.InitStore(store, []engine.GroupSpec{{Name: "SG1", Databases: dbs}}, engine.Options{}); err != nil {
		b.Fatal(err)
	}
	srv, err := engine.OpenServer(store, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	g, err := srv.Group("SG1")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := workload.Run(context.Background(), mailstore.New(g), workload.RunOptions{
		Workload: workload.Workload{Seed: 1, Streams: 4, Databases: dbs}, StopAfterBytes: 16 << 20,
	}); err != nil {
		b.Fatal(err)
	}
	src := source.NewLocal(srv)
	for _, cs := range []string{"none", "lz4", "zstd:fastest", "gzip"} {
		cd, err := codec.ParseCodec(cs)
		if err != nil {
			b.Fatal(err)
		}
		set := filepath.Join(dir, "set-"+cd.Kind.String())
		res, err := backup.Run(context.Background(), src, "SG1", set, backup.Options{Type: ese.Copy, Pipeline: pipeline.Options{Codec: cd}, Host: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		for _, rec := range []bool{false, true} {
			name := cs
			if rec {
				name += "/recover"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(res.BytesIn)
				i := 0
				for b.Loop() {
					to := filepath.Join(dir, fmt.Sprintf("r-%s-%v-%d", cd.Kind, rec, i))
					i++
					if _, err := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: set}},
						restore.GroupOptions{To: to, NoRecover: !rec}); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					os.RemoveAll(to)
					b.StartTimer()
				}
			})
		}
	}
}
