package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// sample is one run of one row.
type sample struct {
	Wall  time.Duration
	CPU   time.Duration // user+system of the child and its waited-for children
	RSSKB int64         // peak resident set of the largest process (rusage maxrss)
	In    int64         // uncompressed bytes (for MB/s)
	Out   int64         // output bytes (compression ratio); 0 if none
}

func (s sample) mbps() float64 { return float64(s.In) / s.Wall.Seconds() / 1e6 }

// row is one configuration of the table.
type row struct {
	Name    string
	Section string // "backup", "ceiling", "restore", "recovery", "scaling"
	Peer    string // name of the row this one is compared with
	IsPeer  bool
	Note    string
	In      int64 // uncompressed input bytes, when the run does not say

	// Exactly one of cmd and inproc.
	cmd    func() *exec.Cmd
	inproc func() (sample, error)
	pre    func() error                   // untimed, before each run
	post   func(s *sample) error          // untimed, after each run (output size, cleanup)
	parse  func(stdout []byte, s *sample) // reads the child's stdout (--json)
	Err    error
	Runs   []sample
}

// runInterleaved runs every row runs times: run 1 of every row, then run 2
// of every row... each run starting one row later, so slow drift and the
// position after a heavy row are spread over all rows alike.
func runInterleaved(rows []*row, runs int) {
	for r := 0; r < runs; r++ {
		for i := range rows {
			rw := rows[(i+r)%len(rows)]
			if rw.Err != nil {
				continue
			}
			s, err := rw.once()
			if err != nil {
				rw.Err = err
				logf("  %-52s FAILED: %v", rw.Name, err)
				continue
			}
			rw.Runs = append(rw.Runs, s)
			logf("  run %d/%d %-48s %8.1f MB/s  %6.2fs  cpu %6.2fs  rss %4d MiB", r+1, runs, rw.Name, s.mbps(), s.Wall.Seconds(), s.CPU.Seconds(), s.RSSKB>>10)
		}
	}
}

func (rw *row) once() (sample, error) {
	if rw.pre != nil {
		if err := rw.pre(); err != nil {
			return sample{}, fmt.Errorf("preparing: %w", err)
		}
	}
	var s sample
	if rw.inproc != nil {
		var err error
		if s, err = rw.inproc(); err != nil {
			return s, err
		}
	} else {
		cmd := rw.cmd()
		rssFile := wrapTime(cmd)
		var stdout, stderr bytes.Buffer
		if cmd.Stdout == nil {
			cmd.Stdout = &stdout
		}
		cmd.Stderr = &stderr
		t0 := time.Now()
		err := cmd.Run()
		s.Wall = time.Since(t0)
		if err != nil {
			return s, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, lastLines(stderr.String(), 3))
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.RSSKB = ru.Maxrss
			s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		if rssFile != "" {
			if kb, err := readTimeRSS(rssFile); err == nil {
				s.RSSKB = kb
			}
			os.Remove(rssFile)
		}
		if rw.parse != nil {
			rw.parse(stdout.Bytes(), &s)
		}
	}
	if s.In == 0 {
		s.In = rw.In
	}
	if rw.post != nil {
		if err := rw.post(&s); err != nil {
			return s, err
		}
		time.Sleep(settle)
	}
	return s, nil
}

// settle is the pause after a run's cleanup (which deletes its GiB of
// output). On the VMs measured here a run that writes a GiB right after
// another GiB was freed spent 2-4 s more in the kernel, copying into page
// cache pages the hypervisor had to hand back first (perf:
// copy_folio_from_iter_atomic), and whichever row came next paid for it.
var settle = 5 * time.Second

// timeBin is GNU time, used for the peak RSS of children: a child forked
// from this process starts with this process's high-water RSS in its
// rusage maxrss (kept across exec), so children are started by
// /usr/bin/time (a small process) and its %M is taken instead. Empty if
// there is no GNU time: maxrss then includes this process's RSS.
var timeBin = func() string {
	p, err := exec.LookPath("time")
	if err != nil {
		p = "/usr/bin/time"
	}
	if exec.Command(p, "-f", "%M", "true").Run() != nil {
		return ""
	}
	return p
}()

// wrapTime makes cmd run under GNU time; it returns the file that will
// hold the peak RSS in KiB.
func wrapTime(cmd *exec.Cmd) string {
	if timeBin == "" {
		return ""
	}
	f, err := os.CreateTemp("", "bench-rss-*")
	if err != nil {
		return ""
	}
	f.Close()
	cmd.Args = append([]string{timeBin, "-f", "%M", "-o", f.Name(), cmd.Path}, cmd.Args[1:]...)
	cmd.Path = timeBin
	return f.Name()
}

func readTimeRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	var kb int64
	_, err = fmt.Sscan(l[len(l)-1], &kb)
	return kb, err
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// shell returns a row command run by sh -c.
func shell(script string) func() *exec.Cmd {
	return func() *exec.Cmd { return exec.Command("sh", "-c", script) }
}

// fileSize sets s.Out to the size of path and removes it unless keep.
func fileSize(path string, keep bool) func(*sample) error {
	return func(s *sample) error {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		s.Out = fi.Size()
		if !keep {
			return os.Remove(path)
		}
		return nil
	}
}

// backupJSON reads bytes_in and bytes_out from `tapestream backup --json`.
func backupJSON(out []byte, s *sample) {
	var r struct {
		BytesIn  int64 `json:"bytes_in"`
		BytesOut int64 `json:"bytes_out"`
	}
	if decodeBackupJSON(out, &r) == nil {
		s.In = r.BytesIn
		if s.Out == 0 {
			s.Out = r.BytesOut
		}
	}
}

// stats are a row's figures over its runs.
type stats struct {
	N                  int
	Med, Min, Max      float64 // MB/s
	Ratio              float64 // in/out, median
	CPU                float64 // seconds, median
	Wall               float64 // seconds, median
	RSSMiB             float64 // max over runs
	MBpsPerCPU         float64
	HasRatio, HasUsage bool
}

func (rw *row) stats() stats {
	var st stats
	st.N = len(rw.Runs)
	if st.N == 0 {
		return st
	}
	var mb, ratio, cpu, wall []float64
	for _, s := range rw.Runs {
		mb = append(mb, s.mbps())
		wall = append(wall, s.Wall.Seconds())
		cpu = append(cpu, s.CPU.Seconds())
		if s.Out > 0 {
			ratio = append(ratio, float64(s.In)/float64(s.Out))
		}
		st.RSSMiB = max(st.RSSMiB, float64(s.RSSKB)/1024)
		if s.CPU > 0 {
			st.HasUsage = true
		}
	}
	st.Med, st.Min, st.Max = median(mb), slices.Min(mb), slices.Max(mb)
	st.CPU, st.Wall = median(cpu), median(wall)
	if len(ratio) > 0 {
		st.Ratio, st.HasRatio = median(ratio), true
	}
	if st.CPU > 0 {
		st.MBpsPerCPU = float64(rw.Runs[0].In) / st.CPU / 1e6
	}
	return st
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
