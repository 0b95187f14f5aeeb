// Package catalog records every backup set tapestream's scheduler writes:
// which group and databases it holds, its type and log range, the chain it
// belongs to, where it is (files, or tape volume label and file number),
// its sizes and hashes and whether it is complete, failed or expired.
//
// The catalog is a bbolt database (one file, pure Go, ACID, no server and
// no cgo). Every operation opens the file, runs one transaction and closes
// it again: bbolt takes an exclusive flock while the file is open, and a
// long backup must not keep `tapestream catalog list` (or another job's
// run) waiting.
//
//	bucket "sets"     set id            → JSON Set
//	bucket "volumes"  tape volume label → JSON Volume
//	bucket "jobs"     job name          → JSON JobState (last run, metrics)
//	bucket "meta"     "schema"          → "1"
//
// A lost or damaged catalog is never fatal: Rebuild scans set files or a
// tape (like Bareos' bscan) and writes the records back.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/tapeformat/agestream"
	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is stored in the meta bucket.
const SchemaVersion = "1"

// Set statuses.
const (
	StatusComplete = "complete"
	StatusFailed   = "failed"
	StatusExpired  = "expired"
	// StatusMissing marks a complete set whose files were found gone
	// (deleted by hand); it no longer counts for chains or restores.
	StatusMissing = "missing"
)

var (
	bucketSets    = []byte("sets")
	bucketVolumes = []byte("volumes")
	bucketJobs    = []byte("jobs")
	bucketMeta    = []byte("meta")
)

// ErrNotFound is returned when a set or volume is not in the catalog.
var ErrNotFound = errors.New("catalog: not found")

// ErrNoCatalog is returned by OpenExisting for a path that holds no
// catalog file.
var ErrNoCatalog = errors.New("catalog: no catalog")

// File is one backed-up file of a set (from the manifest).
type File struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	BLAKE3 string `json:"blake3,omitempty"` // the set's file digest (hex)
	SHA256 string `json:"sha256,omitempty"` // sets written before BLAKE3
}

// Digest returns the file's digest and its algorithm ("blake3", "sha256").
func (f File) Digest() (alg, hex string) {
	if f.BLAKE3 != "" {
		return "blake3", f.BLAKE3
	}
	return "sha256", f.SHA256
}

// TapeVolume is where a set (or its continuation) is on one tape volume.
type TapeVolume struct {
	Number     int    `json:"number"`                  // 1-based volume number within the set
	Label      string `json:"label,omitempty"`         // tapestream volume label ("" for an unlabelled continuation volume)
	Name       string `json:"name"`                    // device or emulated volume image
	FileNumber int64  `json:"file_number"`             // tape file number the set starts at on this volume
	Bytes      int64  `json:"bytes"`                   // bytes of records on this volume
	Loaded     int    `json:"loaded_volume,omitempty"` // emulated tape: the cartridge number in the drive directory
}

// Location says where a set is.
type Location struct {
	Kind string `json:"kind"` // "file", "tape" or "s3"
	// Target is what restore opens: the set file (NAME; split volumes
	// NAME.001... are found from it), or the tape device / tape:PATH.
	Target string `json:"target"`
	// Paths are the files written (one per volume) for file sets.
	Paths []string `json:"paths,omitempty"`
	// Tape volumes, for tape sets.
	Tape []TapeVolume `json:"tape,omitempty"`
}

// Set is one backup set.
type Set struct {
	ID             string         `json:"id"`
	Job            string         `json:"job,omitempty"`
	Group          string         `json:"group"`
	GroupSignature string         `json:"group_signature,omitempty"`
	Databases      []string       `json:"databases"`
	Type           ese.BackupType `json:"type"`
	Status         string         `json:"status"`
	Created        time.Time      `json:"created"`
	LowGen         uint32         `json:"log_first_generation"`
	HighGen        uint32         `json:"log_last_generation"`
	// ParentID is the set this one continues (the engine's header and the
	// label's PreviousSetID): the full or previous incremental for an
	// incremental, the full for a differential; empty for full and copy.
	ParentID string `json:"parent_id,omitempty"`
	// FullID is the full set the chain starts with (the set itself for a full).
	FullID   string   `json:"full_id,omitempty"`
	Location Location `json:"location"`
	// Copies are further places holding the same set (tapestream copy:
	// the same bytes, verified as they were copied).
	Copies     []Location `json:"copies,omitempty"`
	Codec      string     `json:"codec,omitempty"`
	RecordSize int        `json:"record_size,omitempty"`
	BytesIn    int64      `json:"bytes_in"`
	BytesOut   int64      `json:"bytes_out"`
	Files      []File     `json:"files,omitempty"`
	Error      string     `json:"error,omitempty"`
	ExpiredAt  time.Time  `json:"expired_at,omitzero"`
	Promoted   string     `json:"promoted,omitempty"` // why the level was promoted to full
	// Encryption: the set is encrypted (nil: plain) and to whom.
	Encryption *Encryption `json:"encryption,omitempty"`
}

// Encryption records how a set is encrypted, as its label says: the
// scheme ("age") and the recipients' public keys and fingerprints. A
// restore needs the private key of one of them.
type Encryption struct {
	Scheme     string                  `json:"scheme"`
	Recipients []agestream.Description `json:"recipients"`
}

// Volume is a labelled tape volume.
type Volume struct {
	Label    string    `json:"label"`
	Target   string    `json:"target"` // device or tape:PATH the volume was labelled in
	Number   int       `json:"number"` // emulated: cartridge number
	Created  time.Time `json:"created"`
	Pool     string    `json:"pool,omitempty"`
	Full     bool      `json:"full"`               // end of medium reached
	Status   string    `json:"status"`             // "append", "full", "recyclable"
	LastUsed time.Time `json:"last_used,omitzero"` //
}

// JobState is the last outcome of a job (the Prometheus textfile is written
// from it, so it survives between `tapestream run` invocations).
type JobState struct {
	Job             string    `json:"job"`
	LastSlot        time.Time `json:"last_slot,omitzero"` // schedule activation last run
	LastRun         time.Time `json:"last_run,omitzero"`
	LastSuccess     time.Time `json:"last_success,omitzero"`
	LastStatus      string    `json:"last_status"` // "success" or "failure"
	LastError       string    `json:"last_error,omitempty"`
	DurationSeconds float64   `json:"duration_seconds"`
	BytesIn         int64     `json:"bytes_in"`
	BytesOut        int64     `json:"bytes_out"`
	Ratio           float64   `json:"ratio"`
	Failures        int64     `json:"failures_total"`
	Runs            int64     `json:"runs_total"`
}

// Catalog is a catalog file. Methods are safe for concurrent use in one
// process; other processes wait up to Timeout for the file.
type Catalog struct {
	Path    string
	Timeout time.Duration
}

var (
	procMu   sync.Mutex
	procLock = map[string]*sync.Mutex{}
)

// Open returns the catalog at path, creating the file (and its directory)
// if needed.
func Open(path string) (*Catalog, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, err
	}
	c := &Catalog{Path: abs, Timeout: 30 * time.Second}
	if err := c.update(func(tx *bolt.Tx) error { return nil }); err != nil {
		return nil, err
	}
	return c, nil
}

// Exists returns nil if path holds a catalog file, else an error wrapping
// ErrNoCatalog that says how one is made: commands that only read a
// catalog check it first, so that a typo does not create an empty catalog
// and then report that it holds no sets.
func Exists(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s: a job's first backup creates it, and `tapestream catalog rebuild --catalog %s SET...` makes one from the sets on their media", ErrNoCatalog, path, path)
	case err != nil:
		return fmt.Errorf("catalog %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("%w at %s: it is a directory (give the catalog file, e.g. %s)", ErrNoCatalog, path, filepath.Join(path, "catalog.db"))
	}
	return nil
}

// OpenExisting is Open for a catalog that must exist (Exists).
func OpenExisting(path string) (*Catalog, error) {
	if err := Exists(path); err != nil {
		return nil, err
	}
	return Open(path)
}

func (c *Catalog) fileMu() *sync.Mutex {
	procMu.Lock()
	defer procMu.Unlock()
	m := procLock[c.Path]
	if m == nil {
		m = &sync.Mutex{}
		procLock[c.Path] = m
	}
	return m
}

func (c *Catalog) open(readOnly bool) (*bolt.DB, func(), error) {
	m := c.fileMu()
	m.Lock()
	if readOnly {
		if _, err := os.Stat(c.Path); err != nil {
			m.Unlock()
			return nil, nil, fmt.Errorf("catalog %s: %w", c.Path, err)
		}
	}
	db, err := bolt.Open(c.Path, 0o644, &bolt.Options{Timeout: c.Timeout, ReadOnly: readOnly})
	if err != nil {
		m.Unlock()
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, fmt.Errorf("catalog %s: in use by another process for more than %s", c.Path, c.Timeout)
		}
		return nil, nil, fmt.Errorf("catalog %s: %w", c.Path, err)
	}
	return db, func() { db.Close(); m.Unlock() }, nil
}

func (c *Catalog) update(fn func(tx *bolt.Tx) error) error {
	db, done, err := c.open(false)
	if err != nil {
		return err
	}
	defer done()
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSets, bucketVolumes, bucketJobs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("schema")); v != nil && string(v) != SchemaVersion {
			return fmt.Errorf("catalog %s: schema %s, this tapestream knows %s", c.Path, v, SchemaVersion)
		}
		if err := meta.Put([]byte("schema"), []byte(SchemaVersion)); err != nil {
			return err
		}
		return fn(tx)
	})
}

func (c *Catalog) view(fn func(tx *bolt.Tx) error) error {
	db, done, err := c.open(true)
	if err != nil {
		return err
	}
	defer done()
	return db.View(fn)
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// PutSet adds or replaces a set record.
func (c *Catalog) PutSet(s *Set) error {
	if s.ID == "" {
		return errors.New("catalog: set without id")
	}
	return c.update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucketSets), s.ID, s) })
}

// UpdateSets applies fn to every set for which it returns true (in one
// transaction) and stores the changed records.
func (c *Catalog) UpdateSets(fn func(s *Set) bool) error {
	return c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSets)
		var changed []*Set
		err := b.ForEach(func(k, v []byte) error {
			var s Set
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("catalog: set %s: %w", k, err)
			}
			if fn(&s) {
				changed = append(changed, &s)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range changed {
			if err := put(b, s.ID, s); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetSet returns a set by id (a unique prefix of at least 6 characters is
// accepted).
func (c *Catalog) GetSet(id string) (*Set, error) {
	var out *Set
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSets)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(id)); v != nil {
			out = &Set{}
			return json.Unmarshal(v, out)
		}
		if len(id) < 6 {
			return nil
		}
		cur := b.Cursor()
		n := 0
		for k, v := cur.Seek([]byte(id)); k != nil && len(k) >= len(id) && string(k[:len(id)]) == id; k, v = cur.Next() {
			n++
			out = &Set{}
			if err := json.Unmarshal(v, out); err != nil {
				return err
			}
		}
		if n > 1 {
			return fmt.Errorf("catalog: set id prefix %q is ambiguous", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("%w: set %s", ErrNotFound, id)
	}
	return out, nil
}

// Filter selects sets for List. Zero fields match everything.
type Filter struct {
	Job    string
	Group  string
	Status string
}

// List returns the sets matching f, oldest first.
func (c *Catalog) List(f Filter) ([]*Set, error) {
	var out []*Set
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSets)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var s Set
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("catalog: set %s: %w", k, err)
			}
			if (f.Job == "" || s.Job == f.Job) && (f.Group == "" || s.Group == f.Group) && (f.Status == "" || s.Status == f.Status) {
				out = append(out, &s)
			}
			return nil
		})
	})
	SortSets(out)
	return out, err
}

// SortSets orders sets by creation time, then id.
func SortSets(sets []*Set) {
	sort.SliceStable(sets, func(i, j int) bool {
		if !sets[i].Created.Equal(sets[j].Created) {
			return sets[i].Created.Before(sets[j].Created)
		}
		return sets[i].ID < sets[j].ID
	})
}

// PutVolume adds or replaces a tape volume record.
func (c *Catalog) PutVolume(v *Volume) error {
	return c.update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucketVolumes), v.Label, v) })
}

// GetVolume returns a volume by label.
func (c *Catalog) GetVolume(label string) (*Volume, error) {
	var out *Volume
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVolumes)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(label)); v != nil {
			out = &Volume{}
			return json.Unmarshal(v, out)
		}
		return nil
	})
	if err == nil && out == nil {
		err = fmt.Errorf("%w: volume %s", ErrNotFound, label)
	}
	return out, err
}

// Volumes lists the tape volumes by label.
func (c *Catalog) Volumes() ([]*Volume, error) {
	var out []*Volume
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVolumes)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var vol Volume
			if err := json.Unmarshal(v, &vol); err != nil {
				return err
			}
			out = append(out, &vol)
			return nil
		})
	})
	return out, err
}

// UpdateJob reads, modifies and stores a job's state in one transaction.
func (c *Catalog) UpdateJob(job string, fn func(st *JobState)) error {
	return c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		st := JobState{Job: job}
		if v := b.Get([]byte(job)); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
		}
		fn(&st)
		return put(b, job, &st)
	})
}

// Job returns a job's state (zero if it never ran).
func (c *Catalog) Job(job string) (JobState, error) {
	st := JobState{Job: job}
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(job)); v != nil {
			return json.Unmarshal(v, &st)
		}
		return nil
	})
	return st, err
}

// Jobs lists every job state.
func (c *Catalog) Jobs() ([]JobState, error) {
	var out []JobState
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var st JobState
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			out = append(out, st)
			return nil
		})
	})
	return out, err
}

// AddCopy records that loc holds a copy of the set s describes (as a scan
// read it): a set already cataloged gets the copy added to its copies (or
// made its location if it had none that is present); a set the catalog does
// not know is added with loc as its location.
func (c *Catalog) AddCopy(s *Set, loc Location) error {
	old, err := c.GetSet(s.ID)
	if errors.Is(err, ErrNotFound) {
		s.Location = loc
		return c.PutSet(s)
	}
	if err != nil {
		return err
	}
	for _, l := range append([]Location{old.Location}, old.Copies...) {
		if l.Target == loc.Target && l.Kind == loc.Kind && l.Kind != "tape" {
			return nil // already there
		}
	}
	old.Copies = append(old.Copies, loc)
	if old.Status == StatusMissing {
		old.Status, old.Error = StatusComplete, ""
	}
	return c.PutSet(old)
}
