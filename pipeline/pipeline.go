// Package pipeline streams the files of a backup session into a set
// writer: the stages of a backup, and nothing else (package backup owns the
// session, the media and the order in which a set becomes durable).
//
//	               ┌─────────┐ jobs  ┌──────────────┐
//	source ──read──► reader  ├──────►  N workers   │ CRC32C, compress
//	 (64 KiB       │ verify  │       └──────┬───────┘
//	  chunks)      │ pages,  │              │ ready (per job)
//	               │ limit   │              │
//	               └────┬────┘ ┌───────┐ ┌──▼─────┐
//	                    └─────►│ hasher├─►  writer ├──► tapeformat.Writer
//	              in order     │BLAKE3 │ │        │
//	                           └───────┘ └────────┘
//
// The reader fills frame-sized jobs from a fixed set (memory is bounded by
// configuration and flat in database size: no allocation per chunk), hands
// each to the workers and, in the same order, to the writer, so the order
// of the set is kept by reserving the writer's slot before the work starts
// (as klauspost/pgzip does). The digest of each file (BLAKE3), inherently
// serial, is computed by its own stage on the way to the writer, in
// parallel with the workers and the writer. Every stage runs under one
// errgroup: the first error cancels the others and is Run's error.
package pipeline

import (
	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/ese"

	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Options configure a backup.
type Options struct {
	Codec     codec.Codec
	Workers   int // compression workers; default GOMAXPROCS
	FrameSize int // uncompressed bytes per compressed frame, a multiple of 64 KiB
	// NoVerify skips the check of bytes that crossed a process boundary
	// (a store server's stream; the server's engine verified them before
	// sending). Bytes the embedded engine read are verified by it, always.
	NoVerify bool
	// MaxRate limits the read stage in bytes per second (0 = unlimited).
	MaxRate int64
	// Pace, if set, paces the read stage by the store's commit latency
	// (package pace) while the session's group is watched; backups given
	// the same controller share its budget. MaxRate still caps each.
	Pace *pace.Controller
	// Now stamps the members' modification time.
	Now func() time.Time
	// Stats, if set, is updated while the backup runs (progress printers
	// poll it).
	Stats *Stats
}

func (o *Options) fill() error {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.FrameSize == 0 {
		o.FrameSize = tapeformat.DefaultFrameSize
	}
	if o.FrameSize%engine.ChunkSize != 0 || o.FrameSize > codec.MaxFrameSize {
		return fmt.Errorf("frame size %d must be a multiple of %d up to %d", o.FrameSize, engine.ChunkSize, codec.MaxFrameSize)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stats == nil {
		o.Stats = &Stats{}
	}
	return nil
}

// StageStats are the counters of one stage. Busy is time spent working,
// Blocked time spent waiting for the next stage (output) or the previous
// one (input): the stage with the most Busy and least Blocked is the
// bottleneck.
type StageStats struct {
	BytesIn  atomic.Int64
	BytesOut atomic.Int64
	Busy     atomic.Int64 // nanoseconds
	Blocked  atomic.Int64 // nanoseconds
}

// Stats are the live counters of a backup.
type Stats struct {
	Read, Compress, Write StageStats
	// Hash is the digest stage between the reader and the writer (Blocked
	// counts waiting for the reader and for the writer).
	Hash StageStats
	// TotalEstimate is the expected number of bytes to read (database
	// sizes; logs are added once listed).
	TotalEstimate atomic.Int64
	File          atomic.Pointer[string]
	Started       time.Time
}

// FileResult describes one file of the set.
type FileResult struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	BLAKE3 string `json:"blake3"`
}

// job is one frame of one file travelling through the stages. Jobs are
// allocated once per backup and recycled.
type job struct {
	file  *fileJob
	off   int64
	data  []byte // uncompressed, up to FrameSize
	unit  []byte // encoded unit
	sum   []byte // digest (BLAKE3) of the whole file, on the file's last job
	meta  codec.ChunkMeta
	ready chan struct{} // cap 1: the worker's result is in
}

// fileJob is one file of the set as the reader opened it.
type fileJob struct {
	index  int
	info   engine.BackupFile
	size   int64
	header []byte
	first  bool // the job carries the file's start (BeginFile)
	end    bool // set on the file's last job (EndFile)
}

// Run streams every file of the session into tw, in ESE's order (the
// databases, then the log list, which forces the rollover, and each log)
// and returns them as written. It neither begins nor ends anything: on an
// error the caller aborts the session and the set.
func Run(ctx context.Context, sess source.Session, tw *tapeformat.Writer, opts Options) ([]FileResult, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	st := opts.Stats
	if st.Started.IsZero() {
		st.Started = time.Now()
	}
	g, gctx := errgroup.WithContext(ctx)
	njobs := 2*opts.Workers + 2
	free := make(chan *job, njobs)
	work := make(chan *job, njobs)
	hashq := make(chan *job, njobs)
	ordered := make(chan *job, njobs)
	for i := 0; i < njobs; i++ {
		j := &job{data: make([]byte, 0, opts.FrameSize), ready: make(chan struct{}, 1)}
		if opts.Codec.Kind != codec.None { // with none the unit is the data itself
			j.unit = make([]byte, 0, opts.FrameSize+opts.FrameSize/16+1024)
		}
		free <- j
	}
	if opts.Pace != nil {
		if pr, ok := sess.(source.PressureReader); ok {
			defer opts.Pace.Watch(sess.Group().Name, pr.Pressure)()
		} else {
			opts.Pace.Note(sess.Group().Name + ": the source reports no commit pressure: not paced")
			opts.Pace = nil
		}
	}
	var files []FileResult
	g.Go(func() error {
		defer close(work)
		defer close(hashq)
		return readStage(gctx, sess, opts, free, work, hashq)
	})
	g.Go(func() error {
		defer close(ordered)
		return hashStage(gctx, opts, hashq, ordered)
	})
	var gt *gate
	if opts.Pace != nil && opts.Workers > 1 {
		gt = newGate(opts.Pace, opts.Workers, &st.Compress)
	}
	for w := 0; w < opts.Workers; w++ {
		g.Go(func() error { return compressStage(gctx, opts, work, gt) })
	}
	g.Go(func() error { return writeStage(gctx, tw, opts, free, ordered, &files) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return files, nil
}

// readStage reads every file in ESE order (databases, then the log list
// and each log) in frame-sized jobs.
func readStage(ctx context.Context, sess source.Session, opts Options, free, work, ordered chan *job) error {
	st := opts.Stats
	var lim *rate.Limiter
	if opts.MaxRate > 0 {
		// Burst of one frame: the limiter never lets a larger read through.
		lim = rate.NewLimiter(rate.Limit(opts.MaxRate), opts.FrameSize)
	}
	files, err := sess.DatabaseFiles(ctx)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	st.TotalEstimate.Store(total)
	index := 0
	readFile := func(bf engine.BackupFile) error {
		f, err := sess.OpenFile(ctx, bf.Name)
		if err != nil {
			return err
		}
		defer f.Close()
		name := bf.Name
		st.File.Store(&name)
		fj := &fileJob{index: index, info: f.Info(), size: f.Size(), header: f.HeaderSnapshot()}
		index++
		// Bytes the engine verified in this very buffer (an in-process
		// source) are not checked again; bytes that crossed a process
		// boundary are, as each read arrives, while they are in the cache
		// (done by the workers a frame later, the same check left a codec
		// none backup 1.5% slower).
		var ver *verify.File
		if !opts.NoVerify && !f.Verified() {
			ver = verify.New(bf.Name, bf.Kind, engine.ParseSignature(sess.Group().Signature))
		}
		var off int64
		for first := true; first || off < fj.size; first = false {
			j, err := next(ctx, free, &st.Read) // free is never closed
			if j == nil {
				return err
			}
			t0 := time.Now()
			j.off, j.data = off, j.data[:0]
			// Read straight into the job's buffer (cap FrameSize, a
			// multiple of ChunkSize): no copy from a read buffer.
			for len(j.data) < opts.FrameSize && off+int64(len(j.data)) < fj.size {
				n0 := len(j.data)
				if cap(j.data)-n0 < engine.ChunkSize {
					break // a short read earlier in this frame; end it here
				}
				chunk := j.data[n0 : n0+engine.ChunkSize]
				n, err := f.Read(chunk)
				if err == io.EOF {
					return fmt.Errorf("%s: ended at %d bytes, the session said %d", bf.Name, off+int64(len(j.data)), fj.size)
				}
				if err != nil {
					return err
				}
				if lim != nil {
					if err := lim.WaitN(ctx, n); err != nil {
						return err
					}
				}
				if opts.Pace != nil {
					if err := opts.Pace.Wait(ctx, n); err != nil {
						return err
					}
				}
				if ver != nil {
					if err := ver.Write(off+int64(n0), chunk[:n]); err != nil {
						return err
					}
				}
				j.data = j.data[:n0+n]
			}
			off += int64(len(j.data))
			jf := *fj
			jf.first, jf.end = first, off >= fj.size
			j.file = &jf
			st.Read.Busy.Add(int64(time.Since(t0)))
			st.Read.BytesIn.Add(int64(len(j.data)))
			st.Read.BytesOut.Add(int64(len(j.data)))
			select {
			case work <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case ordered <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if off != fj.size {
			return fmt.Errorf("%s: read %d bytes, the session said %d", bf.Name, off, fj.size)
		}
		if ver != nil {
			if _, err := ver.Finish(); err != nil {
				return err
			}
		}
		return nil
	}
	for _, bf := range files {
		if err := readFile(bf); err != nil {
			return err
		}
	}
	logs, err := sess.LogFiles(ctx)
	if err != nil {
		return err
	}
	for _, l := range logs {
		total += l.Size
	}
	st.TotalEstimate.Store(total)
	for _, l := range logs {
		if err := readFile(l); err != nil {
			return err
		}
	}
	return nil
}

// next receives a stage's next job, counting the wait as the stage's
// blocked time. It returns nil at the end of in (nil error) or when ctx
// is done (its error).
func next(ctx context.Context, in <-chan *job, st *StageStats) (*job, error) {
	defer func(t0 time.Time) { st.Blocked.Add(int64(time.Since(t0))) }(time.Now())
	select {
	case j := <-in:
		return j, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hashStage computes each file's digest over its jobs in set order and
// passes them on to the writer; the file's last job carries the sum.
func hashStage(ctx context.Context, opts Options, in, out chan *job) error {
	st := opts.Stats
	h, err := tapeformat.NewDigest(tapeformat.DigestBLAKE3)
	if err != nil {
		return err
	}
	for {
		j, err := next(ctx, in, &st.Hash)
		if j == nil {
			return err
		}
		t1 := time.Now()
		if j.file.first {
			h.Reset()
		}
		h.Write(j.data)
		j.sum = j.sum[:0]
		if j.file.end {
			j.sum = h.Sum(j.sum)
		}
		t2 := time.Now()
		st.Hash.Busy.Add(int64(t2.Sub(t1)))
		st.Hash.BytesIn.Add(int64(len(j.data)))
		st.Hash.BytesOut.Add(int64(len(j.data)))
		select {
		case out <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		st.Hash.Blocked.Add(int64(time.Since(t2)))
	}
}

// compressStage encodes jobs; results go back through each
// job's ready channel. A paced backup's workers pass gt (gate.go).
func compressStage(ctx context.Context, opts Options, work chan *job, gt *gate) error {
	st := opts.Stats
	enc, err := codec.NewEncoder(opts.Codec, opts.FrameSize)
	if err != nil {
		return err
	}
	for {
		j, err := next(ctx, work, &st.Compress)
		if j == nil {
			return err
		}
		if gt != nil {
			gt.acquire()
		}
		t0 := time.Now()
		meta := codec.ChunkMeta{FileIndex: uint32(j.file.index), Offset: j.off}
		if opts.Codec.Kind == codec.None {
			j.unit, j.meta = j.data, codec.Describe(meta, j.data) // no copy
		} else {
			j.unit, j.meta = enc.Encode(j.unit[:0], meta, j.data)
		}
		st.Compress.Busy.Add(int64(time.Since(t0)))
		if gt != nil {
			gt.release()
		}
		st.Compress.BytesIn.Add(int64(len(j.data)))
		st.Compress.BytesOut.Add(int64(len(j.unit)))
		j.ready <- struct{}{}
	}
}

// writeStage takes jobs in set order (hashed), waits for each to be
// encoded and writes the units.
func writeStage(ctx context.Context, tw *tapeformat.Writer, opts Options, free, ordered chan *job, files *[]FileResult) error {
	st := opts.Stats
	for j := range ordered {
		t0 := time.Now()
		select {
		case <-j.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		st.Write.Blocked.Add(int64(time.Since(t0)))
		t0 = time.Now()
		fj := j.file
		if fj.first {
			kind := tapeformat.KindLog
			switch fj.info.Kind {
			case ese.KindDatabase:
				kind = tapeformat.KindDatabase
			case ese.KindStreaming:
				kind = tapeformat.KindStreaming
			}
			if _, err := tw.BeginFile(tapeformat.FileInfo{Name: fj.info.Name, Kind: kind, Size: fj.size, DBHeader: fj.header, ModTime: opts.Now()}); err != nil {
				return err
			}
		}
		if len(j.data) > 0 || opts.Codec.Kind != codec.None {
			if err := tw.WriteFrame(j.unit, j.meta); err != nil {
				return err
			}
		}
		if fj.end {
			sum := append([]byte(nil), j.sum...)
			if err := tw.EndFile(tapeformat.FileSummary{Digest: sum}); err != nil {
				return err
			}
			*files = append(*files, FileResult{Name: fj.info.Name, Kind: string(fj.info.Kind), Size: fj.size, BLAKE3: fmt.Sprintf("%x", sum)})
		}
		st.Write.Busy.Add(int64(time.Since(t0)))
		st.Write.BytesIn.Add(int64(len(j.unit)))
		free <- j // never blocks: free holds every job
	}
	return nil
}
