package media

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/tapestream/tapestream/internal/failpoint"
	"github.com/tapestream/tapestream/tapeformat"
)

// PartialSuffix is appended to a file name while the set is being written.
const PartialSuffix = ".partial"

// splitName is the final name of volume n of a split set: NAME.001, ...
func splitName(base string, n int) string { return fmt.Sprintf("%s.%03d", base, n) }

// DefaultVolumeReserve is the reserve of a split-file volume of records of
// recordSize bytes: two records (the end of the member in progress is
// rewritten on the next volume if it does not fit; the trailer needs one
// record) plus 10 KiB of slack.
func DefaultVolumeReserve(recordSize int) int64 { return 2*int64(recordSize) + 10<<10 }

// fileSink writes a set to NAME (single volume) or NAME.001, NAME.002, ...
// (split volumes), each first as NAME[.NNN].partial, renamed on Commit.
type fileSink struct {
	mu sync.Mutex

	base    string
	split   bool
	force   bool
	rs      int
	volSize int64
	reserve int64

	f        *os.File
	fw       *FileWriter
	cur      int // index into vols of the open volume
	vols     []VolumeInfo
	partials []string // partial name of every volume created
	finals   []string // final name of every volume created
	renamed  []string // finals already renamed (a failed Commit)
	ewSent   bool

	state   lifecycle
	failErr error
	stderr  io.Writer
}

func openFileSink(name string, opts Options) (*fileSink, error) {
	if opts.Append || opts.Overwrite {
		return nil, newErr("open", name, fmt.Errorf("%w: --append and --overwrite apply to tapes only", ErrInvalidOptions))
	}
	s := &fileSink{
		base:    name,
		split:   opts.VolumeSize > 0,
		force:   opts.Force,
		rs:      opts.recordSize(),
		volSize: opts.VolumeSize,
		reserve: opts.VolumeReserve,
		stderr:  opts.stderr(),
	}
	if s.split {
		if s.reserve == 0 {
			s.reserve = DefaultVolumeReserve(s.rs)
		}
		if min := s.reserve + 2*int64(s.rs); s.volSize < min {
			return nil, newErr("open", name, fmt.Errorf("%w: volume size %d too small: at least reserve %d + 2 records of %d bytes = %d",
				ErrInvalidOptions, s.volSize, s.reserve, s.rs, min))
		}
	}
	first := s.finalName(1)
	if !s.force {
		if _, err := os.Lstat(first); err == nil {
			return nil, newErr("open", first, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, newErr("open", first, err)
		}
	}
	if err := s.openVolume(1); err != nil {
		return nil, err
	}
	return s, nil
}

// stalePartial reports whether nobody holds the lock of an existing
// partial file (its writer is gone).
func stalePartial(name string) (bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		if errors.Is(err, errLocked) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (s *fileSink) finalName(n int) string {
	if s.split {
		return splitName(s.base, n)
	}
	return s.base
}

// openVolume creates the partial file of volume n and locks it (flock)
// for as long as it is written: a partial file nobody holds was left by a
// writer that was killed, and is removed (and reported) rather than
// refused.
func (s *fileSink) openVolume(n int) error {
	final := s.finalName(n)
	partial := final + PartialSuffix
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		stale, serr := stalePartial(partial)
		switch {
		case serr != nil:
			return newErr("create", partial, serr)
		case !stale && !s.force:
			return newErr("create", partial, ErrPartialExists)
		case stale:
			fmt.Fprintf(s.stderr, "removing %s, the partial set of a backup that was killed\n", partial)
		}
		if err = os.Remove(partial); err == nil {
			f, err = os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
	}
	if err == nil {
		if lerr := lockFile(f); lerr != nil && !errors.Is(lerr, errLocked) {
			err = lerr
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return newErr("create", partial, err)
	}
	s.f, s.fw = f, NewFileWriter(f)
	s.partials = append(s.partials, partial)
	s.finals = append(s.finals, final)
	s.vols = append(s.vols, VolumeInfo{Number: n, Name: final, FileNumber: -1})
	s.cur = len(s.vols) - 1
	s.ewSent = false
	return nil
}

func (s *fileSink) usable() error {
	if err := s.state.err(); err != nil {
		return err
	}
	if s.failErr != nil {
		return fmt.Errorf("earlier failure: %w", s.failErr)
	}
	if s.f == nil {
		return errors.New("no volume open")
	}
	return nil
}

func (s *fileSink) curPartial() string { return s.partials[s.cur] }

// Write writes one record to the current volume.
func (s *fileSink) Write(p []byte) (int, error) {
	failpoint.Hit("media/write")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, newErr("write", s.curName(), err)
	}
	if err := checkRecord(p, s.rs); err != nil {
		return 0, newErr("write", s.curPartial(), err)
	}
	v := &s.vols[s.cur]
	if s.split && v.Bytes+int64(len(p)) > s.volSize {
		v.EarlyWarning = true
		return 0, newErr("write", s.curPartial(), fmt.Errorf("%w: volume size %d reached", tapeformat.ErrEndOfMedium, s.volSize))
	}
	n, err := s.fw.WriteAt(p, v.Bytes)
	v.Bytes += int64(n)
	if n == len(p) {
		v.Records++
	}
	if err != nil {
		s.failErr = err
		return n, newErr("write", s.curPartial(), err)
	}
	if s.split && s.volSize-v.Bytes < s.reserve && !s.ewSent {
		s.ewSent = true
		v.EarlyWarning = true
		return n, newErr("write", s.curPartial(), fmt.Errorf("%w: %d of %d bytes used, reserve %d",
			tapeformat.ErrEarlyWarning, v.Bytes, s.volSize, s.reserve))
	}
	return n, nil
}

func (s *fileSink) curName() string {
	if len(s.partials) == 0 {
		return s.base
	}
	return s.curPartial()
}

// closeCurrent fsyncs and closes the open volume.
func (s *fileSink) closeCurrent() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.failErr = err
		return newErr("sync", f.Name(), err)
	}
	return nil
}

// NextVolume makes the current split volume durable and starts the next.
func (s *fileSink) NextVolume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return newErr("next volume", s.curName(), err)
	}
	if !s.split {
		return newErr("next volume", s.base, fmt.Errorf("%w: a single file (set a volume size to split)", ErrNoMoreVolumes))
	}
	if err := s.closeCurrent(); err != nil {
		return err
	}
	if err := s.openVolume(len(s.vols) + 1); err != nil {
		s.failErr = err
		return err
	}
	return nil
}

// Commit fsyncs the last volume, renames every volume to its final name
// (the highest first, so that NAME.001 appearing means the whole set is in
// place) and fsyncs the directory.
func (s *fileSink) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return newErr("commit", s.curName(), err)
	}
	if err := s.closeCurrent(); err != nil {
		return err
	}
	failpoint.Hit("media/commit/after-sync")
	for i := len(s.partials) - 1; i >= 0; i-- {
		if err := renameFinal(s.partials[i], s.finals[i], s.force); err != nil {
			s.failErr = err
			if errors.Is(err, fs.ErrExist) {
				err = ErrExists
			}
			return newErr("commit", s.finals[i], err)
		}
		s.renamed = append(s.renamed, s.finals[i])
	}
	if s.split && s.force {
		// Remove stale higher volumes (and partial volumes of a crashed run)
		// of an older set of the same name so a reader stepping through
		// volumes cannot wander into them.
		for n := len(s.vols) + 1; ; n++ {
			err1 := os.Remove(splitName(s.base, n))
			err2 := os.Remove(splitName(s.base, n) + PartialSuffix)
			if err1 != nil && err2 != nil {
				break
			}
		}
	}
	failpoint.Hit("media/commit/after-rename")
	if err := syncDir(filepath.Dir(s.base)); err != nil {
		s.failErr = err
		return newErr("commit", filepath.Dir(s.base), err)
	}
	s.state = stateCommitted
	return nil
}

// Abort closes and removes every partial (and, after a failed Commit,
// every already renamed) volume of the set.
func (s *fileSink) Abort() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return nil
	}
	s.state = stateAborted
	var first error
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	for _, name := range append(append([]string(nil), s.partials...), s.renamed...) {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
			first = newErr("abort", name, err)
		}
	}
	syncDir(filepath.Dir(s.base))
	return first
}

func (s *fileSink) Volumes() []VolumeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]VolumeInfo(nil), s.vols...)
}

// renameFinal renames a partial file to its final name, refusing to replace
// an existing file unless force.
func renameFinal(from, to string, force bool) error {
	if force {
		return os.Rename(from, to)
	}
	return renameNoReplace(from, to)
}

// syncDir fsyncs a directory so renames in it are durable. File systems
// that cannot fsync a directory (EINVAL) are tolerated.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncUnsupported(err) {
		return err
	}
	return nil
}

// fileReader reads NAME, or NAME.001, NAME.002, ... one volume per file.
type fileReader struct {
	base  string // split: NAME without .NNN
	split bool
	vol   int
	f     *os.File
}

func openFileReader(name string, split bool, firstVol int) (*fileReader, error) {
	r := &fileReader{base: name, split: split, vol: firstVol}
	path := name
	if split {
		path = splitName(name, firstVol)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Op: "open", Target: path, Err: fmt.Errorf("%w: %w", ErrNoSet, fs.ErrNotExist)}
	}
	if err != nil {
		return nil, newErr("open", path, err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, &Error{Op: "open", Target: path, Err: notSetError("a directory, not a set (give a set's file)")}
	}
	r.f = f
	return r, nil
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.f == nil {
		return 0, newErr("read", r.base, fs.ErrClosed)
	}
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		err = newErr("read", r.f.Name(), err)
	}
	return n, err
}

func (r *fileReader) NextVolume() error {
	if !r.split {
		return newErr("next volume", r.base, fmt.Errorf("%w: a single file", ErrNoMoreVolumes))
	}
	next := splitName(r.base, r.vol+1)
	f, err := os.Open(next)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: %w", ErrNoMoreVolumes, err)
		}
		return newErr("next volume", next, err)
	}
	if r.f != nil {
		r.f.Close()
	}
	r.f = f
	r.vol++
	return nil
}

func (r *fileReader) Volume() int { return r.vol }

func (r *fileReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Durable: Commit fsyncs, renames and fsyncs the directory.
func (s *fileSink) Durable() bool { return true }

// notSetError is an ErrNoSet with its own words (a directory is there, it
// is just not a set).
type notSetError string

func (e notSetError) Error() string        { return string(e) }
func (e notSetError) Is(target error) bool { return target == ErrNoSet }
