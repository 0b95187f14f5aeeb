package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine/vfs"
)

// Options configures a Writer.
type Options struct {
	Dir       string   // log directory of the storage group
	Prefix    string   // "E00".."E0F"; default "E00"
	Signature [16]byte // storage group signature, written in every header
	LogSize   int64    // size of every log file; default DefaultLogSize
	// OnRollover, if set, is called after a generation was closed (and the
	// next one durably started), outside the writer's lock, with the closed
	// generation. The engine uses it to delete old generations under
	// circular logging.
	OnRollover func(closedGen uint32)
}

func (o *Options) normalize() error {
	if o.Prefix == "" {
		o.Prefix = "E00"
	}
	if !ValidPrefix(o.Prefix) {
		return fmt.Errorf("wal: invalid log prefix %q (want E00..E0F)", o.Prefix)
	}
	if o.LogSize == 0 {
		o.LogSize = DefaultLogSize
	}
	if o.Dir == "" {
		return errors.New("wal: no log directory")
	}
	return checkLogSize(o.LogSize)
}

// Stats counts a Writer's work.
type Stats struct {
	Appends   uint64 // records appended
	Writes    uint64 // WriteAt calls on the current log
	Syncs     uint64 // fdatasyncs of the current log by SyncTo/Close (group commits)
	Rollovers uint64 // generations closed
}

// writeBehind is the buffered size from which Append writes whole blocks
// without waiting for a sync.
const writeBehind = 4 * BlockSize

// Writer appends records to the log of one storage group. It is safe for
// concurrent use. Records are encoded into an in-memory buffer and written
// as whole blocks (write-behind) or, on SyncTo, with the dirty tail; SyncTo
// callers share fdatasyncs (group commit: one goroutine syncs while the
// others wait, and appends go on while a sync is in flight).
//
// After any I/O error the Writer is broken (sticky error, a *LogError with
// Code LogWriteFail wrapping the cause): Append and SyncTo of non-durable
// positions fail, and the engine must reopen the log and recover.
type Writer struct {
	fs      vfs.FS
	opts    Options
	curPath string
	maxRec  int

	mu      sync.Mutex
	cond    sync.Cond
	f       vfs.File
	hdr     Header
	off     int64 // logical end: where the next chunk goes
	records uint32
	lastEnd int64 // end of the last record in this generation
	buf     []byte
	bufOff  int64 // file offset of buf[0]
	spare   []byte
	durable Pos
	ioBusy  bool
	err     error
	closed  bool
	stats   Stats
}

// Open opens the log in opts.Dir for appending. If no log file exists it
// starts a new stream at generation 1. Otherwise it continues at the valid
// end of the current log as a tolerant read finds it (see OpenAt); use
// OpenAt after recovery to pin the position the engine replayed to.
func Open(fsys vfs.FS, opts Options) (*Writer, error) {
	return open(fsys, opts, nil)
}

// OpenAt opens the log for appending at end, the end of the last record
// the engine replayed (ScanResult.End). end must be a record boundary of
// the current log E00.log at or before its valid end (or its start,
// {gen, HeaderSize}); everything after end in E00.log is zeroed and synced,
// so stale bytes of a torn tail can never be read as records later. If
// E00.log is missing (a crash during a rollover) end must be in the last
// closed generation and the next generation is started; if E00.log is a
// complete generation (ends with its end-of-generation marker) end must be
// its end and the interrupted rollover is finished. If no log file exists
// in the directory, a zero end starts a new stream at generation 1, and a
// non-zero end (the log was replayed from another directory, e.g. a
// restore's temporary log directory) starts generation end.Gen+1 with
// PrevCreated 0, which Scan accepts without the creation-time chain check.
func OpenAt(fsys vfs.FS, opts Options, end Pos) (*Writer, error) {
	return open(fsys, opts, &end)
}

func open(fsys vfs.FS, opts Options, end *Pos) (*Writer, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	w := &Writer{
		fs:      fsys,
		opts:    opts,
		curPath: filepath.Join(opts.Dir, CurrentName(opts.Prefix)),
		maxRec:  MaxRecordSize(opts.LogSize),
	}
	w.cond.L = &w.mu
	if err := fsys.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	// A leftover E00.tmp is a next generation a crash interrupted before it
	// became E00.log: discard it.
	tmp := filepath.Join(opts.Dir, tmpName(opts.Prefix))
	if _, err := fsys.Stat(tmp); err == nil {
		if err := fsys.Remove(tmp); err != nil {
			return nil, err
		}
	}
	closed, hasCur, err := ListGenerations(fsys, opts.Dir, opts.Prefix)
	if err != nil {
		return nil, err
	}
	var last *Header
	if len(closed) > 0 {
		g := closed[len(closed)-1]
		p := genPath(opts.Dir, opts.Prefix, g)
		h, err := ReadHeader(fsys, p)
		if err != nil {
			return nil, err
		}
		if err := w.checkHeader(h, p, g); err != nil {
			return nil, err
		}
		last = &h
	}
	if !hasCur {
		if last == nil {
			gen := uint32(1)
			if end != nil && !end.IsZero() {
				// The replayed log lives elsewhere (a restore's temporary
				// log directory): continue its numbering. Its creation
				// time is unknown here, so PrevCreated is 0 and the chain
				// check is skipped for this generation.
				gen = end.Gen + 1
			}
			if err := w.startGen(gen, 0, false); err != nil {
				return nil, err
			}
			return w, nil
		}
		if end != nil && end.Gen != last.Gen {
			return nil, fmt.Errorf("%w: %v (last generation is %d and %s is missing)", ErrBadPos, *end, last.Gen, w.curPath)
		}
		if err := w.startGen(last.Gen+1, last.Created, false); err != nil {
			return nil, err
		}
		return w, nil
	}

	// Continue the current log.
	var ends []int64
	info, err := readFile(fsys, w.curPath, false, func(h Header) error {
		if err := w.checkHeader(h, w.curPath, 0); err != nil {
			return err
		}
		if last != nil {
			if last.Gen >= h.Gen || (last.Gen == h.Gen-1 && last.Created != h.PrevCreated) {
				return logErr(InvalidLogSequence, h.Gen, w.curPath, 0, nil,
					"current log does not follow closed generation %d", last.Gen)
			}
		}
		return nil
	}, func(_ []byte, _, e Pos) error {
		ends = append(ends, int64(e.Off))
		return nil
	})
	if err != nil {
		return nil, err
	}
	h := info.Header
	target := int64(info.End.Off)
	records := len(ends)
	if end != nil {
		if end.Gen != h.Gen || int64(end.Off) > target || (info.Complete && int64(end.Off) != target) {
			return nil, fmt.Errorf("%w: %v (current log is generation %d, valid end %v, complete %v)", ErrBadPos, *end, h.Gen, info.End, info.Complete)
		}
		target = int64(end.Off)
		records = 0
		if target != HeaderSize {
			found := false
			for i, e := range ends {
				if e == target {
					records, found = i+1, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: %v is not a record boundary of %s", ErrBadPos, *end, w.curPath)
			}
		}
	}
	f, err := fsys.OpenFile(w.curPath, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	w.f, w.hdr = f, h
	w.off, w.records, w.lastEnd = target, uint32(records), target
	w.bufOff = target
	w.durable = Pos{h.Gen, uint32(target)}
	if info.Complete {
		// A crash interrupted a rollover after the end-of-generation marker
		// was made durable: finish it.
		if err := w.startGen(h.Gen+1, h.Created, true); err != nil {
			f.Close()
			return nil, err
		}
		return w, nil
	}
	if err := w.zeroTail(target); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// checkHeader checks a header against the options (and a file name's gen).
func (w *Writer) checkHeader(h Header, path string, gen uint32) error {
	if gen != 0 && h.Gen != gen {
		return logErr(LogGenerationMismatch, gen, path, 0, nil, "header generation is %d", h.Gen)
	}
	if h.Signature != w.opts.Signature {
		return logErr(BadLogSignature, h.Gen, path, 0, nil, "log belongs to another storage group (signature %x)", h.Signature)
	}
	if h.LogSize != w.opts.LogSize {
		return logErr(LogFileSizeMismatch, h.Gen, path, 0, nil, "log size %d, configured %d", h.LogSize, w.opts.LogSize)
	}
	return nil
}

// zeroTail zeroes every non-zero byte range of E00.log from off to the log
// size (and grows the file to the log size), then syncs if it changed
// anything.
func (w *Writer) zeroTail(off int64) error {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	dirty := false
	fi, err := w.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	for o := off; o < min(size, w.opts.LogSize); {
		n := int(min(chunk-(o%chunk), min(size, w.opts.LogSize)-o))
		m, err := w.f.ReadAt(buf[:n], o)
		if err != nil && err != io.EOF {
			return err
		}
		nz := false
		for _, b := range buf[:m] {
			if b != 0 {
				nz = true
				break
			}
		}
		if nz {
			if _, err := w.f.WriteAt(zero[:m], o); err != nil {
				return w.fail(err)
			}
			dirty = true
		}
		o += int64(n)
	}
	if size < w.opts.LogSize {
		if err := w.f.Preallocate(w.opts.LogSize); err != nil {
			return w.fail(err)
		}
		dirty = true
	}
	if dirty {
		if err := w.f.Sync(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// fail records a sticky I/O error and returns it. Caller holds w.mu (or
// owns w exclusively).
func (w *Writer) fail(err error) error {
	if w.err == nil {
		var le *LogError
		if errors.As(err, &le) {
			w.err = err
		} else {
			w.err = &LogError{Code: LogWriteFail, Gen: w.hdr.Gen, File: w.curPath, Off: -1, Err: err}
		}
	}
	return w.err
}

// startGen creates generation gen durably and makes it current. If
// closeOld, the current E00.log (already sealed) is first renamed to its
// closed name. Order: E00.tmp (header, preallocate, fsync) → rename
// E00.log → E00XXXXXXXX.log → SyncDir → rename E00.tmp → E00.log → SyncDir.
func (w *Writer) startGen(gen uint32, prevCreated int64, closeOld bool) error {
	dir := w.opts.Dir
	tmp := filepath.Join(dir, tmpName(w.opts.Prefix))
	created := time.Now().UnixNano()
	if created <= prevCreated {
		created = prevCreated + 1
	}
	h := Header{
		Version:     FormatVersion,
		Gen:         gen,
		Signature:   w.opts.Signature,
		Created:     created,
		PrevCreated: prevCreated,
		LogSize:     w.opts.LogSize,
		BlockSize:   BlockSize,
		Prefix:      w.opts.Prefix,
	}
	f, err := w.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return w.fail(err)
	}
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		f.Close()
		return w.fail(err)
	}
	if err := f.Preallocate(w.opts.LogSize); err != nil {
		f.Close()
		return w.fail(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return w.fail(err)
	}
	if err := f.Close(); err != nil {
		return w.fail(err)
	}
	if closeOld {
		if w.f != nil {
			w.f.Close()
			w.f = nil
		}
		if err := w.fs.Rename(w.curPath, genPath(dir, w.opts.Prefix, gen-1)); err != nil {
			return w.fail(err)
		}
		if err := w.fs.SyncDir(dir); err != nil {
			return w.fail(err)
		}
	}
	if err := w.fs.Rename(tmp, w.curPath); err != nil {
		return w.fail(err)
	}
	if err := w.fs.SyncDir(dir); err != nil {
		return w.fail(err)
	}
	nf, err := w.fs.OpenFile(w.curPath, os.O_RDWR, 0)
	if err != nil {
		return w.fail(err)
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.hdr = nf, h
	w.off, w.records, w.lastEnd = HeaderSize, 0, HeaderSize
	w.buf, w.bufOff = w.buf[:0], HeaderSize
	w.durable = Pos{gen, HeaderSize}
	return nil
}

// encode appends the chunks of one record (or the end-of-generation chunk
// if eog) to the buffer. Caller holds w.mu and checked that it fits.
func (w *Writer) encode(p []byte, eog bool) {
	logSize := w.opts.LogSize
	if eog {
		if be := blockEnd(w.off, logSize); be-w.off < eogChunkSize {
			w.pad(be)
		}
		var pl [eogPayloadSize]byte
		binary.LittleEndian.PutUint32(pl[0:4], w.records)
		binary.LittleEndian.PutUint32(pl[4:8], uint32(w.lastEnd))
		w.chunk(ChunkEOG, pl[:])
		return
	}
	first := true
	for {
		be := blockEnd(w.off, logSize)
		if be-w.off < ChunkHeaderSize {
			w.pad(be)
			continue
		}
		take := min(len(p), int(be-w.off-ChunkHeaderSize))
		last := take == len(p)
		var typ byte
		switch {
		case first && last:
			typ = ChunkFull
		case first:
			typ = ChunkFirst
		case last:
			typ = ChunkLast
		default:
			typ = ChunkMiddle
		}
		w.chunk(typ, p[:take])
		p = p[take:]
		first = false
		if last {
			return
		}
	}
}

func (w *Writer) pad(to int64) {
	for ; w.off < to; w.off++ {
		w.buf = append(w.buf, 0)
	}
}

func (w *Writer) chunk(typ byte, payload []byte) {
	var h [ChunkHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], chunkCRC(typ, payload))
	binary.LittleEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6] = typ
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, payload...)
	w.off += ChunkHeaderSize + int64(len(payload))
}

// ioLocked writes buffered data outside the lock: everything and an
// fdatasync if sync, else only whole blocks. Caller holds w.mu, !w.ioBusy;
// w.mu is released during the I/O and held again on return.
func (w *Writer) ioLocked(sync bool) {
	off := w.bufOff
	var data []byte
	if sync {
		data = w.buf
		w.buf = w.spare[:0]
		w.bufOff = w.off
	} else {
		cut := HeaderSize + ((w.off-HeaderSize)/BlockSize)*BlockSize
		if cut <= w.bufOff {
			return
		}
		n := cut - w.bufOff
		data = w.buf[:n]
		w.buf = append(w.spare[:0], w.buf[n:]...)
		w.bufOff = cut
	}
	w.spare = nil
	w.ioBusy = true
	target := Pos{w.hdr.Gen, uint32(off + int64(len(data)))}
	f := w.f
	w.mu.Unlock()

	var err error
	if len(data) > 0 {
		_, err = f.WriteAt(data, off)
	}
	if err == nil && sync {
		err = f.Sync()
	}

	w.mu.Lock()
	w.ioBusy = false
	if cap(data) <= 4*writeBehind {
		w.spare = data[:0]
	}
	if len(data) > 0 {
		w.stats.Writes++
	}
	if err != nil {
		w.fail(err)
	} else if sync {
		w.stats.Syncs++
		if w.durable.Less(target) {
			w.durable = target
		}
	}
	w.cond.Broadcast()
}

// flushLocked writes and syncs everything buffered, holding the lock
// throughout (used by rollover). Caller holds w.mu and !w.ioBusy.
func (w *Writer) flushSyncHeld() error {
	if len(w.buf) > 0 {
		if _, err := w.f.WriteAt(w.buf, w.bufOff); err != nil {
			return w.fail(err)
		}
		w.stats.Writes++
		w.bufOff += int64(len(w.buf))
		w.buf = w.buf[:0]
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(err)
	}
	return nil
}

// rolloverLocked closes the current generation and starts the next, all
// durably. Caller holds w.mu, !w.ioBusy, w.err == nil.
func (w *Writer) rolloverLocked() (uint32, error) {
	gen := w.hdr.Gen
	w.encode(nil, true)
	if err := w.flushSyncHeld(); err != nil {
		return 0, err
	}
	if err := w.startGen(gen+1, w.hdr.Created, true); err != nil {
		return 0, err
	}
	w.stats.Rollovers++
	return gen, nil
}

// Append adds a record and returns its start and end positions. The record
// is durable only after SyncTo(end) returns nil. If the record does not fit
// in the current generation, the generation is closed first (see
// Rollover). Records larger than MaxRecordSize(LogSize) fail with
// ErrRecordTooLarge.
func (w *Writer) Append(payload []byte) (start, end Pos, err error) {
	if len(payload) > w.maxRec {
		return Pos{}, Pos{}, fmt.Errorf("%w: %d bytes, max %d", ErrRecordTooLarge, len(payload), w.maxRec)
	}
	w.mu.Lock()
	var rolled uint32
	for {
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return Pos{}, Pos{}, err
		}
		if w.closed {
			w.mu.Unlock()
			return Pos{}, Pos{}, ErrClosed
		}
		if fits(w.off, len(payload), w.opts.LogSize) {
			break
		}
		if w.ioBusy {
			w.cond.Wait()
			continue
		}
		g, err := w.rolloverLocked()
		if err != nil {
			w.mu.Unlock()
			return Pos{}, Pos{}, err
		}
		rolled = g
	}
	if be := blockEnd(w.off, w.opts.LogSize); be-w.off < ChunkHeaderSize {
		w.pad(be)
	}
	start = Pos{w.hdr.Gen, uint32(w.off)}
	w.encode(payload, false)
	w.records++
	w.lastEnd = w.off
	end = Pos{w.hdr.Gen, uint32(w.off)}
	w.stats.Appends++
	if !w.ioBusy && len(w.buf) >= writeBehind {
		w.ioLocked(false)
	}
	w.mu.Unlock()
	if rolled != 0 && w.opts.OnRollover != nil {
		w.opts.OnRollover(rolled)
	}
	return start, end, nil
}

// SyncTo returns once everything up to p is durable. Concurrent callers
// share fdatasyncs (group commit). It fails if the writer is broken and p
// is not yet durable, or if p is beyond Current.
func (w *Writer) SyncTo(p Pos) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if !w.durable.Less(p) {
			return nil
		}
		if w.err != nil {
			return w.err
		}
		if (Pos{w.hdr.Gen, uint32(w.off)}).Less(p) {
			return fmt.Errorf("%w: SyncTo(%v) beyond the current end %v", ErrBadPos, p, Pos{w.hdr.Gen, uint32(w.off)})
		}
		if !w.ioBusy {
			if w.closed {
				return ErrClosed
			}
			w.ioLocked(true)
			continue
		}
		w.cond.Wait()
	}
}

// Sync makes everything appended so far durable.
func (w *Writer) Sync() error {
	return w.SyncTo(w.Current())
}

// Rollover closes the current generation (forced rollover, as the backup's
// log-list call does): it appends the end-of-generation marker, syncs,
// renames E00.log to E00XXXXXXXX.log and durably starts the next
// generation. It returns the closed generation; everything appended before
// the call is durable when it returns. OnRollover is called before it
// returns.
func (w *Writer) Rollover() (closedGen uint32, err error) {
	w.mu.Lock()
	for {
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return 0, err
		}
		if w.closed {
			w.mu.Unlock()
			return 0, ErrClosed
		}
		if !w.ioBusy {
			break
		}
		w.cond.Wait()
	}
	g, err := w.rolloverLocked()
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if w.opts.OnRollover != nil {
		w.opts.OnRollover(g)
	}
	return g, nil
}

// Durable returns the position up to which the log is durable.
func (w *Writer) Durable() Pos {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

// Current returns the end of the last appended record's chunks: the
// position the next record's start is at or after.
func (w *Writer) Current() Pos {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Pos{w.hdr.Gen, uint32(w.off)}
}

// CurrentGen returns the generation of the current log E00.log.
func (w *Writer) CurrentGen() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hdr.Gen
}

// Header returns the header of the current log.
func (w *Writer) Header() Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hdr
}

// Err returns the sticky error, if the writer is broken.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats returns counters of the writer's work.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Close syncs everything appended and closes the current log. It returns
// the sticky error if the writer is broken. Further calls return nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	for w.ioBusy {
		w.cond.Wait()
	}
	if w.err == nil && w.f != nil {
		w.ioLocked(true)
		for w.ioBusy {
			w.cond.Wait()
		}
	}
	var cerr error
	if w.f != nil {
		cerr = w.f.Close()
		w.f = nil
	}
	w.cond.Broadcast()
	if w.err != nil {
		return w.err
	}
	return cerr
}
