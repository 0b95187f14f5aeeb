package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/internal/failpoint"
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
	// AcceptDataLoss lets a restore replace a group that holds commits the
	// chain and the group's own later logs do not reach (a rollback). Without
	// it such a restore is refused before anything is written.
	AcceptDataLoss bool
	// CacheSize is the buffer cache of the recovery (bytes; 0:
	// RecoveryCacheSize), the largest part of a restore's memory.
	CacheSize int
	// DropDatabases names databases of the target group that the sets do
	// not hold and that a restore of the whole group may drop (a restore
	// that would leave the group with fewer databases is refused unless
	// each is named). Without it, sets holding some of a group's databases
	// replace those databases only (databases.go).
	DropDatabases []string
	// Live is the target group, open in this process (a store server): a
	// restore of some of its databases dismounts and mounts them through
	// it while the others keep running. The whole group is not restored
	// through it.
	Live *engine.Group
}

// RecoveryCacheSize is the default buffer cache of a restore's recovery:
// half a live group's, so that a restore with recovery stays within
// ~150 MiB whatever the set's size (replay is bound by its fsyncs and
// page writes more than by its cache).
const RecoveryCacheSize = 32 << 20

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
	// moved (--force), or the files of the databases it replaced.
	Replaced string `json:"replaced,omitempty"`
	// Databases are the databases a restore of some of a group's databases
	// replaced (the group's others were not touched); empty when the
	// whole group was restored.
	Databases []string `json:"databases,omitempty"`
}

// LockStore takes the lock of the store a restore writes into, shared:
// restores of other groups (in this process or another) may run beside
// it, a server or a store-wide command may not. It then finishes or undoes
// the restores a crash interrupted there, of the groups nobody works on
// (reported to log). Each restore takes its group's own lock once it knows
// its target.
//
// A target directory the restore creates is removed again by release when
// the restore left nothing in it but lock files (it failed or was
// interrupted): a failed restore leaves the target as it was, and "as it
// was" was no directory.
func LockStore(to string, log io.Writer) (func(), error) {
	_, statErr := os.Lstat(to)
	created := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(to, 0o755); err != nil {
		return nil, err
	}
	release, err := engine.LockStoreShared(to)
	if err != nil {
		if created {
			removeIfOnlyLocks(to)
		}
		return nil, fmt.Errorf("refusing to restore into a store in use (restore through its server, or stop it): %w", err)
	}
	if created {
		inner := release
		release = func() { inner(); removeIfOnlyLocks(to) }
	}
	resolved, err := engine.ResolveSwitches(to)
	for _, line := range resolved {
		if log != nil {
			fmt.Fprintln(log, line)
		}
	}
	if err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// removeIfOnlyLocks removes dir when it holds lock files only (LOCK,
// GROUP.lock), under the store's exclusive lock so that a restore another
// process began meanwhile keeps its directory.
func removeIfOnlyLocks(dir string) {
	onlyLocks := func() ([]os.DirEntry, bool) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, false
		}
		for _, e := range ents {
			if e.IsDir() || (e.Name() != "LOCK" && !strings.HasSuffix(e.Name(), ".lock")) {
				return nil, false
			}
		}
		return ents, true
	}
	if _, ok := onlyLocks(); !ok {
		return
	}
	unlock, err := engine.LockStore(dir)
	if err != nil {
		return
	}
	ents, ok := onlyLocks()
	if ok {
		for _, e := range ents {
			if e.Name() != "LOCK" {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		os.Remove(filepath.Join(dir, "LOCK"))
	}
	unlock()
	if ok {
		os.Remove(dir)
	}
}

// RestoreGroup plans srcs (which must form one chain) and restores it:
// Plan, then RunChain.
func RestoreGroup(ctx context.Context, srcs []SetSource, o GroupOptions) (*Result, error) {
	chains, err := Plan(srcs, o.Options)
	if err != nil {
		return nil, err
	}
	if len(chains) != 1 {
		return nil, fmt.Errorf("the sets belong to %d storage groups; restore one chain at a time", len(chains))
	}
	return RunChain(ctx, chains[0], o)
}

// RunChain restores one planned chain into a storage group under o.To:
//
//	stage   a directory beside the target (.restore-*), opened as an os.Root
//	read    every set, verified, into it (logs into restore-logs/)
//	config  the group's identity from the full set
//	recover hard recovery in the staging directory, through the target's
//	        later logs when they continue the chain (point of failure)
//	switch  the staged group takes the target's place
//
// Until the switch the target is not touched; a failure removes the
// staging directory. Sets that hold some of an existing group's databases
// replace those databases only, while the group keeps the others
// (databases.go).
func RunChain(ctx context.Context, c Chain, o GroupOptions) (res *Result, err error) {
	t0 := time.Now()
	if !o.StoreLocked {
		release, err := LockStore(o.To, o.Log)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	r, err := newRun(c, o)
	if err != nil {
		return nil, err
	}
	defer r.cleanup(&err)
	if err := r.readSets(ctx); err != nil {
		return nil, err
	}
	failpoint.Hit("restore/after-stage")
	if r.databases != nil {
		err = r.restoreDatabases(ctx)
	} else {
		err = r.restoreGroup(ctx)
	}
	if err != nil {
		return nil, err
	}
	failpoint.Hit("restore/after-switch")
	r.res.Duration = time.Since(t0)
	if len(r.res.Problems) > 0 {
		return r.res, fmt.Errorf("salvaged with %d problems: the restore is incomplete", len(r.res.Problems))
	}
	return r.res, nil
}

// restoreGroup restores the whole group: configure, recover, switch the
// group directory.
func (r *run) restoreGroup(ctx context.Context) error {
	if r.o.Live != nil {
		return fmt.Errorf("storage group %s is mounted: the restore of the whole group dismounts it first", r.name)
	}
	if err := r.configure(); err != nil {
		return err
	}
	if err := r.recover(ctx); err != nil {
		return err
	}
	failpoint.Hit("restore/after-recover")
	return r.switchIntoPlace()
}

// run is one RunChain in progress.
type run struct {
	chain   Chain
	o       GroupOptions
	staging *engine.Staging // removed on failure
	stage   string          // its directory
	root    *os.Root
	sink    *stagingSink
	name    string // the restored group's name
	target  string // its directory
	infos   []*SetInfo
	cfg     *engine.GroupConfig
	res     *Result

	unlock      func()              // the target group's lock
	release     func()              // the instance id reserved for a new group
	targetCfg   *engine.GroupConfig // the existing target group
	databases   []string            // a restore of these databases of targetCfg only
	dbr         *engine.DatabaseRestore
	liveLogsDir string
	attach      wal.Pos // where the restored databases join the group's log
}

func (r *run) logf(format string, args ...any) {
	if r.o.Log != nil {
		fmt.Fprintf(r.o.Log, format+"\n", args...)
	}
}

// newRun makes the staging directory beside the target, named
// independently of the group: from standard input the group is known only
// once the label is read.
func newRun(c Chain, o GroupOptions) (*run, error) {
	st, err := engine.NewStaging(o.To)
	if err != nil {
		return nil, err
	}
	r := &run{chain: c, o: o, staging: st, stage: st.Dir}
	if err := os.Mkdir(filepath.Join(r.stage, "restore-logs"), 0o755); err != nil {
		st.Remove()
		return nil, err
	}
	if r.root, err = os.OpenRoot(r.stage); err != nil {
		st.Remove()
		return nil, err
	}
	r.sink = &stagingSink{root: r.root, logDir: "restore-logs", onLabel: r.onLabel, salvage: o.Salvage}
	return r, nil
}

// cleanup closes the staging root and, if the restore failed, removes the
// staging directory (a restore of some databases mounts them again); then
// it releases the target's locks.
func (r *run) cleanup(err *error) {
	if r.root != nil {
		r.root.Close()
	}
	if r.dbr != nil && *err != nil {
		if aerr := r.dbr.Abandon(r.mountDatabases); aerr != nil {
			*err = fmt.Errorf("%w; undoing it: %v (the next open of the group finishes undoing it)", *err, aerr)
		}
		r.staging = nil
	}
	if r.staging != nil {
		if *err != nil {
			r.staging.Remove()
		} else {
			r.staging.Release()
		}
	}
	if r.release != nil {
		r.release()
	}
	if r.unlock != nil {
		r.unlock()
	}
}

// onLabel sees each set's label as it is read: the first (the full) names
// the group and its log prefix, and the target must be free unless Force.
func (r *run) onLabel(l tapeformat.Label, first bool) error {
	if !first {
		r.sink.allowDBs = false
		return nil
	}
	if r.chain.Sets[0].Label == nil { // standard input: not planned
		if err := ValidateChain([]tapeformat.Label{l}); err != nil {
			return fmt.Errorf("refusing to restore: %w", err)
		}
	}
	r.name = l.StorageGroup
	if r.o.Group != "" {
		r.name = r.o.Group
	}
	if err := engine.ValidName(r.name); err != nil {
		return fmt.Errorf("storage group name: %w", err)
	}
	r.target = filepath.Join(r.o.To, r.name)
	// The group's own lock: restores of other groups run beside this one.
	unlock, err := engine.LockGroupOnly(r.o.To, r.name)
	if err != nil {
		return fmt.Errorf("refusing to restore: %w", err)
	}
	r.unlock = unlock
	resolved, err := engine.ResolveSwitches(r.o.To, r.name)
	for _, line := range resolved {
		r.logf("%s", line)
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(r.target); err == nil && !r.o.Force {
		return fmt.Errorf("storage group directory %s exists; restore with --force to replace it (its later logs are replayed), or into another group with --group", r.target)
	}
	if !wal.ValidPrefix(l.LogPrefix) {
		return fmt.Errorf("set %s: invalid log prefix %q in its label", l.SetID, l.LogPrefix)
	}
	if err := r.chooseMode(l); err != nil {
		return err
	}
	r.sink.prefix, r.sink.allowDBs = l.LogPrefix, true
	return nil
}

// readSets reads every set of the chain into the staging directory.
func (r *run) readSets(ctx context.Context) error {
	for i, ps := range r.chain.Sets {
		if err := r.checkNext(i, ps.Label); err != nil {
			return fmt.Errorf("refusing to restore: %w", err)
		}
		r.logf("reading set %s", ps.Source.Path)
		info, err := readSet(ctx, ps.Source, r.o.Options, r.sink)
		if werr := r.sink.closeAll(); err == nil {
			err = werr
		}
		if err != nil {
			return err
		}
		r.sink.damaged(info.Problems)
		r.infos = append(r.infos, info)
	}
	if err := ValidateLogRanges(r.infos); err != nil {
		return fmt.Errorf("refusing to restore: %w", err)
	}
	r.res = &Result{Group: r.name, Dir: r.target, Bytes: r.sink.bytes}
	for _, in := range r.infos {
		r.res.Sets = append(r.res.Sets, in.Label.SetID)
		r.res.Problems = append(r.res.Problems, in.Problems...)
	}
	r.res.LowGen, _ = r.infos[0].LogRange()
	_, r.res.HighGen = r.infos[len(r.infos)-1].LogRange()
	return nil
}

// checkNext checks, before set i is read, that the log range its label
// carries continues the sets read so far (Plan checked the links between
// labels; the full's range is known once its manifest is read).
func (r *run) checkNext(i int, l *tapeformat.Label) error {
	if i == 0 || l == nil {
		return nil
	}
	lo, hi, ok := LabelLogRange(*l)
	if !ok {
		return nil
	}
	prev := r.infos[i-1]
	if l.SetType == ese.Differential {
		prev = r.infos[0]
	}
	_, prevHigh := prev.LogRange()
	return checkLink(prev.Label.SetID, prevHigh, l.SetID, lo, hi)
}

// configure writes the restored group's configuration, marks its
// databases restored (the set's range as Patch Current Full Backup) and
// brings in the target's later logs for a point-of-failure restore.
func (r *run) configure() error {
	cfg, err := groupConfigFor(r.name, r.infos[0], r.sink)
	if err != nil {
		return err
	}
	r.cfg = cfg
	// The group's instance id (log prefix E0n): the target's when it
	// replaces one, else one no other group of the store has.
	if r.targetCfg != nil {
		cfg.ID = r.targetCfg.ID
	} else {
		id, release, err := engine.ReserveInstance(r.o.To, cfg.ID)
		if err != nil {
			return fmt.Errorf("refusing to restore: %w", err)
		}
		r.release = release
		if id != cfg.ID {
			r.logf("instance id %d (log prefix %s) is taken in %s: the restored group %s gets %d (%s)", cfg.ID, cfg.Prefix(), r.o.To, r.name, id, (&engine.GroupConfig{ID: id}).Prefix())
			cfg.ID = id
		}
	}
	if err := r.renameLogs(cfg.Prefix()); err != nil {
		return err
	}
	if err := engine.WriteGroupConfig(r.stage, cfg); err != nil {
		return err
	}
	if err := r.markRestored(); err != nil {
		return err
	}
	return r.laterLogs()
}

// markRestored marks the staged database files restored: the full's log
// range as Patch Current Full Backup, which hard recovery replays.
func (r *run) markRestored() error {
	full := r.infos[0].Label
	// The databases need the full's own logs to be consistent; later sets'
	// logs roll them forward as far as they go (or --until says).
	_, fullHigh := r.infos[0].LogRange()
	if r.o.UntilGen != 0 && r.o.UntilGen < fullHigh {
		return fmt.Errorf("--until generation %d is before the end of the full backup (generation %d)", r.o.UntilGen, fullHigh)
	}
	for _, f := range r.sink.dbFiles {
		path := filepath.Join(r.stage, f)
		if _, err := engine.ReadHeader(nil, path); err != nil {
			// Pages 0-1 were lost with the file's first chunk (a salvage):
			// the header snapshot the set carries for the file is what the
			// backup wrote there.
			if err := r.restoreHeaderPages(path, f); err != nil {
				return err
			}
		}
		if err := engine.MarkRestored(nil, path, r.res.LowGen, fullHigh, full.SetID, full.Created); err != nil {
			return err
		}
	}
	return nil
}

// restoreHeaderPages writes a database file's header pages from the
// snapshot the full set carries (its file-info, else its manifest).
func (r *run) restoreHeaderPages(path, name string) error {
	var snap []byte
	for _, fh := range r.infos[0].Files {
		if fh.Name == name && len(fh.DBHeader) > 0 {
			snap = fh.DBHeader
		}
	}
	if m := r.infos[0].Manifest; snap == nil && m != nil {
		for _, mf := range m.Files {
			if mf.Name == name {
				snap = mf.DBHeader
			}
		}
	}
	if len(snap) != 2*page.Size {
		return fmt.Errorf("%s: both header pages are lost and the set holds no snapshot of them", name)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(snap, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	r.logf("%s: the header pages were lost; written from the set's snapshot", name)
	return f.Close()
}

// laterLogs brings in the target's own later logs for a point-of-failure
// restore (replay goes on through them, and the restored group keeps them
// as its logs), and refuses a restore that would roll back commits the
// target holds beyond what the chain and those logs reach, unless told to.
func (r *run) laterLogs() error {
	l, err := inspectTarget(r.target, r.cfg, r.res.HighGen)
	if err != nil {
		return err
	}
	if !l.exists {
		return nil
	}
	pointInTime := r.o.UntilGen != 0 || !r.o.UntilTime.IsZero()
	if pointInTime {
		l.continuing, l.current = nil, false
	}
	reached := r.res.HighGen
	if l.sameStream {
		reached = l.reached(r.res.HighGen)
	}
	lost := ""
	switch {
	case !l.sameStream && l.newest > 0:
		lost = fmt.Sprintf("%s holds another log stream (generations up to %d) than the chain's; its commits cannot be replayed onto the restored databases", r.target, l.newest)
	case l.newest > reached && pointInTime:
		lost = fmt.Sprintf("%s holds log generations up to %d, and a point-in-time restore stops before them", r.target, l.newest)
	case l.newest > reached:
		lost = fmt.Sprintf("%s holds log generations up to %d, but the chain ends at %d and its own logs continue it only to %d (the generations between are missing)", r.target, l.newest, r.res.HighGen, reached)
	}
	if lost != "" {
		if !r.o.AcceptDataLoss {
			return &RollbackError{Target: r.target, Why: lost}
		}
		r.logf("replacing %s although %s (--accept-data-loss); the group it replaces is kept beside it", r.target, lost)
		return nil
	}
	if !l.sameStream || pointInTime {
		return nil
	}
	n, err := laterLogsInto(r.target, r.stage, r.cfg.Prefix(), l, false)
	if err != nil {
		return err
	}
	if n > 0 {
		r.logf("replaying %d later log files found in %s (point of failure)", n, r.target)
	}
	return nil
}

// recover runs hard recovery in the staging directory (unless NoRecover;
// a salvage keeps what is intact, unrecovered, when recovery fails) and
// leaves the logs where the group expects them.
func (r *run) recover(ctx context.Context) error {
	recovered := !r.o.NoRecover
	if recovered {
		if err := recoverStaged(ctx, r.stage, []string{filepath.Join(r.stage, "restore-logs")}, r.o, r.res); err != nil {
			if !r.o.Salvage || ctx.Err() != nil {
				return fmt.Errorf("%w (target %s untouched)", err, r.target)
			}
			r.res.Problems = append(r.res.Problems, Problem{Set: r.res.Sets[0], Page: -1, What: "not recovered: " + err.Error()})
			recovered = false
		}
	}
	logs := filepath.Join(r.stage, "restore-logs")
	if !recovered {
		return moveLogs(logs, r.stage)
	}
	return os.RemoveAll(logs)
}

// switchIntoPlace moves the staged group to the target, crash-atomically
// (engine.SwitchGroupDir).
func (r *run) switchIntoPlace() error {
	r.root.Close()
	r.root = nil
	replaced, err := engine.SwitchGroupDir(r.staging, r.target)
	if err != nil {
		return err
	}
	r.staging = nil
	r.res.Replaced = replaced
	if replaced != "" {
		r.logf("the replaced storage group is kept in %s; remove it once the restore is proven", replaced)
	}
	return nil
}

// RollbackError refuses a restore that would silently roll back commits.
type RollbackError struct {
	Target string
	Why    string
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("refusing to restore into %s: it holds commits this restore does not reach: %s; restore into another group (--group), or pass --accept-data-loss to replace it anyway (it is kept beside it)", e.Target, e.Why)
}

// recoverStaged runs hard recovery in the staging directory through the
// logs in logDirs and checks the result.
func recoverStaged(ctx context.Context, stage string, logDirs []string, o GroupOptions, res *Result) error {
	cache := o.CacheSize
	if cache <= 0 {
		cache = RecoveryCacheSize
	}
	g, err := engine.OpenGroup(stage, engine.Options{RestoreLogDirs: logDirs, UntilGen: o.UntilGen, UntilTime: o.UntilTime, CacheSize: cache, Context: ctx})
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
// set: identity from its label (which the reader rebuilds from any file's
// file-info when the label member is lost), databases and their ids from
// the header snapshots each file carries at its start (format 3), else from
// the manifest (formats 1 and 2): a salvage needs neither the manifest nor
// the label.
func groupConfigFor(name string, full *SetInfo, st *stagingSink) (*engine.GroupConfig, error) {
	l := full.Label
	cfg := &engine.GroupConfig{Name: name, ID: l.GroupID, Signature: l.GroupSignature}
	type fileMeta struct {
		name, kind string
		size       int64
		header     []byte
	}
	var files []fileMeta
	for _, fh := range full.Files {
		files = append(files, fileMeta{fh.Name, fh.Kind, fh.Size, fh.DBHeader})
	}
	if full.Manifest != nil {
		seen := map[string]int{}
		for i, f := range files {
			seen[f.name] = i
		}
		for _, mf := range full.Manifest.Files {
			i, ok := seen[mf.Name]
			if !ok {
				files = append(files, fileMeta{mf.Name, mf.Kind, mf.Size, mf.DBHeader})
				continue
			}
			if len(files[i].header) == 0 {
				files[i].header = mf.DBHeader
			}
		}
	}
	present := map[int]bool{}
	stm := map[string]bool{}
	for _, f := range files {
		if f.kind == tapeformat.KindStreaming {
			stm[strings.TrimSuffix(f.name, ".stm")] = true
		}
		if f.kind == tapeformat.KindLog && cfg.LogSize == 0 {
			cfg.LogSize = f.size
		}
	}
	for _, f := range files {
		if f.kind != tapeformat.KindDatabase {
			continue
		}
		if len(f.header) == 0 {
			return nil, fmt.Errorf("set %s: the header snapshot of %s is lost (its first member is damaged and the set has no manifest)", l.SetID, f.name)
		}
		h, err := engine.ParseHeaderPages(f.name, f.header)
		if err != nil {
			return nil, fmt.Errorf("set %s: header snapshot of %s: %w", l.SetID, f.name, err)
		}
		// The name becomes a path: it must be a plain name, match the
		// file the set actually holds, and its id must be unique.
		if err := engine.ValidName(h.Name); err != nil || h.Name+".edb" != f.name || !slices.Contains(st.dbFiles, f.name) {
			return nil, fmt.Errorf("set %s: database header names %q for file %q: refusing a mismatched or unsafe name", l.SetID, h.Name, f.name)
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
		if !st.salvage {
			return nil, fmt.Errorf("set %s holds no log file", l.SetID)
		}
		// A salvage of a set cut before its logs still gives back its
		// databases (they cannot be recovered without the logs).
		cfg.LogSize = l.LogSize
		if cfg.LogSize == 0 {
			cfg.LogSize = engine.DefaultLogSize
		}
	}
	return cfg, nil
}
