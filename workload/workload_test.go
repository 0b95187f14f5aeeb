package workload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func run(t *testing.T, s Store, opts RunOptions) Stats {
	t.Helper()
	st, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return st
}

func verifyOK(t *testing.T, s Store) Report {
	t.Helper()
	rep, err := Verify(context.Background(), s)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	return rep
}

func verifyDiffs(t *testing.T, s Store, kind DiffKind, table, key string) Report {
	t.Helper()
	rep, err := Verify(context.Background(), s)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.OK() {
		t.Fatalf("Verify found no difference, want %v %s %s", kind, table, key)
	}
	for _, d := range rep.Diffs {
		if d.Kind == kind && (table == "" || d.Table == table) && (key == "" || d.Key == key) {
			t.Logf("detected: %v", d)
			return rep
		}
	}
	t.Fatalf("want %v %s %q, got %v", kind, table, key, rep.Err())
	return rep
}

var testWorkload = Workload{Seed: 42, Streams: 4}

func TestDeterminism(t *testing.T) {
	a, b := NewMemStore(), NewMemStore()
	sa := run(t, a, RunOptions{Workload: testWorkload, StopAtSeq: 150})
	run(t, b, RunOptions{Workload: testWorkload, StopAtSeq: 150})
	if !a.Equal(b) {
		t.Fatal("two runs with the same seed differ")
	}
	if sa.Txns != 4*150 {
		t.Fatalf("txns = %d, want 600", sa.Txns)
	}
	rep := verifyOK(t, a)
	for s, seq := range rep.Seqs {
		if seq != 150 {
			t.Fatalf("stream %d seq %d", s, seq)
		}
	}
	t.Logf("%d keys, %d bytes, stats %+v", rep.Keys, rep.Bytes, sa)
	c := NewMemStore()
	run(t, c, RunOptions{Workload: Workload{Seed: 43, Streams: 4}, StopAtSeq: 150})
	if a.Equal(c) {
		t.Fatal("different seeds gave identical stores")
	}
}

func TestResume(t *testing.T) {
	full := NewMemStore()
	run(t, full, RunOptions{Workload: testWorkload, StopAtSeq: 120})

	part := NewMemStore()
	run(t, part, RunOptions{Workload: testWorkload, StopAtSeq: 30})
	verifyOK(t, part)
	// Stop somewhere uneven across streams.
	run(t, part, RunOptions{StopAfterBytes: 500 << 10})
	rep := verifyOK(t, part)
	t.Logf("after partial runs: seqs %v", rep.Seqs)
	run(t, part, RunOptions{Workload: testWorkload, StopAtSeq: 120})
	if !part.Equal(full) {
		t.Fatal("resumed run differs from uninterrupted run")
	}
}

// flakyStore fails some commits, as a crash before commit would.
type flakyStore struct {
	*MemStore
	n, every atomic.Int64
}

var errInjected = errors.New("injected failure")

func (f *flakyStore) Update(fn func(Tx) error) error {
	if f.n.Add(1)%f.every.Load() == 0 {
		return f.MemStore.Update(func(tx Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return errInjected // roll back after the writes were issued
		})
	}
	return f.MemStore.Update(fn)
}

func TestResumeAfterFailures(t *testing.T) {
	full := NewMemStore()
	run(t, full, RunOptions{Workload: testWorkload, StopAtSeq: 100})
	f := &flakyStore{MemStore: NewMemStore()}
	f.every.Store(37)
	w := testWorkload
	for i := 0; ; i++ {
		_, err := Run(context.Background(), f, RunOptions{Workload: w, StopAtSeq: 100})
		if err == nil {
			break
		}
		if !errors.Is(err, errInjected) {
			t.Fatal(err)
		}
		verifyOK(t, f.MemStore)
		if i > 100 {
			t.Fatal("no progress")
		}
	}
	if !f.MemStore.Equal(full) {
		t.Fatal("run with failures and resumes differs from uninterrupted run")
	}
}

func TestParams(t *testing.T) {
	s := NewMemStore()
	if _, err := Verify(context.Background(), s); !errors.Is(err, ErrNoParams) {
		t.Fatalf("Verify on empty store: %v", err)
	}
	if _, err := Run(context.Background(), s, RunOptions{StopAtSeq: 1}); !errors.Is(err, ErrNoParams) {
		t.Fatalf("Run without params: %v", err)
	}
	run(t, s, RunOptions{Workload: testWorkload, StopAtSeq: 3})
	if _, err := Run(context.Background(), s, RunOptions{Workload: Workload{Seed: 1, Streams: 4}, StopAtSeq: 5}); !errors.Is(err, ErrParamsMismatch) {
		t.Fatalf("Run with other params: %v", err)
	}
	rep := verifyOK(t, s)
	if rep.Workload.Seed != 42 || rep.Workload.Streams != 4 || rep.Workload.Version != Version || len(rep.Workload.Databases) != 2 {
		t.Fatalf("params %+v", rep.Workload)
	}
	// Custom databases: meta lives in the first one.
	c := NewMemStore()
	w := Workload{Seed: 7, Streams: 2, Databases: []string{"DB-A", "DB-B", "DB-C"}}
	run(t, c, RunOptions{Workload: w, StopAtSeq: 40})
	rep, err := VerifyWith(context.Background(), c, VerifyOptions{MetaDB: "DB-A"})
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyWith: %v %v", err, rep.Err())
	}
}

// populated returns a store after a short run plus its report.
func populated(t *testing.T) *MemStore {
	t.Helper()
	s := NewMemStore()
	run(t, s, RunOptions{Workload: testWorkload, StopAtSeq: 60})
	return s
}

func firstKey(t *testing.T, s Store, db, table, prefix string) ([]byte, []byte) {
	t.Helper()
	var k, v []byte
	err := s.View(func(tx Tx) error {
		return tx.Scan(db, table, []byte(prefix), func(key, val []byte) error {
			if k == nil && strings.HasPrefix(string(key), prefix) {
				k, v = bytes.Clone(key), bytes.Clone(val)
			}
			return nil
		})
	})
	if err != nil || k == nil {
		t.Fatalf("no key %s/%s %s: %v", db, table, prefix, err)
	}
	return k, v
}

func TestDetectMissing(t *testing.T) {
	s := populated(t)
	for _, table := range []string{TableMessages, TableAttachments, TableFolders} {
		c := s.Clone()
		k, _ := firstKey(t, c, "Mailbox1", table, "s0001/")
		if err := c.Update(func(tx Tx) error { return tx.Delete("Mailbox1", table, k) }); err != nil {
			t.Fatal(err)
		}
		verifyDiffs(t, c, DiffMissing, table, string(k))
	}
}

func TestDetectExtra(t *testing.T) {
	s := populated(t)
	cases := []struct{ db, table, key string }{
		{"Mailbox1", TableMessages, "s0002/999999999999"},
		{"Public", TableAttachments, "s0000/000000000001/07"},
		{"Mailbox1", TableFolders, "s0003/f05/000000000001"},
		{"Mailbox1", TableMessages, "garbage"},
		{"Mailbox1", TableMeta, "stream/0099"},
		{"Public", TableMessages, "s0099/000000000001"},
	}
	for _, c := range cases {
		cl := s.Clone()
		if err := cl.Update(func(tx Tx) error { return tx.Put(c.db, c.table, []byte(c.key), []byte("x")) }); err != nil {
			t.Fatal(err)
		}
		verifyDiffs(t, cl, DiffExtra, c.table, c.key)
	}
}

func TestDetectChanged(t *testing.T) {
	s := populated(t)
	for _, table := range []string{TableMessages, TableAttachments, TableFolders} {
		c := s.Clone()
		k, v := firstKey(t, c, "Mailbox1", table, "s0002/")
		v[len(v)/2] ^= 1
		if err := c.Update(func(tx Tx) error { return tx.Put("Mailbox1", table, k, v) }); err != nil {
			t.Fatal(err)
		}
		verifyDiffs(t, c, DiffMismatch, table, string(k))
	}
	// A changed sequence number is detected too (the model moves, content doesn't).
	c := s.Clone()
	if err := c.Update(func(tx Tx) error {
		return tx.Put("Mailbox1", TableMeta, seqKey(1), seqValue(59))
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), c)
	if err != nil || rep.OK() {
		t.Fatalf("rolled-back seq not detected: %v", err)
	}
	t.Log(rep.Err())
}

// txnWrites returns the writes of transaction seq of stream (model at seq-1).
func txnWrites(w Workload, stream int, seq uint64) []write {
	w, _ = w.normalize()
	st := newStreamState(NewGenerator(w.Seed), &w, stream)
	st.replay(seq - 1)
	var ops []op
	st.step(seq, &ops)
	ws, _ := st.materialize(ops, nil)
	return ws
}

func TestDetectPartialTxn(t *testing.T) {
	s := populated(t)
	// Find a transaction of stream 1 with several writes besides the seq.
	seq := uint64(61)
	var ws []write
	for ; ; seq++ {
		ws = txnWrites(testWorkload, 1, seq)
		if len(ws) >= 4 {
			break
		}
	}
	base := s.Clone()
	run(t, base, RunOptions{Workload: testWorkload, StopAtSeq: seq - 1})
	verifyOK(t, base)
	// Fully applied (including seq): consistent.
	full := base.Clone()
	if err := full.Update(func(tx Tx) error { return applyWrites(tx, ws) }); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, full)
	if rep.Seqs[1] != seq {
		t.Fatalf("seq %d want %d", rep.Seqs[1], seq)
	}
	// Any strict prefix or the seq key alone: detected.
	data := ws[:len(ws)-1] // without the seq write
	for _, part := range [][]write{data[:len(data)/2], data, ws[len(ws)-1:], append(append([]write{}, data[:1]...), ws[len(ws)-1])} {
		p := base.Clone()
		if err := p.Update(func(tx Tx) error { return applyWrites(tx, part) }); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			t.Fatalf("partial transaction (%d of %d writes) not detected", len(part), len(ws))
		}
		t.Logf("partial %d/%d writes: %d diffs, first %v", len(part), len(ws), rep.NumDiffs, rep.Diffs[0])
	}
}

func TestConcurrentAcks(t *testing.T) {
	s := NewMemStore()
	var mu sync.Mutex
	acked := map[int]uint64{}
	started := map[int]uint64{}
	opts := RunOptions{
		Workload:  Workload{Seed: 9, Streams: 8},
		StopAtSeq: 100,
		OnStart: func(stream int, seq uint64) {
			mu.Lock()
			started[stream] = seq
			mu.Unlock()
		},
		OnCommit: func(stream int, seq uint64) {
			mu.Lock()
			defer mu.Unlock()
			if seq != acked[stream]+1 {
				t.Errorf("stream %d acked %d after %d", stream, seq, acked[stream])
			}
			acked[stream] = seq
		},
	}
	st := run(t, s, opts)
	t.Logf("stats %+v", st)
	rep, err := VerifyAtLeast(context.Background(), s, acked, started)
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyAtLeast: %v %v", err, rep.Err())
	}
	for i, seq := range st.Seqs {
		if seq != acked[i] || seq != rep.Seqs[i] {
			t.Fatalf("stream %d: stats %d acked %d store %d", i, seq, acked[i], rep.Seqs[i])
		}
	}
	// Violated bounds are reported.
	acked[3]++
	started[5]--
	rep, err = VerifyAtLeast(context.Background(), s, acked, started)
	if err != nil {
		t.Fatal(err)
	}
	if rep.NumDiffs != 2 || rep.Diffs[0].Kind != DiffSeq || rep.Diffs[1].Kind != DiffSeq {
		t.Fatalf("want 2 seq diffs, got %v", rep.Err())
	}
	t.Log(rep.Err())
}

func TestStopConditions(t *testing.T) {
	s := NewMemStore()
	st := run(t, s, RunOptions{Workload: testWorkload, Duration: 100 * time.Millisecond})
	if st.Txns == 0 {
		t.Fatal("no transactions")
	}
	var size atomic.Int64
	sizeFunc := func() int64 {
		var n int64
		_ = s.View(func(tx Tx) error {
			return tx.Scan("Mailbox1", TableMessages, nil, func(k, v []byte) error { n += int64(len(v)); return nil })
		})
		size.Store(n)
		return n
	}
	target := sizeFunc() + 2<<20
	run(t, s, RunOptions{SizeFunc: sizeFunc, TargetSize: target})
	if sizeFunc() < target {
		t.Fatalf("size %d < target %d", size.Load(), target)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := Run(ctx, s, RunOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	verifyOK(t, s)
}

func TestMessageFormat(t *testing.T) {
	g := NewGenerator(5)
	var withAtt, inline, replies int
	for msg := uint64(1); msg <= 300; msg++ {
		m := g.Message(3, msg)
		if !bytes.Equal(m.Raw, NewGenerator(5).Message(3, msg).Raw) {
			t.Fatal("not deterministic")
		}
		pm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("msg %d: %v", msg, err)
		}
		for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "Dkim-Signature"} {
			if pm.Header.Get(h) == "" {
				t.Fatalf("msg %d: no %s header", msg, h)
			}
		}
		if _, err := pm.Header.Date(); err != nil {
			t.Fatalf("msg %d: %v", msg, err)
		}
		if len(pm.Header["Received"]) < 3 {
			t.Fatalf("msg %d: %d Received", msg, len(pm.Header["Received"]))
		}
		if pm.Header.Get("In-Reply-To") != "" {
			replies++
		}
		mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		if len(g.plan(3, msg)) > 0 {
			withAtt++
		}
		parts := 0
		mr := multipart.NewReader(pm.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("msg %d: %v", msg, err)
			}
			parts++
			if p.Header.Get("Content-Transfer-Encoding") == "base64" {
				inline++
			}
		}
		if mt == "multipart/alternative" && parts != 2 || mt == "multipart/mixed" && parts < 2 {
			t.Fatalf("msg %d: %s with %d parts", msg, mt, parts)
		}
		if len(m.Attachments) != g.separateAttachments(3, msg) {
			t.Fatal("attachment count")
		}
	}
	t.Logf("300 messages: %d with attachments, %d inline attachments, %d replies", withAtt, inline, replies)
	if withAtt < 20 || withAtt > 40 || replies < 100 {
		t.Fatal("unexpected mix")
	}
}

func TestMemStoreRollback(t *testing.T) {
	s := NewMemStore()
	boom := errors.New("boom")
	err := s.Update(func(tx Tx) error {
		if err := tx.Put("d", "t", []byte("k"), []byte("v")); err != nil {
			return err
		}
		if v, ok, _ := tx.Get("d", "t", []byte("k")); !ok || string(v) != "v" {
			t.Fatal("own write not visible")
		}
		return boom
	})
	if err != boom || s.Keys() != 0 {
		t.Fatalf("rollback: %v, %d keys", err, s.Keys())
	}
	if err := s.View(func(tx Tx) error { return tx.Put("d", "t", []byte("k"), nil) }); err != ErrReadOnly {
		t.Fatalf("write in View: %v", err)
	}
}

func TestManyDiffsDeterministic(t *testing.T) {
	s := populated(t)
	var n int
	err := s.Update(func(tx Tx) error {
		var keys [][]byte
		if err := tx.Scan("Mailbox1", TableMessages, nil, func(k, v []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		n = len(keys)
		for _, k := range keys {
			if err := tx.Put("Mailbox1", TableMessages, k, []byte("corrupt")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	first, err := Verify(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if first.NumDiffs != n || len(first.Diffs) != MaxDiffs {
		t.Fatalf("NumDiffs %d (want %d), %d kept", first.NumDiffs, n, len(first.Diffs))
	}
	for i := 0; i < 5; i++ {
		again, err := Verify(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		for j := range again.Diffs {
			if again.Diffs[j] != first.Diffs[j] {
				t.Fatalf("diff %d differs between runs: %v vs %v", j, again.Diffs[j], first.Diffs[j])
			}
		}
	}
	for j := 1; j < len(first.Diffs); j++ {
		if first.Diffs[j-1].Key >= first.Diffs[j].Key {
			t.Fatalf("diffs not in scan order: %s then %s", first.Diffs[j-1].Key, first.Diffs[j].Key)
		}
	}
}
