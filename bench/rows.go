package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/dustin/go-humanize"
)

// Peer row names (the tapestream rows refer to them).
const (
	peerTar     = "tar > file"
	peerTarSync = "tar > file && sync file"
	peerZstd    = "tar | zstd -1 -T2 > file"
	peerLZ4     = "tar | lz4 -1 > file"
	peerXZstd   = "tar -xOf SET | zstd -d > /dev/null"
	peerUnTar   = "zstd -dc PEER.tar.zst | tar -x"
	codecZFast  = "zstd:fastest"
	codecZDef   = "zstd:default"
	setZstdName = "set-zstd.tset"
	setEncName  = "set-zstd-age.tset"
)

func peerOf(codec string) string {
	switch {
	case codec == "none":
		return peerTar
	case codec == "lz4":
		return peerLZ4
	case strings.HasPrefix(codec, "zstd"):
		return peerZstd
	}
	return ""
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// backupArgs are the arguments of a tapestream backup of st.
func backupArgs(st *storeInfo, codec string, workers int, out string, extra ...string) []string {
	a := []string{"backup", "--store", st.Dir, "--group", "SG1", "--type", "full", "-o", out,
		"--compress", codec, "--workers", fmt.Sprint(workers), "--progress", "never", "--force"}
	return append(a, extra...)
}

// mainRows are the peers, the backups, the codec ceiling and the restores.
func mainRows(c *config, st *storeInfo) ([]*row, error) {
	outDir := filepath.Join(c.Work, "out")
	setDir := filepath.Join(c.Work, "sets")
	for _, d := range []string{outDir, setDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	dir := filepath.Dir(st.Dir)
	base := filepath.Base(st.Dir)
	tarSrc := "tar -C " + q(dir) + " -cf - " + q(base)
	// Bytes a backup reads (databases + logs), from an untimed run that
	// also makes the set the restore rows read.
	set := filepath.Join(setDir, setZstdName)
	logf("making the restore sets (untimed)")
	cmd := exec.Command(c.Bin, append(backupArgs(st, codecZFast, c.Workers, set), "--json")...)
	cmd.Stderr = os.Stderr
	js, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("backup for the restore rows: %w", err)
	}
	var s0 sample
	backupJSON(js, &s0)
	tsIn := s0.In
	// The same, encrypted (age) to a key of the harness's: the cost of
	// encryption is the ratio of the encrypted rows to these.
	keyFile, pub, err := benchKey(c)
	if err != nil {
		return nil, err
	}
	encSet := filepath.Join(setDir, setEncName)
	cmd = exec.Command(c.Bin, append(backupArgs(st, codecZFast, c.Workers, encSet), "--json", "--encrypt-to", pub)...)
	cmd.Stderr = os.Stderr
	if js, err = cmd.Output(); err != nil {
		return nil, fmt.Errorf("encrypted backup for the restore rows: %w", err)
	}
	var s1 sample
	backupJSON(js, &s1)
	// That full backup truncated the logs that earlier runs left: what
	// tar reads is the store as it is now (counting the logs gone since
	// would inflate the peers' MB/s and compression ratio).
	if st.DataBytes, err = warm(st.Dir); err != nil {
		return nil, err
	}
	peerSet := filepath.Join(setDir, "peer.tar.zst")
	if err := exec.Command("sh", "-c", tarSrc+" | zstd -1 -T2 -q -f -o "+q(peerSet)).Run(); err != nil {
		return nil, fmt.Errorf("peer set: %w", err)
	}
	logf("store %s: %s of files (tar), a backup reads %s", st.Dir, humanize.IBytes(uint64(st.DataBytes)), humanize.IBytes(uint64(tsIn)))

	var rows []*row
	peer := func(name, script, out string) {
		rows = append(rows, &row{Name: name, Section: "backup", IsPeer: true, In: st.DataBytes,
			cmd: shell(script), post: fileSize(out, false)})
	}
	o := func(n string) string { return filepath.Join(outDir, n) }
	peer(peerTar, tarSrc+" > "+q(o("peer.tar")), o("peer.tar"))
	// The file sink fsyncs the set at commit; tar does not. This peer
	// shows what the fsync costs on this disk.
	peer(peerTarSync, tarSrc+" > "+q(o("peer-sync.tar"))+" && sync "+q(o("peer-sync.tar")), o("peer-sync.tar"))
	peer(peerZstd, tarSrc+" | zstd -1 -T2 -q > "+q(o("peer.tar.zst")), o("peer.tar.zst"))
	peer(peerLZ4, tarSrc+" | lz4 -1 -q > "+q(o("peer.tar.lz4")), o("peer.tar.lz4"))

	w := c.Workers
	ts := func(codec string, workers int, sinkKind string, extra ...string) {
		name := fmt.Sprintf("backup %s w%d", codec, workers)
		for _, e := range extra {
			name += " " + e
		}
		r := &row{Section: "backup", Peer: peerOf(codec), In: tsIn}
		slug := strings.NewReplacer(" ", "_", ":", "-", "/", "-", ">", "", "|", "").Replace(name)
		switch sinkKind {
		case "file":
			r.Name = name + " > file"
			out := o(slug + ".tset")
			args := append(backupArgs(st, codec, workers, out, "--json"), extra...)
			r.cmd = func() *exec.Cmd { return exec.Command(c.Bin, args...) }
			r.parse, r.post = backupJSON, fileSize(out, false)
		case "stdout":
			r.Name = name + " -o - | cat > file"
			out := o(slug + ".tset")
			args := append(backupArgs(st, codec, workers, "-"), extra...)
			for i := range args {
				args[i] = q(args[i])
			}
			r.cmd = shell(q(c.Bin) + " " + strings.Join(args, " ") + " | cat > " + q(out))
			r.post = fileSize(out, false)
		case "discard":
			r.Name = name + " > /dev/null"
			args := append(backupArgs(st, codec, workers, "/dev/null", "--json"), extra...)
			r.cmd = func() *exec.Cmd { return exec.Command(c.Bin, args...) }
			r.parse = backupJSON
		}
		rows = append(rows, r)
	}
	for _, codec := range []string{"none", "lz4", codecZFast, codecZDef, "gzip"} {
		ts(codec, 1, "file")
		if w != 1 {
			ts(codec, w, "file")
		}
	}
	ts(codecZFast, w, "stdout")
	ts("none", w, "stdout")
	for _, codec := range []string{"none", "lz4", codecZFast} {
		ts(codec, w, "discard")
	}
	ts("none", w, "discard", "--no-verify")
	ts(codecZFast, w, "discard", "--no-verify")
	ts(codecZFast, w, "file", "--no-verify")
	{
		out := o("backup-age.tset")
		args := append(backupArgs(st, codecZFast, w, out, "--json"), "--encrypt-to", pub)
		rows = append(rows, &row{Name: fmt.Sprintf("backup %s w%d encrypted > file", codecZFast, w), Section: "backup",
			Peer: fmt.Sprintf("backup %s w%d > file", codecZFast, w), In: tsIn,
			cmd:   func() *exec.Cmd { return exec.Command(c.Bin, args...) },
			parse: backupJSON, post: fileSize(out, false)})
	}
	// The other frame size: zstd's ratio on mail depends on it (see the
	// ceiling rows).
	ts(codecZFast, w, "file", "--frame-size", altFrameFlag())

	if c.CompareBin != "" {
		// Before/after twins of the key rows, run with the other binary;
		// their "vs peer" is before / after.
		var twins []*row
		for _, r := range rows {
			if r.IsPeer || !compareRow(r.Name, w) {
				continue
			}
			t := *r
			t.Name, t.Peer = "before: "+r.Name, r.Name
			cmdf := r.cmd
			t.cmd = func() *exec.Cmd {
				cmd := cmdf()
				if cmd.Path == c.Bin {
					cmd.Path, cmd.Args[0] = c.CompareBin, c.CompareBin
				} else {
					cmd.Args = []string{cmd.Args[0], cmd.Args[1], strings.Replace(cmd.Args[2], q(c.Bin), q(c.CompareBin), 1)}
				}
				return cmd
			}
			twins = append(twins, &t)
		}
		rows = append(rows, twins...)
	}
	rows = append(rows, ceilingRows(c, st)...)

	// Restores of the zstd set (no recovery: it has nothing to replay; see
	// the recovery rows of the online set).
	rdir := filepath.Join(c.Work, "restore")
	rows = append(rows,
		&row{Name: peerXZstd, Section: "restore", IsPeer: true, In: tsIn,
			cmd: shell("tar -xOf " + q(set) + " --wildcards '*.zst.part*' | zstd -d -q > /dev/null")},
		&row{Name: peerUnTar, Section: "restore", IsPeer: true, In: st.DataBytes,
			pre:  func() error { os.RemoveAll(rdir); return os.MkdirAll(rdir, 0o755) },
			cmd:  shell("zstd -dc -q " + q(peerSet) + " | tar -xf - -C " + q(rdir)),
			post: func(*sample) error { return os.RemoveAll(rdir) }},
		&row{Name: "restore zstd:fastest set (no recovery)", Section: "restore", Peer: peerXZstd, In: tsIn,
			pre: func() error { return os.RemoveAll(rdir) },
			cmd: func() *exec.Cmd {
				return exec.Command(c.Bin, "restore", set, "--to", rdir, "--no-recover")
			},
			post: func(*sample) error { return os.RemoveAll(rdir) }},
		&row{Name: "restore zstd:fastest encrypted set (no recovery)", Section: "restore", Peer: "restore zstd:fastest set (no recovery)", In: s1.In,
			pre: func() error { return os.RemoveAll(rdir) },
			cmd: func() *exec.Cmd {
				return exec.Command(c.Bin, "restore", encSet, "--to", rdir, "--no-recover", "--identity", keyFile)
			},
			post: func(*sample) error { return os.RemoveAll(rdir) }},
	)
	s3, stop, err := s3Rows(c, st, set, tsIn)
	if err != nil {
		logf("S3 rows left out: %v", err)
	}
	c.cleanups = append(c.cleanups, stop)
	rows = append(rows, s3...)
	return append(rows, groupRestoreRows(c, set, tsIn)...), nil
}

// groupRestoreRows are whole-server recovery (seed 003: "restore multiple
// instances in parallel"): the set restored, with recovery, into four
// groups of one store by four restore processes at once, against the same
// four one after another (each group locks itself, not the store).
func groupRestoreRows(c *config, set string, in int64) []*row {
	const n = 4
	dir := filepath.Join(c.Work, "restore-groups")
	restore := func(i int) string {
		return q(c.Bin) + " restore " + q(set) + " --to " + q(dir) + fmt.Sprintf(" --group RG%d", i)
	}
	var together, serial []string
	var wait []string
	for i := 1; i <= n; i++ {
		together = append(together, restore(i)+fmt.Sprintf(" > /dev/null & p%d=$!", i))
		wait = append(wait, fmt.Sprintf("wait $p%d", i))
		serial = append(serial, restore(i)+" > /dev/null")
	}
	clean := func() error { return os.RemoveAll(dir) }
	after := func(*sample) error { return os.RemoveAll(dir) }
	seq := fmt.Sprintf("restore %d groups one after another", n)
	return []*row{
		{Name: seq, Section: "restore", IsPeer: true, In: n * in, pre: clean, post: after,
			cmd: shell(strings.Join(serial, " && "))},
		{Name: fmt.Sprintf("restore %d groups at once (%d processes)", n, n), Section: "restore", Peer: seq, In: n * in, pre: clean, post: after,
			cmd: shell(strings.Join(together, "; ") + "; " + strings.Join(wait, " && "))},
	}
}

// benchKey returns the harness's age key (made once in the work
// directory): the identity file and the public key.
func benchKey(c *config) (file, pub string, err error) {
	file = filepath.Join(c.Work, "bench-age.key")
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		id, gerr := age.GenerateX25519Identity()
		if gerr != nil {
			return "", "", gerr
		}
		b = []byte(id.String() + "\n")
		err = os.WriteFile(file, b, 0o600)
	}
	if err != nil {
		return "", "", err
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(b)))
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", file, err)
	}
	return file, id.Recipient().String(), nil
}

// compareRow tells the rows that get a "before:" twin with --compare-bin.
func compareRow(name string, w int) bool {
	for _, k := range []string{
		fmt.Sprintf("backup none w%d > /dev/null", w),
		fmt.Sprintf("backup lz4 w%d > /dev/null", w),
		fmt.Sprintf("backup %s w%d > /dev/null", codecZFast, w),
		fmt.Sprintf("backup %s w%d > file", codecZFast, w),
		fmt.Sprintf("backup none w%d > file", w),
	} {
		if name == k {
			return true
		}
	}
	return false
}

// scalingRows back up stores of each --scaling size with zstd:fastest and
// all workers to /dev/null: time should grow linearly, peak RSS not at all.
func scalingRows(c *config) ([]*row, error) {
	var rows []*row
	for _, size := range c.Scaling {
		st, err := ensureStore(c, size)
		if err != nil {
			return nil, err
		}
		args := backupArgs(st, codecZFast, c.Workers, "/dev/null", "--json")
		rows = append(rows, &row{
			Name:    fmt.Sprintf("scaling %s: backup zstd:fastest w%d > /dev/null", humanize.IBytes(uint64(size)), c.Workers),
			Section: "scaling", In: st.DataBytes,
			cmd:   func() *exec.Cmd { return exec.Command(c.Bin, args...) },
			parse: backupJSON,
		})
	}
	return rows, nil
}
