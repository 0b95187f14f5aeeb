package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/pipeline"
)

// The bar (issue 22): 80 columns when the terminal says 0, a rate in
// bytes per second, and 100% with the totals at the end even when the
// estimate was larger than what was read.
func TestProgressBar(t *testing.T) {
	st := &pipeline.Stats{Started: time.Now()}
	st.TotalEstimate.Store(12 << 20)
	st.Read.BytesOut.Store(11 << 20)
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { time.Sleep(50 * time.Millisecond); close(done) }()
	runBar(context.Background(), done, &buf, 0, "SG1", st, nil, 10*time.Millisecond)
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(out, "\r", "\n")), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "100.00%") || !strings.Contains(last, "11.00 MiB / 11.00 MiB") {
		t.Fatalf("the bar does not end at 100%% with the totals read: %q", last)
	}
	if strings.Contains(out, "p/s") || !strings.Contains(out, "/s") {
		t.Fatalf("rate unit: %q", last)
	}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len([]rune(l)); n > 80 {
			t.Fatalf("a line of %d columns on a terminal of unknown width: %q", n, l)
		}
	}
}
