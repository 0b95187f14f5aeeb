package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapestream/tapestream/media/s3store"
	"github.com/tapestream/tapestream/tapeformat"
)

// S3Prefix starts an S3 target: s3://BUCKET/KEY[?endpoint=…&region=…&profile=…&ca=…&path_style=…].
const S3Prefix = "s3://"

// S3Options are the settings of an S3 target beyond the URL (the
// maintainer maps a config-file entry onto them). The zero value uses the
// URL and the standard AWS environment only.
type S3Options struct {
	// Store holds the connection and transfer settings; the URL's
	// bucket, endpoint, region, profile, ca and path_style override it.
	Store s3store.Options
	// StateDir keeps one upload state file per object being written
	// (BUCKET%2FKEY.s3upload). A set whose writer died is resumed from
	// there by the next Open of the same target: parts whose bytes are
	// written again identically are not sent again. Empty: no resume.
	StateDir string
	// LockMode ("GOVERNANCE", "COMPLIANCE") and RetainUntil put an Object
	// Lock retention on every volume object.
	LockMode    string
	RetainUntil time.Time
}

// s3Target splits an s3:// target into store options and the key.
func s3Target(target string, so S3Options) (s3store.Options, string, error) {
	u, key, err := s3store.ParseURL(target)
	if err != nil {
		return u, "", err
	}
	o := mergeS3(u, so)
	if key == "" || strings.HasSuffix(key, "/") {
		return o, "", fmt.Errorf("%w: %s names no object (s3://BUCKET/KEY)", s3store.ErrInvalidURL, target)
	}
	return o, key, nil
}

// mergeS3 is so's store options with what the URL (u) says set over them.
func mergeS3(u s3store.Options, so S3Options) s3store.Options {
	o := so.Store
	o.Bucket = u.Bucket
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&o.Endpoint, u.Endpoint}, {&o.Region, u.Region}, {&o.Profile, u.Profile},
		{&o.CAFile, u.CAFile}, {&o.PathStyle, u.PathStyle},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return o
}

func s3Name(bucket, key string) string { return S3Prefix + bucket + "/" + key }

// s3Sink writes a set as one object (KEY) or, with a volume size, one
// object per volume (KEY.001, KEY.002, …). Every volume is a multipart
// upload that stays pending (invisible) until Commit completes them all,
// the highest first and KEY.001 last, mirroring the file sink's renames:
// KEY.001 present means the whole set is.
type s3Sink struct {
	store   *s3store.Store
	so      S3Options
	base    string
	split   bool
	rs      int
	volSize int64
	reserve int64

	wmu sync.Mutex // Write, NextVolume, Commit; Abort waits for it

	mu        sync.Mutex
	ups       []*s3store.Upload
	vols      []VolumeInfo
	committed []string // keys completed by a Commit that then failed
	ewSent    bool
	state     lifecycle
	failErr   error
	stderr    io.Writer
}

// OpenS3 opens an s3:// target for writing (Open does it with zero
// S3Options). Options.VolumeSize splits the set into objects; Force,
// Append and Overwrite do not apply: objects are written once and never
// replaced.
func OpenS3(target string, opts Options, so S3Options) (Sink, error) {
	if err := opts.validate(); err != nil {
		return nil, newErr("open", target, err)
	}
	if opts.Force || opts.Append || opts.Overwrite {
		return nil, newErr("open", target, fmt.Errorf("%w: --force, --append and --overwrite do not apply to S3: objects are never replaced (delete the set first)", ErrInvalidOptions))
	}
	o, key, err := s3Target(target, so)
	if err != nil {
		return nil, newErr("open", target, err)
	}
	st, err := s3store.New(context.Background(), o)
	if err != nil {
		return nil, newErr("open", target, err)
	}
	if so.StateDir == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			so.StateDir = filepath.Join(dir, "tapestream", "s3-uploads")
		}
	}
	if so.StateDir != "" {
		if err := os.MkdirAll(so.StateDir, 0o700); err != nil {
			so.StateDir = ""
		}
	}
	s := &s3Sink{store: st, so: so, base: key, split: opts.VolumeSize > 0, rs: opts.recordSize(),
		volSize: opts.VolumeSize, reserve: opts.VolumeReserve, stderr: opts.stderr()}
	if s.split {
		if s.reserve == 0 {
			s.reserve = DefaultVolumeReserve(s.rs)
		}
		if min := s.reserve + 2*int64(s.rs); s.volSize < min {
			return nil, newErr("open", target, fmt.Errorf("%w: volume size %d too small: at least reserve %d + 2 records of %d bytes = %d",
				ErrInvalidOptions, s.volSize, s.reserve, s.rs, min))
		}
	}
	if err := s.openVolume(1); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *s3Sink) key(n int) string {
	if s.split {
		return splitName(s.base, n)
	}
	return s.base
}

func (s *s3Sink) name(n int) string { return s3Name(s.store.Bucket(), s.key(n)) }

func (s *s3Sink) stateFile(key string) string {
	if s.so.StateDir == "" {
		return ""
	}
	return filepath.Join(s.so.StateDir, strings.ReplaceAll(s.store.Bucket()+"/"+key, "/", "%2F")+".s3upload")
}

// openVolume starts (or resumes) the upload of volume n.
func (s *s3Sink) openVolume(n int) error {
	key := s.key(n)
	ctx := context.Background()
	uo := s3store.UploadOptions{StateFile: s.stateFile(key), LockMode: s.so.LockMode, RetainUntil: s.so.RetainUntil}
	var up *s3store.Upload
	var err error
	if _, serr := os.Stat(uo.StateFile); uo.StateFile != "" && serr == nil {
		up, err = s.store.Resume(ctx, uo.StateFile, uo)
	} else {
		// An upload of this object that a killed run left, without a state
		// file here (another host's, or state kept elsewhere): an upload
		// in progress is never an object, and it is cleaned up.
		if pend, perr := s.store.ListPending(ctx, key); perr == nil {
			for _, p := range pend {
				if p.Key != key {
					continue
				}
				if err := s.store.AbortPending(ctx, p); err == nil {
					fmt.Fprintf(s.stderr, "aborted the unfinished upload %s of %s left by a backup started %s\n", p.UploadID, s.name(n), p.Initiated.Format(time.RFC3339))
				}
			}
		}
		up, err = s.store.Create(ctx, key, uo)
	}
	if err != nil {
		if errors.Is(err, s3store.ErrExists) {
			err = fmt.Errorf("%w: %w", ErrExists, err)
		}
		return newErr("open", s.name(n), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateAborted {
		up.Abort(ctx)
		return newErr("open", s.name(n), ErrAborted)
	}
	s.ups = append(s.ups, up)
	s.vols = append(s.vols, VolumeInfo{Number: n, Name: s.name(n), FileNumber: -1})
	s.ewSent = false
	return nil
}

func (s *s3Sink) usable() error {
	if err := s.state.err(); err != nil {
		return err
	}
	if s.failErr != nil {
		return fmt.Errorf("earlier failure: %w", s.failErr)
	}
	return nil
}

func (s *s3Sink) curName() string {
	if len(s.vols) == 0 {
		return s3Name(s.store.Bucket(), s.base)
	}
	return s.vols[len(s.vols)-1].Name
}

// Write buffers one record into the current volume's upload (full parts
// are sent in the background; Write blocks while Concurrency parts are in
// flight).
func (s *s3Sink) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return 0, newErr("write", s.curName(), err)
	}
	name := s.curName()
	if err := checkRecord(p, s.rs); err != nil {
		s.mu.Unlock()
		return 0, newErr("write", name, err)
	}
	v := &s.vols[len(s.vols)-1]
	if s.split && v.Bytes+int64(len(p)) > s.volSize {
		v.EarlyWarning = true
		s.mu.Unlock()
		return 0, newErr("write", name, fmt.Errorf("%w: volume size %d reached", tapeformat.ErrEndOfMedium, s.volSize))
	}
	up := s.ups[len(s.ups)-1]
	s.mu.Unlock()

	n, err := up.Write(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	v = &s.vols[len(s.vols)-1]
	v.Bytes += int64(n)
	if n == len(p) {
		v.Records++
	}
	if err != nil {
		if s.state == stateAborted {
			return n, newErr("write", name, ErrAborted)
		}
		if s.failErr == nil {
			s.failErr = err
		}
		return n, newErr("write", name, err)
	}
	if s.split && s.volSize-v.Bytes < s.reserve && !s.ewSent {
		s.ewSent = true
		v.EarlyWarning = true
		return n, newErr("write", name, fmt.Errorf("%w: %d of %d bytes used, reserve %d",
			tapeformat.ErrEarlyWarning, v.Bytes, s.volSize, s.reserve))
	}
	return n, nil
}

// NextVolume sends the rest of the current volume (its upload stays
// pending until Commit) and starts the next object.
func (s *s3Sink) NextVolume() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	err := s.usable()
	name := s.curName()
	n := len(s.vols)
	up := s.ups[len(s.ups)-1]
	s.mu.Unlock()
	if err != nil {
		return newErr("next volume", name, err)
	}
	if !s.split {
		return newErr("next volume", name, fmt.Errorf("%w: one object per set (set a volume size to split)", ErrNoMoreVolumes))
	}
	if err := up.CloseWrite(); err != nil {
		if errors.Is(err, s3store.ErrAborted) {
			err = ErrAborted
		}
		s.fail(err)
		return newErr("next volume", name, err)
	}
	if err := s.openVolume(n + 1); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

func (s *s3Sink) fail(err error) {
	s.mu.Lock()
	if s.failErr == nil {
		s.failErr = err
	}
	s.mu.Unlock()
}

// Commit completes and confirms every volume's object, the highest first
// and KEY.001 last.
func (s *s3Sink) Commit() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	err := s.usable()
	ups := append([]*s3store.Upload(nil), s.ups...)
	s.mu.Unlock()
	if err != nil {
		return newErr("commit", s.curName(), err)
	}
	ctx := context.Background()
	for i := len(ups) - 1; i >= 0; i-- {
		if _, err := ups[i].Commit(ctx); err != nil {
			s.fail(err)
			if errors.Is(err, s3store.ErrExists) {
				err = fmt.Errorf("%w: %w", ErrExists, err)
			}
			return newErr("commit", s.vols[i].Name, err)
		}
		s.mu.Lock()
		s.committed = append(s.committed, ups[i].Key())
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateAborted {
		return newErr("commit", s.curName(), ErrAborted) // Abort removes the objects
	}
	s.state = stateCommitted
	return nil
}

// Abort stops a Write blocked on the server, aborts every volume's upload
// and deletes the objects a failed Commit had completed.
func (s *s3Sink) Abort() error {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return nil
	}
	s.state = stateAborted
	ups := append([]*s3store.Upload(nil), s.ups...)
	s.mu.Unlock()
	ctx := context.Background()
	var first error
	for _, up := range ups {
		if err := up.Abort(ctx); err != nil && first == nil {
			first = err
		}
	}
	s.wmu.Lock() // the driving goroutine has returned
	defer s.wmu.Unlock()
	s.mu.Lock()
	ups, committed := s.ups, s.committed
	s.mu.Unlock()
	for _, up := range ups {
		if err := up.Abort(ctx); err != nil && first == nil {
			first = err
		}
	}
	for _, key := range committed {
		if err := s.store.Delete(ctx, key); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return newErr("abort", s.curName(), first)
	}
	return nil
}

// Volumes reports the objects written so far: s3://BUCKET/KEY and bytes.
func (s *s3Sink) Volumes() []VolumeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]VolumeInfo(nil), s.vols...)
}

// s3Reader reads KEY, or KEY.001, KEY.002, … one volume per object, each
// with parallel ranged GETs.
type s3Reader struct {
	store *s3store.Store
	base  string
	split bool
	vol   int
	r     *s3store.Reader
}

var s3Split = regexp.MustCompile(`\.([0-9]{3,})$`)

// OpenS3Reader opens an s3:// source (OpenReader does it with zero
// S3Options): KEY.NNN reads split volumes from that one on; KEY reads
// that object or, if it does not exist but KEY.001 does, split volumes.
func OpenS3Reader(source string, opts Options, so S3Options) (Reader, error) {
	if err := opts.validate(); err != nil {
		return nil, newErr("open", source, err)
	}
	o, key, err := s3Target(source, so)
	if err != nil {
		return nil, newErr("open", source, err)
	}
	st, err := s3store.New(context.Background(), o)
	if err != nil {
		return nil, newErr("open", source, err)
	}
	ctx := context.Background()
	rd := &s3Reader{store: st, base: key}
	if m := s3Split.FindStringSubmatch(key); m != nil {
		if _, err := st.Stat(ctx, key); err == nil {
			rd.base, rd.split = strings.TrimSuffix(key, m[0]), true
			rd.vol, _ = strconv.Atoi(m[1])
		}
	}
	if !rd.split {
		if _, err := st.Stat(ctx, key); errors.Is(err, s3store.ErrNotFound) {
			if _, err2 := st.Stat(ctx, splitName(key, 1)); err2 == nil {
				rd.split, rd.vol = true, 1
			}
		}
	}
	k := rd.key()
	r, err := st.Open(ctx, k)
	if err != nil {
		if errors.Is(err, s3store.ErrNotFound) {
			err = fmt.Errorf("%w: %w", ErrNoSet, err)
		}
		return nil, newErr("open", s3Name(st.Bucket(), k), err)
	}
	rd.r = r
	return rd, nil
}

func (r *s3Reader) key() string {
	if r.split {
		return splitName(r.base, r.vol)
	}
	return r.base
}

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.r == nil {
		return 0, newErr("read", s3Name(r.store.Bucket(), r.key()), s3store.ErrClosed)
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = newErr("read", s3Name(r.store.Bucket(), r.key()), err)
	}
	return n, err
}

func (r *s3Reader) NextVolume() error {
	if !r.split {
		return newErr("next volume", s3Name(r.store.Bucket(), r.base), fmt.Errorf("%w: a single object", ErrNoMoreVolumes))
	}
	next := splitName(r.base, r.vol+1)
	nr, err := r.store.Open(context.Background(), next)
	if err != nil {
		if errors.Is(err, s3store.ErrNotFound) {
			err = fmt.Errorf("%w: %w", ErrNoMoreVolumes, err)
		}
		return newErr("next volume", s3Name(r.store.Bucket(), next), err)
	}
	if r.r != nil {
		r.r.Close()
	}
	r.r = nr
	r.vol++
	return nil
}

func (r *s3Reader) Volume() int {
	if !r.split {
		return 1
	}
	return r.vol
}

func (r *s3Reader) Close() error {
	if r.r == nil {
		return nil
	}
	err := r.r.Close()
	r.r = nil
	return err
}

// Durable: Commit completes the upload and confirms the object's size and
// composite CRC-32C with the server before it returns.
func (s *s3Sink) Durable() bool { return true }

// Bucket is a view of an s3://BUCKET/PREFIX location for what is not
// writing or reading one set: listing the sets under it, deleting an
// expired one, cleaning up the uploads a killed run left, and the lease
// that keeps two archiver hosts from backing up one group at once.
type Bucket struct {
	store  *s3store.Store
	prefix string // without a trailing slash
}

// OpenBucket opens s3://BUCKET/PREFIX (PREFIX may be empty).
func OpenBucket(ctx context.Context, url string, so S3Options) (*Bucket, error) {
	u, key, err := s3store.ParseURL(url)
	if err != nil {
		return nil, newErr("open", url, err)
	}
	o := mergeS3(u, so)
	st, err := s3store.New(ctx, o)
	if err != nil {
		return nil, newErr("open", url, err)
	}
	return &Bucket{store: st, prefix: strings.TrimSuffix(key, "/")}, nil
}

// URL of a key of the bucket.
func (b *Bucket) URL(key string) string { return s3Name(b.store.Bucket(), key) }

func (b *Bucket) key(rel string) string {
	if b.prefix == "" {
		return rel
	}
	return b.prefix + "/" + rel
}

// Objects lists the objects under PREFIX/rel (their s3:// URLs and sizes).
func (b *Bucket) Objects(ctx context.Context, rel string) ([]s3store.ObjectInfo, error) {
	objs, err := b.store.List(ctx, b.key(rel))
	if err != nil {
		return nil, newErr("list", b.URL(b.key(rel)), err)
	}
	return objs, nil
}

// Delete deletes an object given by its s3:// URL (a set retention
// expires); an Object Lock retention refuses it.
func (b *Bucket) Delete(ctx context.Context, url string) error {
	_, key, err := s3store.ParseURL(url)
	if err != nil {
		return newErr("delete", url, err)
	}
	if err := b.store.Delete(ctx, key); err != nil {
		return newErr("delete", url, err)
	}
	return nil
}

// AbortPending aborts the multipart uploads under PREFIX/rel that killed
// runs left (an upload in progress is never an object) and returns what it
// aborted. Call it only while holding the lease of what is under rel.
func (b *Bucket) AbortPending(ctx context.Context, rel string) ([]string, error) {
	pend, err := b.store.ListPending(ctx, b.key(rel))
	if err != nil {
		return nil, newErr("list uploads", b.URL(b.key(rel)), err)
	}
	var done []string
	for _, p := range pend {
		if err := b.store.AbortPending(ctx, p); err != nil {
			return done, newErr("abort upload", b.URL(p.Key), err)
		}
		done = append(done, fmt.Sprintf("%s (upload %s, started %s)", b.URL(p.Key), p.UploadID, p.Initiated.Format(time.RFC3339)))
	}
	return done, nil
}

// Lease takes the lease PREFIX/leases/NAME for owner (see s3store.Lease):
// a conditional write, so that of two archiver hosts only one gets it.
func (b *Bucket) Lease(ctx context.Context, name, owner string, ttl time.Duration) (*s3store.Lease, error) {
	l, err := b.store.AcquireLease(ctx, b.key("leases/"+name), owner, ttl)
	if err != nil {
		return nil, newErr("lease", b.URL(b.key("leases/"+name)), err)
	}
	return l, nil
}
