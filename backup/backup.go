// Package backup owns "a backup": the one sequence that turns a storage
// group's backup session into a durable set, in the order that keeps ESE's
// promises. The CLI, the scheduler and the demo call it; none of them
// rebuilds a step.
//
//	Begin(group, type) ─► Check (caller's veto: chain, tape label)
//	      │ any failure below: session aborted (checkpoint unfrozen, headers
//	      │ and logs untouched) and the set aborted (nothing that looks complete)
//	      ▼
//	media.Open(target) ─► label ─► pipeline.Run (every file, verified,
//	      compressed, in order) ─► manifest + trailer ─► Commit (durable)
//	      │ from here the set exists; a failure keeps it and truncates nothing
//	      ▼
//	Recorder.Record (the catalog) ─► Truncate (full, incremental) ─► End
//
// RunGroups is the one fan-out: several groups through one source,
// concurrently, except that sets bound for the same tape drive go one
// after the other.
package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/internal/failpoint"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/agestream"
)

// Options configure one backup.
type Options struct {
	Type ese.BackupType
	// Databases selects a subset for full and copy backups (nil = all).
	Databases []string
	// Pipeline: codec, workers, frame size, rate limit, verification, the
	// live counters.
	Pipeline pipeline.Options
	// Media: how the target is opened; its record size is the set's.
	Media media.Options
	// SegmentSize bounds a stored segment member (0: the format's default).
	SegmentSize int
	// SetID of the new set (generated when empty); PreviousSetID names the
	// set it continues (default: the one the database headers name).
	SetID, PreviousSetID string
	Host                 string
	Now                  func() time.Time
	// Check sees the session once it has begun, before anything is
	// written; an error aborts the backup.
	Check func(sess source.Session) error
	// Recorder records the set once it is durable, before any log is
	// truncated.
	Recorder Recorder
	// NoTruncate keeps every log even for a full or incremental.
	NoTruncate bool
	// Recipients encrypt the set (age; tapeformat.WriterOptions): public
	// keys only, the backup host cannot read what it wrote.
	Recipients []*agestream.Recipient
}

// Recorder records a durable set (the catalog). An error keeps every log:
// a set nobody can find must not be the only copy of a log.
type Recorder interface {
	Record(ctx context.Context, res *Result) error
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, res *Result) error

func (f RecorderFunc) Record(ctx context.Context, res *Result) error { return f(ctx, res) }

// Result summarises a finished backup.
type Result struct {
	SetID      string                `json:"set_id"`
	Type       ese.BackupType        `json:"type"`
	Group      string                `json:"group"`
	Databases  []string              `json:"databases"`
	LowGen     uint32                `json:"log_first_generation"`
	HighGen    uint32                `json:"log_last_generation"`
	BytesIn    int64                 `json:"bytes_in"`
	BytesOut   int64                 `json:"bytes_out"`
	Ratio      float64               `json:"ratio"`
	Duration   time.Duration         `json:"duration_ns"`
	Throughput float64               `json:"throughput_bytes_per_sec"`
	Codec      string                `json:"codec"`
	Files      []pipeline.FileResult `json:"files"`
	Truncated  []string              `json:"truncated_logs"`
	// TruncationSkipped says why a full or incremental truncated nothing.
	TruncationSkipped string             `json:"truncation_skipped,omitempty"`
	Volumes           []media.VolumeInfo `json:"volumes"`
	PreviousSetID     string             `json:"previous_set_id,omitempty"`
	Target            string             `json:"target"`
	// Encryption: the set is encrypted to these recipients (nil: plain).
	Encryption *tapeformat.Encryption `json:"encryption,omitempty"`
}

func (o *Options) fill() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SetID == "" {
		o.SetID = tapeformat.NewSetID()
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Pipeline.Stats == nil {
		o.Pipeline.Stats = &pipeline.Stats{}
	}
	if o.Pipeline.Now == nil {
		o.Pipeline.Now = o.Now
	}
}

// Run takes one backup of group from src into target (a media target:
// file, -, tape, emulated tape).
func Run(ctx context.Context, src source.Source, group, target string, o Options) (*Result, error) {
	o.fill()
	sess, err := src.Begin(ctx, group, o.Type, o.Databases)
	if err != nil {
		return nil, err
	}
	if o.Check != nil {
		if err := o.Check(sess); err != nil {
			sess.Abort(err)
			return nil, err
		}
	}
	dst, err := media.Open(target, o.Media)
	if err != nil {
		sess.Abort(err)
		return nil, err
	}
	failpoint.Hit("backup/after-open")
	// A signal stops the set at once, even in a volume change (a changer
	// command, an operator prompt) where nothing else looks at ctx.
	stop := context.AfterFunc(ctx, func() { dst.Abort() })
	res, err := write(ctx, sess, dst, target, o)
	stop()
	if err != nil {
		sess.Abort(err)
		if aerr := dst.Abort(); aerr != nil && !errors.Is(aerr, media.ErrCommitted) {
			err = fmt.Errorf("%w (and aborting the destination: %v)", err, aerr)
		}
		return nil, interrupted(ctx, gi(sess), err)
	}
	failpoint.Hit("backup/after-commit")
	// The set is complete: from here on a failure must not abort the media.
	if o.Recorder != nil {
		if err := o.Recorder.Record(ctx, res); err != nil {
			sess.Abort(err)
			return res, fmt.Errorf("set %s is complete, but recording it failed (logs not truncated): %w", res.SetID, err)
		}
	}
	failpoint.Hit("backup/after-record")
	// Logs are truncated only for a set known durable where it landed. A
	// pipe's consumer is out of sight: its set truncates nothing, and
	// `tapestream truncate` does it once the stored set is read back.
	truncate := sess.Type().Truncates() && !o.NoTruncate && dst.Durable()
	if sess.Type().Truncates() && !truncate {
		res.TruncationSkipped = "the set went to a stream whose consumer's durability is unknown; run `tapestream truncate` with the stored set once it is verified"
		if o.NoTruncate {
			res.TruncationSkipped = "truncation was turned off"
		}
	}
	if res.Truncated, err = sess.End(ctx, res.SetID, truncate); err != nil {
		return res, fmt.Errorf("set %s is complete, but ending the backup session failed (%d logs truncated): %w", res.SetID, len(res.Truncated), err)
	}
	failpoint.Hit("backup/after-end")
	return res, nil
}

func gi(sess source.Session) string { return sess.Group().Name }

// interrupted says what a cancelled backup left behind.
func interrupted(ctx context.Context, group string, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return &InterruptedError{Group: group, Err: err}
}

// InterruptedError is a backup stopped by a signal (or its context): the
// session was aborted, the partial set removed, no log truncated.
type InterruptedError struct {
	Group string
	Err   error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("backup of %s interrupted: the backup session was aborted (checkpoint released, headers unchanged), the partial set was removed and no log was truncated", e.Group)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// write streams the session into dst and commits it.
func write(ctx context.Context, sess source.Session, dst media.Sink, target string, o Options) (*Result, error) {
	st := o.Pipeline.Stats
	st.Started = time.Now()
	gi := sess.Group()
	prev := o.PreviousSetID
	if prev == "" {
		prev = sess.PreviousSetID()
	}
	tw, err := tapeformat.NewWriter(dst, tapeformat.WriterOptions{
		RecordSize: o.Media.RecordSize, SegmentSize: o.SegmentSize, FrameSize: o.Pipeline.FrameSize, Codec: o.Pipeline.Codec,
		Recipients: o.Recipients,
	})
	if err != nil {
		return nil, err
	}
	label := tapeformat.Label{
		SetID: o.SetID, SetType: sess.Type(),
		StorageGroup: gi.Name, Databases: sess.Databases(), Created: o.Now().UTC(), Host: o.Host,
		PreviousSetID:  prev,
		GroupSignature: gi.Signature, LogPrefix: gi.LogPrefix, GroupID: gi.ID,
		CircularLogging: gi.CircularLogging, DatabaseIDs: databaseIDs(gi), LogSize: gi.LogSize,
	}
	if !sess.Type().CopiesDatabases() {
		// A log-only set lists its logs before it writes anything, so its
		// label carries its range: a restore checks a chain's links from
		// the labels, before it writes anything either.
		if _, err := sess.LogFiles(ctx); err != nil {
			return nil, err
		}
		label.LogFirst, label.LogLast = sess.LowGen(), sess.HighGen()
	}
	if err := tw.Begin(label); err != nil {
		return nil, err
	}
	files, err := pipeline.Run(ctx, sess, tw, o.Pipeline)
	if err != nil {
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
	res := &Result{
		SetID: o.SetID, Type: sess.Type(), Group: gi.Name, Databases: sess.Databases(), Codec: o.Pipeline.Codec.String(),
		PreviousSetID: prev, Files: files, Target: target, Volumes: dst.Volumes(), Encryption: tw.Label().Encryption,
		LowGen: sess.LowGen(), HighGen: sess.HighGen(),
		BytesIn: st.Read.BytesOut.Load(), BytesOut: st.Compress.BytesOut.Load(), Duration: time.Since(st.Started),
	}
	if res.BytesOut > 0 {
		res.Ratio = float64(res.BytesIn) / float64(res.BytesOut)
	}
	res.Throughput = float64(res.BytesIn) / max(res.Duration.Seconds(), 1e-9)
	return res, nil
}

// databaseIDs lists the group's database ids ("0,1"): a restore of a
// subset needs to know which databases it leaves out.
func databaseIDs(gi engine.GroupInfo) []int {
	ids := make([]int, 0, len(gi.Databases))
	for _, d := range gi.Databases {
		ids = append(ids, d.ID)
	}
	return ids
}
