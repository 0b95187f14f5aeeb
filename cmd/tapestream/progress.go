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

	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
)

// startProgress prints the progress of a backup: a pb bar on a terminal,
// plain periodic lines otherwise. The pipeline only keeps counters.
func startProgress(ctx context.Context, mode string, w io.Writer, group string, st *pipeline.Stats, pc *pace.Controller) (stop func()) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
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
		bar := pb.New64(st.TotalEstimate.Load())
		bar.Set(pb.Bytes, true)
		bar.SetWriter(w)
		bar.SetTemplateString(`{{string . "group"}} {{counters . }} {{bar . }} {{percent . }} {{speed . }}{{string . "pace"}} {{rtime . "ETA %s"}}`)
		bar.Set("group", group)
		bar.Start()
		go func() {
			defer wg.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				bar.SetTotal(st.TotalEstimate.Load())
				bar.SetCurrent(st.Read.BytesOut.Load())
				bar.Set("pace", paceText(pc))
				select {
				case <-done:
					bar.Finish()
					return
				case <-ctx.Done():
					bar.Finish()
					return
				case <-t.C:
				}
			}
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
