package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/sink"
	"github.com/tapestream/tapestream/tapeformat"
)

// GroupOptions configure RestoreGroup.
type GroupOptions struct {
	Options
	// To is the store root the group is restored into.
	To string
	// Group restores into an alternate storage group of this name (a
	// recovery storage group); the original group is not touched.
	Group string
	// NoRecover lays down files and logs for a later `store recover`.
	NoRecover bool
	// UntilGen / UntilTime stop replay early (point in time).
	UntilGen  uint32
	UntilTime time.Time
	// Force replaces an existing group directory (a point-of-failure
	// restore into the live group: its later logs are replayed too).
	Force bool
	// Log receives progress lines.
	Log io.Writer
	// StoreLocked says the caller holds the store lock of To (several
	// groups restoring in parallel into one store).
	StoreLocked bool
}

// Result describes a finished restore.
type Result struct {
	Group     string               `json:"group"`
	Dir       string               `json:"dir"`
	Sets      []string             `json:"sets"`
	LowGen    uint32               `json:"log_first_generation"`
	HighGen   uint32               `json:"log_last_generation"`
	Recovery  *engine.RecoveryInfo `json:"recovery,omitempty"`
	Problems  []Problem            `json:"problems,omitempty"`
	Bytes     int64                `json:"bytes"`
	Duration  time.Duration        `json:"duration_ns"`
	Recovered bool                 `json:"recovered"`
	// Replaced is where the group directory this restore replaced was
	// moved (--force).
	Replaced string `json:"replaced,omitempty"`
}

// stagingSink writes a set's files into the staging directory through an
// os.Root: databases only from the first (full) set, logs into logDir.
//
// The writes, and each file's closing truncate+fsync, are done by one
// goroutine in the order they were queued, so that decoding and checking
// the next chunks overlaps the write(2) calls and the fsyncs (they were
// the restore's serial path). Chunk buffers are taken from the set reader
// (no copy) and come back through recycle.
type stagingSink struct {
	root     *os.Root
	onLabel  func(l tapeformat.Label, first bool) error
	sets     int
	logDir   string // relative to root
	prefix   string
	allowDBs bool
	open     map[int]*stagedFile
	dbFiles  []string
	logs     []string
	bytes    int64

	ops  chan stagingOp
	done chan struct{}
	back chan []byte // buffers written, for the reader to reuse
	mu   sync.Mutex
	werr error // the writer's first error
}

type stagedFile struct {
	name string
	f    *os.File
	w    *sink.FileWriter
}

// stagingOp is a write of data at off, or (finish) the file's completion:
// truncate to size (if >= 0), fsync, close; or (abandon) just the close.
type stagingOp struct {
	sf      *stagedFile
	data    []byte
	off     int64
	finish  bool
	abandon bool
	size    int64
}

func (s *stagingSink) begin(l tapeformat.Label) error {
	s.sets++
	return s.onLabel(l, s.sets == 1)
}

func (s *stagingSink) create(fh *tapeformat.FileHeader, kind string) (bool, error) {
	name := fh.Name
	if err := tapeformat.ValidateName(name); err != nil || strings.ContainsAny(name, `/\`) || name != filepath.Base(name) {
		return false, fmt.Errorf("set holds a file named %q, which a restore does not write", name)
	}
	var rel string
	switch kind {
	case tapeformat.KindDatabase, tapeformat.KindStreaming:
		ext := filepath.Ext(name)
		if !s.allowDBs || (ext != ".edb" && ext != ".stm") {
			return false, fmt.Errorf("database file %q where only logs belong (an incremental or differential set holds logs)", name)
		}
		rel = name
		s.dbFiles = append(s.dbFiles, name)
	case tapeformat.KindLog:
		if _, ok := wal.ParseGenName(s.prefix, name); !ok {
			return false, fmt.Errorf("log file %q is not a %s log generation", name, s.prefix)
		}
		rel = filepath.Join(s.logDir, name)
		s.logs = append(s.logs, name)
	default:
		return false, fmt.Errorf("file %q of kind %q is not part of a storage group backup", name, kind)
	}
	if err := s.failed(); err != nil {
		return false, err
	}
	f, err := s.root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	if s.open == nil {
		s.open = map[int]*stagedFile{}
	}
	s.open[fh.Index] = &stagedFile{name: rel, f: f, w: sink.NewFileWriter(f)}
	if s.ops == nil {
		s.ops, s.done, s.back = make(chan stagingOp, 4), make(chan struct{}), make(chan []byte, 8)
		go s.writer()
	}
	return true, nil
}

// write queues data (which the sink now owns) for file fh at off.
func (s *stagingSink) write(fh *tapeformat.FileHeader, data []byte, off int64) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.bytes += int64(len(data))
	s.ops <- stagingOp{sf: s.open[fh.Index], data: data, off: off}
	return nil
}

// recycle hands the buffers already written back to the reader.
func (s *stagingSink) recycle(put func([]byte)) {
	for {
		select {
		case b := <-s.back:
			put(b)
		default:
			return
		}
	}
}

func (s *stagingSink) finish(fh *tapeformat.FileHeader) error {
	sf := s.open[fh.Index]
	if sf == nil {
		return nil
	}
	delete(s.open, fh.Index)
	// Queued even after a failure: the writer closes the file.
	s.ops <- stagingOp{sf: sf, finish: true, size: fh.Size}
	return s.failed()
}

func (s *stagingSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.werr
}

// writer performs the queued operations in order. After the first error
// it only closes files (and the error is reported to the next caller).
func (s *stagingSink) writer() {
	defer close(s.done)
	fail := func(err error) {
		s.mu.Lock()
		if s.werr == nil {
			s.werr = err
		}
		s.mu.Unlock()
	}
	for op := range s.ops {
		ok := s.failed() == nil && !op.abandon
		if op.finish {
			if ok && op.size >= 0 {
				if err := op.sf.f.Truncate(op.size); err != nil {
					fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
				}
			}
			if ok && s.failed() == nil {
				if err := op.sf.f.Sync(); err != nil {
					fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
				}
			}
			if err := op.sf.f.Close(); err != nil {
				fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
			}
			continue
		}
		if ok {
			if _, err := op.sf.w.WriteAt(op.data, op.off); err != nil {
				fail(fmt.Errorf("restore: %s: %w", op.sf.name, err))
			}
		}
		select {
		case s.back <- op.data:
		default: // the reader's pool is full: let it go
		}
	}
}

// closeAll waits for the queued operations, closes the files still open
// (a set that ended early: the staging directory is not used) and returns
// the writer's first error.
func (s *stagingSink) closeAll() error {
	for _, sf := range s.open {
		s.ops <- stagingOp{sf: sf, finish: true, abandon: true}
	}
	clear(s.open)
	if s.ops == nil {
		return nil
	}
	close(s.ops)
	<-s.done
	err := s.werr
	s.ops, s.done, s.back, s.werr = nil, nil, nil, nil
	return err
}

// LockStore takes the lock of the store a restore writes into.
func LockStore(to string) (func(), error) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return nil, err
	}
	release, err := engine.LockStore(to)
	if err != nil {
		return nil, fmt.Errorf("refusing to restore into a store in use (restore through its server, or stop it): %w", err)
	}
	return release, nil
}

// RestoreGroup restores a full set plus its incrementals (in order) or
// plus one differential into a storage group under o.To.
func RestoreGroup(ctx context.Context, srcs []SetSource, o GroupOptions) (res *Result, err error) {
	t0 := time.Now()
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if len(srcs) == 0 {
		return nil, errors.New("no backup set given")
	}
	for _, s := range srcs {
		if s.Path == "-" && len(srcs) > 1 {
			return nil, errors.New("standard input holds one set; give the others as files or tapes")
		}
	}
	// Validate the chain from the labels before anything is written.
	var labels []tapeformat.Label
	if srcs[0].Path != "-" {
		for _, s := range srcs {
			l, err := ReadLabel(s, o.Options)
			if err != nil {
				return nil, err
			}
			labels = append(labels, l)
		}
		if err := ValidateChain(labels); err != nil {
			return nil, fmt.Errorf("refusing to restore: %w", err)
		}
	}
	if err := os.MkdirAll(o.To, 0o755); err != nil {
		return nil, err
	}
	if !o.StoreLocked {
		release, err := LockStore(o.To)
		if err != nil {
			return nil, err
		}
		defer release()
	}

	// Staging beside the target, named independently of the group: from
	// standard input the group is known only once the label is read.
	stage, err := os.MkdirTemp(o.To, ".restore-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(stage, "restore-logs"), 0o755); err != nil {
		os.RemoveAll(stage)
		return nil, err
	}
	stagingRoot, err := os.OpenRoot(stage)
	if err != nil {
		return nil, err
	}
	defer func() {
		if stagingRoot != nil {
			stagingRoot.Close()
		}
		if err != nil && stage != "" {
			os.RemoveAll(stage)
		}
	}()
	var name, target string
	sinkSt := &stagingSink{root: stagingRoot, logDir: "restore-logs"}
	sinkSt.onLabel = func(l tapeformat.Label, first bool) error {
		if !first {
			sinkSt.allowDBs = false
			return nil
		}
		if len(labels) == 0 {
			if err := ValidateChain([]tapeformat.Label{l}); err != nil {
				return fmt.Errorf("refusing to restore: %w", err)
			}
		}
		name = l.StorageGroup
		if o.Group != "" {
			name = o.Group
		}
		if err := engine.ValidName(name); err != nil {
			return fmt.Errorf("storage group name: %w", err)
		}
		target = filepath.Join(o.To, name)
		if _, err := os.Stat(target); err == nil && !o.Force {
			return fmt.Errorf("storage group directory %s exists; restore with --force to replace it (its later logs are replayed), or into another group with --group", target)
		}
		if !wal.ValidPrefix(l.LogPrefix) {
			return fmt.Errorf("set %s: invalid log prefix %q in its label", l.SetID, l.LogPrefix)
		}
		sinkSt.prefix, sinkSt.allowDBs = l.LogPrefix, true
		return nil
	}
	var infos []*SetInfo
	for _, src := range srcs {
		logf("reading set %s", src.Path)
		info, rerr := readSet(ctx, src, o.Options, sinkSt)
		if werr := sinkSt.closeAll(); rerr == nil {
			rerr = werr
		}
		if rerr != nil {
			return nil, rerr
		}
		infos = append(infos, info)
	}
	if err := ValidateLogRanges(infos); err != nil {
		return nil, fmt.Errorf("refusing to restore: %w", err)
	}
	res = &Result{Group: name, Dir: target, Bytes: sinkSt.bytes}
	for _, in := range infos {
		res.Sets = append(res.Sets, in.Label.SetID)
		res.Problems = append(res.Problems, in.Problems...)
	}
	res.LowGen, _ = infos[0].LogRange()
	_, res.HighGen = infos[len(infos)-1].LogRange()

	cfg, err := groupConfigFor(name, infos[0], sinkSt)
	if err != nil {
		return nil, err
	}
	if err := engine.WriteGroupConfig(stage, cfg); err != nil {
		return nil, err
	}
	full := infos[0].Label
	// The databases need the full's own logs to be consistent; later sets'
	// logs roll them forward as far as they go (or --until says).
	_, fullHigh := infos[0].LogRange()
	if o.UntilGen != 0 && o.UntilGen < fullHigh {
		return nil, fmt.Errorf("--until generation %d is before the end of the full backup (generation %d)", o.UntilGen, fullHigh)
	}
	for _, f := range sinkSt.dbFiles {
		if err := engine.MarkRestored(nil, filepath.Join(stage, f), res.LowGen, fullHigh, full.SetID, full.Created); err != nil {
			return nil, err
		}
	}
	// Point of failure: the target group's own later logs continue the
	// sequence; replay goes on through them.
	if (o.Group == "" || o.Group == full.StorageGroup) && o.UntilGen == 0 && o.UntilTime.IsZero() {
		n, err := copyContinuingLogs(target, filepath.Join(stage, "restore-logs"), cfg, res.HighGen)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			logf("replaying %d later log files found in %s", n, target)
		}
	}
	recover := !o.NoRecover
	if recover {
		rerr := recoverStaged(stage, o, res)
		if rerr != nil && !o.Salvage {
			return nil, fmt.Errorf("%w (target %s untouched)", rerr, target)
		}
		if rerr != nil {
			// Salvage: keep what is intact, unrecovered, and say why.
			res.Problems = append(res.Problems, Problem{Set: res.Sets[0], Page: -1, What: "not recovered: " + rerr.Error()})
			recover = false
		}
	}
	if !recover {
		if err := moveLogs(filepath.Join(stage, "restore-logs"), stage); err != nil {
			return nil, err
		}
	} else if err := os.RemoveAll(filepath.Join(stage, "restore-logs")); err != nil {
		return nil, err
	}
	stagingRoot.Close()
	stagingRoot = nil
	if res.Replaced, err = switchIntoPlace(stage, target); err != nil {
		return nil, err
	}
	if res.Replaced != "" {
		logf("the replaced storage group is kept in %s; remove it once the restore is proven", res.Replaced)
	}
	stage = ""
	res.Duration = time.Since(t0)
	if len(res.Problems) > 0 {
		return res, fmt.Errorf("salvaged with %d problems: the restore is incomplete", len(res.Problems))
	}
	return res, nil
}

// recoverStaged runs hard recovery in the staging directory and checks
// the result.
func recoverStaged(stage string, o GroupOptions, res *Result) error {
	g, err := engine.OpenGroup(stage, engine.Options{RestoreLogDirs: []string{filepath.Join(stage, "restore-logs")}, UntilGen: o.UntilGen, UntilTime: o.UntilTime})
	if err != nil {
		return fmt.Errorf("recovery of the restored group failed: %w", err)
	}
	ri := g.Recovery()
	report, cerr := g.Check()
	if err := g.Close(); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if !report.OK() {
		return fmt.Errorf("restored group fails its check: %s", strings.Join(report.Problems, "; "))
	}
	res.Recovery, res.Recovered = &ri, true
	return nil
}

// groupConfigFor builds the restored group's configuration from the full
// set: identity from its label, databases and their ids from the header
// snapshots in its manifest.
func groupConfigFor(name string, full *SetInfo, st *stagingSink) (*engine.GroupConfig, error) {
	l := full.Label
	cfg := &engine.GroupConfig{Name: name, ID: l.GroupID, Signature: l.GroupSignature}
	if full.Manifest == nil {
		return nil, fmt.Errorf("set %s has no manifest", l.SetID)
	}
	present := map[int]bool{}
	stm := map[string]bool{}
	for _, f := range full.Manifest.Files {
		if f.Kind == tapeformat.KindStreaming {
			stm[strings.TrimSuffix(f.Name, ".stm")] = true
		}
		if f.Kind == tapeformat.KindLog && cfg.LogSize == 0 {
			cfg.LogSize = f.Size
		}
	}
	for _, f := range full.Manifest.Files {
		if f.Kind != tapeformat.KindDatabase {
			continue
		}
		h, err := engine.ParseHeaderPages(f.Name, f.DBHeader)
		if err != nil {
			return nil, fmt.Errorf("set %s: header snapshot of %s: %w", l.SetID, f.Name, err)
		}
		// The name becomes a path: it must be a plain name, match the
		// file the set actually holds, and its id must be unique.
		if err := engine.ValidName(h.Name); err != nil || h.Name+".edb" != f.Name || !slices.Contains(st.dbFiles, f.Name) {
			return nil, fmt.Errorf("set %s: database header names %q for file %q: refusing a mismatched or unsafe name", l.SetID, h.Name, f.Name)
		}
		if present[h.DBID] || h.DBID < 0 || h.DBID > 255 {
			return nil, fmt.Errorf("set %s: database %s has a duplicate or invalid id %d", l.SetID, h.Name, h.DBID)
		}
		cfg.Databases = append(cfg.Databases, engine.DBConfig{Name: h.Name, ID: h.DBID, GUID: h.GUID, Streaming: stm[h.Name]})
		present[h.DBID] = true
	}
	for _, n := range l.DatabaseIDs {
		if !present[n] {
			cfg.AbsentIDs = append(cfg.AbsentIDs, n)
		}
	}
	if cfg.LogSize == 0 {
		return nil, fmt.Errorf("set %s holds no log file", l.SetID)
	}
	return cfg, nil
}

// copyContinuingLogs copies the target's closed generations from high+1
// on, and its current log, into dst when they belong to the same log
// stream and continue without a gap.
func copyContinuingLogs(target, dst string, cfg *engine.GroupConfig, high uint32) (int, error) {
	tc, err := engine.ReadGroupConfig(target)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil || tc.Signature != cfg.Signature {
		return 0, nil
	}
	prefix := cfg.Prefix()
	gens, hasCur, err := wal.ListGenerations(vfs.OS, target, prefix)
	if err != nil {
		return 0, err
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	next := high + 1
	n := 0
	for _, g := range gens {
		if g < next {
			continue
		}
		if g != next {
			break
		}
		if err := copyFile(filepath.Join(target, wal.GenName(prefix, g)), filepath.Join(dst, wal.GenName(prefix, g))); err != nil {
			return n, err
		}
		next++
		n++
	}
	if hasCur {
		cur := filepath.Join(target, wal.CurrentName(prefix))
		if h, err := wal.ReadHeader(vfs.OS, cur); err == nil && h.Gen == next {
			if err := copyFile(cur, filepath.Join(dst, wal.CurrentName(prefix))); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func moveLogs(from, to string) error {
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(from)
}

// switchIntoPlace replaces target with stage: two renames in one
// directory. A replaced group is kept beside it (its name is returned), not
// deleted: it may hold logs the restore did not replay, and a restore
// never deletes logs a set did not capture.
func switchIntoPlace(stage, target string) (replaced string, err error) {
	if _, err := os.Stat(target); err == nil {
		replaced = filepath.Join(filepath.Dir(target), fmt.Sprintf(".%s.replaced-%s", filepath.Base(target), time.Now().UTC().Format("20060102T150405")))
		if err := os.Rename(target, replaced); err != nil {
			return "", err
		}
	}
	if err := os.Rename(stage, target); err != nil {
		if replaced != "" {
			os.Rename(replaced, target)
		}
		return "", err
	}
	if d, err := os.Open(filepath.Dir(target)); err == nil {
		d.Sync()
		d.Close()
	}
	return replaced, nil
}
