package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"

	"github.com/tapestream/tapestream/media/s3store/s3test"
)

// s3Rows measure an S3 object store as the destination and source of a
// set (issue 16): a backup to S3 against the same backup to a file, and a
// restore reading the set from S3 against reading it from a file, on a
// real S3 server (versitygw) on loopback, sharing this machine's cores.
// Without versitygw the rows are left out (and the report says so).
func s3Rows(c *config, st *storeInfo, set string, tsIn int64) ([]*row, func(), error) {
	bin, ok := s3test.Binary()
	if !ok {
		logf("versitygw not found (%s): no S3 rows", s3test.InstallCmd)
		return nil, func() {}, nil
	}
	srv, err := s3test.StartBinary(bin, filepath.Join(c.Work, "s3"))
	if err != nil {
		return nil, func() {}, err
	}
	stop := func() { srv.Stop(); os.RemoveAll(filepath.Join(c.Work, "s3")) }
	if err := srv.CreateBucket("bench", false); err != nil {
		stop()
		return nil, func() {}, err
	}
	env := append(os.Environ(), srv.Env()...)
	env = append(env, "XDG_CACHE_HOME="+filepath.Join(c.Work, "s3-cache"))
	// The restore rows read a copy of the zstd set (untimed).
	cp := exec.Command(c.Bin, "copy", set, "s3://bench/restore.tset")
	cp.Env = env
	if out, err := cp.CombinedOutput(); err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("copying the set to S3: %v: %s", err, out)
	}
	var n atomic.Int64
	backup := &row{Name: fmt.Sprintf("backup %s w%d > s3", codecZFast, c.Workers), Section: "backup",
		Peer: fmt.Sprintf("backup %s w%d > file", codecZFast, c.Workers), In: tsIn, parse: backupJSON,
		cmd: func() *exec.Cmd {
			// Objects are never replaced: every run writes its own.
			key := fmt.Sprintf("s3://bench/run-%d.tset", n.Add(1))
			cmd := exec.Command(c.Bin, backupArgs(st, codecZFast, c.Workers, key, "--json")...)
			for i, a := range cmd.Args {
				if a == "--force" {
					cmd.Args = append(cmd.Args[:i], cmd.Args[i+1:]...)
					break
				}
			}
			cmd.Env = env
			return cmd
		}}
	rdir := filepath.Join(c.Work, "restore-s3")
	restore := &row{Name: "restore zstd:fastest set from s3 (no recovery)", Section: "restore",
		Peer: "restore zstd:fastest set (no recovery)", In: tsIn,
		pre: func() error { return os.RemoveAll(rdir) },
		cmd: func() *exec.Cmd {
			cmd := exec.Command(c.Bin, "restore", "s3://bench/restore.tset", "--to", rdir, "--no-recover")
			cmd.Env = env
			return cmd
		},
		post: func(*sample) error { return os.RemoveAll(rdir) }}
	return []*row{backup, restore}, stop, nil
}
