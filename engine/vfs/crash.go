package vfs

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is returned by operations on a File that was opened from a
// CrashFS before its Crash: the handle belongs to the lost pre-crash world.
var ErrCrashed = errors.New("vfs: file handle invalidated by simulated crash")

// sectorSize is the unit of atomicity of the torn-write model.
const sectorSize = 512

// CrashFS is an in-memory FS that models durability, for crash tests.
//
// Every file has its current contents (what reads see) and its durable
// contents (as of its last File.Sync). Every directory has its current
// entries and its durable entries (as of its last SyncDir). Crash (or
// CrashClone) simulates a power loss: each directory's entries return to
// the durable ones (unsynced creates, renames and removes are undone) and
// each surviving file's data returns to its last synced state. A file that
// was synced but whose creating directory entry was not is therefore lost,
// as on a strict POSIX file system.
//
// Simplifications (documented model):
//   - MkdirAll creates directories durably at once, and removing an empty
//     directory is durable at once. Directories cannot be renamed.
//   - OpenFile cannot open a directory; use ReadDir/Stat/SyncDir.
//   - With SetTornWrites, a crash additionally keeps a random subset of the
//     unsynced writes of each surviving file, sector (512 B) by sector, and
//     a random subset of its unsynced size changes, applied in issue order
//     on top of the synced contents (disks reorder and tear writes).
//     Directory operations are never torn.
//
// After Crash, handles opened before it return ErrCrashed. CrashFS is safe
// for concurrent use (one mutex).
type CrashFS struct {
	mu    sync.Mutex
	dirs  map[string]*memDir
	epoch uint64
	torn  bool
	rng   *rand.Rand
}

type memDir struct {
	cur     map[string]*inode
	durable map[string]*inode
	modTime time.Time
}

type inode struct {
	data    []byte
	synced  []byte
	pending []pendingOp
	mode    os.FileMode
	modTime time.Time
}

// pendingOp is an unsynced mutation: a write (data != nil or len 0 write
// is dropped) or a resize.
type pendingOp struct {
	resize bool
	off    int64 // write offset, or new size for resize
	data   []byte
}

// NewCrashFS returns an empty CrashFS holding the directories "/" and ".".
func NewCrashFS() *CrashFS {
	c := &CrashFS{dirs: map[string]*memDir{}}
	now := time.Now()
	c.dirs["/"] = &memDir{cur: map[string]*inode{}, durable: map[string]*inode{}, modTime: now}
	c.dirs["."] = &memDir{cur: map[string]*inode{}, durable: map[string]*inode{}, modTime: now}
	return c
}

// SetTornWrites enables (or disables) the torn-write crash model; seed makes
// the choice of surviving unsynced writes reproducible.
func (c *CrashFS) SetTornWrites(enabled bool, seed int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.torn = enabled
	c.rng = rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
}

// Crash simulates a power loss in place: everything not durable is
// discarded (see the type's doc). Handles opened before it become invalid.
func (c *CrashFS) Crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirs = c.crashedDirs()
	c.epoch++
}

// CrashClone returns a new CrashFS holding the state this one would have
// after a crash now; this one is left untouched (its writers may go on).
// The clone inherits the torn-write setting (with its own random stream
// derived from this one's).
func (c *CrashFS) CrashClone() *CrashFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := &CrashFS{dirs: c.crashedDirs(), torn: c.torn}
	if c.rng != nil {
		n.rng = rand.New(rand.NewPCG(c.rng.Uint64(), c.rng.Uint64()))
	}
	return n
}

// crashedDirs builds the post-crash directory tree. Caller holds c.mu.
func (c *CrashFS) crashedDirs() map[string]*memDir {
	remap := map[*inode]*inode{}
	out := make(map[string]*memDir, len(c.dirs))
	// Deterministic order so that torn-write choices are reproducible.
	names := make([]string, 0, len(c.dirs))
	for name := range c.dirs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, dn := range names {
		d := c.dirs[dn]
		nd := &memDir{cur: map[string]*inode{}, durable: map[string]*inode{}, modTime: d.modTime}
		entries := make([]string, 0, len(d.durable))
		for e := range d.durable {
			entries = append(entries, e)
		}
		sort.Strings(entries)
		for _, e := range entries {
			ino := d.durable[e]
			n, ok := remap[ino]
			if !ok {
				n = c.crashedInode(ino)
				remap[ino] = n
			}
			nd.cur[e] = n
			nd.durable[e] = n
		}
		out[dn] = nd
	}
	return out
}

func (c *CrashFS) crashedInode(ino *inode) *inode {
	data := append([]byte(nil), ino.synced...)
	if c.torn && c.rng != nil {
		for _, op := range ino.pending {
			if op.resize {
				if c.rng.IntN(2) == 0 {
					data = resize(data, op.off)
				}
				continue
			}
			for off := int64(0); off < int64(len(op.data)); {
				abs := op.off + off
				n := sectorSize - abs%sectorSize
				if n > int64(len(op.data))-off {
					n = int64(len(op.data)) - off
				}
				if c.rng.IntN(2) == 0 {
					if end := abs + n; end > int64(len(data)) {
						data = resize(data, end)
					}
					copy(data[abs:], op.data[off:off+n])
				}
				off += n
			}
		}
	}
	return &inode{data: data, synced: append([]byte(nil), data...), mode: ino.mode, modTime: ino.modTime}
}

func resize(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	if size <= int64(cap(b)) {
		old := len(b)
		b = b[:size]
		clear(b[old:])
		return b
	}
	nb := make([]byte, size, size+size/4)
	copy(nb, b)
	return nb
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

func split(name string) (dir, base string) {
	name = filepath.Clean(name)
	return filepath.Dir(name), filepath.Base(name)
}

func (c *CrashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := filepath.Clean(name)
	if _, ok := c.dirs[clean]; ok {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	dn, base := split(clean)
	d, ok := c.dirs[dn]
	if !ok {
		return nil, pathErr("open", name, syscall.ENOENT)
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	writable := acc == os.O_WRONLY || acc == os.O_RDWR
	ino, exists := d.cur[base]
	now := time.Now()
	switch {
	case exists && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, syscall.EEXIST)
	case !exists && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, syscall.ENOENT)
	case !exists:
		ino = &inode{mode: perm & os.ModePerm, modTime: now}
		d.cur[base] = ino
		d.modTime = now
	}
	if exists && flag&os.O_TRUNC != 0 && writable && len(ino.data) > 0 {
		ino.data = ino.data[:0]
		ino.pending = append(ino.pending, pendingOp{resize: true, off: 0})
		ino.modTime = now
	}
	return &memFile{fs: c, ino: ino, name: name, epoch: c.epoch, readable: acc != os.O_WRONLY, writable: writable}, nil
}

func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := filepath.Clean(name)
	if _, ok := c.dirs[clean]; ok {
		if clean == "/" || clean == "." {
			return pathErr("remove", name, syscall.EBUSY)
		}
		if c.dirHasChildren(clean) {
			return pathErr("remove", name, syscall.ENOTEMPTY)
		}
		delete(c.dirs, clean)
		return nil
	}
	dn, base := split(clean)
	d, ok := c.dirs[dn]
	if !ok {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if _, ok := d.cur[base]; !ok {
		return pathErr("remove", name, syscall.ENOENT)
	}
	delete(d.cur, base)
	d.modTime = time.Now()
	return nil
}

func (c *CrashFS) dirHasChildren(dir string) bool {
	if len(c.dirs[dir].cur) > 0 {
		return true
	}
	for dn := range c.dirs {
		if dn != dir && filepath.Dir(dn) == dir {
			return true
		}
	}
	return false
}

func (c *CrashFS) Rename(oldname, newname string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	oc, nc := filepath.Clean(oldname), filepath.Clean(newname)
	if _, ok := c.dirs[oc]; ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EINVAL}
	}
	if _, ok := c.dirs[nc]; ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EISDIR}
	}
	odn, ob := split(oc)
	ndn, nb := split(nc)
	od, ok1 := c.dirs[odn]
	nd, ok2 := c.dirs[ndn]
	if !ok1 || !ok2 {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	ino, ok := od.cur[ob]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	if oc == nc {
		return nil
	}
	delete(od.cur, ob)
	nd.cur[nb] = ino
	now := time.Now()
	od.modTime, nd.modTime = now, now
	return nil
}

// MkdirAll creates path and its missing parents. Directories are durable at
// once (no SyncDir of the parent is needed).
func (c *CrashFS) MkdirAll(path string, perm os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := filepath.Clean(path)
	var missing []string
	for p := clean; ; p = filepath.Dir(p) {
		if _, ok := c.dirs[p]; ok {
			break
		}
		dn, base := split(p)
		if d, ok := c.dirs[dn]; ok {
			if _, isFile := d.cur[base]; isFile {
				return pathErr("mkdir", path, syscall.ENOTDIR)
			}
		}
		missing = append(missing, p)
		if p == "/" || p == "." {
			break
		}
	}
	now := time.Now()
	for _, p := range missing {
		c.dirs[p] = &memDir{cur: map[string]*inode{}, durable: map[string]*inode{}, modTime: now}
	}
	return nil
}

func (c *CrashFS) ReadDir(name string) ([]os.DirEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := filepath.Clean(name)
	d, ok := c.dirs[clean]
	if !ok {
		return nil, pathErr("readdir", name, syscall.ENOENT)
	}
	var out []os.DirEntry
	for base, ino := range d.cur {
		out = append(out, fs.FileInfoToDirEntry(fileInfo{name: base, size: int64(len(ino.data)), mode: ino.mode, modTime: ino.modTime}))
	}
	for dn, sd := range c.dirs {
		if dn != clean && filepath.Dir(dn) == clean {
			out = append(out, fs.FileInfoToDirEntry(fileInfo{name: filepath.Base(dn), mode: os.ModeDir | 0o755, modTime: sd.modTime}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (c *CrashFS) Stat(name string) (os.FileInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := filepath.Clean(name)
	if d, ok := c.dirs[clean]; ok {
		return fileInfo{name: filepath.Base(clean), mode: os.ModeDir | 0o755, modTime: d.modTime}, nil
	}
	dn, base := split(clean)
	d, ok := c.dirs[dn]
	if !ok {
		return nil, pathErr("stat", name, syscall.ENOENT)
	}
	ino, ok := d.cur[base]
	if !ok {
		return nil, pathErr("stat", name, syscall.ENOENT)
	}
	return fileInfo{name: base, size: int64(len(ino.data)), mode: ino.mode, modTime: ino.modTime}, nil
}

// SyncDir makes the current entries of dir durable.
func (c *CrashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dirs[filepath.Clean(dir)]
	if !ok {
		return pathErr("syncdir", dir, syscall.ENOENT)
	}
	d.durable = make(map[string]*inode, len(d.cur))
	for k, v := range d.cur {
		d.durable[k] = v
	}
	return nil
}

type memFile struct {
	fs       *CrashFS
	ino      *inode
	name     string
	epoch    uint64
	readable bool
	writable bool
	closed   bool
}

// check validates the handle; caller holds f.fs.mu.
func (f *memFile) check(op string, write bool) error {
	switch {
	case f.closed:
		return pathErr(op, f.name, os.ErrClosed)
	case f.epoch != f.fs.epoch:
		return pathErr(op, f.name, ErrCrashed)
	case write && !f.writable, !write && !f.readable && op == "read":
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if end := off + int64(len(p)); end > int64(len(f.ino.data)) {
		f.ino.data = resize(f.ino.data, end)
	}
	copy(f.ino.data[off:], p)
	f.ino.pending = append(f.ino.pending, pendingOp{off: off, data: append([]byte(nil), p...)})
	f.ino.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	ino := f.ino
	inPlace := len(ino.synced) == len(ino.data)
	for _, op := range ino.pending {
		if op.resize {
			inPlace = false
			break
		}
	}
	if inPlace {
		// No size change: every pending write lies inside the synced
		// contents; replaying them is cheaper than copying the file.
		for _, op := range ino.pending {
			copy(ino.synced[op.off:], op.data)
		}
	} else {
		ino.synced = append(ino.synced[:0:0], ino.data...)
	}
	ino.pending = nil
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat", false); err != nil {
		return nil, err
	}
	return fileInfo{name: filepath.Base(f.name), size: int64(len(f.ino.data)), mode: f.ino.mode, modTime: f.ino.modTime}, nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	f.ino.data = resize(f.ino.data, size)
	f.ino.pending = append(f.ino.pending, pendingOp{resize: true, off: size})
	f.ino.modTime = time.Now()
	return nil
}

// Preallocate grows the file to size (zero filled) if it is smaller, like
// fallocate mode 0. The new size is durable only after Sync.
func (f *memFile) Preallocate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("preallocate", true); err != nil {
		return err
	}
	if size > int64(len(f.ino.data)) {
		f.ino.data = resize(f.ino.data, size)
		f.ino.pending = append(f.ino.pending, pendingOp{resize: true, off: size})
		f.ino.modTime = time.Now()
	}
	return nil
}

func (f *memFile) Name() string { return f.name }

type fileInfo struct {
	name    string
	size    int64
	mode    os.FileMode
	modTime time.Time
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() os.FileMode  { return fi.mode }
func (fi fileInfo) ModTime() time.Time { return fi.modTime }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }
