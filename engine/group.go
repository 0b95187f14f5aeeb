package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
)

// DefaultLogSize is the size of one log generation.
const DefaultLogSize = 1 << 20

// GroupConfig is a storage group's identity, stored in group.json.
type GroupConfig struct {
	Name            string     `json:"name"`
	ID              int        `json:"id"` // 0..15: log prefix E00..E0F
	Signature       string     `json:"signature"`
	LogSize         int64      `json:"log_size"`
	CircularLogging bool       `json:"circular_logging"`
	Databases       []DBConfig `json:"databases"`
	// AbsentIDs are databases of the original group that a restore did not
	// bring back (a full backup of a subset): recovery skips their records.
	AbsentIDs []int `json:"absent_ids,omitempty"`
}

// DBConfig describes one database of a storage group.
type DBConfig struct {
	Name      string `json:"name"`
	ID        int    `json:"id"`
	GUID      string `json:"guid"`
	Streaming bool   `json:"streaming"` // has a NAME.stm streaming file
	// Dismounted: the administrator (or a restore replacing it) took the
	// database offline; it stays so when the group reopens, until Mount.
	Dismounted bool `json:"dismounted,omitempty"`
}

// Prefix is the log file prefix of the group, E00..E0F.
func (c *GroupConfig) Prefix() string { return fmt.Sprintf("E0%X", c.ID) }

func (c *GroupConfig) sig() [16]byte { return ParseSignature(c.Signature) }

// ParseSignature decodes a storage group signature as labels, manifests
// and GroupInfo carry it (hex); a malformed one decodes to zero, which log
// verifiers treat as "accept the first header's signature".
func ParseSignature(hexSig string) [16]byte {
	var s [16]byte
	if b, err := hex.DecodeString(hexSig); err == nil && len(b) == len(s) {
		copy(s[:], b)
	}
	return s
}

const groupConfigFile = "group.json"

// database is an attached database of a group.
type database struct {
	id      int
	name    string
	cfg     DBConfig
	files   [2]*pagefile // edb, stm
	hdr     *DBHeader    // header of the edb (stm mirrors state)
	stmHdr  *DBHeader
	dbtime  uint64
	tables  map[string]uint32
	mounted bool
}

// Group is an open storage group: one log stream, one checkpoint, its
// databases and its buffer cache.
type Group struct {
	fs   vfs.FS
	dir  string
	name string
	cfg  GroupConfig
	opts Options

	mu      sync.Mutex // guards everything below and the cache
	log     *wal.Writer
	cache   *cache
	dbs     []*database
	byID    map[int]*database
	txid    uint64
	fatal   error
	closed  bool
	closing bool // Close in progress: a second Close returns at once

	checkpoint wal.Pos
	chkWritten time.Time
	frozen     int // >0 while a full/copy backup holds the checkpoint
	backup     *Session

	flushC   chan struct{}
	stopC    chan struct{}
	flushWG  sync.WaitGroup
	flushMu  sync.Mutex // one flush at a time
	recovery RecoveryInfo

	stats    GroupStats
	pressure pressure // commit latency and queue (pressure.go)
}

// GroupStats are counters exposed to metrics.
type GroupStats struct {
	Commits     uint64
	CommitBytes uint64
	PagesWriten uint64
}

// Options tune an open group.
type Options struct {
	FS        vfs.FS
	CacheSize int // bytes, default 64 MiB
	// FlushInterval is how often the background flusher runs (default 200ms).
	FlushInterval time.Duration
	// Now is the clock (tests inject one).
	Now func() time.Time

	// Hard recovery of restored databases (see RestoreLogDirs).
	// RestoreLogDirs are searched for log generations before the group's
	// own directory (a restore's temporary log directory).
	RestoreLogDirs []string
	// UntilGen and UntilTime stop replay early (point-in-time restore).
	UntilGen  uint32
	UntilTime time.Time
	// Context, if set, stops a recovery when it is done (a signal during a
	// restore's recovery); the group is not opened.
	Context context.Context
}

func (o *Options) fill() {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func newSignature() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func readGroupConfig(fs vfs.FS, dir string) (*GroupConfig, error) {
	f, err := fs.OpenFile(filepath.Join(dir, groupConfigFile), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > 1<<20 {
		return nil, fmt.Errorf("%s: %d bytes, too large", groupConfigFile, st.Size())
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	var c GroupConfig
	if err := json.Unmarshal(buf, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, groupConfigFile), err)
	}
	return &c, nil
}

// writeFileAtomic writes name via a temporary file, fsync and rename.
func writeFileAtomic(fs vfs.FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}

func writeGroupConfig(fs vfs.FS, dir string, c *GroupConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(fs, filepath.Join(dir, groupConfigFile), append(b, '\n'))
}

// CreateGroup creates a storage group directory with its databases.
func CreateGroup(dir string, cfg GroupConfig, opts Options) error {
	opts.fill()
	fs := opts.FS
	if cfg.ID < 0 || cfg.ID > 15 {
		return fmt.Errorf("storage group %s: id %d out of range 0-15", cfg.Name, cfg.ID)
	}
	if cfg.LogSize == 0 {
		cfg.LogSize = DefaultLogSize
	}
	if cfg.LogSize < 128<<10 || cfg.LogSize > 1<<30 || cfg.LogSize%4096 != 0 {
		return fmt.Errorf("storage group %s: log size %d must be a multiple of 4 KiB from 128 KiB to 1 GiB", cfg.Name, cfg.LogSize)
	}
	if cfg.Signature == "" {
		cfg.Signature = newSignature()
	}
	if _, err := fs.Stat(filepath.Join(dir, groupConfigFile)); err == nil {
		return fmt.Errorf("storage group %s already exists in %s", cfg.Name, dir)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dbs := cfg.Databases
	cfg.Databases = nil
	now := opts.Now()
	for i := range dbs {
		d := dbs[i]
		d.ID = i
		if d.GUID == "" {
			d.GUID = newGUID()
		}
		if err := validName(d.Name); err != nil {
			return err
		}
		if err := createDBFiles(fs, dir, &cfg, d, now); err != nil {
			return err
		}
		cfg.Databases = append(cfg.Databases, d)
	}
	return writeGroupConfig(fs, dir, &cfg)
}

// ValidName checks a storage group or database name.
func ValidName(name string) error { return validName(name) }

func validName(name string) error {
	if name == "" || len(name) > 64 || !filepath.IsLocal(name) || filepath.Base(name) != name {
		return fmt.Errorf("invalid name %q: use 1-64 letters, digits, '-' or '_'", name)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("invalid name %q: use 1-64 letters, digits, '-' or '_'", name)
		}
	}
	return nil
}

// createDBFiles writes the initial pages of a database's files and syncs
// them: header copies, space page, catalog root.
func createDBFiles(fs vfs.FS, dir string, cfg *GroupConfig, d DBConfig, now time.Time) error {
	kinds := []int{fileEDB}
	if d.Streaming {
		kinds = append(kinds, fileSTM)
	}
	sig := newSignature()
	for _, kind := range kinds {
		path := filepath.Join(dir, d.Name+extOf(kind))
		f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		buf := make([]byte, extendPages*page.Size)
		for i := uint32(0); i < extendPages; i++ {
			p := buf[i*page.Size : (i+1)*page.Size]
			switch i {
			case pgnoSpace:
				page.Init(p, page.KindSpace)
				spaceSet(p, firstFree, 0, 0)
			case pgnoCatalog:
				page.Init(p, page.KindLeaf)
			default:
				page.Init(p, page.KindUnused)
			}
			if i >= 2 {
				page.Seal(p, i)
			}
		}
		if kind == fileSTM {
			page.Init(buf[pgnoCatalog*page.Size:], page.KindUnused)
			page.Seal(buf[pgnoCatalog*page.Size:(pgnoCatalog+1)*page.Size], pgnoCatalog)
		}
		if _, err := f.WriteAt(buf, 0); err != nil {
			f.Close()
			return err
		}
		h := &DBHeader{
			Magic: headerMagic, FormatVersion: 1, Name: d.Name, File: extOf(kind)[1:], GUID: d.GUID,
			Signature: sig, LogSignature: cfg.Signature, PageSize: page.Size, DBID: d.ID,
			State: StateCleanShutdown, Created: now, LastConsistent: now,
		}
		if err := writeHeader(f, h); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return fs.SyncDir(dir)
}

func extOf(kind int) string {
	if kind == fileSTM {
		return ".stm"
	}
	return ".edb"
}

func (g *Group) pagefile(n fileNo) *pagefile {
	d := g.byID[n.dbid()]
	if d == nil {
		return nil
	}
	return d.files[n.kind()]
}

func (g *Group) fileName(n fileNo) string {
	if pf := g.pagefile(n); pf != nil {
		return pf.name
	}
	return fmt.Sprintf("file %d", n)
}

// Name is the storage group's name.
func (g *Group) Name() string { return g.name }

// Dir is the storage group's directory.
func (g *Group) Dir() string { return g.dir }

// Config returns the group's configuration.
func (g *Group) Config() GroupConfig { return g.cfg }

// CheckFatal returns the error that stopped the group, if any.
func (g *Group) err() error {
	if g.fatal != nil {
		return fmt.Errorf("storage group %s is stopped after an earlier failure (reopen to recover): %w", g.name, g.fatal)
	}
	if g.closed {
		return fmt.Errorf("storage group %s is closed", g.name)
	}
	return nil
}

func (g *Group) database(name string) (*database, error) {
	for _, d := range g.dbs {
		if d.name == name {
			if !d.mounted {
				return nil, fmt.Errorf("%w: %s of storage group %s", ErrDismounted, name, g.name)
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("storage group %s has no database %q", g.name, name)
}

// tableRoot finds a table's root page; with create it makes the table.
func (g *Group) tableRoot(a *applier, d *database, table string) (uint32, error) {
	if r, ok := d.tables[table]; ok {
		return r, nil
	}
	v, ok, err := g.get(d, pgnoCatalog, []byte(table))
	if err != nil {
		return 0, err
	}
	if ok {
		if len(v) != 4 {
			return 0, fmt.Errorf("%s: catalog entry for table %q is %d bytes", d.name, table, len(v))
		}
		r := uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24
		d.tables[table] = r
		return r, nil
	}
	if a == nil {
		return 0, ErrNoTable
	}
	if len(table) == 0 || len(table) > MaxKeyLen {
		return 0, fmt.Errorf("invalid table name %q", table)
	}
	frames, err := a.alloc(makeFileNo(d.id, fileEDB), 1)
	if err != nil {
		return 0, err
	}
	f := frames[0]
	defer g.unpin(f)
	if err := a.rebuild(f, page.KindLeaf, 0, nil); err != nil {
		return 0, err
	}
	r := f.key.pgno
	if err := a.put(d, pgnoCatalog, []byte(table), []byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}); err != nil {
		return 0, err
	}
	d.tables[table] = r
	return r, nil
}

// Tables lists the tables of a database.
func (g *Group) Tables(db string) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(); err != nil {
		return nil, err
	}
	d, err := g.database(db)
	if err != nil {
		return nil, err
	}
	var names []string
	err = g.scanLocked(d, pgnoCatalog, nil, func(k, _ []byte) error {
		names = append(names, string(k))
		return nil
	})
	return names, err
}

// Databases lists the group's database names in id order.
func (g *Group) Databases() []string {
	var out []string
	for _, d := range g.cfg.Databases {
		out = append(out, d.Name)
	}
	return out
}

// scanLocked iterates a tree from start, leaf by leaf. The mutex is held
// by the caller for the whole scan.
func (g *Group) scanLocked(d *database, root uint32, start []byte, fn func(k, v []byte) error) error {
	cur := start
	for {
		ents, next, err := g.seekGE(d, root, cur)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		if err := scanProgress(d, cur, next, ents); err != nil {
			return err
		}
		cur = next
	}
}

// scanProgress checks that a leaf-by-leaf scan moves forward: the next
// leaf's lower bound lies beyond everything seen, so a corrupt tree ends
// the scan with an error instead of looping.
func scanProgress(d *database, cur, next []byte, ents []kv) error {
	last := cur
	if len(ents) > 0 {
		last = ents[len(ents)-1].k
	}
	if bytes.Compare(next, last) <= 0 && !(len(ents) == 0 && cur == nil && len(next) > 0) {
		return fmt.Errorf("%s: tree order violated near key %q (next leaf starts at %q)", d.name, last, next)
	}
	return nil
}

// sortedKeys is a helper for deterministic iteration over write sets.
func sortedKeys(m map[string]*[]byte) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var errClosed = errors.New("engine: storage group closed")

// WriteGroupConfig writes group.json atomically (restore builds groups).
func WriteGroupConfig(dir string, c *GroupConfig) error { return writeGroupConfig(vfs.OS, dir, c) }

// ReadGroupConfig reads a group directory's group.json.
func ReadGroupConfig(dir string) (*GroupConfig, error) { return readGroupConfig(vfs.OS, dir) }

// DatabaseSize is the size of the group's database and streaming files.
func (g *Group) DatabaseSize() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, d := range g.dbs {
		for _, pf := range d.files {
			if pf != nil {
				n += pf.size()
			}
		}
	}
	return n
}
