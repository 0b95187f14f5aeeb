package engine

import (
	"fmt"
	"os"
	"sync"

	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/vfs"
)

const (
	osRDONLY = os.O_RDONLY
	osRDWR   = os.O_RDWR
)

// File kinds within a database (wire format: part of fileNo in log records).
const (
	fileEDB = 0
	fileSTM = 1
)

// fileNo names a page file of a storage group in log records: two per
// database (edb, stm).
type fileNo uint16

func makeFileNo(dbid, kind int) fileNo { return fileNo(dbid*2 + kind) }
func (n fileNo) dbid() int             { return int(n) / 2 }
func (n fileNo) kind() int             { return int(n) % 2 }

// extendPages is the minimum growth of a page file. Growth writes formatted
// pages and syncs them, so a backup never meets a hole of never-written
// pages between allocated ones.
const extendPages = 256

// rangeStripes guard 64 KiB ranges of a file against torn reads: a page
// write holds its range exclusively, a backup chunk read holds it shared.
const rangeStripes = 64

// pagefile is one .edb or .stm file.
type pagefile struct {
	name string // file name for error messages, e.g. "Mailbox1.edb"
	path string
	f    vfs.File
	no   fileNo

	mu      sync.Mutex // guards phys
	phys    uint32     // pages physically present and formatted
	stripes [rangeStripes]sync.RWMutex
}

func openPagefile(fs vfs.FS, path, name string, no fileNo, create bool) (*pagefile, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := fs.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pagefile{name: name, path: path, f: f, no: no, phys: uint32(st.Size() / page.Size)}, nil
}

func (pf *pagefile) stripe(pgno uint32) *sync.RWMutex {
	return &pf.stripes[(pgno/page.PagesPerChunk)%rangeStripes]
}

// readPage reads a page from disk without verifying it.
func (pf *pagefile) readPage(pgno uint32, buf []byte) error {
	pf.mu.Lock()
	phys := pf.phys
	pf.mu.Unlock()
	if pgno >= phys {
		clear(buf[:page.Size])
		return nil
	}
	s := pf.stripe(pgno)
	s.RLock()
	_, err := pf.f.ReadAt(buf[:page.Size], int64(pgno)*page.Size)
	s.RUnlock()
	if err != nil {
		return fmt.Errorf("%s: reading page %d: %w", pf.name, pgno, err)
	}
	return nil
}

// writePages writes consecutive sealed pages starting at first, extending
// the file with formatted pages first if they lie beyond its end.
func (pf *pagefile) writePages(first uint32, buf []byte) error {
	n := uint32(len(buf) / page.Size)
	if err := pf.ensure(first + n); err != nil {
		return err
	}
	// Lock every stripe the range touches, in stripe order.
	var held [rangeStripes]bool
	for p := first; p < first+n; p++ {
		held[(p/page.PagesPerChunk)%rangeStripes] = true
	}
	for i := range held {
		if held[i] {
			pf.stripes[i].Lock()
		}
	}
	_, err := pf.f.WriteAt(buf, int64(first)*page.Size)
	for i := range held {
		if held[i] {
			pf.stripes[i].Unlock()
		}
	}
	if err != nil {
		return fmt.Errorf("%s: writing pages %d-%d: %w", pf.name, first, first+n-1, err)
	}
	return nil
}

// ensure grows the file with formatted unused pages so that it holds at
// least n pages. The growth is synced: a formatted page on disk is the
// promise that every page below phys verifies.
func (pf *pagefile) ensure(n uint32) error {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if n <= pf.phys {
		return nil
	}
	grow := max(n-pf.phys, extendPages, pf.phys/8)
	target := pf.phys + grow
	const batch = 64
	buf := make([]byte, batch*page.Size)
	for p := pf.phys; p < target; p += batch {
		cnt := min(batch, target-p)
		for i := uint32(0); i < cnt; i++ {
			pg := buf[i*page.Size : (i+1)*page.Size]
			page.Init(pg, page.KindUnused)
			page.Seal(pg, p+i)
		}
		if _, err := pf.f.WriteAt(buf[:cnt*page.Size], int64(p)*page.Size); err != nil {
			return fmt.Errorf("%s: extending to %d pages: %w", pf.name, target, err)
		}
	}
	if err := pf.f.Sync(); err != nil {
		return fmt.Errorf("%s: syncing extension: %w", pf.name, err)
	}
	pf.phys = target
	return nil
}

// size is the physical size in bytes.
func (pf *pagefile) size() int64 {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return int64(pf.phys) * page.Size
}

func (pf *pagefile) close() error { return pf.f.Close() }

func osFS() vfs.FS { return vfs.OS }
