package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/workload"
)

// recoveryScalingRows restore, with recovery, a set taken online (under
// the mail workload, so that its logs hold transactions to replay) of
// each --scaling size: the restore's peak RSS should not grow with the
// set. The sets are made once (untimed) and kept under --work.
func recoveryScalingRows(ctx context.Context, c *config) ([]*row, error) {
	var rows []*row
	for _, size := range c.Scaling {
		st, err := ensureStore(c, size)
		if err != nil {
			return nil, err
		}
		set := filepath.Join(c.Work, "sets", fmt.Sprintf("online-%d.tset", size))
		if _, err := os.Stat(set); err != nil {
			if err := makeOnlineSet(ctx, c, st, set); err != nil {
				return nil, err
			}
		}
		rdir := filepath.Join(c.Work, "restore-scaling")
		rows = append(rows, &row{
			Name:    fmt.Sprintf("scaling %s: restore + recovery of a set taken online", humanize.IBytes(uint64(size))),
			Section: "scaling", In: st.DataBytes,
			pre:  func() error { return os.RemoveAll(rdir) },
			cmd:  func() *exec.Cmd { return exec.Command(c.Bin, "restore", set, "--to", rdir) },
			post: func(*sample) error { return os.RemoveAll(rdir) },
		})
	}
	return rows, nil
}

// makeOnlineSet takes a full backup of a copy of st while the mail
// workload commits to it.
func makeOnlineSet(ctx context.Context, c *config, st *storeInfo, set string) error {
	dir := filepath.Join(c.Work, "online-set-store")
	logf("making %s: a full backup of a copy of %s under the mail workload (untimed)", set, st.Dir)
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	if out, err := exec.Command("cp", "-a", st.Dir, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v: %s", err, out)
	}
	srv, err := engine.OpenServer(dir, engine.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	g, err := srv.Group("SG1")
	if err != nil {
		return err
	}
	var cc commitCounter
	stop := cc.start(ctx, []workload.Store{mailstore.New(g)})
	time.Sleep(time.Second)
	cd, _ := codec.ParseCodec(codecZFast)
	_, berr := backup.Run(ctx, source.NewLocal(srv), "SG1", set, backup.Options{Type: ese.Full, Media: media.Options{Force: true},
		Pipeline: pipeline.Options{Codec: cd, Workers: c.Workers}})
	if err := stop(); err != nil {
		return err
	}
	return berr
}
