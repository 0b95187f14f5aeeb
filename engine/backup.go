package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
)

// The backup API, one session per storage group, in ESE's call order:
//
//	Prepare → BackupSetup(type) → for each database file: OpenFile/Read/Close
//	→ GetLogAndPatchFiles (forced rollover) → for each log: OpenFile/Read/Close
//	→ GetTruncateLogFiles/TruncateLog (full, incremental) → InstanceEnd → End
//
// The patch file list is always empty. Exchange 2000 before SP2 needed
// patch files for pages changed by splits and merges during the copy,
// because its redo could not rebuild them from an older page. Our redo
// can: every change that cannot be replayed from an older version of a
// page (new page, split, merge, free) is logged as a full page image, and
// every other record applies by dbtime compare to exactly the version it
// followed. Whatever version of a page the copy read, the logs from the
// frozen checkpoint rebuild it.

// ESE error codes of the backup API.
const (
	CodeBackupInProgress      = -505
	CodeNoBackup              = -520
	CodeInvalidBackupSequence = -521
	CodeInvalidBackup         = -526 // incremental/differential under circular logging
	CodeMissingLogFile        = -528
	CodeLogReadVerifyFailure  = -612
	CodeLogFileNotCopied      = -616
)

// ESEError is a backup API failure with its ESE error code.
type ESEError struct {
	Code  int
	Group string
	Msg   string
	Err   error
}

func (e *ESEError) Error() string {
	s := fmt.Sprintf("storage group %s: %s (%d)", e.Group, e.Msg, e.Code)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ESEError) Unwrap() error { return e.Err }

// Is matches the sentinel of e's code.
func (e *ESEError) Is(target error) bool {
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}

var (
	ErrNoBackup              = errors.New("engine: no full backup (-520)")
	ErrInvalidBackupSequence = errors.New("engine: invalid backup sequence (-521)")
	ErrInvalidBackup         = errors.New("engine: incremental/differential backup with circular logging (-526)")
	ErrMissingLogFile        = errors.New("engine: missing log file (-528)")
	ErrLogReadVerifyFailure  = errors.New("engine: log read verify failure (-612)")
	ErrLogFileNotCopied      = errors.New("engine: log file not copied (-616)")
)

var codeSentinels = map[int]error{
	CodeBackupInProgress:      ErrBackupInProgress,
	CodeNoBackup:              ErrNoBackup,
	CodeInvalidBackupSequence: ErrInvalidBackupSequence,
	CodeInvalidBackup:         ErrInvalidBackup,
	CodeMissingLogFile:        ErrMissingLogFile,
	CodeLogReadVerifyFailure:  ErrLogReadVerifyFailure,
	CodeLogFileNotCopied:      ErrLogFileNotCopied,
}

func (g *Group) eseErr(code int, err error, format string, args ...any) error {
	return &ESEError{Code: code, Group: g.name, Msg: fmt.Sprintf(format, args...), Err: err}
}

// DatabaseInfo describes a database as Prepare reports it.
type DatabaseInfo struct {
	Name          string `json:"name"`
	ID            int    `json:"id"`
	GUID          string `json:"guid"`
	Path          string `json:"path"`
	Size          int64  `json:"size"`
	Mounted       bool   `json:"mounted"`
	StreamingPath string `json:"streaming_path,omitempty"`
	StreamingSize int64  `json:"streaming_size,omitempty"`
}

// GroupInfo describes a storage group as Prepare reports it.
type GroupInfo struct {
	ID              int            `json:"id"`
	Name            string         `json:"name"`
	CircularLogging bool           `json:"circular_logging"`
	LogPrefix       string         `json:"log_prefix"`
	Signature       string         `json:"signature"`
	Databases       []DatabaseInfo `json:"databases"`
}

// Info describes the group and its databases.
func (g *Group) Info() GroupInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	gi := GroupInfo{ID: g.cfg.ID, Name: g.name, CircularLogging: g.cfg.CircularLogging, LogPrefix: g.cfg.Prefix(), Signature: g.cfg.Signature}
	for _, d := range g.dbs {
		di := DatabaseInfo{Name: d.name, ID: d.id, GUID: d.cfg.GUID, Path: d.files[fileEDB].path, Size: d.files[fileEDB].size(), Mounted: d.mounted}
		if pf := d.files[fileSTM]; pf != nil {
			di.StreamingPath, di.StreamingSize = pf.path, pf.size()
		}
		gi.Databases = append(gi.Databases, di)
	}
	return gi
}

// Prepare lists the server's storage groups (HrESEBackupPrepare).
func (s *Server) Prepare() []GroupInfo {
	var out []GroupInfo
	for _, g := range s.Groups() {
		out = append(out, g.Info())
	}
	return out
}

// BackupFile is a file the session can copy.
type BackupFile struct {
	Name     string       `json:"name"` // e.g. Mailbox1.edb, E0000000003.log
	Kind     ese.FileKind `json:"kind"`
	Database string       `json:"database,omitempty"`
	Size     int64        `json:"size"` // at listing time; fixed at OpenFile
	Gen      uint32       `json:"gen,omitempty"`
}

// Session is a backup session of one storage group.
type Session struct {
	g     *Group
	typ   ese.BackupType
	dbs   []*database
	start time.Time
	low   uint32 // first log generation the set needs
	high  uint32 // last generation, known after GetLogAndPatchFiles

	mu       sync.Mutex
	done     bool
	failed   error
	logs     []BackupFile
	logRead  map[uint32]bool
	chain    verify.Chain // the logs read follow each other
	frozen   bool
	origHdrs map[*database]*DBHeader
}

// BackupSetup starts a backup session (HrESEBackupSetup). For full and
// copy it flushes the cache, freezes the checkpoint and records the first
// needed generation in each database header's Current Full Backup section.
// databases selects a subset for full and copy (nil = all).
func (g *Group) BackupSetup(typ ese.BackupType, databases []string) (*Session, error) {
	if !typ.Valid() {
		return nil, fmt.Errorf("invalid backup type %q", typ)
	}
	g.mu.Lock()
	if err := g.err(); err != nil {
		g.mu.Unlock()
		return nil, err
	}
	if g.backup != nil {
		busy := g.backup.typ // read under g.mu: the session may end once it is released
		g.mu.Unlock()
		return nil, g.eseErr(CodeBackupInProgress, nil, "a %s backup is already in progress", busy)
	}
	s := &Session{g: g, typ: typ, start: g.opts.Now(), logRead: map[uint32]bool{}, origHdrs: map[*database]*DBHeader{}}
	if !typ.CopiesDatabases() {
		if g.cfg.CircularLogging {
			g.mu.Unlock()
			return nil, g.eseErr(CodeInvalidBackup, nil, "%s backup is not possible with circular logging", typ)
		}
		if len(databases) > 0 {
			g.mu.Unlock()
			return nil, fmt.Errorf("storage group %s: a %s backup copies the logs of the whole group; it cannot name databases", g.name, typ)
		}
		for _, d := range g.dbs {
			if d.mounted && !d.hdr.PreviousFull.IsSet() {
				g.mu.Unlock()
				return nil, g.eseErr(CodeNoBackup, nil, "no full backup of database %s: take a full backup before a %s", d.name, typ)
			}
		}
	}
	sel := map[string]bool{}
	for _, n := range databases {
		if _, err := g.database(n); err != nil {
			g.mu.Unlock()
			return nil, err
		}
		sel[n] = true
	}
	for _, d := range g.dbs {
		if d.mounted && (len(sel) == 0 || sel[d.name]) {
			s.dbs = append(s.dbs, d)
		}
	}
	g.backup = s // mount/dismount are refused from here on
	g.mu.Unlock()

	// Flush and move the checkpoint as far as it goes: a full freezes it
	// here, and truncation after an incremental frees logs up to it.
	if err := g.flush(true); err != nil {
		s.release()
		return nil, err
	}
	if typ.CopiesDatabases() {
		g.mu.Lock()
		g.frozen++
		s.frozen = true
		s.low = g.checkpoint.Gen
		if s.low == 0 {
			s.low = g.log.CurrentGen()
		}
		var werr error
		for _, d := range s.dbs {
			s.origHdrs[d] = cloneHeader(d.hdr)
			d.hdr.CurrentFull = &BackupInfo{LowGen: s.low, Time: s.start}
			if werr == nil {
				werr = g.writeDBHeaders(d)
			}
		}
		g.mu.Unlock()
		if werr != nil {
			s.abort(werr)
			return nil, werr
		}
	}
	return s, nil
}

func cloneHeader(h *DBHeader) *DBHeader {
	c := *h
	return &c
}

// writeDBHeaders writes the in-memory headers of d (edb and stm); called
// with g.mu held. Header writes are rare (backup start/end, checkpoint).
func (g *Group) writeDBHeaders(d *database) error {
	d.hdr.DBTime = max(d.hdr.DBTime, d.dbtime)
	if err := writeHeader(d.files[fileEDB].f, d.hdr); err != nil {
		return err
	}
	if d.stmHdr != nil {
		d.stmHdr.CurrentFull = d.hdr.CurrentFull
		d.stmHdr.PreviousFull, d.stmHdr.PreviousIncremental = d.hdr.PreviousFull, d.hdr.PreviousIncremental
		d.stmHdr.PreviousDifferential, d.stmHdr.PreviousCopy = d.hdr.PreviousDifferential, d.hdr.PreviousCopy
		return writeHeader(d.files[fileSTM].f, d.stmHdr)
	}
	return nil
}

// Type is the session's backup type.
func (s *Session) Type() ese.BackupType { return s.typ }

// Group is the session's storage group.
func (s *Session) Group() *Group { return s.g }

// LowGen is the first log generation the backup needs (full/copy: the
// frozen checkpoint's; incremental/differential: known after
// GetLogAndPatchFiles).
func (s *Session) LowGen() uint32 { return s.low }

// Databases names the databases the session backs up.
func (s *Session) Databases() []string {
	var out []string
	for _, d := range s.dbs {
		out = append(out, d.name)
	}
	return out
}

// DatabaseFiles lists the files to copy: each database, then its
// streaming file, in database order. Empty for incremental/differential.
func (s *Session) DatabaseFiles() []BackupFile {
	if !s.typ.CopiesDatabases() {
		return nil
	}
	var out []BackupFile
	for _, d := range s.dbs {
		out = append(out, BackupFile{Name: d.name + ".edb", Kind: ese.KindDatabase, Database: d.name, Size: d.files[fileEDB].size()})
		if pf := d.files[fileSTM]; pf != nil {
			out = append(out, BackupFile{Name: d.name + ".stm", Kind: ese.KindStreaming, Database: d.name, Size: pf.size()})
		}
	}
	return out
}

func (s *Session) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return fmt.Errorf("backup session of %s ended: %w", s.g.name, s.failed)
	}
	if s.done {
		return fmt.Errorf("backup session of %s is closed", s.g.name)
	}
	return nil
}

// FileReader reads one file of a backup in sequential chunks of 64 KiB.
type FileReader struct {
	s      *Session
	file   BackupFile
	pf     *pagefile
	f      vfs.File // logs
	header []byte   // pages 0-1 snapshot
	size   int64
	off    int64
	ver    *verify.File
	closed bool
}

// ChunkSize is the size of every read but a file's last (16 pages).
const ChunkSize = page.PagesPerChunk * page.Size

// verifyRetries is how often a page that fails verification is re-read
// before the backup fails: a page may be caught mid-write by the OS even
// though our range lock excludes our own writers (ESE retries 16 times).
const verifyRetries = 16

// OpenFile opens a database, streaming or log file of the session
// (HrESEBackupOpenFile). A database's size is fixed here: pages added
// later are not copied, the logs cover them; pages 0-1 come from a header
// snapshot taken now.
func (s *Session) OpenFile(name string) (*FileReader, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	g := s.g
	for _, bf := range s.DatabaseFiles() {
		if bf.Name != name {
			continue
		}
		g.mu.Lock()
		d, _ := g.database(bf.Database)
		kind := fileEDB
		if bf.Kind == ese.KindStreaming {
			kind = fileSTM
		}
		pf := d.files[kind]
		hdr := d.hdr
		if kind == fileSTM {
			hdr = d.stmHdr
		}
		snap := make([]byte, 2*page.Size)
		h := cloneHeader(hdr)
		h.DBTime = max(h.DBTime, d.dbtime)
		err := encodeHeader(h, snap[:page.Size], 0)
		if err == nil {
			err = encodeHeader(h, snap[page.Size:], 1)
		}
		g.mu.Unlock()
		if err != nil {
			return nil, err
		}
		bf.Size = pf.size()
		return &FileReader{s: s, file: bf, pf: pf, header: snap, size: bf.Size, ver: verify.New(pf.name, bf.Kind, [16]byte{})}, nil
	}
	s.mu.Lock()
	logs := s.logs
	s.mu.Unlock()
	for _, lf := range logs {
		if lf.Name != name {
			continue
		}
		f, err := g.fs.OpenFile(filepath.Join(g.dir, lf.Name), os.O_RDONLY, 0)
		if err != nil {
			err = g.eseErr(CodeMissingLogFile, err, "log generation %d (%s) is gone", lf.Gen, lf.Name)
			s.abort(err)
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		lf.Size = st.Size()
		return &FileReader{s: s, file: lf, f: f, size: st.Size(), ver: verify.New(lf.Name, ese.KindLog, g.cfg.sig())}, nil
	}
	return nil, fmt.Errorf("storage group %s: %q is not a file of this %s backup session", g.name, name, s.typ)
}

// Info describes the open file; Size is fixed.
func (r *FileReader) Info() BackupFile { return r.file }

// Size is the number of bytes the reader returns.
func (r *FileReader) Size() int64 { return r.size }

// HeaderSnapshot returns the pages 0-1 snapshot of a database file.
func (r *FileReader) HeaderSnapshot() []byte { return r.header }

// Read fills p with the next chunk: 64 KiB (len(p) must be at least
// ChunkSize) except the file's last, which may be short. Every page read
// is verified (checksum, page number); a page that still fails after
// retries ends the session with -1018/-1118 naming file and page. Log
// files are verified record by record (-612).
func (r *FileReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if err := r.s.check(); err != nil {
		return 0, err
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(p) < ChunkSize {
		return 0, fmt.Errorf("backup read buffer of %d bytes; need %d", len(p), ChunkSize)
	}
	n := int(min(int64(ChunkSize), r.size-r.off))
	buf := p[:n]
	if r.f != nil {
		if _, err := r.f.ReadAt(buf, r.off); err != nil {
			return 0, r.fail(err)
		}
		if err := r.ver.Write(r.off, buf); err != nil {
			return 0, r.fail(r.s.g.eseErr(CodeLogReadVerifyFailure, err, "log %s failed verification", r.file.Name))
		}
		r.off += int64(n)
		if r.off == r.size {
			if err := r.finishLog(); err != nil {
				return 0, r.fail(err)
			}
		}
		return n, nil
	}
	if err := r.readPages(buf, uint32(r.off/page.Size)); err != nil {
		return 0, r.fail(err)
	}
	r.off += int64(n)
	return n, nil
}

// readPages reads pages under the range lock and verifies them.
func (r *FileReader) readPages(buf []byte, first uint32) error {
	pf := r.pf
	for attempt := 0; ; attempt++ {
		s := pf.stripe(first)
		s.RLock()
		_, err := pf.f.ReadAt(buf, int64(first)*page.Size)
		s.RUnlock()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: reading pages at %d: %w", pf.name, first, err)
		}
		if first == 0 {
			copy(buf, r.header[:min(len(buf), len(r.header))])
		}
		verr := r.ver.Write(int64(first)*page.Size, buf)
		if verr == nil {
			return nil
		}
		if attempt+1 >= verifyRetries {
			return verr
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

func (r *FileReader) finishLog() error {
	info, err := r.ver.Finish()
	if err != nil {
		return r.s.g.eseErr(CodeLogReadVerifyFailure, err, "log %s failed verification", r.file.Name)
	}
	s := r.s
	if info.Header.Gen != r.file.Gen {
		return s.g.eseErr(CodeLogReadVerifyFailure, nil, "log %s holds generation %d", r.file.Name, info.Header.Gen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.chain.Add(r.file.Name, info); err != nil {
		return s.g.eseErr(CodeLogReadVerifyFailure, err, "log %s failed verification", r.file.Name)
	}
	s.logRead[r.file.Gen] = true
	return nil
}

func (r *FileReader) fail(err error) error {
	r.s.abort(err)
	return err
}

// Close ends the file's read sequence (HrESEBackupCloseFile).
func (r *FileReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// GetLogAndPatchFiles forces a rollover of the current log and returns the
// contiguous list of generations the set needs: full/copy from the frozen
// checkpoint's generation, incremental/differential from the oldest on
// disk, through the one just closed. The patch list is always empty (see
// the package comment).
func (s *Session) GetLogAndPatchFiles() (logs []BackupFile, patches []string, err error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	g := s.g
	closed, err := g.log.Rollover()
	if err != nil {
		s.abort(err)
		return nil, nil, err
	}
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		s.abort(err)
		return nil, nil, err
	}
	low := s.low
	if !s.typ.CopiesDatabases() {
		if len(gens) == 0 {
			err := g.eseErr(CodeMissingLogFile, nil, "no closed log generation on disk")
			s.abort(err)
			return nil, nil, err
		}
		low = gens[0]
		// The set must continue the chain: nothing may be missing between
		// the last backup and the oldest log on disk.
		if prev := s.lastChainHigh(); prev != 0 && low > prev+1 {
			err := g.eseErr(CodeMissingLogFile, nil, "log generations %d-%d since the last %s are missing (oldest on disk is %d); take a full backup", prev+1, low-1, map[bool]string{true: "full or incremental backup", false: "full backup (an incremental truncated them)"}[s.typ == ese.Incremental], low)
			s.abort(err)
			return nil, nil, err
		}
	}
	have := map[uint32]bool{}
	for _, n := range gens {
		have[n] = true
	}
	var out []BackupFile
	for n := low; n <= closed; n++ {
		if !have[n] {
			err := g.eseErr(CodeMissingLogFile, nil, "log generation %d (%s) is missing from the range %d-%d", n, wal.GenName(g.cfg.Prefix(), n), low, closed)
			s.abort(err)
			return nil, nil, err
		}
		out = append(out, BackupFile{Name: wal.GenName(g.cfg.Prefix(), n), Kind: ese.KindLog, Size: g.cfg.LogSize, Gen: n})
	}
	s.mu.Lock()
	s.low, s.high, s.logs = low, closed, out
	s.mu.Unlock()
	return out, []string{}, nil
}

// lastChainHigh is the high generation of the newest backup the chain
// continues from (full or incremental for incremental, full for
// differential), across the group's databases.
func (s *Session) lastChainHigh() uint32 {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	var high uint32
	for _, d := range g.dbs {
		if !d.mounted {
			continue
		}
		if b := chainTip(d.hdr, s.typ != ese.Incremental); b.IsSet() && (high == 0 || b.HighGen < high) {
			high = b.HighGen
		}
	}
	return high
}

// HighGen is the last generation of the set (after GetLogAndPatchFiles).
func (s *Session) HighGen() uint32 { return s.high }

// truncFloor computes the generation below which logs may be deleted,
// exactly as ESE states it: min(checkpoint generation, for every database
// of the group the low generation of its most recent full or incremental
// backup). This session counts as each backed-up database's most recent.
// An incremental's low generation is the oldest log on disk when it ran,
// so incrementals never delete the logs since the last full: a later
// differential of that full (and a point-of-failure restore of it) still
// finds them. A database never backed up, or dismounted (its header can't
// be read), means nothing is truncated (0).
func (s *Session) truncFloor() uint32 {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	floor := g.checkpoint.Gen
	inSession := map[*database]bool{}
	for _, d := range s.dbs {
		inSession[d] = true
	}
	for _, d := range g.dbs {
		if !d.mounted {
			return 0
		}
		var f uint32
		switch {
		case s.typ == ese.Full && inSession[d], s.typ == ese.Incremental:
			f = s.low
		default:
			b := chainTip(d.hdr, false)
			if !b.IsSet() {
				return 0
			}
			f = b.LowGen
		}
		floor = min(floor, f)
	}
	return floor
}

// GetTruncateLogFiles lists the logs TruncateLog would delete.
func (s *Session) GetTruncateLogFiles() ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	g := s.g
	if !s.typ.Truncates() {
		return nil, g.eseErr(CodeInvalidBackupSequence, nil, "a %s backup never truncates logs", s.typ)
	}
	s.mu.Lock()
	if s.logs == nil {
		s.mu.Unlock()
		return nil, g.eseErr(CodeInvalidBackupSequence, nil, "truncation before GetLogAndPatchFiles")
	}
	for _, lf := range s.logs {
		if !s.logRead[lf.Gen] {
			s.mu.Unlock()
			return nil, g.eseErr(CodeLogFileNotCopied, nil, "log %s was not read in full in this session", lf.Name)
		}
	}
	s.mu.Unlock()
	floor := s.truncFloor()
	gens, _, err := wal.ListGenerations(g.fs, g.dir, g.cfg.Prefix())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range gens {
		if n < floor && n <= s.high {
			out = append(out, wal.GenName(g.cfg.Prefix(), n))
		}
	}
	return out, nil
}

// TruncateLog deletes the logs GetTruncateLogFiles lists. Call it only
// once the set is durable.
func (s *Session) TruncateLog() ([]string, error) {
	names, err := s.GetTruncateLogFiles()
	if err != nil {
		return nil, err
	}
	g := s.g
	for _, n := range names {
		if err := g.fs.Remove(filepath.Join(g.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("storage group %s: truncating %s: %w", g.name, n, err)
		}
	}
	if len(names) > 0 {
		if err := g.fs.SyncDir(g.dir); err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	return names, nil
}

// InstanceEnd ends the session's work on the group (HrESEBackupInstanceEnd).
// Success records the backup in the headers of the databases it covered
// (Previous Full/Incremental/Differential/Copy; a new full clears previous
// incremental and differential); failure records nothing and truncates
// nothing. Both unfreeze the checkpoint and release the group.
func (s *Session) InstanceEnd(success bool, setID string) error {
	if !success {
		s.abort(errors.New("aborted by the backup client"))
		return nil
	}
	if err := s.check(); err != nil {
		return err
	}
	g := s.g
	if s.high == 0 {
		err := g.eseErr(CodeInvalidBackupSequence, nil, "InstanceEnd(success) before the logs were listed")
		s.abort(err)
		return err
	}
	s.mu.Lock()
	var unread string
	for _, lf := range s.logs {
		if !s.logRead[lf.Gen] && unread == "" {
			unread = lf.Name
		}
	}
	s.mu.Unlock()
	if unread != "" {
		err := g.eseErr(CodeLogFileNotCopied, nil, "log %s was not read in full in this session", unread)
		s.abort(err)
		return err
	}
	info := &BackupInfo{LowGen: s.low, HighGen: s.high, Time: s.start, SetID: setID}
	dbs := s.dbs
	if !s.typ.CopiesDatabases() {
		dbs = nil
		g.mu.Lock()
		for _, d := range g.dbs {
			if d.mounted {
				dbs = append(dbs, d)
			}
		}
		g.mu.Unlock()
	}
	g.mu.Lock()
	var werr error
	for _, d := range dbs {
		h := d.hdr
		switch s.typ {
		case ese.Full:
			h.PreviousFull, h.PreviousIncremental, h.PreviousDifferential = info, nil, nil
			h.CurrentFull = nil
		case ese.Copy:
			h.PreviousCopy = info
			h.CurrentFull = nil
		case ese.Incremental:
			h.PreviousIncremental = info
		case ese.Differential:
			h.PreviousDifferential = info
		}
		if werr == nil {
			werr = g.writeDBHeaders(d)
		}
	}
	g.mu.Unlock()
	s.release()
	if werr != nil {
		g.mu.Lock()
		g.fail(werr)
		g.mu.Unlock()
	}
	return werr
}

// abort ends the session without recording anything: Current Full Backup
// is cleared again, nothing is truncated, the checkpoint unfreezes.
func (s *Session) abort(err error) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.abortLocked(err)
}

func (s *Session) abortLocked(err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	for d, orig := range s.origHdrs {
		d.hdr.CurrentFull = orig.CurrentFull
		if s.g.fatal == nil && !s.g.closed {
			_ = s.g.writeDBHeaders(d)
		}
	}
	s.releaseLocked()
}

func (s *Session) release() {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.releaseLocked()
}

func (s *Session) releaseLocked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	g := s.g
	if s.frozen {
		g.frozen--
		s.frozen = false
	}
	if g.backup == s {
		g.backup = nil
	}
	g.kickFlusher()
}

// Abort ends the session as failed (the client went away, or the pipeline
// failed). It is safe to call at any time and more than once.
func (s *Session) Abort(reason error) {
	if reason == nil {
		reason = errors.New("backup aborted")
	}
	s.abort(reason)
}

// End closes the session (HrESEBackupEnd); an unfinished session aborts.
func (s *Session) End() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if !done {
		s.abort(errors.New("session ended before InstanceEnd"))
	}
	return nil
}

// Err returns why the session failed, if it did.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Dismount detaches a database (its header is written clean). Refused
// while a backup session holds the group.
func (g *Group) Dismount(name string) error {
	if err := g.flush(true); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.backup != nil {
		return g.eseErr(CodeBackupInProgress, nil, "cannot dismount %s during a backup", name)
	}
	d, err := g.database(name)
	if err != nil {
		return err
	}
	for _, f := range g.cache.frames {
		if f.valid && f.dirty && f.key.file.dbid() == d.id {
			return fmt.Errorf("database %s still has unwritten pages; retry", name)
		}
	}
	d.mounted = false
	return nil
}

// Mount reattaches a dismounted database. Refused during a backup.
func (g *Group) Mount(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.backup != nil {
		return g.eseErr(CodeBackupInProgress, nil, "cannot mount %s during a backup", name)
	}
	for _, d := range g.dbs {
		if d.name == name {
			d.mounted = true
			return nil
		}
	}
	return fmt.Errorf("storage group %s has no database %q", g.name, name)
}

// BackupInProgress reports whether a backup session holds the group.
func (g *Group) BackupInProgress() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.backup != nil
}

// LogDir is the directory of the group's log files.
func (g *Group) LogDir() string { return g.dir }

// Header returns a copy of a database's in-memory header.
func (g *Group) Header(db string) (*DBHeader, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.dbs {
		if d.name == db {
			return cloneHeader(d.hdr), nil
		}
	}
	return nil, fmt.Errorf("storage group %s has no database %q", g.name, db)
}

// Checkpoint returns the current checkpoint position.
func (g *Group) CheckpointPos() wal.Pos {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checkpoint
}

// Rollover forces the current log to close as the next generation.
func (g *Group) Rollover() (uint32, error) { return g.log.Rollover() }

// CurrentGen is the generation of the current log E0n.log.
func (g *Group) CurrentGen() uint32 { return g.log.CurrentGen() }

// PreviousSetID names the set this backup continues: for an incremental
// the newest full or incremental, for a differential the full (the set ids
// recorded in the headers by InstanceEnd). Empty for full and copy.
func (s *Session) PreviousSetID() string {
	if s.typ.CopiesDatabases() {
		return ""
	}
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.dbs {
		if b := chainTip(d.hdr, s.typ == ese.Differential); d.mounted && b.IsSet() {
			return b.SetID
		}
	}
	return ""
}

// chainTip is the backup a new incremental continues: the newer (by time)
// of Previous Full and Previous Incremental; with fullOnly (differential)
// Previous Full alone. lastChainHigh, truncFloor and PreviousSetID all ask
// this one question.
func chainTip(h *DBHeader, fullOnly bool) *BackupInfo {
	b := h.PreviousFull
	if !fullOnly && h.PreviousIncremental.IsSet() && (!b.IsSet() || !h.PreviousIncremental.Time.Before(b.Time)) {
		b = h.PreviousIncremental
	}
	return b
}
