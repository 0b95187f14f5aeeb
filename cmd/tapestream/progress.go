package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cheggaaa/pb/v3"
	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"

	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
)

// startProgress prints the progress of a backup: a pb bar on a terminal,
// plain periodic lines otherwise. The pipeline only keeps counters.
func startProgress(ctx context.Context, mode string, w io.Writer, group string, st *pipeline.Stats, pc *pace.Controller) (stop func()) {
	tty, width := false, 0
	if f, ok := w.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			width = int(ws.Col)
		}
	}
	// auto and always: a bar on a terminal, plain periodic lines otherwise
	// (cron mail, journald).
	if mode == "never" {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	if tty {
		go func() {
			defer wg.Done()
			runBar(ctx, done, w, width, group, st, pc, 200*time.Millisecond)
		}()
	} else {
		go func() {
			defer wg.Done()
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				read, total := st.Read.BytesOut.Load(), st.TotalEstimate.Load()
				el := time.Since(st.Started).Seconds()
				file := ""
				if p := st.File.Load(); p != nil {
					file = *p
				}
				fmt.Fprintf(w, "%s: %s of %s (%.0f%%) %s/s%s, compressed %s, at %s\n", group,
					humanize.IBytes(uint64(read)), humanize.IBytes(uint64(total)), 100*float64(read)/float64(max(total, 1)),
					humanize.IBytes(uint64(float64(read)/max(el, 1e-9))), paceText(pc), humanize.IBytes(uint64(st.Compress.BytesOut.Load())), file)
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// runBar draws a pb bar until done: rate in bytes per second, 80 columns
// when the terminal reports no width (a bar of width 0 drew bare carriage
// returns), and at the end the totals read, at 100% (the estimate counted
// the logs at their full size before they were listed).
func runBar(ctx context.Context, done <-chan struct{}, w io.Writer, width int, group string, st *pipeline.Stats, pc *pace.Controller, every time.Duration) {
	bar := pb.New64(st.TotalEstimate.Load())
	bar.Set(pb.Bytes, true)
	bar.SetWriter(w)
	if width <= 0 {
		width = 80
	}
	bar.SetWidth(width)
	bar.SetTemplateString(`{{string . "group"}} {{counters . }} {{bar . }} {{percent . }} {{string . "rate"}}{{string . "pace"}} {{rtime . "ETA %s"}}`)
	bar.Set("group", group)
	bar.Start()
	t := time.NewTicker(every)
	defer t.Stop()
	// The rate is ours, not pb's speed element: that one prints "? p/s"
	// until it has two samples, and the average since the start is what
	// the plain lines and the summary print too.
	rate := func(read int64) string {
		return humanize.IBytes(uint64(float64(read)/max(time.Since(st.Started).Seconds(), 1e-9))) + "/s"
	}
	for {
		read := st.Read.BytesOut.Load()
		bar.SetTotal(st.TotalEstimate.Load())
		bar.SetCurrent(read)
		bar.Set("rate", rate(read))
		bar.Set("pace", paceText(pc))
		select {
		case <-done:
			read := st.Read.BytesOut.Load()
			bar.SetTotal(max(read, 1))
			bar.SetCurrent(read)
			bar.Set("rate", rate(read))
			bar.Finish()
			return
		case <-ctx.Done():
			bar.Finish()
			return
		case <-t.C:
		}
	}
}

// paceText is the pace of the moment for a progress line ("" unpaced).
func paceText(pc *pace.Controller) string {
	if pc == nil {
		return ""
	}
	if r := pc.Rate(); r > 0 {
		return fmt.Sprintf(" (pace %s/s)", humanize.IBytes(uint64(r)))
	}
	return " (pace: unpaced)"
}
