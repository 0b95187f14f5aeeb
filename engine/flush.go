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

// flush writes every committed dirty page whose log records are durable,
// fsyncs the files, and advances the checkpoint. The group mutex is held
// only while pages are copied out and marked clean, so commits continue
// during the writes.
func (g *Group) flush(force bool) error {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()

	g.mu.Lock()
	if err := g.err(); err != nil && !force {
		g.mu.Unlock()
		return err
	}
	var batch []flushEnt
	var need wal.Pos
	for _, f := range g.cache.frames {
		if !f.valid || !f.dirty || f.inflight {
			continue
		}
		pf := g.pagefile(f.key.file)
		page.Seal(f.data, f.key.pgno) // clean frames always carry a valid checksum
		_ = pf
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
			if e.f.valid && e.f.key == e.key && e.f.dirty && e.f.modSeq == e.modSeq {
				e.f.dirty = false
				g.cache.dirty--
			}
		}
		g.stats.PagesWriten += uint64(len(batch))
		g.cache.shrink()
		g.mu.Unlock()
	}
	return g.advanceCheckpoint()
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

// advanceCheckpoint moves the checkpoint to the oldest position a dirty
// page still needs (or the log's end) unless a backup froze it. Headers
// are written first so their dbtime covers every page already on disk.
func (g *Group) advanceCheckpoint() error {
	g.mu.Lock()
	if g.frozen > 0 || g.log == nil {
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
	type hdrw struct {
		pf *pagefile
		h  DBHeader
	}
	var hs []hdrw
	for _, d := range g.dbs {
		if !d.mounted {
			continue
		}
		if d.hdr.DBTime == d.dbtime && d.hdr.LogRequired.Min == pos.Gen && d.hdr.State == StateDirtyShutdown {
			continue
		}
		d.hdr.DBTime = d.dbtime
		d.hdr.State = StateDirtyShutdown
		d.hdr.LogRequired = GenRange{Min: pos.Gen, Max: cur}
		hs = append(hs, hdrw{d.files[fileEDB], *d.hdr})
		if d.stmHdr != nil {
			d.stmHdr.DBTime, d.stmHdr.State, d.stmHdr.LogRequired = d.dbtime, StateDirtyShutdown, d.hdr.LogRequired
			hs = append(hs, hdrw{d.files[fileSTM], *d.stmHdr})
		}
	}
	g.mu.Unlock()
	for _, h := range hs {
		if err := writeHeader(h.pf.f, &h.h); err != nil {
			return err
		}
	}
	if err := writeCheckpoint(g, pos); err != nil {
		return err
	}
	g.mu.Lock()
	g.checkpoint = pos
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
// unixNanos(8) crc32c(4) over the preceding bytes.
const chkMagic = "TSCHK001"

func chkPath(g *Group) string { return filepath.Join(g.dir, g.cfg.Prefix()+".chk") }

func writeCheckpoint(g *Group, pos wal.Pos) error {
	var b [44]byte
	copy(b[:8], chkMagic)
	binary.LittleEndian.PutUint32(b[8:], pos.Gen)
	binary.LittleEndian.PutUint32(b[12:], pos.Off)
	sig := g.cfg.sig()
	copy(b[16:32], sig[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(g.opts.Now().UnixNano()))
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[:40], crc32.MakeTable(crc32.Castagnoli)))
	return writeFileAtomic(g.fs, chkPath(g), b[:])
}

// Checkpoint is the decoded E00.chk.
type Checkpoint struct {
	Pos  wal.Pos
	Time time.Time
}

func readCheckpoint(g *Group) (*Checkpoint, error) {
	f, err := g.fs.OpenFile(chkPath(g), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b [44]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("%s: %w", chkPath(g), err)
	}
	if string(b[:8]) != chkMagic || crc32.Checksum(b[:40], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[40:]) {
		return nil, fmt.Errorf("%s: checkpoint file is damaged", chkPath(g))
	}
	sig := g.cfg.sig()
	if string(b[16:32]) != string(sig[:]) {
		return nil, fmt.Errorf("%s: checkpoint belongs to another storage group", chkPath(g))
	}
	return &Checkpoint{
		Pos:  wal.Pos{Gen: binary.LittleEndian.Uint32(b[8:]), Off: binary.LittleEndian.Uint32(b[12:])},
		Time: time.Unix(0, int64(binary.LittleEndian.Uint64(b[32:]))),
	}, nil
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
