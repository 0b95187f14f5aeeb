package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
)

// seqWriter commits deterministic transactions: txn n writes a value for
// key n%500 (some long), deletes another key every third txn, and records
// n under "seq". model(n) replays that to know the exact state after n.
type seqWriter struct {
	g       *Group
	seed    uint64
	acked   atomic.Uint64
	started atomic.Uint64
	stop    chan struct{}
	wg      sync.WaitGroup
	err     error
}

func txnOps(seed, n uint64) (put []byte, putVal []byte, del []byte) {
	r := rand.New(rand.NewPCG(seed, n))
	put = []byte(fmt.Sprintf("k%04d", r.IntN(500)))
	size := r.IntN(400)
	if r.IntN(10) == 0 {
		size = 3000 + r.IntN(30000)
	}
	putVal = make([]byte, size)
	for i := range putVal {
		putVal[i] = byte(r.Uint32())
	}
	if n%3 == 0 {
		del = []byte(fmt.Sprintf("k%04d", r.IntN(500)))
	}
	return
}

func seqModel(seed, upto uint64) map[string][]byte {
	m := map[string][]byte{}
	for n := uint64(1); n <= upto; n++ {
		k, v, d := txnOps(seed, n)
		m[string(k)] = v
		if d != nil {
			delete(m, string(d))
		}
		m["seq"] = binary.BigEndian.AppendUint64(nil, n)
	}
	return m
}

func (w *seqWriter) commit(n uint64) error {
	k, v, d := txnOps(w.seed, n)
	return w.g.Update(func(tx *Tx) error {
		if err := tx.Put("Mailbox1", "t", k, v); err != nil {
			return err
		}
		if d != nil {
			if err := tx.Delete("Mailbox1", "t", d); err != nil {
				return err
			}
		}
		// The same transaction also touches Public so both databases matter.
		if err := tx.Put("Public", "t", []byte("last"), k); err != nil {
			return err
		}
		return tx.Put("Mailbox1", "t", []byte("seq"), binary.BigEndian.AppendUint64(nil, n))
	})
}

func startWriter(g *Group, seed uint64) *seqWriter {
	w := &seqWriter{g: g, seed: seed, stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for n := w.acked.Load() + 1; ; n++ {
			select {
			case <-w.stop:
				return
			default:
			}
			w.started.Store(n)
			if err := w.commit(n); err != nil {
				w.err = err
				return
			}
			w.acked.Store(n)
		}
	}()
	return w
}

func (w *seqWriter) halt(t *testing.T) {
	close(w.stop)
	w.wg.Wait()
	if w.err != nil {
		t.Fatal(w.err)
	}
}

// copiedSet is a backup taken through the API into a plain directory.
type copiedSet struct {
	typ      ese.BackupType
	dir      string
	dbFiles  []string
	logs     []string
	low      uint32
	high     uint32
	acked    uint64 // commits acknowledged before the log list was taken
	started  uint64 // commits started before the log list returned
	truncked []string
}

func readAll(t testing.TB, r *FileReader, dst string) {
	t.Helper()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, ChunkSize)
	for {
		n, err := r.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != ChunkSize && r.off != r.size {
			t.Fatalf("short chunk %d in the middle of %s", n, r.file.Name)
		}
		out.Write(buf[:n])
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func takeBackup(t testing.TB, g *Group, typ ese.BackupType, dbs []string, dir string, w *seqWriter) *copiedSet {
	t.Helper()
	s, err := g.BackupSetup(typ, dbs)
	if err != nil {
		t.Fatal(err)
	}
	cs := &copiedSet{typ: typ, dir: dir}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	for _, bf := range s.DatabaseFiles() {
		r, err := s.OpenFile(bf.Name)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, r, filepath.Join(dir, bf.Name))
		cs.dbFiles = append(cs.dbFiles, bf.Name)
	}
	if w != nil {
		cs.acked = w.acked.Load()
	}
	logs, patches, err := s.GetLogAndPatchFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(patches) != 0 {
		t.Fatalf("patch files %v", patches)
	}
	if w != nil {
		cs.started = w.started.Load()
	}
	// The list is taken once: asking again neither rolls over nor lists more.
	if again, _, err := s.GetLogAndPatchFiles(); err != nil || len(again) != len(logs) || again[len(again)-1] != logs[len(logs)-1] {
		t.Fatalf("second log list %v (%v), first %v", again, err, logs)
	}
	for _, lf := range logs {
		r, err := s.OpenFile(lf.Name)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, r, filepath.Join(dir, "logs", lf.Name))
		cs.logs = append(cs.logs, lf.Name)
	}
	cs.low, cs.high = s.LowGen(), s.HighGen()
	if typ.Truncates() {
		if cs.truncked, err = s.TruncateLog(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InstanceEnd(true, "set-"+typ.String()); err != nil {
		t.Fatal(err)
	}
	s.End()
	return cs
}

// restoreSets lays down a full set plus later sets into a new group dir
// and opens it (hard recovery).
func restoreSets(t testing.TB, srcGroupDir, dst string, sets ...*copiedSet) *Group {
	t.Helper()
	os.MkdirAll(dst, 0o755)
	cfg, _ := os.ReadFile(filepath.Join(srcGroupDir, groupConfigFile))
	os.WriteFile(filepath.Join(dst, groupConfigFile), cfg, 0o644)
	tmp := filepath.Join(dst, "restore-logs")
	os.MkdirAll(tmp, 0o755)
	full := sets[0]
	for _, f := range full.dbFiles {
		b, _ := os.ReadFile(filepath.Join(full.dir, f))
		os.WriteFile(filepath.Join(dst, f), b, 0o644)
		if err := MarkRestored(nil, filepath.Join(dst, f), full.low, full.high, "x", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sets {
		for _, l := range s.logs {
			b, _ := os.ReadFile(filepath.Join(s.dir, "logs", l))
			os.WriteFile(filepath.Join(tmp, l), b, 0o644)
		}
	}
	g, err := OpenGroup(dst, Options{RestoreLogDirs: []string{tmp}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// assertState checks the restored group equals the model at its own seq,
// and that seq is within what the set must and may contain.
func assertState(t *testing.T, g *Group, seed uint64, last *copiedSet) {
	t.Helper()
	var seq uint64
	g.View(func(tx *Tx) error {
		v, ok, err := tx.Get("Mailbox1", "t", []byte("seq"))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if seq < last.acked || seq > last.started {
		t.Fatalf("restored seq %d outside [acked %d, started %d] of the last set", seq, last.acked, last.started)
	}
	checkModelTable(t, g, "Mailbox1", seqModel(seed, seq))
	r, err := g.Check()
	if err != nil || !r.OK() {
		t.Fatalf("check: %v %v", err, r.Problems)
	}
}

func checkModelTable(t *testing.T, g *Group, db string, model map[string][]byte) {
	t.Helper()
	n := 0
	err := g.View(func(tx *Tx) error {
		return tx.Scan(db, "t", nil, func(k, v []byte) error {
			want, ok := model[string(k)]
			if !ok {
				return fmt.Errorf("unexpected key %q", k)
			}
			if !bytes.Equal(v, want) {
				return fmt.Errorf("key %q differs", k)
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(model) {
		t.Fatalf("%d keys, model has %d", n, len(model))
	}
}

func newBackupGroup(t testing.TB, logSize int64, circular bool) (*Group, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "SG1")
	cfg := GroupConfig{Name: "SG1", LogSize: logSize, CircularLogging: circular, Databases: []DBConfig{{Name: "Mailbox1", Streaming: true}, {Name: "Public"}}}
	if err := CreateGroup(dir, cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGroup(dir, Options{CacheSize: 2 << 20, FlushInterval: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	return g, dir
}

func TestOnlineBackupConsistency(t *testing.T) {
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	for round := 0; round < rounds; round++ {
		seed := uint64(round + 1)
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			g, dir := newBackupGroup(t, 128<<10, false)
			defer g.Close()
			w := startWriter(g, seed)
			for w.acked.Load() < 50 {
			}
			base := t.TempDir()
			full := takeBackup(t, g, ese.Full, nil, filepath.Join(base, "full"), w)
			// A differential holds every log since its full: nothing has
			// truncated them yet.
			diff := takeBackup(t, g, ese.Differential, nil, filepath.Join(base, "diff"), w)
			inc1 := takeBackup(t, g, ese.Incremental, nil, filepath.Join(base, "inc1"), w)
			inc2 := takeBackup(t, g, ese.Incremental, nil, filepath.Join(base, "inc2"), w)
			// The incrementals truncated the logs they copied, some since
			// the full: a differential of that full is refused.
			if _, err := g.BackupSetup(ese.Differential, nil); !errors.Is(err, ErrMissingLogFile) {
				t.Fatalf("differential after incrementals of its full: %v", err)
			}
			w.halt(t)
			if len(inc1.truncked) == 0 || len(inc2.truncked) == 0 || inc2.low > inc1.high+1 {
				t.Fatalf("incrementals %d-%d (truncated %v), %d-%d (truncated %v): each should truncate what it copied and the next continue it",
					inc1.low, inc1.high, inc1.truncked, inc2.low, inc2.high, inc2.truncked)
			}
			if full.acked == full.started && full.acked == 0 {
				t.Fatal("writer made no progress")
			}
			g1 := restoreSets(t, dir, filepath.Join(base, "r-full"), full)
			assertState(t, g1, seed, full)
			g1.Close()
			g2 := restoreSets(t, dir, filepath.Join(base, "r-inc"), full, inc1, inc2)
			assertState(t, g2, seed, inc2)
			g2.Close()
			g3 := restoreSets(t, dir, filepath.Join(base, "r-diff"), full, diff)
			assertState(t, g3, seed, diff)
			g3.Close()
		})
	}
}

func asESE(t *testing.T, err error, code int) {
	t.Helper()
	var e *ESEError
	var pe *page.PageError
	var le *wal.LogError
	switch {
	case errors.As(err, &e) && e.Code == code:
	case errors.As(err, &pe) && pe.Code == code:
	case errors.As(err, &le) && int(le.Code) == code:
	default:
		t.Fatalf("want ESE error %d, got %v", code, err)
	}
}

func writeN(t testing.TB, g *Group, n int, tag string) {
	t.Helper()
	for i := 0; i < n; i++ {
		v := bytes.Repeat([]byte(tag), 200)
		if err := g.Update(func(tx *Tx) error {
			tx.Put("Public", "t", []byte(fmt.Sprintf("%s%05d", tag, i)), v)
			return tx.Put("Mailbox1", "t", []byte(fmt.Sprintf("%s%05d", tag, i)), v)
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackupErrorCodes(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	defer g.Close()
	writeN(t, g, 300, "a")
	base := t.TempDir()
	next := func(name string) string { return filepath.Join(base, name) }

	// -520: incremental before any full.
	_, err := g.BackupSetup(ese.Incremental, nil)
	asESE(t, err, CodeNoBackup)

	// -505: a second session while the first runs.
	s, err := g.BackupSetup(ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.BackupSetup(ese.Copy, nil)
	asESE(t, err, CodeBackupInProgress)
	if err := g.Dismount("Public"); !errors.Is(err, ErrBackupInProgress) {
		t.Fatalf("dismount during backup: %v", err)
	}
	// -616: truncation before the logs were read.
	if _, _, err := s.GetLogAndPatchFiles(); err != nil {
		t.Fatal(err)
	}
	_, err = s.TruncateLog()
	asESE(t, err, CodeLogFileNotCopied)
	s.InstanceEnd(false, "")
	takeBackup(t, g, ese.Full, nil, next("full1"), nil) // works after the failures

	// -528: a generation missing from the incremental's range.
	writeN(t, g, 300, "b")
	gens, _, _ := wal.ListGenerations(vfs.OS, dir, "E00")
	victim := filepath.Join(dir, wal.GenName("E00", gens[len(gens)-1]))
	saved, _ := os.ReadFile(victim)
	os.Remove(victim)
	s, err = g.BackupSetup(ese.Incremental, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.GetLogAndPatchFiles()
	asESE(t, err, CodeMissingLogFile)
	os.WriteFile(victim, saved, 0o644)
	takeBackup(t, g, ese.Incremental, nil, next("inc1"), nil)

	// -612: a damaged closed generation.
	writeN(t, g, 300, "c")
	gens, _, _ = wal.ListGenerations(vfs.OS, dir, "E00")
	victim = filepath.Join(dir, wal.GenName("E00", gens[len(gens)-1]))
	saved, _ = os.ReadFile(victim)
	bad := bytes.Clone(saved)
	bad[wal.HeaderSize+100] ^= 0xff
	os.WriteFile(victim, bad, 0o644)
	s, err = g.BackupSetup(ese.Incremental, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = copyLogs(s)
	asESE(t, err, CodeLogReadVerifyFailure)
	os.WriteFile(victim, saved, 0o644)
	takeBackup(t, g, ese.Incremental, nil, next("inc2"), nil)
	// A differential needs every log since the full: one removed by hand
	// is refused naming the gap.
	full2 := takeBackup(t, g, ese.Full, nil, next("full2"), nil)
	writeN(t, g, 300, "d")
	gens, _, _ = wal.ListGenerations(vfs.OS, dir, "E00")
	if gens[len(gens)-2] <= full2.high {
		t.Fatalf("workload too small: generations %v, full ended at %d", gens, full2.high)
	}
	os.Remove(filepath.Join(dir, wal.GenName("E00", gens[len(gens)-2])))
	s, err = g.BackupSetup(ese.Differential, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.GetLogAndPatchFiles()
	asESE(t, err, CodeMissingLogFile)

	// -1018 and -1118: a flipped byte, a page written at the wrong offset.
	for _, tc := range []struct {
		code   int
		damage func(b []byte)
	}{
		{page.CodeReadVerifyFailure, func(b []byte) { b[5*page.Size+200] ^= 0x40 }},
		{page.CodeBadPageNumber, func(b []byte) { copy(b[6*page.Size:7*page.Size], b[7*page.Size:8*page.Size]) }},
	} {
		if err := g.flush(true); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "Public.edb")
		orig, _ := os.ReadFile(path)
		dmg := bytes.Clone(orig)
		tc.damage(dmg)
		os.WriteFile(path, dmg, 0o644)
		s, err := g.BackupSetup(ese.Full, []string{"Public"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.OpenFile("Public.edb")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, ChunkSize)
		for err == nil {
			_, err = r.Read(buf)
		}
		asESE(t, err, tc.code)
		var pe *page.PageError
		errors.As(err, &pe)
		if pe.DB != "Public.edb" || pe.Page < 5 || pe.Page > 7 {
			t.Fatalf("error names %s page %d", pe.DB, pe.Page)
		}
		if g.backup != nil {
			t.Fatal("failed session still holds the group")
		}
		os.WriteFile(path, orig, 0o644)
		takeBackup(t, g, ese.Full, []string{"Public"}, next(fmt.Sprint("fix", tc.code)), nil)
	}
}

func copyLogs(s *Session) error {
	logs, _, err := s.GetLogAndPatchFiles()
	if err != nil {
		return err
	}
	buf := make([]byte, ChunkSize)
	for _, lf := range logs {
		r, err := s.OpenFile(lf.Name)
		if err != nil {
			return err
		}
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		r.Close()
	}
	return nil
}

func TestCircularLoggingRefusesIncremental(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, true)
	defer g.Close()
	writeN(t, g, 600, "a")
	takeBackup(t, g, ese.Full, nil, t.TempDir(), nil)
	for _, typ := range []ese.BackupType{ese.Incremental, ese.Differential} {
		_, err := g.BackupSetup(typ, nil)
		asESE(t, err, CodeInvalidBackup)
	}
	// Closed generations behind the checkpoint go away by themselves.
	writeN(t, g, 600, "b")
	if err := g.flush(true); err != nil {
		t.Fatal(err)
	}
	gens, _, _ := wal.ListGenerations(vfs.OS, dir, "E00")
	chk := g.CheckpointPos()
	for _, n := range gens {
		if n < chk.Gen {
			t.Fatalf("circular logging kept generation %d behind checkpoint %v", n, chk)
		}
	}
}

// TestTruncationSeed002 follows seed 002: two databases, one backed up on
// Tuesday, the other on Thursday, the first again on Friday.
func TestTruncationSeed002(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	defer g.Close()
	lowest := func() uint32 {
		n, err := g.oldestGen()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	writeN(t, g, 400, "mon")
	tue := takeBackup(t, g, ese.Full, []string{"Mailbox1"}, t.TempDir(), nil)
	if len(tue.truncked) != 0 {
		t.Fatalf("Tuesday truncated %v although Public was never backed up", tue.truncked)
	}
	writeN(t, g, 400, "wed")
	thu := takeBackup(t, g, ese.Full, []string{"Public"}, t.TempDir(), nil)
	if got := lowest(); got != tue.low {
		t.Fatalf("after Thursday the oldest log is %d; want Tuesday's low %d (truncated %v)", got, tue.low, thu.truncked)
	}
	writeN(t, g, 400, "thu")
	fri := takeBackup(t, g, ese.Full, []string{"Mailbox1"}, t.TempDir(), nil)
	if got := lowest(); got != thu.low {
		t.Fatalf("after Friday the oldest log is %d; want Thursday's low %d (truncated %v)", got, thu.low, fri.truncked)
	}
	// A dismounted database: nothing is truncated.
	writeN(t, g, 400, "sat")
	if err := g.Dismount("Public"); err != nil {
		t.Fatal(err)
	}
	before := lowest()
	sat := takeBackup(t, g, ese.Full, []string{"Mailbox1"}, t.TempDir(), nil)
	if len(sat.truncked) != 0 || lowest() != before {
		t.Fatalf("truncated %v with Public dismounted", sat.truncked)
	}
	g.Mount("Public")
	// A differential or copy never truncates.
	writeN(t, g, 400, "sun")
	sun := takeBackup(t, g, ese.Full, nil, t.TempDir(), nil)
	writeN(t, g, 400, "mon2")
	before = lowest()
	takeBackup(t, g, ese.Differential, nil, t.TempDir(), nil)
	takeBackup(t, g, ese.Copy, nil, t.TempDir(), nil)
	if lowest() != before {
		t.Fatal("differential or copy truncated logs")
	}
	// An incremental copies from the oldest log on disk (the full's first
	// generation: nothing truncated since) and truncates below
	// min(checkpoint, the first generation not in its set): with no writer
	// the checkpoint is past the set, so every log it copied goes.
	writeN(t, g, 400, "tue2")
	inc := takeBackup(t, g, ese.Incremental, nil, t.TempDir(), nil)
	if inc.low != sun.low || len(inc.truncked) != int(inc.high-inc.low+1) || lowest() != inc.high+1 {
		t.Fatalf("incremental %d-%d after the full %d-%d truncated %v, oldest log now %d", inc.low, inc.high, sun.low, sun.high, inc.truncked, lowest())
	}
	for _, db := range []string{"Mailbox1.edb", "Public.stm", "Public.edb"} {
		h, err := ReadHeader(nil, filepath.Join(dir, db))
		if err != nil && db == "Public.stm" {
			continue
		}
		if err != nil || h.LogFloor != inc.high+1 || h.PreviousIncremental.HighGen != inc.high {
			t.Fatalf("%s after the incremental: log floor %d, previous incremental %+v (%v)", db, h.LogFloor, h.PreviousIncremental, err)
		}
	}
	// Its floor is recorded: a later full of Mailbox1 alone keeps what
	// Public needs to roll forward beyond the incremental.
	writeN(t, g, 400, "wed2")
	wed := takeBackup(t, g, ese.Full, []string{"Mailbox1"}, t.TempDir(), nil)
	if lowest() != inc.high+1 || wed.low <= inc.high+1 {
		t.Fatalf("full of Mailbox1 %d-%d after the incremental %d-%d left the oldest log at %d; Public needs %d on", wed.low, wed.high, inc.low, inc.high, lowest(), inc.high+1)
	}
	// The logs since the full are gone: a differential is refused before
	// anything is read, naming them.
	_, err := g.BackupSetup(ese.Differential, nil)
	asESE(t, err, CodeMissingLogFile)
	if want := fmt.Sprintf("generations %d-%d are no longer on disk", sun.high+1, inc.high); !strings.Contains(err.Error(), want) {
		t.Fatalf("refusal %q does not say %q", err, want)
	}
	// With a database dismounted an incremental truncates nothing, and
	// only the mounted databases' headers record it.
	writeN(t, g, 400, "thu2")
	if err := g.Dismount("Public"); err != nil {
		t.Fatal(err)
	}
	before = lowest()
	thu2 := takeBackup(t, g, ese.Incremental, nil, t.TempDir(), nil)
	if len(thu2.truncked) != 0 || lowest() != before {
		t.Fatalf("incremental with Public dismounted truncated %v", thu2.truncked)
	}
	g.Mount("Public")
	if h, _ := ReadHeader(nil, filepath.Join(dir, "Public.edb")); h.LogFloor != inc.high+1 {
		t.Fatalf("Public's log floor %d changed while it was dismounted", h.LogFloor)
	}
}

func TestAbortMidCopy(t *testing.T) {
	g, dir := newBackupGroup(t, 128<<10, false)
	defer g.Close()
	writeN(t, g, 300, "a")
	takeBackup(t, g, ese.Full, nil, t.TempDir(), nil)
	writeN(t, g, 300, "b")
	h0, _ := ReadHeader(nil, filepath.Join(dir, "Mailbox1.edb"))
	gens0, _, _ := wal.ListGenerations(vfs.OS, dir, "E00")
	s, err := g.BackupSetup(ese.Full, nil)
	if err != nil {
		t.Fatal(err)
	}
	frozen := g.CheckpointPos()
	r, _ := s.OpenFile("Mailbox1.edb")
	buf := make([]byte, ChunkSize)
	r.Read(buf)
	writeN(t, g, 300, "c")
	s.Abort(errors.New("client went away"))
	h1, _ := ReadHeader(nil, filepath.Join(dir, "Mailbox1.edb"))
	if !sameBackupSections(h0, h1) {
		t.Fatalf("abort changed the header backup sections:\n%+v\n%+v", h0, h1)
	}
	gens1, _, _ := wal.ListGenerations(vfs.OS, dir, "E00")
	if gens1[0] != gens0[0] {
		t.Fatal("abort deleted logs")
	}
	writeN(t, g, 300, "d")
	g.flush(true)
	if !frozen.Less(g.CheckpointPos()) {
		t.Fatalf("checkpoint did not move after abort: %v", g.CheckpointPos())
	}
	takeBackup(t, g, ese.Full, nil, t.TempDir(), nil)
}

func sameBackupSections(a, b *DBHeader) bool {
	eq := func(x, y *BackupInfo) bool {
		if x.IsSet() != y.IsSet() {
			return false
		}
		return !x.IsSet() || x.LowGen == y.LowGen && x.HighGen == y.HighGen && x.Time.Equal(y.Time)
	}
	return eq(a.PreviousFull, b.PreviousFull) && eq(a.PreviousIncremental, b.PreviousIncremental) &&
		eq(a.PreviousDifferential, b.PreviousDifferential) && eq(a.PreviousCopy, b.PreviousCopy) && b.CurrentFull == nil
}
