package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// storeInfo is a generated mail store.
type storeInfo struct {
	Dir       string // store root (tar's DIR)
	Size      int64  // requested database size
	DataBytes int64  // bytes of all files under Dir (what tar reads)
}

const readyMark = ".bench-ready"

// ensureStore returns the store of the given database size under --work,
// generating it the first time: store init, store load to the size (the
// mail workload), then one full backup to /dev/null so that the logs are
// truncated and every later backup (and tar) sees the steady state of a
// server backed up daily: the databases plus a few logs.
func ensureStore(c *config, size int64) (*storeInfo, error) {
	dir := filepath.Join(c.Work, fmt.Sprintf("store-%d", size))
	if _, err := os.Stat(filepath.Join(dir, readyMark)); err != nil {
		logf("generating a %s mail store in %s (once; kept for later runs)", humanize.IBytes(uint64(size)), dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		steps := [][]string{
			{"store", "init", "--dir", dir},
			{"store", "load", "--dir", dir, "--group", "SG1", "--size", fmt.Sprint(size)},
			{"backup", "--store", dir, "--group", "SG1", "--type", "full", "-o", "/dev/null", "--compress", "none", "--progress", "never"},
		}
		for _, s := range steps {
			cmd := exec.Command(c.Bin, s...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("tapestream %s: %w", strings.Join(s, " "), err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, readyMark), nil, 0o644); err != nil {
			return nil, err
		}
	}
	n, err := warm(dir)
	if err != nil {
		return nil, err
	}
	return &storeInfo{Dir: dir, Size: size, DataBytes: n}, nil
}

// ensureTwoGroupStore returns a store of two groups, SG1 and SG2, of
// half the size each (the online impact of two groups backed up at once),
// generated once like ensureStore's.
func ensureTwoGroupStore(c *config, size int64) (string, error) {
	dir := filepath.Join(c.Work, fmt.Sprintf("store2g-%d", size))
	if _, err := os.Stat(filepath.Join(dir, readyMark)); err != nil {
		logf("generating a %s mail store of two groups in %s (once; kept for later runs)", humanize.IBytes(uint64(size)), dir)
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		steps := [][]string{{"store", "init", "--dir", dir, "--group", "SG1", "--group", "SG2"}}
		for _, g := range []string{"SG1", "SG2"} {
			steps = append(steps, []string{"store", "load", "--dir", dir, "--group", g, "--size", fmt.Sprint(size / 2)},
				[]string{"backup", "--store", dir, "--group", g, "--type", "full", "-o", "/dev/null", "--compress", "none", "--progress", "never"})
		}
		for _, s := range steps {
			cmd := exec.Command(c.Bin, s...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				return "", fmt.Errorf("tapestream %s: %w", strings.Join(s, " "), err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, readyMark), nil, 0o644); err != nil {
			return "", err
		}
	}
	_, err := warm(dir)
	return dir, err
}

// warm reads every file under dir (into the page cache) and returns the
// total size.
func warm(dir string) (int64, error) {
	var total int64
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.CopyBuffer(io.Discard, f, buf)
		total += n
		return err
	})
	return total, err
}

// machine describes the machine a run was made on.
type machine struct {
	CPU, Kernel, Go, Date, Host string
	NCPU                        int
	MemTotal                    string
	Tools                       []string
}

func describeMachine(c *config) machine {
	m := machine{NCPU: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	m.Host, _ = os.Hostname()
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		var model, flags string
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if model == "" {
					model = strings.TrimSpace(v)
				}
			case "flags":
				if flags == "" {
					flags = v
				}
			}
		}
		f.Close()
		var ext []string
		for _, fl := range []string{"sse4_2", "avx2", "avx512f", "sha_ni", "bmi2"} {
			if strings.Contains(flags+" ", " "+fl+" ") {
				ext = append(ext, fl)
			}
		}
		m.CPU = model
		if len(ext) > 0 {
			m.CPU += " (" + strings.Join(ext, " ") + ")"
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb uint64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				m.MemTotal = humanize.IBytes(kb << 10)
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	for _, t := range [][]string{{"tar", "--version"}, {"zstd", "--version"}, {"lz4", "--version"}} {
		out, err := exec.Command(t[0], t[1:]...).CombinedOutput()
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		m.Tools = append(m.Tools, strings.Trim(first, "* \t"))
	}
	return m
}
