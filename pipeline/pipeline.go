// Package pipeline streams a backup session into a backup set.
//
//	               ┌─────────┐ jobs  ┌──────────────┐
//	source ──read──► reader  ├──────►  N workers   │ CRC32C, compress
//	 (64 KiB       │ verify  │       └──────┬───────┘
//	  chunks)      │ pages,  │              │ ready (per job)
//	               │ limit   │              │
//	               └────┬────┘ ┌───────┐ ┌──▼─────┐
//	                    └─────►│ hasher├─►  writer ├──► tapeformat ──► sink
//	              in order     │BLAKE3 │ │        │
//	                           └───────┘ └────────┘
//
// The reader fills frame-sized jobs from a fixed set (memory is bounded by
// configuration and flat in database size: no allocation per chunk), hands
// each to the workers and, in the same order, to the writer, so the order
// of the set is kept by reserving the writer's slot before the work starts
// (as klauspost/pgzip does). The digest of each file (BLAKE3), inherently
// serial, is computed by its own stage on the way to the writer, in
// parallel with the workers and the writer. Every stage runs under one errgroup: the first
// error cancels the others, the session is aborted (no header update, no
// truncation) and the sink is aborted (no set that looks complete).
//
// Only after the sink has made the set durable (Commit: fsync+rename,
// filemark) are the logs truncated and the session ended successfully.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/sink"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Options configure a backup.
type Options struct {
	Codec       codec.Codec
	Workers     int // compression workers; default GOMAXPROCS
	FrameSize   int // uncompressed bytes per compressed frame, a multiple of 64 KiB
	SegmentSize int
	RecordSize  int
	// NoVerify skips page verification in the pipeline (the engine still
	// verifies what it reads; a remote source's data would go unchecked).
	NoVerify bool
	// MaxRate limits the read stage in bytes per second (0 = unlimited).
	MaxRate int64
	// PreviousSetID names the set this one continues (incremental, differential).
	PreviousSetID string
	// SetID of the new set; generated when empty.
	SetID string
	Host  string
	Now   func() time.Time
	// Stats, if set, is updated while the backup runs (progress printers
	// poll it).
	Stats *Stats
	// BeforeTruncate runs after the set is durable and before the logs are
	// truncated (the catalog records the set there).
	BeforeTruncate func(r *Result) error
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
	if o.SetID == "" {
		o.SetID = tapeformat.NewSetID()
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
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

// Result summarises a finished backup.
type Result struct {
	SetID         string        `json:"set_id"`
	Type          string        `json:"type"`
	Group         string        `json:"group"`
	Databases     []string      `json:"databases"`
	LowGen        uint32        `json:"log_first_generation"`
	HighGen       uint32        `json:"log_last_generation"`
	BytesIn       int64         `json:"bytes_in"`
	BytesOut      int64         `json:"bytes_out"`
	Ratio         float64       `json:"ratio"`
	Duration      time.Duration `json:"duration_ns"`
	Throughput    float64       `json:"throughput_bytes_per_sec"`
	Codec         string        `json:"codec"`
	Files         []FileResult  `json:"files"`
	Truncated     []string      `json:"truncated_logs"`
	Volumes       []sink.VolumeInfo
	PreviousSetID string `json:"previous_set_id,omitempty"`
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

// Backup runs a backup session into dst and commits it. On any failure the
// session and the sink are both aborted.
func Backup(ctx context.Context, sess source.Session, dst sink.Sink, opts Options) (res *Result, err error) {
	if err := opts.fill(); err != nil {
		sess.Abort(err)
		dst.Abort()
		return nil, err
	}
	defer func() {
		if err != nil {
			sess.Abort(err)
			if aerr := dst.Abort(); aerr != nil && !errors.Is(aerr, sink.ErrCommitted) {
				err = fmt.Errorf("%w (and aborting the destination: %v)", err, aerr)
			}
		}
	}()
	st := opts.Stats
	st.Started = time.Now()
	gi := sess.Group()
	if opts.PreviousSetID == "" {
		opts.PreviousSetID = sess.PreviousSetID()
	}
	tw, err := tapeformat.NewWriter(dst, tapeformat.WriterOptions{
		RecordSize: opts.RecordSize, SegmentSize: opts.SegmentSize, FrameSize: opts.FrameSize, Codec: opts.Codec,
	})
	if err != nil {
		return nil, err
	}
	label := tapeformat.Label{
		SetID: opts.SetID, SetType: sess.Type().String(),
		StorageGroup: gi.Name, Databases: sess.Databases(), Created: opts.Now().UTC(), Host: opts.Host,
		PreviousSetID:  opts.PreviousSetID,
		GroupSignature: gi.Signature, LogPrefix: gi.LogPrefix, GroupID: gi.ID,
		CircularLogging: gi.CircularLogging, DatabaseIDs: databaseIDs(gi),
	}
	if err := tw.Begin(label); err != nil {
		return nil, err
	}
	res = &Result{SetID: opts.SetID, Type: sess.Type().String(), Group: gi.Name, Databases: sess.Databases(), Codec: opts.Codec.String(), PreviousSetID: opts.PreviousSetID}

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

	g.Go(func() error {
		defer close(work)
		defer close(hashq)
		return readStage(gctx, sess, opts, free, work, hashq, res)
	})
	g.Go(func() error {
		defer close(ordered)
		return hashStage(gctx, opts, hashq, ordered)
	})
	for w := 0; w < opts.Workers; w++ {
		g.Go(func() error { return compressStage(gctx, opts, work) })
	}
	g.Go(func() error { return writeStage(gctx, tw, opts, free, ordered, res) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// set type, group signature and log prefix: the Writer copies them
	// from the label
	tw.SetManifestInfo(tapeformat.ManifestInfo{LogFirst: uint64(sess.LowGen()), LogLast: uint64(sess.HighGen())})
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := dst.Commit(); err != nil {
		return nil, err
	}
	// The set is durable: from here on a failure must not abort the sink.
	res.LowGen, res.HighGen = sess.LowGen(), sess.HighGen()
	res.BytesIn = st.Read.BytesOut.Load()
	res.BytesOut = st.Compress.BytesOut.Load()
	res.Volumes = dst.Volumes()
	res.Duration = time.Since(st.Started)
	if res.BytesOut > 0 {
		res.Ratio = float64(res.BytesIn) / float64(res.BytesOut)
	}
	res.Throughput = float64(res.BytesIn) / max(res.Duration.Seconds(), 1e-9)
	if opts.BeforeTruncate != nil {
		if err := opts.BeforeTruncate(res); err != nil {
			sess.Abort(err)
			return res, fmt.Errorf("set %s is complete, but recording it failed (logs not truncated): %w", res.SetID, err)
		}
	}
	if res.Truncated, err = sess.Truncate(ctx); err != nil {
		sess.Abort(err)
		return res, fmt.Errorf("set %s is complete, but truncating logs failed: %w", res.SetID, err)
	}
	if err := sess.End(ctx, true, res.SetID); err != nil {
		return res, fmt.Errorf("set %s is complete, but ending the backup session failed: %w", res.SetID, err)
	}
	return res, nil
}

// readStage reads every file in ESE order (databases, then the log list
// and each log) in frame-sized jobs.
func readStage(ctx context.Context, sess source.Session, opts Options, free, work, ordered chan *job, res *Result) error {
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
		// Pages are verified independently of the engine (the data may
		// have crossed a process boundary), as each read arrives, while
		// they are in the cache: done by the workers a frame later, the
		// same check left a codec none backup 1.5% slower.
		verifyPages := !opts.NoVerify && (bf.Kind == engine.KindDatabase || bf.Kind == engine.KindStreaming)
		var logv *wal.StreamVerifier
		if bf.Kind == engine.KindLog && !opts.NoVerify {
			logv = wal.NewStreamVerifier(engine.ParseSignature(sess.Group().Signature))
			logv.SetName(bf.Name)
		}
		var off int64
		for first := true; first || off < fj.size; first = false {
			j, err := next(ctx, free, &st.Read) // free is never closed
			if j == nil {
				return err
			}
			t0 := time.Now()
			j.off, j.data = off, j.data[:0]
			verified := 0 // bytes of j.data whose pages are verified
			verifyTo := func(end int) error {
				if !verifyPages || end <= verified {
					return nil
				}
				err := page.VerifyChunk(bf.Name, j.data[verified:end], uint32((off+int64(verified))/page.Size))
				verified = end
				return err
			}
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
				if logv != nil {
					if _, err := logv.Write(chunk[:n]); err != nil {
						return err
					}
				}
				j.data = j.data[:n0+n]
				if err := verifyTo(len(j.data) &^ (page.Size - 1)); err != nil {
					return err
				}
			}
			if err := verifyTo(len(j.data)); err != nil { // a partial page fails
				return err
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
		if logv != nil {
			if _, err := logv.Finish(); err != nil {
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
// job's ready channel.
func compressStage(ctx context.Context, opts Options, work chan *job) error {
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
		t0 := time.Now()
		meta := codec.ChunkMeta{FileIndex: uint32(j.file.index), Offset: j.off}
		if opts.Codec.Kind == codec.None {
			j.unit, j.meta = j.data, codec.Describe(meta, j.data) // no copy
		} else {
			j.unit, j.meta = enc.Encode(j.unit[:0], meta, j.data)
		}
		st.Compress.Busy.Add(int64(time.Since(t0)))
		st.Compress.BytesIn.Add(int64(len(j.data)))
		st.Compress.BytesOut.Add(int64(len(j.unit)))
		j.ready <- struct{}{}
	}
}

// writeStage takes jobs in set order (hashed), waits for each to be
// encoded and writes the units.
func writeStage(ctx context.Context, tw *tapeformat.Writer, opts Options, free, ordered chan *job, res *Result) error {
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
			case engine.KindDatabase:
				kind = tapeformat.KindDatabase
			case engine.KindStreaming:
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
			res.Files = append(res.Files, FileResult{Name: fj.info.Name, Kind: string(fj.info.Kind), Size: fj.size, BLAKE3: fmt.Sprintf("%x", sum)})
		}
		st.Write.Busy.Add(int64(time.Since(t0)))
		st.Write.BytesIn.Add(int64(len(j.unit)))
		free <- j // never blocks: free holds every job
	}
	return nil
}

// databaseIDs lists the group's database ids: a restore of a subset
// needs to know which databases it leaves out.
func databaseIDs(gi engine.GroupInfo) []int {
	ids := make([]int, 0, len(gi.Databases))
	for _, d := range gi.Databases {
		ids = append(ids, d.ID)
	}
	return ids
}
