package s3store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// StateFormat is the first field of an upload state file.
const StateFormat = "tapestream-s3-upload/1"

// UploadState is what an upload state file records: enough to continue a
// multipart upload after the process died.
type UploadState struct {
	Format   string       `json:"format"`
	Bucket   string       `json:"bucket"`
	Key      string       `json:"key"`
	UploadID string       `json:"upload_id"`
	Schedule PartSchedule `json:"schedule"`
	Created  time.Time    `json:"created"`
	// Parts are the parts known complete, by number.
	Parts []PartInfo `json:"-"`
}

// PartInfo is one uploaded part.
type PartInfo struct {
	Number int32  `json:"part"`
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
	ETag   string `json:"etag"`
}

// ReadState reads an upload state file: a JSON header line, then one JSON
// line per completed part (a later line for the same part wins; a torn last
// line, left by a crash while appending, is ignored).
func ReadState(path string) (*UploadState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(data, []byte("\n"))
	var st UploadState
	if err := json.Unmarshal(lines[0], &st); err != nil || st.Format != StateFormat || st.UploadID == "" || st.Key == "" || st.Schedule.Every <= 0 || st.Schedule.First <= 0 {
		return nil, fmt.Errorf("%w: %s: bad header line", ErrBadState, path)
	}
	parts := map[int32]PartInfo{}
	for i, l := range lines[1:] {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var p PartInfo
		if err := json.Unmarshal(l, &p); err != nil || p.Number < 1 || p.Number > MaxParts || p.ETag == "" {
			if i == len(lines)-2 && !bytes.HasSuffix(data, []byte("\n")) {
				break // torn last line
			}
			return nil, fmt.Errorf("%w: %s: line %d", ErrBadState, path, i+2)
		}
		parts[p.Number] = p
	}
	for _, p := range parts {
		st.Parts = append(st.Parts, p)
	}
	sort.Slice(st.Parts, func(i, j int) bool { return st.Parts[i].Number < st.Parts[j].Number })
	return &st, nil
}

// stateFile appends to an upload state file. Each write is fsynced: the
// file must never claim a part the server does not have, and a part
// missing from it only costs its upload again.
type stateFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// createStateFile writes a new state file for st (replacing the one at
// path when replace is set, else refusing an existing one).
func createStateFile(path string, st *UploadState, replace bool) (*stateFile, error) {
	hdr, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err = f.Write(append(hdr, '\n')); err == nil {
		err = f.Sync()
	}
	if err == nil && !replace {
		// link(2) fails if path exists: no second writer can take over a
		// state file another process is still appending to.
		if err = os.Link(tmp, path); err == nil {
			err = os.Remove(tmp)
		} else if errors.Is(err, fs.ErrExist) {
			err = ErrStateExists
		}
	} else if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	syncDir(filepath.Dir(path))
	return &stateFile{path: path, f: f}, nil
}

// openStateFile opens an existing state file for appending.
func openStateFile(path string) (*stateFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return &stateFile{path: path, f: f}, nil
}

func (s *stateFile) add(p PartInfo) error {
	if s == nil {
		return nil
	}
	b, _ := json.Marshal(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return s.f.Sync()
}

// remove deletes the state file (the upload is complete or aborted).
func (s *stateFile) remove() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	err := os.Remove(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return err
}

func (s *stateFile) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
