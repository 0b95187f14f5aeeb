package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The in-memory codec ceiling: the same chunks a backup compresses (the
// store's database and log files in frame-sized pieces) encoded by the
// same encoders (codec.Encoder: CRC-32C + compression) on N goroutines,
// with no I/O, no page verification, no ordering and no hashing. The
// pipeline's end-to-end throughput over this is its overhead ratio.

var ceilData [][]byte

func loadCeilingData(st *storeInfo) error {
	if ceilData != nil {
		return nil
	}
	g := filepath.Join(st.Dir, "SG1")
	ents, err := os.ReadDir(g)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".edb") || strings.HasSuffix(n, ".stm") || strings.HasSuffix(n, ".log") {
			names = append(names, n)
		}
	}
	// Databases first, then logs, as a backup reads them.
	sort.SliceStable(names, func(i, j int) bool {
		return !strings.HasSuffix(names[i], ".log") && strings.HasSuffix(names[j], ".log")
	})
	fs := tapeformat.DefaultFrameSize
	var n int64
	for _, name := range names {
		f, err := os.Open(filepath.Join(g, name))
		if err != nil {
			return err
		}
		for {
			b := make([]byte, fs)
			k, err := io.ReadFull(f, b)
			if k > 0 {
				ceilData = append(ceilData, b[:k])
				n += int64(k)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
		}
		f.Close()
	}
	logf("codec ceiling: %d chunks, %d bytes in memory", len(ceilData), n)
	return nil
}

func dropCeilingData() {
	ceilData = nil
	debug.FreeOSMemory()
}

func ceilingRows(c *config, st *storeInfo) []*row {
	var rows []*row
	add := func(cs string, workers int) {
		cd, err := codec.ParseCodec(cs)
		r := &row{Name: fmt.Sprintf("ceiling %s w%d (in memory)", cs, workers), Section: "ceiling", Err: err,
			pre: func() error { return loadCeilingData(st) }}
		r.inproc = func() (sample, error) { return encodeAll(cd, workers, ceilData) }
		rows = append(rows, r)
	}
	for _, cs := range []string{"lz4", codecZFast} {
		add(cs, 1)
		if c.Workers != 1 {
			add(cs, c.Workers)
		}
	}
	add(codecZDef, c.Workers)
	add("gzip", c.Workers)
	return rows
}

// encodeAll encodes chunks with workers goroutines and returns the
// figures (CPU of this process, no RSS).
func encodeAll(cd codec.Codec, workers int, chunks [][]byte) (sample, error) {
	encs := make([]*codec.Encoder, workers)
	bufs := make([][]byte, workers)
	for i := range encs {
		var err error
		if encs[i], err = codec.NewEncoder(cd, tapeformat.DefaultFrameSize); err != nil {
			return sample{}, err
		}
		bufs[i] = make([]byte, 0, tapeformat.DefaultFrameSize+tapeformat.DefaultFrameSize/16+1024)
	}
	runtime.GC()
	var next atomic.Int64
	var in, out atomic.Int64
	var wg sync.WaitGroup
	c0 := cpuSelf()
	t0 := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc, buf := encs[w], bufs[w]
			var ni, no int64
			for {
				i := next.Add(1) - 1
				if i >= int64(len(chunks)) {
					break
				}
				buf, _ = enc.Encode(buf[:0], codec.ChunkMeta{FileIndex: 0, Offset: i * int64(tapeformat.DefaultFrameSize)}, chunks[i])
				ni += int64(len(chunks[i]))
				no += int64(len(buf))
			}
			in.Add(ni)
			out.Add(no)
		}()
	}
	wg.Wait()
	return sample{Wall: time.Since(t0), CPU: cpuSelf() - c0, In: in.Load(), Out: out.Load()}, nil
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
