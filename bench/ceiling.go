package main

import (
	"fmt"
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

// ceilFiles are the store's files in memory; ceilChunks their views in
// frames of each size.
var (
	ceilFiles  [][]byte
	ceilChunks = map[int][][]byte{}
)

func loadCeilingData(st *storeInfo) error {
	if ceilFiles != nil {
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
	var n int64
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(g, name))
		if err != nil {
			return err
		}
		ceilFiles = append(ceilFiles, b)
		n += int64(len(b))
	}
	logf("codec ceiling: %d files, %d bytes in memory", len(ceilFiles), n)
	return nil
}

// chunksOf returns the in-memory files cut into frames of fs bytes.
func chunksOf(fs int) [][]byte {
	if c, ok := ceilChunks[fs]; ok {
		return c
	}
	var c [][]byte
	for _, b := range ceilFiles {
		for len(b) > 0 {
			k := min(len(b), fs)
			c = append(c, b[:k:k])
			b = b[k:]
		}
	}
	ceilChunks[fs] = c
	return c
}

// altFrame is the frame size compared with the default one: 1 MiB, or
// 256 KiB when the default is 1 MiB (zstd's ratio on mail depends on it).
func altFrame() int {
	if tapeformat.DefaultFrameSize == 1<<20 {
		return 256 << 10
	}
	return 1 << 20
}

func altFrameFlag() string { return fmt.Sprintf("%dKiB", altFrame()>>10) }

func dropCeilingData() {
	ceilFiles, ceilChunks = nil, map[int][][]byte{}
	debug.FreeOSMemory()
}

func ceilingRows(c *config, st *storeInfo) []*row {
	var rows []*row
	add := func(cs string, workers, frame int) {
		cd, err := codec.ParseCodec(cs)
		name := fmt.Sprintf("ceiling %s w%d (in memory)", cs, workers)
		if frame != tapeformat.DefaultFrameSize {
			name = fmt.Sprintf("ceiling %s w%d frame %dKiB (in memory)", cs, workers, frame>>10)
		}
		r := &row{Name: name, Section: "ceiling", Err: err,
			pre: func() error { return loadCeilingData(st) }}
		r.inproc = func() (sample, error) { return encodeAll(cd, workers, frame, chunksOf(frame)) }
		rows = append(rows, r)
	}
	def := tapeformat.DefaultFrameSize
	for _, cs := range []string{"lz4", codecZFast} {
		add(cs, 1, def)
		if c.Workers != 1 {
			add(cs, c.Workers, def)
		}
	}
	add(codecZFast, c.Workers, altFrame())
	add(codecZDef, c.Workers, def)
	add("gzip", c.Workers, def)
	return rows
}

// encodeAll encodes chunks with workers goroutines and returns the
// figures (CPU of this process, no RSS).
func encodeAll(cd codec.Codec, workers, frame int, chunks [][]byte) (sample, error) {
	encs := make([]*codec.Encoder, workers)
	bufs := make([][]byte, workers)
	for i := range encs {
		var err error
		if encs[i], err = codec.NewEncoder(cd, frame); err != nil {
			return sample{}, err
		}
		bufs[i] = make([]byte, 0, frame+frame/16+1024)
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
				buf, _ = enc.Encode(buf[:0], codec.ChunkMeta{Offset: i * int64(frame)}, chunks[i])
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
