package workload

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DiffKind classifies a Diff.
type DiffKind int

const (
	DiffMissing  DiffKind = iota // expected key absent
	DiffExtra                    // unexpected key present
	DiffMismatch                 // key present with a different value
	DiffSeq                      // stream seq outside the acked/started bounds
)

func (k DiffKind) String() string {
	switch k {
	case DiffMissing:
		return "missing"
	case DiffExtra:
		return "extra"
	case DiffMismatch:
		return "mismatch"
	case DiffSeq:
		return "seq"
	}
	return "DiffKind(" + strconv.Itoa(int(k)) + ")"
}

// Diff is one difference between the store and the model.
type Diff struct {
	Kind     DiffKind
	DB       string
	Table    string
	Key      string // printable key
	Expected string // e.g. "len=1234 sha256=0123abcd…" or "absent"
	Got      string
}

func (d Diff) String() string {
	return fmt.Sprintf("%s %s/%s %s: expected %s, got %s", d.Kind, d.DB, d.Table, d.Key, d.Expected, d.Got)
}

// Report is the result of Verify.
type Report struct {
	Workload Workload
	Seqs     []uint64 // committed seq per stream, as read from the store
	Keys     int64    // keys scanned
	Bytes    int64    // value bytes scanned
	NumDiffs int      // total number of differences
	Diffs    []Diff   // the first MaxDiffs differences
	Elapsed  time.Duration
}

// MaxDiffs is the number of differences kept in Report.Diffs.
const MaxDiffs = 20

// OK reports whether no difference was found.
func (r *Report) OK() bool { return r.NumDiffs == 0 }

// Err returns nil if r.OK(), else an error describing the first differences.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "workload: store differs from model in %d place(s)", r.NumDiffs)
	for i, d := range r.Diffs {
		if i == 5 {
			b.WriteString("\n  …")
			break
		}
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return errors.New(b.String())
}

// VerifyOptions controls VerifyWith.
type VerifyOptions struct {
	// MetaDB is the database holding the meta table (the workload's first
	// database); default DefaultDatabases[0].
	MetaDB string
	// Acked, if non-nil, gives lower bounds: stream s must have committed
	// seq >= Acked[s].
	Acked map[int]uint64
	// Started, if non-nil, gives upper bounds: stream s must have committed
	// seq <= Started[s] (0 if absent).
	Started map[int]uint64
}

// Verify reads the workload parameters and every stream's sequence number
// from store, replays the model of each stream up to that seq and compares
// it with the full contents of the workload tables. Differences are
// reported in Report; the error is non-nil only if the store could not be
// read or holds no (valid) parameters.
func Verify(ctx context.Context, store Store) (Report, error) {
	return VerifyWith(ctx, store, VerifyOptions{})
}

// VerifyAtLeast is Verify plus crash-test bounds: for every stream s in
// acked the stored seq must be >= acked[s], and if started is non-nil, for
// every stream the stored seq must be <= started[s] (0 if absent).
func VerifyAtLeast(ctx context.Context, store Store, acked, started map[int]uint64) (Report, error) {
	return VerifyWith(ctx, store, VerifyOptions{Acked: acked, Started: started})
}

func describe(v []byte) string {
	if v == nil {
		return "absent"
	}
	h := sha256.Sum256(v)
	return fmt.Sprintf("len=%d sha256=%x", len(v), h[:8])
}

func printableKey(k []byte) string {
	for _, c := range k {
		if c < 0x20 || c >= 0x7f {
			return fmt.Sprintf("%x", k)
		}
	}
	return string(k)
}

// VerifyWith is Verify with options. All reads happen in one View; the
// scans run in the calling goroutine while message and attachment contents
// are regenerated and compared on GOMAXPROCS workers. Report.Diffs holds the
// first MaxDiffs differences in scan order (deterministic).
func VerifyWith(ctx context.Context, store Store, opts VerifyOptions) (Report, error) {
	start := time.Now()
	var rep Report
	mdb := opts.MetaDB
	if mdb == "" {
		mdb = DefaultDatabases[0]
	}
	err := store.View(func(tx Tx) error {
		w, ok, err := readParams(tx, mdb)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoParams
		}
		rep.Workload = w
		v := &verifier{ctx: ctx, tx: tx, rep: &rep, w: &w, g: NewGenerator(w.Seed)}
		return v.run(opts)
	})
	rep.Elapsed = time.Since(start)
	return rep, err
}

type verifier struct {
	ctx     context.Context
	tx      Tx
	rep     *Report
	w       *Workload
	g       *Generator
	streams []*streamState
	buf     []byte
	idx     int64 // order of the next difference (scan order)

	// Content comparisons run on a worker pool; differences are kept in
	// scan order so the report does not depend on scheduling.
	jobs   chan verifyJob
	wg     sync.WaitGroup
	mu     sync.Mutex
	diffs  []orderedDiff
	ndiffs int
}

type orderedDiff struct {
	idx int64
	d   Diff
}

type verifyJob struct {
	idx       int64
	db, table string
	key, val  []byte
	p         parsedKey
}

// add records a difference found at scan position idx.
func (v *verifier) add(idx int64, d Diff) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ndiffs++
	v.diffs = append(v.diffs, orderedDiff{idx, d})
	if len(v.diffs) >= 8*MaxDiffs {
		v.trimDiffs()
	}
}

func (v *verifier) trimDiffs() {
	slices.SortFunc(v.diffs, func(a, b orderedDiff) int { return cmp.Compare(a.idx, b.idx) })
	if len(v.diffs) > MaxDiffs {
		v.diffs = v.diffs[:MaxDiffs]
	}
}

// next returns the position of the next sequentially found difference.
func (v *verifier) next() int64 {
	v.idx++
	return v.idx
}

// keep reports whether a difference found now would be kept in the report
// (valid once the workers are drained).
func (v *verifier) keep() bool { return v.ndiffs < MaxDiffs }

func (v *verifier) startWorkers() {
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return
	}
	v.jobs = make(chan verifyJob, 2*n)
	for range n {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			var buf []byte
			for j := range v.jobs {
				buf = v.content(buf[:0], j.p)
				if !bytes.Equal(buf, j.val) {
					v.add(j.idx, Diff{Kind: DiffMismatch, DB: j.db, Table: j.table, Key: printableKey(j.key), Expected: describe(buf), Got: describe(j.val)})
				}
			}
		}()
	}
}

func (v *verifier) stopWorkers() {
	if v.jobs != nil {
		close(v.jobs)
		v.wg.Wait()
		v.jobs = nil
	}
}

// content appends the expected message or attachment value of p.
func (v *verifier) content(dst []byte, p parsedKey) []byte {
	if p.kind == keyAtt {
		return v.g.appendAttachment(dst, p.stream, p.msg, p.n)
	}
	return v.g.appendRaw(dst, p.stream, p.msg)
}

func (v *verifier) run(opts VerifyOptions) error {
	w := v.w
	rep := v.rep
	defer func() {
		v.stopWorkers()
		v.trimDiffs()
		rep.NumDiffs = v.ndiffs
		rep.Diffs = nil
		for _, d := range v.diffs {
			rep.Diffs = append(rep.Diffs, d.d)
		}
	}()
	rep.Seqs = make([]uint64, w.Streams)
	v.streams = make([]*streamState, w.Streams)
	for s := range w.Streams {
		seq, err := readSeq(v.tx, w, s)
		if err != nil {
			if v.ctx.Err() != nil {
				return v.ctx.Err()
			}
			// A malformed seq value is a difference, not a read failure.
			val, _, gerr := v.tx.Get(w.Databases[0], TableMeta, seqKey(s))
			if gerr != nil {
				return gerr
			}
			v.add(v.next(), Diff{Kind: DiffMismatch, DB: w.Databases[0], Table: TableMeta, Key: string(seqKey(s)), Expected: "8-byte seq", Got: describe(val)})
			seq = 0
		}
		rep.Seqs[s] = seq
		st := newStreamState(v.g, w, s)
		st.replay(seq)
		st.fseen = make([]uint16, len(w.Databases))
		v.streams[s] = st
		if err := v.ctx.Err(); err != nil {
			return err
		}
	}
	v.startWorkers()
	for dbi, db := range w.Databases {
		for _, table := range []string{TableMessages, TableAttachments, TableFolders} {
			if err := v.scan(dbi, db, table); err != nil {
				return err
			}
		}
	}
	if err := v.scanMeta(); err != nil {
		return err
	}
	v.stopWorkers()
	v.missing()
	for s := range w.Streams {
		key := string(seqKey(s))
		if a, ok := opts.Acked[s]; ok && rep.Seqs[s] < a {
			v.add(v.next(), Diff{Kind: DiffSeq, DB: w.Databases[0], Table: TableMeta, Key: key, Expected: fmt.Sprintf("seq >= %d (acked)", a), Got: fmt.Sprintf("seq %d", rep.Seqs[s])})
		}
		if opts.Started != nil && rep.Seqs[s] > opts.Started[s] {
			v.add(v.next(), Diff{Kind: DiffSeq, DB: w.Databases[0], Table: TableMeta, Key: key, Expected: fmt.Sprintf("seq <= %d (started)", opts.Started[s]), Got: fmt.Sprintf("seq %d", rep.Seqs[s])})
		}
	}
	return nil
}

func (v *verifier) scan(dbi int, db, table string) error {
	rep := v.rep
	n := 0
	return v.tx.Scan(db, table, nil, func(key, val []byte) error {
		if n++; n&255 == 0 {
			if err := v.ctx.Err(); err != nil {
				return err
			}
		}
		rep.Keys++
		rep.Bytes += int64(len(val))
		idx := v.next()
		p, exp, ok := v.expected(dbi, table, key)
		switch {
		case !ok:
			v.add(idx, Diff{Kind: DiffExtra, DB: db, Table: table, Key: printableKey(key), Expected: "absent", Got: describe(val)})
		case exp != nil:
			if !bytes.Equal(exp, val) {
				v.add(idx, Diff{Kind: DiffMismatch, DB: db, Table: table, Key: printableKey(key), Expected: describe(exp), Got: describe(val)})
			}
		case v.jobs != nil:
			v.jobs <- verifyJob{idx: idx, db: db, table: table, key: bytes.Clone(key), val: bytes.Clone(val), p: p}
		default:
			v.buf = v.content(v.buf[:0], p)
			if !bytes.Equal(v.buf, val) {
				v.add(idx, Diff{Kind: DiffMismatch, DB: db, Table: table, Key: printableKey(key), Expected: describe(v.buf), Got: describe(val)})
			}
		}
		return nil
	})
}

// expected looks key up in the model and marks it seen. It returns false if
// the model has no such key; otherwise either the expected value, or nil
// for message and attachment keys whose content is generated by content.
func (v *verifier) expected(dbi int, table string, key []byte) (parsedKey, []byte, bool) {
	p := parseKey(key)
	if p.kind == keyBad || p.stream >= len(v.streams) {
		return p, nil, false
	}
	st := v.streams[p.stream]
	var m *msgState
	if p.kind != keyFolder {
		m = st.msgs[p.msg]
		if m == nil || int(m.db) != dbi {
			return p, nil, false
		}
	}
	switch {
	case table == TableMessages && p.kind == keyMsg:
		m.seen |= seenMsg
		return p, nil, true
	case table == TableAttachments && p.kind == keyAtt && p.n < int(m.nAtt):
		m.seen |= seenAtt0 << p.n
		return p, nil, true
	case table == TableFolders && p.kind == keyEntry && p.n == int(m.folder):
		m.seen |= seenEntry
		return p, v.g.entryValue(p.stream, p.msg, m), true
	case table == TableFolders && p.kind == keyFolder && st.seq >= 1 && p.n < numFolders:
		st.fseen[dbi] |= 1 << p.n
		return p, folderDefValue(p.stream, dbi, p.n), true
	}
	return p, nil, false
}

func (v *verifier) scanMeta() error {
	w := v.w
	db := w.Databases[0]
	rep := v.rep
	return v.tx.Scan(db, TableMeta, nil, func(key, val []byte) error {
		rep.Keys++
		rep.Bytes += int64(len(val))
		idx := v.next()
		k := string(key)
		if k == ParamsKey {
			return nil // already decoded and validated
		}
		if s, ok := strings.CutPrefix(k, "stream/"); ok && len(s) == 4 {
			if n, ok := parseDec([]byte(s)); ok && int(n) < w.Streams && bytes.Equal(seqKey(int(n)), key) {
				if len(val) == 8 && binary.BigEndian.Uint64(val) == 0 {
					// A zero seq is never written.
					v.add(idx, Diff{Kind: DiffMismatch, DB: db, Table: TableMeta, Key: k, Expected: "absent or seq >= 1", Got: "seq 0"})
				}
				return nil // malformed values were reported when read
			}
		}
		v.add(idx, Diff{Kind: DiffExtra, DB: db, Table: TableMeta, Key: printableKey(key), Expected: "absent", Got: describe(val)})
		return nil
	})
}

// missing reports every model key that the scans did not see.
func (v *verifier) missing() {
	w := v.w
	for _, st := range v.streams {
		if st.seq >= 1 {
			for dbi, db := range w.Databases {
				for f := range numFolders {
					if st.fseen[dbi]&(1<<f) == 0 {
						exp := folderDefValue(st.id, dbi, f)
						v.add(v.next(), Diff{Kind: DiffMissing, DB: db, Table: TableFolders, Key: string(folderDefKey(st.id, f)), Expected: describe(exp), Got: "absent"})
					}
				}
			}
		}
		msgs := slices.Clone(st.live)
		slices.Sort(msgs)
		for _, msg := range msgs {
			m := st.msgs[msg]
			want := uint8(seenMsg|seenEntry) | (uint8(1)<<m.nAtt-1)*seenAtt0
			if m.seen&want == want {
				continue
			}
			db := w.Databases[m.db]
			if m.seen&seenMsg == 0 {
				v.addLazy(Diff{Kind: DiffMissing, DB: db, Table: TableMessages, Key: string(msgKey(st.id, msg)), Got: "absent"},
					parsedKey{kind: keyMsg, stream: st.id, msg: msg})
			}
			for k := range int(m.nAtt) {
				if m.seen&(seenAtt0<<k) == 0 {
					v.addLazy(Diff{Kind: DiffMissing, DB: db, Table: TableAttachments, Key: string(attKey(st.id, msg, k)), Got: "absent"},
						parsedKey{kind: keyAtt, stream: st.id, msg: msg, n: k})
				}
			}
			if m.seen&seenEntry == 0 {
				v.add(v.next(), Diff{Kind: DiffMissing, DB: db, Table: TableFolders, Key: string(folderEntryKey(st.id, int(m.folder), msg)), Expected: describe(v.g.entryValue(st.id, msg, m)), Got: "absent"})
			}
		}
	}
}

// addLazy adds a missing-content difference, generating the expected value
// only if the difference is kept (workers must be stopped).
func (v *verifier) addLazy(d Diff, p parsedKey) {
	if v.keep() {
		d.Expected = describe(v.content(nil, p))
	}
	v.add(v.next(), d)
}
