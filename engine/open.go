package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/internal/failpoint"
)

// RecoveryInfo describes what the last open replayed.
type RecoveryInfo struct {
	FromGen  uint32
	ToGen    uint32
	Records  int
	Commits  int
	LogBytes int64
	Duration time.Duration
	Clean    bool // nothing to replay
}

// OpenGroup opens a storage group, running crash recovery: redo from the
// checkpoint to the end of the log.
func OpenGroup(dir string, opts Options) (*Group, error) {
	opts.fill()
	cfg, err := readGroupConfig(opts.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("opening storage group in %s: %w", dir, err)
	}
	g := &Group{
		fs: opts.FS, dir: dir, name: cfg.Name, cfg: *cfg, opts: opts,
		cache:  newCache(opts.CacheSize),
		flushC: make(chan struct{}, 1),
		stopC:  make(chan struct{}),
	}
	if err := g.attachAll(); err != nil {
		g.closeFiles()
		return nil, err
	}
	ro, restored, err := g.restoredRange(opts)
	if err != nil {
		g.closeFiles()
		return nil, err
	}
	if restored {
		if err := g.recover(ro); err != nil {
			g.closeFiles()
			return nil, err
		}
		g.flushWG.Add(1)
		go g.flusher()
		return g, nil
	}
	start := wal.Pos{Gen: 1}
	chk, err := readCheckpoint(g)
	switch {
	case err == nil:
		start = chk.Pos
		for i, t := range chk.DBTimes {
			if i < len(g.dbs) && t > g.dbs[i].dbtime {
				g.dbs[i].dbtime = t // chk lists dbtimes in g.dbs order
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		// A new group: nothing logged yet, unless logs exist without a
		// checkpoint (a restore left them): replay from the oldest.
		gens, _, lerr := wal.ListGenerations(g.fs, dir, cfg.Prefix())
		if lerr != nil {
			g.closeFiles()
			return nil, lerr
		}
		if len(gens) > 0 {
			start = wal.Pos{Gen: gens[0]}
		}
	default:
		g.closeFiles()
		return nil, err
	}
	if err := g.recover(RecoverOptions{Dirs: []string{dir}, From: start}); err != nil {
		g.closeFiles()
		return nil, err
	}
	g.flushWG.Add(1)
	go g.flusher()
	return g, nil
}

// restoredRange finds databases laid down from a backup (state Restored,
// with a Patch Current Full Backup range): hard recovery then replays from
// the lowest such generation, ignoring any checkpoint, through at least the
// highest, reading the restore's log directory before the group's own.
func (g *Group) restoredRange(opts Options) (RecoverOptions, bool, error) {
	var ro RecoverOptions
	restored := false
	for _, d := range g.dbs {
		p := d.hdr.PatchCurrentFull
		if !d.mounted || d.hdr.State != StateRestored {
			continue
		}
		if !p.IsSet() {
			return ro, false, fmt.Errorf("%s: restored database has no Patch Current ese.Full Backup range", d.name)
		}
		if !restored || p.LowGen < ro.From.Gen {
			ro.From = wal.Pos{Gen: p.LowGen}
		}
		if p.HighGen > ro.needGen {
			ro.needGen = p.HighGen
		}
		restored = true
	}
	ro.Dirs = append(append([]string{}, opts.RestoreLogDirs...), g.dir)
	ro.UntilGen, ro.UntilTime = opts.UntilGen, opts.UntilTime
	return ro, restored, nil
}

// RecoverOptions drive a replay.
type RecoverOptions struct {
	// Dirs are searched in order for each generation (a restore's temporary
	// log directory first, then the group's own).
	Dirs []string
	From wal.Pos
	// UntilGen stops replay after this generation (0 = to the end).
	UntilGen uint32
	// UntilTime stops replay before the first commit later than this.
	UntilTime time.Time
	// needGen is the last generation a restored database requires.
	needGen uint32
}

// recover replays the log and leaves the group ready for writes with a
// fresh checkpoint.
func (g *Group) recover(ro RecoverOptions) error {
	t0 := time.Now()
	a := &applier{g: g}
	type pending struct {
		op         *pageOp
		start, end wal.Pos
	}
	var batch []pending
	info := RecoveryInfo{FromGen: ro.From.Gen}
	stopped := false
	var stopGen uint32
	var lastCommitEnd wal.Pos
	g.mu.Lock()
	var end wal.Pos
	fresh, err := g.logIsEmpty(ro.Dirs)
	if err == nil && !fresh {
		var res wal.ScanResult
		res, err = wal.Scan(g.fs, wal.ScanOptions{
			Dirs: ro.Dirs, Prefix: g.cfg.Prefix(), Signature: g.cfg.sig(), FromGen: ro.From.Gen, ToGen: ro.UntilGen,
		}, func(rec []byte, start, end wal.Pos) error {
			if stopped || start.Less(ro.From) {
				return nil
			}
			failpoint.Hit("engine/recover-record")
			info.Records++
			info.LogBytes += int64(len(rec))
			if len(rec) == 1 && rec[0] == recAbort {
				batch = batch[:0]
				return nil
			}
			if len(rec) > 0 && rec[0] == recCommit {
				if g.opts.Context != nil {
					if err := g.opts.Context.Err(); err != nil {
						return err // a signal: the group is not opened
					}
				}
				txid, nanos, err := decodeCommit(rec)
				if err != nil {
					return fmt.Errorf("log record at %v: %w", start, err)
				}
				if !ro.UntilTime.IsZero() && time.Unix(0, nanos).After(ro.UntilTime) {
					stopped, stopGen = true, start.Gen
					batch = nil
					return nil
				}
				for _, p := range batch {
					if err := a.redo(p.op, p.start, end); err != nil {
						return err
					}
				}
				if len(g.cache.frames) > g.cache.budget {
					if err := g.writeBackLocked(); err != nil {
						return err
					}
				}
				batch = batch[:0]
				if txid > g.txid {
					g.txid = txid
				}
				info.Commits++
				lastCommitEnd = end
				return nil
			}
			op, err := decodePageOp(rec)
			if err != nil {
				return fmt.Errorf("log record at %v: %w", start, err)
			}
			if slices.Contains(g.cfg.AbsentIDs, op.file.dbid()) {
				return nil // a database the restore did not bring back
			}
			if d := g.byID[op.file.dbid()]; d != nil && (!d.mounted || d.hdr.Attach.after(start)) {
				// Dismounted: its file holds every change up to its
				// dismount. Attached later: the record belongs to the
				// file this one replaced.
				return nil
			}
			if g.pagefile(op.file) == nil {
				return fmt.Errorf("log record at %v names database file %d, which storage group %s does not have", start, op.file, g.name)
			}
			op.cell = append([]byte(nil), op.cell...)
			op.head = append([]byte(nil), op.head...)
			op.tail = append([]byte(nil), op.tail...)
			batch = append(batch, pending{op, start, end})
			return nil
		})
		end = res.End
	}
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("recovery of storage group %s: %w", g.name, err)
	}
	_ = lastCommitEnd
	info.ToGen = end.Gen
	if stopped && stopGen <= ro.needGen {
		return &ESEError{Code: CodeMissingLogFile, Group: g.name, Msg: fmt.Sprintf("the point in time %s falls in generation %d, before the end of the full backup (generation %d): the copied pages may be newer than it", ro.UntilTime.Format(time.RFC3339Nano), stopGen, ro.needGen)}
	}
	if stopped {
		info.ToGen = stopGen
	}
	if ro.needGen != 0 && end.Gen < ro.needGen {
		return &ESEError{Code: CodeMissingLogFile, Group: g.name, Msg: fmt.Sprintf("hard recovery reached generation %d, but the restored databases need generations through %d", end.Gen, ro.needGen)}
	}
	info.Clean = info.Records == 0
	// Drop cached catalog lookups: replay may have created tables.
	for _, d := range g.dbs {
		clear(d.tables)
	}
	w, err := wal.OpenAt(g.fs, wal.Options{Dir: g.dir, Prefix: g.cfg.Prefix(), Signature: g.cfg.sig(), LogSize: g.cfg.LogSize}, end)
	if err != nil {
		return fmt.Errorf("storage group %s: opening log: %w", g.name, err)
	}
	g.log = w
	if len(batch) > 0 {
		// The log ends with page ops of a transaction that never
		// committed. Mark them void before anything else is logged: a
		// later replay from before them must not apply them with the
		// next transaction's commit.
		if _, _, err := w.Append(appendAbort(nil)); err != nil {
			return fmt.Errorf("storage group %s: %w", g.name, err)
		}
		if err := w.Sync(); err != nil {
			return fmt.Errorf("storage group %s: %w", g.name, err)
		}
	}
	// Make the replayed state durable and move the checkpoint past it.
	if err := g.flush(true); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.dbs {
		if !d.mounted {
			continue
		}
		// Recovery has run: Patch Current Full Backup goes. Not by the
		// state alone: the checkpoint written above already marked the
		// restored databases Dirty Shutdown.
		for _, h := range []*DBHeader{d.hdr, d.stmHdr} {
			if h != nil && (h.State == StateRestored || h.PatchCurrentFull != nil) {
				h.PatchCurrentFull = nil
				if h.State == StateRestored {
					h.State = StateDirtyShutdown
				}
				h.DBTime = max(h.DBTime, d.dbtime)
			}
		}
		if err := g.writeDBHeaders(d); err != nil {
			return err
		}
	}
	info.Duration = time.Since(t0)
	g.recovery = info
	return nil
}

// logIsEmpty reports whether no log file of the group exists in dirs.
func (g *Group) logIsEmpty(dirs []string) (bool, error) {
	for _, d := range dirs {
		gens, cur, err := wal.ListGenerations(g.fs, d, g.cfg.Prefix())
		if err != nil {
			return false, err
		}
		if len(gens) > 0 || cur {
			return false, nil
		}
	}
	return true, nil
}

// Recovery reports what the last open replayed.
func (g *Group) Recovery() RecoveryInfo { return g.recovery }

// attachAll opens every database file of the group but those of a
// database dismounted by the administrator (group.json), whose files may
// be missing or being replaced: its header is read for reports, if it can
// be, and it is attached by Mount.
func (g *Group) attachAll() error {
	g.byID = map[int]*database{}
	for _, dc := range g.cfg.Databases {
		if g.byID[dc.ID] != nil || dc.ID < 0 || dc.ID > 255 {
			return fmt.Errorf("storage group %s: database %s has a duplicate or invalid id %d", g.name, dc.Name, dc.ID)
		}
		d := &database{id: dc.ID, name: dc.Name, cfg: dc, tables: map[string]uint32{}, mounted: !dc.Dismounted}
		g.dbs = append(g.dbs, d)
		g.byID[dc.ID] = d
		if dc.Dismounted {
			d.hdr = &DBHeader{Name: dc.Name, State: StateCleanShutdown}
			if h, err := ReadHeader(g.fs, filepath.Join(g.dir, dc.Name+".edb")); err == nil {
				d.hdr, d.dbtime = h, h.DBTime
			}
			continue
		}
		if err := g.openDBFiles(d); err != nil {
			return err
		}
	}
	return nil
}

// openDBFiles opens the files of database d and reads their headers.
func (g *Group) openDBFiles(d *database) error {
	kinds := []int{fileEDB}
	if d.cfg.Streaming {
		kinds = append(kinds, fileSTM)
	}
	var files [2]*pagefile
	var hdrs [2]*DBHeader
	fail := func(err error) error {
		for _, pf := range files {
			if pf != nil {
				pf.close()
			}
		}
		return err
	}
	for _, kind := range kinds {
		name := d.name + extOf(kind)
		pf, err := openPagefile(g.fs, filepath.Join(g.dir, name), name, makeFileNo(d.id, kind), false)
		if err != nil {
			return fail(fmt.Errorf("storage group %s: database %s: %w", g.name, d.name, err))
		}
		files[kind] = pf
		h, err := ReadHeader(g.fs, pf.path)
		if err != nil {
			return fail(err)
		}
		if h.LogSignature != g.cfg.Signature {
			return fail(fmt.Errorf("%s: belongs to another storage group (log signature %s, group has %s)", name, h.LogSignature, g.cfg.Signature))
		}
		hdrs[kind] = h
	}
	d.files = files
	d.hdr, d.stmHdr = hdrs[fileEDB], hdrs[fileSTM]
	for _, h := range hdrs {
		if h != nil && h.DBTime > d.dbtime {
			d.dbtime = h.DBTime
		}
	}
	return nil
}

func (g *Group) closeFiles() {
	for _, d := range g.dbs {
		for _, pf := range d.files {
			if pf != nil {
				pf.close()
			}
		}
	}
}

// Close flushes everything, marks the databases Clean Shutdown and closes
// the group. After an earlier failure it closes without marking anything
// clean, so the next open recovers.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed || g.closing {
		g.mu.Unlock()
		return nil
	}
	g.closing = true
	if g.backup != nil {
		g.backup.abortLocked(errClosed)
	}
	g.mu.Unlock()
	close(g.stopC)
	g.flushWG.Wait()

	var firstErr error
	g.mu.Lock()
	fatal := g.fatal
	g.mu.Unlock()
	if fatal == nil {
		if err := g.flush(true); err != nil {
			firstErr = err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if fatal == nil && firstErr == nil && g.cache.dirty == 0 {
		now := g.opts.Now()
		for _, d := range g.dbs {
			if !d.mounted {
				continue
			}
			for kind, h := range []*DBHeader{d.hdr, d.stmHdr} {
				if h == nil {
					continue
				}
				h.DBTime = d.dbtime
				h.State = StateCleanShutdown
				h.LogRequired = GenRange{}
				h.LastConsistent = now
				if err := writeHeader(d.files[kind].f, h); err != nil && firstErr == nil {
					firstErr = err
				}
			}
		}
	}
	if g.log != nil {
		if err := g.log.Close(); err != nil && firstErr == nil && fatal == nil {
			firstErr = err
		}
	}
	g.closeFiles()
	if firstErr == nil && fatal != nil {
		// The failure may have happened where nobody saw it (a background
		// flush): the close was not clean, say so.
		firstErr = fmt.Errorf("storage group %s closed without a clean shutdown after an earlier failure (the next open recovers): %w", g.name, fatal)
	}
	return firstErr
}
