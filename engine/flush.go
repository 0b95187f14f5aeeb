package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/wal"
)

// flushEnt is one page copied out of the cache for writing.
type flushEnt struct {
	f      *frame
	key    frameKey
	modSeq uint64
	data   []byte
}

// flush writes every committed dirty page (force: and write the checkpoint
// now rather than at most once per checkpointInterval) whose log records are durable,
// fsyncs the files, and advances the checkpoint. The group mutex is held
// only while pages are copied out and marked clean, so commits continue
// during the writes.
func (g *Group) flush(force bool) error {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()

	g.mu.Lock()
	if err := g.err(); err != nil {
		g.mu.Unlock()
		return err
	}
	var batch []flushEnt
	var need wal.Pos
	// Every change made after this point is logged at or after copyPos: a
	// page changed again while its copy is written keeps only those
	// changes to redo, so its recLSN moves up to copyPos. Without this a
	// page changed in every flush window would pin the checkpoint forever.
	copyPos := g.log.Current()
	for _, f := range g.cache.frames {
		if !f.valid || !f.dirty || f.inflight {
			continue
		}
		page.Seal(f.data, f.key.pgno) // clean frames always carry a valid checksum
		batch = append(batch, flushEnt{f: f, key: f.key, modSeq: f.modSeq, data: append([]byte(nil), f.data...)})
		if need.Less(f.lastLSN) {
			need = f.lastLSN
		}
	}
	g.mu.Unlock()

	if len(batch) > 0 {
		// WAL rule: a page reaches disk only after its log records.
		if err := g.log.SyncTo(need); err != nil {
			return err
		}
		if err := g.writeBatch(batch); err != nil {
			g.mu.Lock()
			g.fail(err)
			g.mu.Unlock()
			return err
		}
		g.mu.Lock()
		for _, e := range batch {
			if !e.f.valid || e.f.key != e.key || !e.f.dirty {
				continue
			}
			if e.f.modSeq == e.modSeq {
				e.f.dirty = false
				g.cache.dirty--
			} else if e.f.recLSN.Less(copyPos) {
				e.f.recLSN = copyPos
			}
		}
		g.stats.PagesWriten += uint64(len(batch))
		g.cache.shrink()
		g.mu.Unlock()
	}
	return g.advanceCheckpoint(force)
}

// writeBackLocked writes every dirty frame during recovery, when the log
// being replayed is already durable, so that a long replay keeps to the
// cache budget. The checkpoint does not move (it is written at the end).
func (g *Group) writeBackLocked() error {
	var batch []flushEnt
	for _, f := range g.cache.frames {
		if f.valid && f.dirty && !f.inflight {
			page.Seal(f.data, f.key.pgno)
			batch = append(batch, flushEnt{f: f, key: f.key, modSeq: f.modSeq, data: f.data})
		}
	}
	if err := g.writeBatch(batch); err != nil {
		return err
	}
	for _, e := range batch {
		e.f.dirty = false
		g.cache.dirty--
	}
	g.cache.shrink()
	return nil
}

// writeBatch writes pages sorted by file and page, coalescing runs of
// consecutive pages into one write, then fsyncs each file.
func (g *Group) writeBatch(batch []flushEnt) error {
	sort.Slice(batch, func(i, j int) bool {
		a, b := batch[i].key, batch[j].key
		if a.file != b.file {
			return a.file < b.file
		}
		return a.pgno < b.pgno
	})
	const maxRun = 64
	run := make([]byte, 0, maxRun*page.Size)
	touched := map[fileNo]bool{}
	for i := 0; i < len(batch); {
		j := i + 1
		for j < len(batch) && j-i < maxRun && batch[j].key.file == batch[i].key.file && batch[j].key.pgno == batch[j-1].key.pgno+1 {
			j++
		}
		run = run[:0]
		for _, e := range batch[i:j] {
			run = append(run, e.data...)
		}
		pf := g.pagefile(batch[i].key.file)
		if err := pf.writePages(batch[i].key.pgno, run); err != nil {
			return err
		}
		touched[pf.no] = true
		i = j
	}
	for n := range touched {
		pf := g.pagefile(n)
		if err := pf.f.Sync(); err != nil {
			return fmt.Errorf("%s: fsync: %w", pf.name, err)
		}
	}
	return nil
}

// checkpointInterval bounds how often the checkpoint file is rewritten:
// each rewrite costs two fsyncs that compete with the log's.
const checkpointInterval = time.Second

// advanceCheckpoint moves the checkpoint to the oldest position a dirty
// page still needs (or the log's end) unless a backup froze it. The
// checkpoint file also carries every database's dbtime: redo must restart
// the counter above the dbtime of any page already on disk. Headers are
// rewritten only when the checkpoint's generation changes (Log Required).
func (g *Group) advanceCheckpoint(force bool) error {
	g.mu.Lock()
	if g.frozen > 0 || g.log == nil {
		g.mu.Unlock()
		return nil
	}
	if !force && g.opts.Now().Sub(g.chkWritten) < checkpointInterval {
		g.mu.Unlock()
		return nil
	}
	pos, ok := g.cache.minRecLSN()
	if !ok {
		pos = g.log.Current()
	}
	if !g.checkpoint.Less(pos) {
		g.mu.Unlock()
		return nil
	}
	cur := g.log.CurrentGen()
	dbtimes := make([]uint64, len(g.dbs))
	var hdrs []*database
	for i, d := range g.dbs {
		dbtimes[i] = d.dbtime
		if d.mounted && (d.hdr.LogRequired.Min != pos.Gen || d.hdr.State != StateDirtyShutdown) {
			d.hdr.State = StateDirtyShutdown
			d.hdr.LogRequired = GenRange{Min: pos.Gen, Max: cur}
			if d.stmHdr != nil {
				d.stmHdr.State, d.stmHdr.LogRequired = StateDirtyShutdown, d.hdr.LogRequired
			}
			hdrs = append(hdrs, d)
		}
	}
	var err error
	for _, d := range hdrs {
		if err = g.writeDBHeaders(d); err != nil {
			break
		}
	}
	g.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeCheckpoint(g, pos, dbtimes); err != nil {
		return err
	}
	g.mu.Lock()
	if g.frozen > 0 {
		// A full backup froze the checkpoint while the file was written:
		// it recorded the old one, whose logs must stay.
		g.mu.Unlock()
		return nil
	}
	g.checkpoint = pos
	g.chkWritten = g.opts.Now()
	circular := g.cfg.CircularLogging
	g.mu.Unlock()
	if circular {
		g.deleteGenerationsBelow(pos.Gen)
	}
	return nil
}

// deleteGenerationsBelow removes closed logs no longer needed for redo
// (circular logging).
func (g *Group) deleteGenerationsBelow(gen uint32) {
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		return
	}
	for _, n := range gens {
		if n < gen {
			_ = g.fs.Remove(filepath.Join(g.dir, wal.GenName(g.cfg.Prefix(), n)))
		}
	}
	_ = g.fs.SyncDir(g.dir)
}

// Checkpoint file (wire format): magic(8) gen(4) off(4) signature(16)
// unixNanos(8) ndb(4) dbtime(8)×ndb crc32c(4) over the preceding bytes.
const chkMagic = "TSCHK002"

func chkPath(g *Group) string { return filepath.Join(g.dir, g.cfg.Prefix()+".chk") }

func writeCheckpoint(g *Group, pos wal.Pos, dbtimes []uint64) error {
	b := make([]byte, 0, 44+8*len(dbtimes)+4)
	b = append(b, chkMagic...)
	b = binary.LittleEndian.AppendUint32(b, pos.Gen)
	b = binary.LittleEndian.AppendUint32(b, pos.Off)
	sig := g.cfg.sig()
	b = append(b, sig[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(g.opts.Now().UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(dbtimes)))
	for _, t := range dbtimes {
		b = binary.LittleEndian.AppendUint64(b, t)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return writeFileAtomic(g.fs, chkPath(g), b)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checkpoint is the decoded E00.chk.
type Checkpoint struct {
	Pos     wal.Pos
	Time    time.Time
	DBTimes []uint64
}

func readCheckpoint(g *Group) (*Checkpoint, error) {
	f, err := g.fs.OpenFile(chkPath(g), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 44+8*16+4)
	n, _ := f.ReadAt(b, 0)
	b = b[:n]
	bad := func(why string) error { return fmt.Errorf("%s: checkpoint file is damaged (%s)", chkPath(g), why) }
	if n < 48 || string(b[:8]) != chkMagic {
		return nil, bad("bad magic or size")
	}
	ndb := int(binary.LittleEndian.Uint32(b[40:]))
	if ndb > 16 || n != 44+8*ndb+4 {
		return nil, bad("size")
	}
	if crc32.Checksum(b[:n-4], castagnoli) != binary.LittleEndian.Uint32(b[n-4:]) {
		return nil, bad("checksum")
	}
	sig := g.cfg.sig()
	if string(b[16:32]) != string(sig[:]) {
		return nil, fmt.Errorf("%s: checkpoint belongs to another storage group", chkPath(g))
	}
	c := &Checkpoint{
		Pos:  wal.Pos{Gen: binary.LittleEndian.Uint32(b[8:]), Off: binary.LittleEndian.Uint32(b[12:])},
		Time: time.Unix(0, int64(binary.LittleEndian.Uint64(b[32:]))),
	}
	for i := 0; i < ndb; i++ {
		c.DBTimes = append(c.DBTimes, binary.LittleEndian.Uint64(b[44+8*i:]))
	}
	return c, nil
}

func (g *Group) kickFlusher() {
	select {
	case g.flushC <- struct{}{}:
	default:
	}
}

func (g *Group) flusher() {
	defer g.flushWG.Done()
	t := time.NewTicker(g.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stopC:
			return
		case <-t.C:
		case <-g.flushC:
		}
		_ = g.flush(false)
	}
}
