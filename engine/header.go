package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
)

// Database states, as eseutil /mh prints them.
const (
	StateCleanShutdown = "Clean Shutdown"
	StateDirtyShutdown = "Dirty Shutdown"
	// StateRestored is a database laid down from a backup set that still
	// needs hard recovery from its Patch Current Full Backup range.
	StateRestored = "Restored (Recovery Required)"
)

// BackupInfo is one backup section of a database header.
type BackupInfo struct {
	LowGen  uint32    `json:"low_gen"`
	HighGen uint32    `json:"high_gen"`
	Time    time.Time `json:"time"`
	SetID   string    `json:"set_id,omitempty"`
}

// LogPosition is a position in a storage group's log (wal.Pos) as a
// header records it.
type LogPosition struct {
	Gen uint32 `json:"gen"`
	Off uint32 `json:"off"`
}

// Pos is p as a wal.Pos.
func (p LogPosition) Pos() wal.Pos { return wal.Pos{Gen: p.Gen, Off: p.Off} }

// after reports whether a record at start precedes p (nil: nothing does).
func (p *LogPosition) after(start wal.Pos) bool { return p != nil && start.Less(p.Pos()) }

func logPosition(p wal.Pos) *LogPosition { return &LogPosition{Gen: p.Gen, Off: p.Off} }

// IsSet reports whether the section holds a backup.
func (b *BackupInfo) IsSet() bool { return b != nil && b.LowGen != 0 }

func (b *BackupInfo) lowGen() uint32 {
	if !b.IsSet() {
		return 0
	}
	return b.LowGen
}

// setFloor records a backup's log floor, or keeps it pending.
func (h *DBHeader) setFloor(floor uint32, pending bool) {
	if pending {
		h.PendingLogFloor = floor
		return
	}
	h.LogFloor, h.PendingLogFloor = floor, 0
}

// GenRange is an inclusive range of log generations.
type GenRange struct {
	Min uint32 `json:"min"`
	Max uint32 `json:"max"`
}

// DBHeader is the header of a database file, stored in pages 0 and 1
// (two copies so either survives a torn write; the higher Seq wins). The
// body is JSON inside a checksummed page: fields can be added without a
// format break and `store header --json` prints it as is.
type DBHeader struct {
	Magic          string    `json:"magic"`
	FormatVersion  int       `json:"format_version"`
	Seq            uint64    `json:"seq"`
	Name           string    `json:"name"`
	File           string    `json:"file"` // "edb" or "stm"
	GUID           string    `json:"guid"`
	Signature      string    `json:"signature"`     // database signature (random at creation)
	LogSignature   string    `json:"log_signature"` // storage group log stream signature
	PageSize       int       `json:"page_size"`
	DBID           int       `json:"dbid"`
	DBTime         uint64    `json:"dbtime"`
	State          string    `json:"state"`
	Created        time.Time `json:"created"`
	LogRequired    GenRange  `json:"log_required"`
	LastConsistent time.Time `json:"last_consistent,omitempty"`
	LastAttach     time.Time `json:"last_attach,omitempty"`

	PreviousFull         *BackupInfo `json:"previous_full,omitempty"`
	PreviousIncremental  *BackupInfo `json:"previous_incremental,omitempty"`
	PreviousDifferential *BackupInfo `json:"previous_differential,omitempty"`
	PreviousCopy         *BackupInfo `json:"previous_copy,omitempty"`
	CurrentFull          *BackupInfo `json:"current_full,omitempty"`
	// LogFloor is the first log generation this database needs on disk to
	// roll forward beyond its most recent full or incremental backup, as
	// that backup computed it (the truncation rule in truncate.go): what a
	// later backup of the group needs to know which logs it may delete.
	// 0: no full or incremental backup recorded one.
	LogFloor uint32 `json:"log_floor,omitempty"`
	// PendingLogFloor is the floor of a most recent backup whose set was not
	// known durable (written to a pipe): no log is truncated by it until
	// `tapestream truncate` has read that set back (Group.TruncateAfter).
	PendingLogFloor uint32 `json:"pending_log_floor,omitempty"`
	// Attach is where this file's life in the group's log begins: it was
	// mounted there, or a restore that put it in place replayed the log up
	// to there. Recovery applies none of its records before it: they belong
	// to the file it replaced (ESE: a restored database's header makes the
	// older logs useless to it), which matters when the file is older than
	// the records (a database rolled back to an older backup).
	Attach *LogPosition `json:"attach,omitempty"`
	// PatchCurrentFull is set on a database restored from an online backup
	// and not yet recovered: the log range hard recovery must replay.
	PatchCurrentFull *BackupInfo `json:"patch_current_full,omitempty"`
}

const headerMagic = "tapestream-edb"

// bodyLen is where the JSON length prefix lives in a header page.
const headerBody = page.HeaderLen

func encodeHeader(h *DBHeader, buf []byte, pgno uint32) error {
	body, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if len(body) > page.Size-headerBody-4 {
		return fmt.Errorf("database header of %s too large (%d bytes)", h.Name, len(body))
	}
	page.Init(buf, page.KindDBHeader)
	page.SetDBTime(buf, h.DBTime)
	binary.LittleEndian.PutUint32(buf[headerBody:], uint32(len(body)))
	copy(buf[headerBody+4:], body)
	page.Seal(buf, pgno)
	return nil
}

func decodeHeader(name string, buf []byte, pgno uint32) (*DBHeader, error) {
	if err := page.Verify(name, buf, pgno); err != nil {
		return nil, err
	}
	if page.KindOf(buf) != page.KindDBHeader {
		return nil, fmt.Errorf("%s: page %d is a %s page, not a database header", name, pgno, page.KindOf(buf))
	}
	n := binary.LittleEndian.Uint32(buf[headerBody:])
	if int(n) > page.Size-headerBody-4 {
		return nil, fmt.Errorf("%s: header page %d: body length %d out of range", name, pgno, n)
	}
	var h DBHeader
	if err := json.Unmarshal(buf[headerBody+4:headerBody+4+int(n)], &h); err != nil {
		return nil, fmt.Errorf("%s: header page %d: %w", name, pgno, err)
	}
	if h.Magic != headerMagic {
		return nil, fmt.Errorf("%s: not a tapestream database (magic %q)", name, h.Magic)
	}
	return &h, nil
}

// ParseHeaderPages decodes a header from the first two pages of a file
// (as a backup snapshot carries them). Either valid copy suffices.
func ParseHeaderPages(name string, pages []byte) (*DBHeader, error) {
	if len(pages) < 2*page.Size {
		return nil, fmt.Errorf("%s: header needs two pages, have %d bytes", name, len(pages))
	}
	h0, err0 := decodeHeader(name, pages[:page.Size], 0)
	h1, err1 := decodeHeader(name, pages[page.Size:2*page.Size], 1)
	switch {
	case err0 == nil && err1 == nil:
		if h1.Seq > h0.Seq {
			return h1, nil
		}
		return h0, nil
	case err0 == nil:
		return h0, nil
	case err1 == nil:
		return h1, nil
	}
	p0, p1 := pages[:page.Size], pages[page.Size:2*page.Size]
	zero := func(p []byte) bool { return !slices.ContainsFunc(p, func(b byte) bool { return b != 0 }) }
	if page.KindOf(p0) != page.KindDBHeader && page.KindOf(p1) != page.KindDBHeader && !zero(p0) && !zero(p1) {
		// Neither page even claims to be a header: most likely not a
		// database at all (a set, a log), rather than a damaged one.
		return nil, fmt.Errorf("%s is not a database file: neither of its first two pages is a database header (%v)", name, err0)
	}
	return nil, fmt.Errorf("%s: both header copies are damaged: %v; %v", name, err0, err1)
}

// ReadHeader reads the header of a database or streaming file.
func ReadHeader(fs vfs.FS, path string) (*DBHeader, error) {
	if fs == nil {
		fs = vfs.OS
	}
	f, err := fs.OpenFile(path, osRDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 2*page.Size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("%s: reading header: %w", path, err)
	}
	return ParseHeaderPages(path, buf)
}

// WriteHeader writes both header copies, each made durable before the
// other is touched, so a torn write leaves one good copy.
func writeHeader(f vfs.File, h *DBHeader) error {
	h.Seq++
	buf := make([]byte, page.Size)
	for pgno := uint32(0); pgno < 2; pgno++ {
		if err := encodeHeader(h, buf, pgno); err != nil {
			return err
		}
		if _, err := f.WriteAt(buf, int64(pgno)*page.Size); err != nil {
			return fmt.Errorf("%s: writing header page %d: %w", f.Name(), pgno, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("%s: syncing header: %w", f.Name(), err)
		}
	}
	return nil
}

// UpdateHeaderFile rewrites the header of a closed database file; restore
// uses it to mark databases laid down from a backup.
func UpdateHeaderFile(fs vfs.FS, path string, fn func(h *DBHeader) error) error {
	if fs == nil {
		fs = vfs.OS
	}
	h, err := ReadHeader(fs, path)
	if err != nil {
		return err
	}
	if err := fn(h); err != nil {
		return err
	}
	f, err := fs.OpenFile(path, osRDWR, 0)
	if err != nil {
		return err
	}
	if err := writeHeader(f, h); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// MarkRestored prepares a database file laid down from a backup for hard
// recovery: state Restored and the set's log range as Patch Current Full
// Backup, which the next open of its group replays.
func MarkRestored(fs vfs.FS, path string, lowGen, highGen uint32, setID string, t time.Time) error {
	return UpdateHeaderFile(fs, path, func(h *DBHeader) error {
		h.State = StateRestored
		h.PatchCurrentFull = &BackupInfo{LowGen: lowGen, HighGen: highGen, Time: t, SetID: setID}
		h.CurrentFull = nil
		return nil
	})
}
