package workload

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Version is the workload format version recorded in the parameters key.
// Any change of generated content or transaction mix must bump it.
const Version = 1

// Table names used in every database.
const (
	TableMessages    = "messages"
	TableAttachments = "attachments"
	TableFolders     = "folders"
	TableMeta        = "meta" // only in Databases[0]
)

// ParamsKey is the meta key (in Databases[0]) holding the JSON-encoded
// Workload written by the very first transaction.
const ParamsKey = "params"

// DefaultDatabases is used when Workload.Databases is empty.
var DefaultDatabases = []string{"Mailbox1", "Public"}

// Workload describes a deterministic mail workload. Everything stored is a
// pure function of these parameters and every stream's committed sequence
// number.
type Workload struct {
	Version   int      `json:"version"`   // 0 means Version
	Seed      uint64   `json:"seed"`      // content and transaction-mix seed
	Streams   int      `json:"streams"`   // independent streams, 1..9999
	Databases []string `json:"databases"` // default DefaultDatabases; meta lives in Databases[0]
}

// RunOptions controls Run.
type RunOptions struct {
	// Workload to run. If the store already holds parameters they are used
	// and Workload must either be the zero value or equal them.
	Workload Workload

	// Stop conditions; the first one reached stops every stream after its
	// current transaction. All zero means run until ctx is done.
	StopAfterBytes int64         // message+attachment bytes written by this Run
	SizeFunc       func() int64  // polled periodically; stop when >= TargetSize
	TargetSize     int64         //
	Duration       time.Duration // wall-clock limit of this Run
	StopAtSeq      uint64        // every stream stops once its seq reaches StopAtSeq

	// OnStart is called (concurrently, from the stream's goroutine) just
	// before the transaction with sequence number seq is submitted.
	OnStart func(stream int, seq uint64)
	// OnCommit is called (concurrently, from the stream's goroutine) after
	// the store acknowledged the commit of transaction seq of stream.
	OnCommit func(stream int, seq uint64)
}

// Stats summarises a Run.
type Stats struct {
	Txns    int64         // transactions committed by this Run
	Bytes   int64         // message + attachment bytes put by this Run
	Elapsed time.Duration //
	Seqs    []uint64      // final committed seq per stream
}

// ErrParamsMismatch is returned by Run when the store holds parameters that
// differ from RunOptions.Workload.
var ErrParamsMismatch = errors.New("workload: store holds different workload parameters")

// ErrNoParams is returned by Verify when the store holds no parameters.
var ErrNoParams = errors.New("workload: store holds no workload parameters")

// Run drives all streams of the workload concurrently against store, one
// goroutine per stream. It is resumable: each stream continues after the
// sequence number committed in the store. It returns when a stop condition
// is reached (nil error), ctx is cancelled (ctx.Err()), or the store fails.
// Stats are valid even when an error is returned.
func Run(ctx context.Context, store Store, opts RunOptions) (Stats, error) {
	start := time.Now()
	w, err := initParams(store, opts.Workload)
	if err != nil {
		return Stats{}, err
	}
	g := NewGenerator(w.Seed)
	stats := Stats{Seqs: make([]uint64, w.Streams)}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		stop     atomic.Bool
		bytes    atomic.Int64
		txns     atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
		cancel()
	}
	if opts.Duration > 0 {
		t := time.AfterFunc(opts.Duration, func() { stop.Store(true) })
		defer t.Stop()
	}
	if opts.SizeFunc != nil && opts.TargetSize > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				if opts.SizeFunc() >= opts.TargetSize {
					stop.Store(true)
				}
				if stop.Load() {
					return
				}
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	var streamsWG sync.WaitGroup
	for s := range w.Streams {
		streamsWG.Add(1)
		go func() {
			defer streamsWG.Done()
			var seq uint64
			err := store.View(func(tx Tx) error {
				var err error
				seq, err = readSeq(tx, &w, s)
				return err
			})
			if err != nil {
				fail(err)
				return
			}
			st := newStreamState(g, &w, s)
			st.replay(seq)
			stats.Seqs[s] = seq
			var ops []op
			var ws []write
			for {
				if stop.Load() || runCtx.Err() != nil {
					return
				}
				if opts.StopAtSeq > 0 && st.seq >= opts.StopAtSeq {
					return
				}
				if opts.StopAfterBytes > 0 && bytes.Load() >= opts.StopAfterBytes {
					stop.Store(true)
					return
				}
				next := st.seq + 1
				ops = ops[:0]
				st.step(next, &ops)
				var n int64
				ws, n = st.materialize(ops, ws[:0])
				if opts.OnStart != nil {
					opts.OnStart(s, next)
				}
				if err := store.Update(func(tx Tx) error { return applyWrites(tx, ws) }); err != nil {
					fail(fmt.Errorf("workload: stream %d seq %d: %w", s, next, err))
					return
				}
				stats.Seqs[s] = next
				bytes.Add(n)
				txns.Add(1)
				if opts.OnCommit != nil {
					opts.OnCommit(s, next)
				}
			}
		}()
	}
	streamsWG.Wait()
	stop.Store(true)
	cancel()
	wg.Wait()
	stats.Txns = txns.Load()
	stats.Bytes = bytes.Load()
	stats.Elapsed = time.Since(start)
	if firstErr != nil {
		return stats, firstErr
	}
	return stats, ctx.Err()
}

// metaDB returns the database holding the meta table for w (which may be
// the zero value).
func metaDB(w Workload) string {
	if len(w.Databases) > 0 {
		return w.Databases[0]
	}
	return DefaultDatabases[0]
}

// initParams records the parameters in the store (first transaction) or
// checks them against the recorded ones, returning the effective workload.
func initParams(store Store, want Workload) (Workload, error) {
	zero := want.Seed == 0 && want.Streams == 0 && len(want.Databases) == 0 && want.Version == 0
	check := func(have Workload) (Workload, error) {
		if zero {
			return have, nil
		}
		n, err := want.normalize()
		if err != nil {
			return n, err
		}
		if !n.equal(have) {
			return n, fmt.Errorf("%w: store has %s, asked for %s", ErrParamsMismatch, have.encode(), n.encode())
		}
		return have, nil
	}
	var (
		have  Workload
		found bool
	)
	err := store.View(func(tx Tx) error {
		var err error
		have, found, err = readParams(tx, metaDB(want))
		return err
	})
	if err != nil {
		return have, err
	}
	if found {
		return check(have)
	}
	if zero {
		return want, ErrNoParams
	}
	w, err := want.normalize()
	if err != nil {
		return w, err
	}
	err = store.Update(func(tx Tx) error {
		// Re-check inside the transaction in case of a concurrent Run.
		var err error
		if have, found, err = readParams(tx, w.Databases[0]); err != nil || found {
			return err
		}
		return tx.Put(w.Databases[0], TableMeta, []byte(ParamsKey), w.encode())
	})
	if err != nil {
		return w, err
	}
	if found {
		return check(have)
	}
	return w, nil
}

// readParams reads and normalises the parameters from the meta table of db.
func readParams(tx Tx, db string) (Workload, bool, error) {
	var w Workload
	v, ok, err := tx.Get(db, TableMeta, []byte(ParamsKey))
	if err != nil || !ok {
		return w, false, err
	}
	if err := json.Unmarshal(v, &w); err != nil {
		return w, true, fmt.Errorf("workload: bad parameters in store: %w", err)
	}
	w, err = w.normalize()
	if err == nil && w.Databases[0] != db {
		err = fmt.Errorf("workload: parameters found in database %q name %q as first database", db, w.Databases[0])
	}
	return w, true, err
}

func readSeq(tx Tx, w *Workload, stream int) (uint64, error) {
	v, ok, err := tx.Get(w.Databases[0], TableMeta, seqKey(stream))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("workload: bad seq value for stream %d: %x", stream, v)
	}
	return binary.BigEndian.Uint64(v), nil
}
