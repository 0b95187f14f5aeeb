package engine

import (
	"path/filepath"

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
	LogSize         int64          `json:"log_size"`
	Signature       string         `json:"signature"`
	Databases       []DatabaseInfo `json:"databases"`
}

// Info describes the group and its databases.
func (g *Group) Info() GroupInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	gi := GroupInfo{ID: g.cfg.ID, Name: g.name, CircularLogging: g.cfg.CircularLogging, LogPrefix: g.cfg.Prefix(), LogSize: g.cfg.LogSize, Signature: g.cfg.Signature}
	for _, d := range g.dbs {
		di := DatabaseInfo{Name: d.name, ID: d.id, GUID: d.cfg.GUID, Mounted: d.mounted}
		if pf := d.files[fileEDB]; pf != nil {
			di.Path, di.Size = pf.path, pf.size()
		} else { // dismounted: its files are closed
			di.Path = filepath.Join(g.dir, d.name+".edb")
			if st, err := g.fs.Stat(di.Path); err == nil {
				di.Size = st.Size()
			}
		}
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
