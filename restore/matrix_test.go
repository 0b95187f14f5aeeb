package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

// The restore-level damage matrix (issue 14): tapeformat's matrix proves
// the reader chunk by chunk; this one goes through what an operator runs,
// verify and restore (strict and --salvage), on real sets of every codec,
// and checks the two promises end to end:
//
//	verify finds nothing ⇒ the strict restore gives back exactly the
//	    files of the intact set;
//	a salvage gives back no wrong byte: every range of every file it
//	    does not report lost equals the intact set's, and a file it does
//	    not give back at all is named in its report.

const (
	mxFrame   = 64 << 10
	mxSegment = 256 << 10
)

// mxStore makes one store for the whole matrix.
func mxStore(t *testing.T) *engine.Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := engine.InitStore(dir, []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1", "Public"}, LogSize: 256 << 10}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	g, _ := srv.Group("SG1")
	if _, err := workload.Run(context.Background(), mailstore.New(g), workload.RunOptions{
		Workload: workload.Workload{Seed: 9, Streams: 2, Databases: g.Databases()}, StopAfterBytes: 2 << 20,
	}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// tree reads every regular file under dir (relative names).
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			b, _ := os.ReadFile(p)
			out[rel] = b
		}
		return nil
	})
	return out
}

type mxDamage struct {
	name  string
	apply func(b []byte, r *rand.Rand) []byte
}

func mxDamages(other []byte) []mxDamage {
	flip := func(n int) func(b []byte, r *rand.Rand) []byte {
		return func(b []byte, r *rand.Rand) []byte {
			for i := 0; i < n; i++ {
				b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			}
			return b
		}
	}
	var ds []mxDamage
	for i := 0; i < 6; i++ {
		ds = append(ds, mxDamage{fmt.Sprintf("flip1-%d", i), flip(1)})
	}
	ds = append(ds, mxDamage{"flip8", flip(8)})
	for _, frac := range []float64{0.05, 0.3, 0.5, 0.8, 0.97} {
		ds = append(ds, mxDamage{fmt.Sprintf("truncate-%.2f", frac), func(b []byte, r *rand.Rand) []byte {
			return b[:int(float64(len(b))*frac)/512*512]
		}})
	}
	ds = append(ds, mxDamage{"zero-range", func(b []byte, r *rand.Rand) []byte {
		at := len(b)/3 + r.IntN(len(b)/3)
		clear(b[at:min(len(b), at+mxSegment)])
		return b
	}})
	ds = append(ds, mxDamage{"trailing-garbage", func(b []byte, r *rand.Rand) []byte {
		g := make([]byte, 5000)
		for i := range g {
			g[i] = byte(r.IntN(256))
		}
		return append(b, g...)
	}})
	ds = append(ds, mxDamage{"second-set-after", func(b []byte, r *rand.Rand) []byte {
		return append(b, other...)
	}})
	ds = append(ds, mxDamage{"splice-other-set", func(b []byte, r *rand.Rand) []byte {
		at := len(b) / 2 / 512 * 512
		n := min(len(other)/2, len(b)-at) / 512 * 512
		copy(b[at:at+n], other[len(other)/4/512*512:])
		return b
	}})
	return ds
}

func TestRestoreDamageMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("restores many damaged sets")
	}
	srv := mxStore(t)
	src := source.NewLocal(srv)
	work := t.TempDir()
	cases, verifyOK, salvaged := 0, 0, 0
	for _, cs := range []string{"none", "zstd", "lz4", "gzip"} {
		cd, _ := codec.ParseCodec(cs)
		mk := func(name string) []byte {
			set := filepath.Join(work, name)
			if _, err := backup.Run(context.Background(), src, "SG1", set, backup.Options{
				Type: ese.Copy, Media: media.Options{RecordSize: recordSize}, SegmentSize: mxSegment,
				Pipeline: pipeline.Options{Codec: cd, FrameSize: mxFrame},
			}); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(set)
			return b
		}
		intact, other := mk("intact-"+cs+".tar"), mk("other-"+cs+".tar")
		ref := filepath.Join(work, "ref-"+cs)
		if _, err := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: filepath.Join(work, "intact-"+cs+".tar")}},
			restore.GroupOptions{Options: opts(), To: ref, Group: "R", NoRecover: true}); err != nil {
			t.Fatal(err)
		}
		want := tree(t, filepath.Join(ref, "R"))
		for di, d := range mxDamages(other) {
			t.Run(cs+"/"+d.name, func(t *testing.T) {
				cases++
				r := rand.New(rand.NewPCG(uint64(di), 7))
				damaged := d.apply(bytes.Clone(intact), r)
				set := filepath.Join(work, fmt.Sprintf("d-%s-%d.tar", cs, di))
				os.WriteFile(set, damaged, 0o644)
				defer os.Remove(set)
				infos, chain, err := restore.Verify(context.Background(), []restore.SetSource{{Path: set}}, opts())
				ok := err == nil && len(chain) == 0 && len(infos) == 1 && len(infos[0].Problems) == 0 && infos[0].Manifest != nil
				to := filepath.Join(work, fmt.Sprintf("r-%s-%d", cs, di))
				defer os.RemoveAll(to)
				if ok {
					verifyOK++
					if _, err := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: set}},
						restore.GroupOptions{Options: opts(), To: to, Group: "R", NoRecover: true}); err != nil {
						t.Fatalf("verify found nothing, but the restore failed: %v", err)
					}
					got := tree(t, filepath.Join(to, "R"))
					for name, b := range want {
						if !bytes.Equal(got[name], b) {
							t.Fatalf("verify found nothing, but %s restores wrong", name)
						}
					}
					return
				}
				so := opts()
				so.Salvage = true
				res, serr := restore.RestoreGroup(context.Background(), []restore.SetSource{{Path: set}},
					restore.GroupOptions{Options: so, To: to, Group: "R", NoRecover: true})
				if res == nil {
					t.Logf("salvage gave back nothing: %v", serr)
					// Nothing could be laid down (the group's identity is
					// lost with everything): nothing was claimed either.
					return
				}
				salvaged++
				lost := map[string][][2]int64{}
				for _, p := range res.Problems {
					if p.File != "" {
						lost[p.File] = append(lost[p.File], [2]int64{p.Offset, p.Length})
					}
				}
				got := tree(t, filepath.Join(to, "R"))
				for name, b := range want {
					base := filepath.Base(name)
					if base == "group.json" {
						continue // the restore's, not the set's
					}
					g, there := got[name]
					if !there {
						if len(lost[base]) == 0 && !strings.HasPrefix(base, "E0") {
							t.Fatalf("salvage gave back no %s and does not report it lost", name)
						}
						continue
					}
					// Every frame-sized block no loss covers must be exact;
					// a database's pages 0-1 hold what the restore records
					// (the set's log range, which a cut set may not know).
					for off := int64(0); off < int64(len(b)); off += mxFrame {
						end := min(off+mxFrame, int64(len(b)))
						from := off
						if off == 0 && strings.HasSuffix(base, ".edb") {
							from = 2 * 4096
						}
						covered := false
						for _, l := range lost[base] {
							if l[1] == 0 || l[0] < end && off < l[0]+l[1] {
								covered = true
							}
						}
						if covered || int64(len(g)) < end {
							continue
						}
						if !bytes.Equal(g[from:end], b[from:end]) {
							t.Fatalf("salvage gave back wrong bytes in %s [%d,%d) without reporting them lost", name, off, end)
						}
					}
				}
			})
		}
	}
	t.Logf("restore damage matrix: %d cases, %d passed verify (each restored exactly), %d salvaged with no wrong byte outside the reported losses", cases, verifyOK, salvaged)
}
