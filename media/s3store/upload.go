package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// UploadOptions configures one upload.
type UploadOptions struct {
	// StateFile, when set, records the multipart upload (id, key, the
	// completed parts with their sizes and CRC32Cs) so that Resume can
	// continue it after the process dies. Removed on Commit and Abort.
	StateFile string
	// LockMode ("GOVERNANCE" or "COMPLIANCE") and RetainUntil set an
	// Object Lock retention on the object (the bucket must have Object
	// Lock enabled).
	LockMode    string
	RetainUntil time.Time
}

// UploadStats describes an upload so far.
type UploadStats struct {
	Bytes int64 // bytes written
	Parts int   // parts uploaded or reused
	// PartsReused counts the parts of a resumed upload whose bytes matched
	// (size and CRC32C) and were not sent again.
	PartsReused int
	// PartsReplaced counts recorded parts of a resumed upload dropped
	// because the bytes supplied for them differed.
	PartsReplaced int
	// Restarted: a resumed upload whose first part differed (or that the
	// server no longer had) was aborted and started anew.
	Restarted bool
}

type uploadPhase int

const (
	phaseOpen uploadPhase = iota
	phaseCommitted
	phaseAborted
)

// Upload streams one object of unknown size. Write buffers the bytes into
// parts (sizes growing per the store's schedule), each sent with its own
// CRC32C by one of Concurrency goroutines while the caller goes on
// writing. Nothing is visible under the key before Commit completes and
// confirms the object; Abort removes everything.
//
// Write and Commit are called from one goroutine; Abort may be called from
// any goroutine at any time: it stops a blocked Write and waits for it.
type Upload struct {
	s     *Store
	key   string
	o     UploadOptions
	sched PartSchedule

	ctx    context.Context
	cancel context.CancelFunc

	wmu    sync.Mutex // held by Write, Commit, Abort: one at a time
	closed bool       // CloseWrite called
	buf    []byte
	crc    uint32
	part   int32 // number of the part being filled
	size   int64

	tokens chan struct{} // parts in flight
	wg     sync.WaitGroup

	mu       sync.Mutex
	uploadID string
	parts    map[int32]PartInfo // completed parts
	prior    map[int32]PartInfo // resumed parts not yet verified
	free     [][]byte
	allocs   int   // buffers allocated (tests check the memory bound)
	err      error // first failure of a part (sticky)
	phase    uploadPhase
	stats    UploadStats
	sf       *stateFile
	info     ObjectInfo
	// sent is the checksum of the object a commit asked the server to
	// create (set before the request: its outcome may be unknown).
	sent string
}

// Create starts an upload of key. It fails with ErrExists if the object
// exists, with ErrStateExists if o.StateFile exists. The multipart upload
// itself is created when the first part is full; an object smaller than
// one part is sent with a single PutObject on Commit.
func (s *Store) Create(ctx context.Context, key string, o UploadOptions) (*Upload, error) {
	if err := o.validate(); err != nil {
		return nil, s.newErr("create", key, err)
	}
	if o.StateFile != "" {
		if _, err := ReadState(o.StateFile); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return nil, s.newErr("create", key, fmt.Errorf("%w: %s", ErrStateExists, o.StateFile))
		}
	}
	if _, err := s.Stat(ctx, key); err == nil {
		return nil, s.newErr("create", key, ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return s.newUpload(key, o, PartSchedule{First: s.opts.PartSize, Max: s.opts.MaxPartSize, Every: s.grow}), nil
}

func (o UploadOptions) validate() error {
	switch o.LockMode {
	case "":
		if !o.RetainUntil.IsZero() {
			return fmt.Errorf("%w: retain-until without a lock mode", ErrInvalidOptions)
		}
	case string(types.ObjectLockModeGovernance), string(types.ObjectLockModeCompliance):
		if o.RetainUntil.IsZero() {
			return fmt.Errorf("%w: lock mode %s without a retain-until date", ErrInvalidOptions, o.LockMode)
		}
	default:
		return fmt.Errorf("%w: lock mode %q is not GOVERNANCE or COMPLIANCE", ErrInvalidOptions, o.LockMode)
	}
	return nil
}

func (s *Store) newUpload(key string, o UploadOptions, sched PartSchedule) *Upload {
	ctx, cancel := context.WithCancel(context.Background())
	return &Upload{
		s: s, key: key, o: o, sched: sched,
		ctx: ctx, cancel: cancel,
		part:   1,
		tokens: make(chan struct{}, s.opts.Concurrency),
		parts:  map[int32]PartInfo{},
	}
}

// Key is the object key of the upload.
func (u *Upload) Key() string { return u.key }

// UploadID is the multipart upload id ("" before the first part is sent).
func (u *Upload) UploadID() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.uploadID
}

// Stats reports the upload's progress.
func (u *Upload) Stats() UploadStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.stats
	st.Parts = len(u.parts)
	return st
}

// Parts lists the completed parts in order.
func (u *Upload) Parts() []PartInfo {
	u.mu.Lock()
	defer u.mu.Unlock()
	return sortedParts(u.parts)
}

func (u *Upload) errf(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return &Error{Op: op, Bucket: u.s.bucket, Key: u.key, UploadID: u.uploadID, Offset: -1, Err: err}
}

// usable reports why the upload takes no more data (u.mu held).
func (u *Upload) usable() error {
	switch u.phase {
	case phaseCommitted:
		return ErrCommitted
	case phaseAborted:
		return ErrAborted
	}
	if u.err != nil {
		return fmt.Errorf("earlier failure: %w", u.err)
	}
	return nil
}

func (u *Upload) check(op string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.errf(op, u.usable())
}

// abortedOr reports ErrAborted for a failure caused by a concurrent
// Abort (a cancelled request), err otherwise.
func (u *Upload) abortedOr(err error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.phase == phaseAborted {
		return u.errf("write", ErrAborted)
	}
	return err
}

// fail records the first failure and stops the other parts.
func (u *Upload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel()
}

// Write buffers p into the current part; full parts are sent in the
// background. It blocks while Concurrency parts are in flight.
func (u *Upload) Write(p []byte) (int, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if err := u.check("write"); err != nil {
		return 0, err
	}
	if u.closed {
		return 0, u.errf("write", ErrWriteClosed)
	}
	n := 0
	for len(p) > 0 {
		want := u.sched.size(u.part)
		if u.buf == nil {
			u.buf = u.getBuf(want)
		}
		k := min(len(p), int(want)-len(u.buf))
		u.buf = append(u.buf, p[:k]...)
		u.crc = crc32.Update(u.crc, castagnoli, p[:k])
		p = p[k:]
		n += k
		u.size += int64(k)
		if int64(len(u.buf)) == want {
			if err := u.flushPart(); err != nil {
				return n, u.abortedOr(err)
			}
		}
	}
	u.mu.Lock()
	u.stats.Bytes = u.size
	u.mu.Unlock()
	return n, nil
}

// getBuf takes a pooled buffer of capacity at least n. Buffers of an
// earlier, smaller part size are dropped, so at most Concurrency+1
// buffers of the current size exist.
func (u *Upload) getBuf(n int64) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	for len(u.free) > 0 {
		b := u.free[len(u.free)-1]
		u.free = u.free[:len(u.free)-1]
		if int64(cap(b)) >= n {
			return b[:0]
		}
	}
	u.allocs++
	return make([]byte, 0, n)
}

func (u *Upload) putBuf(b []byte) {
	u.mu.Lock()
	u.free = append(u.free, b)
	u.mu.Unlock()
}

// flushPart hands the filled buffer over as part u.part (wmu held).
func (u *Upload) flushPart() error {
	num, data, crc := u.part, u.buf, u.crc
	u.buf, u.crc = nil, 0
	u.part++
	if num > MaxParts {
		err := u.errf("write", fmt.Errorf("%w: part %d", ErrTooManyParts, num))
		u.fail(err)
		return err
	}
	u.mu.Lock()
	prior, resumed := u.prior[num]
	u.mu.Unlock()
	if resumed {
		if prior.Size == int64(len(data)) && prior.CRC32C == crc {
			u.mu.Lock()
			u.parts[num] = prior
			delete(u.prior, num)
			u.stats.PartsReused++
			u.mu.Unlock()
			u.putBuf(data)
			return nil
		}
		if err := u.dropPrior(num); err != nil {
			u.fail(err)
			return err
		}
	}
	if u.UploadID() == "" {
		if err := u.createMultipart(); err != nil {
			u.fail(err)
			return err
		}
	}
	select {
	case u.tokens <- struct{}{}:
	case <-u.ctx.Done():
		u.putBuf(data)
		return u.check("write")
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		err := u.uploadPart(num, data, crc)
		u.putBuf(data)
		<-u.tokens
		if err != nil {
			u.fail(err)
		}
	}()
	return nil
}

// dropPrior handles a resumed part whose bytes differ: the recorded parts
// from num on are not trusted any more; if num is the first part nothing
// of the old upload is worth keeping, and it is aborted.
func (u *Upload) dropPrior(num int32) error {
	u.mu.Lock()
	for n := range u.prior {
		if n >= num {
			delete(u.prior, n)
			u.stats.PartsReplaced++
		}
	}
	reused := len(u.parts)
	old := u.uploadID
	u.mu.Unlock()
	if num != 1 || reused != 0 || old == "" {
		return nil
	}
	if err := u.abortMultipart(u.ctx, old); err != nil && !errors.Is(err, ErrNoSuchUpload) {
		return err
	}
	u.s.logf("s3store: s3://%s/%s: resumed upload %s differs from its first part on; aborted it, starting anew", u.s.bucket, u.key, old)
	u.mu.Lock()
	u.uploadID = ""
	u.prior = nil
	u.stats.Restarted = true
	u.mu.Unlock()
	return nil
}

func (u *Upload) lockInput() (types.ObjectLockMode, *time.Time) {
	if u.o.LockMode == "" {
		return "", nil
	}
	t := u.o.RetainUntil.UTC()
	return types.ObjectLockMode(u.o.LockMode), &t
}

func (u *Upload) createMultipart() error {
	mode, until := u.lockInput()
	ctx := withAttemptTimeout(u.ctx, u.s.opts.RequestTimeout)
	out, err := u.s.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:                    &u.s.bucket,
		Key:                       &u.key,
		ChecksumAlgorithm:         types.ChecksumAlgorithmCrc32c,
		ChecksumType:              types.ChecksumTypeComposite,
		ObjectLockMode:            mode,
		ObjectLockRetainUntilDate: until,
	})
	if err != nil {
		return u.errf("create multipart upload", err)
	}
	if out.UploadId == nil || *out.UploadId == "" {
		return u.errf("create multipart upload", errors.New("server returned no upload id"))
	}
	u.mu.Lock()
	u.uploadID = *out.UploadId
	u.mu.Unlock()
	if u.o.StateFile != "" {
		st := &UploadState{Format: StateFormat, Bucket: u.s.bucket, Key: u.key, UploadID: *out.UploadId,
			Schedule: u.sched, Created: time.Now().UTC()}
		u.sf.close()
		sf, err := createStateFile(u.o.StateFile, st, u.sf != nil)
		if err != nil {
			u.abortMultipart(u.ctx, *out.UploadId)
			return u.errf("write state file", err)
		}
		u.mu.Lock()
		u.sf = sf
		u.mu.Unlock()
	}
	return nil
}

// unsignedPayload skips the SigV4 SHA-256 of part bodies over plain HTTP
// (a full extra pass over the data): each part carries its CRC32C, which
// the server verifies.
var unsignedPayload = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

func (u *Upload) uploadPart(num int32, data []byte, crc uint32) error {
	sum := crcString(crc)
	u.mu.Lock()
	id := u.uploadID
	u.mu.Unlock()
	ctx := withAttemptTimeout(u.ctx, u.s.timeoutFor(int64(len(data))))
	out, err := u.s.api.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         &u.s.bucket,
		Key:            &u.key,
		UploadId:       &id,
		PartNumber:     aws.Int32(num),
		Body:           bytes.NewReader(data),
		ContentLength:  aws.Int64(int64(len(data))),
		ChecksumCRC32C: &sum,
	}, unsignedPayload)
	op := fmt.Sprintf("upload part %d", num)
	if err != nil {
		return u.errf(op, err)
	}
	if out.ChecksumCRC32C != nil && *out.ChecksumCRC32C != sum {
		return u.errf(op, fmt.Errorf("%w: server stored CRC32C %s, sent %s", ErrChecksum, *out.ChecksumCRC32C, sum))
	}
	if out.ETag == nil {
		return u.errf(op, errors.New("server returned no ETag"))
	}
	p := PartInfo{Number: num, Size: int64(len(data)), CRC32C: crc, ETag: *out.ETag}
	u.mu.Lock()
	u.parts[num] = p
	sf := u.sf
	u.mu.Unlock()
	if err := sf.add(p); err != nil {
		return u.errf("write state file", err)
	}
	return nil
}

// CloseWrite ends the data: the part being filled is sent (unless the
// object is smaller than one part: that one is kept, trimmed, for the
// single PutObject of Commit) and every part in flight is waited for; the
// pooled buffers are released. The upload stays pending, invisible, until
// Commit. Later Writes fail.
func (u *Upload) CloseWrite() error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if err := u.check("close"); err != nil {
		return err
	}
	if u.closed {
		return nil
	}
	u.closed = true
	if u.part == 1 && u.UploadID() == "" {
		u.buf = append([]byte(nil), u.buf...)
	} else if len(u.buf) > 0 {
		if err := u.flushPart(); err != nil {
			return u.abortedOr(err)
		}
	}
	u.wg.Wait()
	u.mu.Lock()
	u.free = nil
	u.mu.Unlock()
	return u.check("close")
}

// Commit sends the last part, completes the upload with the part list and
// their checksums (If-None-Match: * so that an existing object is never
// replaced) and then confirms that the object's size and composite CRC32C
// are those of the parts sent; only then does it report success.
func (u *Upload) Commit(ctx context.Context) (ObjectInfo, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if err := u.check("commit"); err != nil {
		return ObjectInfo{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(u.ctx, cancel)()

	u.mu.Lock()
	single := u.uploadID == "" && u.part == 1
	u.mu.Unlock()
	if u.part == 1 && len(u.buf) == 0 && u.UploadID() != "" {
		// A resumed upload re-supplied with no bytes at all.
		if err := u.dropPrior(1); err != nil {
			return ObjectInfo{}, err
		}
		single = true
	}
	var info ObjectInfo
	var err error
	if single {
		info, err = u.putSingle(ctx)
	} else {
		info, err = u.completeMultipart(ctx)
	}
	if err != nil {
		u.fail(err)
		return ObjectInfo{}, u.abortedOr(u.errf("commit", err))
	}
	u.mu.Lock()
	if u.phase == phaseAborted {
		// Abort ran while the object was being completed: it wins, and
		// removes the object once this returns.
		u.mu.Unlock()
		return ObjectInfo{}, u.errf("commit", ErrAborted)
	}
	u.phase = phaseCommitted
	u.info = info
	sf := u.sf
	u.mu.Unlock()
	if err := sf.remove(); err != nil {
		u.s.logf("s3store: removing state file %s: %v", u.o.StateFile, err)
	}
	return info, nil
}

// putSingle sends an object smaller than one part with one PutObject.
func (u *Upload) putSingle(ctx context.Context) (ObjectInfo, error) {
	data, crc := u.buf, u.crc
	if data == nil {
		data = []byte{}
	}
	sum := crcString(crc)
	mode, until := u.lockInput()
	u.setSent(sum)
	pctx := withAttemptTimeout(ctx, u.s.timeoutFor(int64(len(data))))
	_, err := u.s.api.PutObject(pctx, &s3.PutObjectInput{
		Bucket:                    &u.s.bucket,
		Key:                       &u.key,
		Body:                      bytes.NewReader(data),
		ContentLength:             aws.Int64(int64(len(data))),
		ChecksumCRC32C:            &sum,
		IfNoneMatch:               aws.String("*"),
		ObjectLockMode:            mode,
		ObjectLockRetainUntilDate: until,
	}, unsignedPayload)
	if isPreconditionFailed(err) {
		u.setSent("")
		return ObjectInfo{}, ErrExists
	}
	if isUnsupported(err) {
		u.s.logf("s3store: server does not support If-None-Match on PutObject (%v); checking for an existing object first", err)
		if err = u.checkAbsent(ctx); err != nil {
			return ObjectInfo{}, err
		}
		_, err = u.s.api.PutObject(pctx, &s3.PutObjectInput{
			Bucket: &u.s.bucket, Key: &u.key, Body: bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))), ChecksumCRC32C: &sum,
			ObjectLockMode: mode, ObjectLockRetainUntilDate: until,
		}, unsignedPayload)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	u.mu.Lock()
	u.parts[1] = PartInfo{Number: 1, Size: int64(len(data)), CRC32C: crc}
	u.mu.Unlock()
	return u.confirm(ctx, int64(len(data)), sum, 1)
}

// checkAbsent is the fallback for servers without conditional writes: the
// object must not exist just before the write (a race with another writer
// remains possible there, and is reported in the log).
func (u *Upload) checkAbsent(ctx context.Context) error {
	_, err := u.s.Stat(ctx, u.key)
	if err == nil {
		return ErrExists
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (u *Upload) completeMultipart(ctx context.Context) (ObjectInfo, error) {
	if len(u.buf) > 0 && !u.closed {
		if err := u.flushPart(); err != nil {
			return ObjectInfo{}, err
		}
	}
	u.wg.Wait()
	u.mu.Lock()
	err := u.usable()
	id := u.uploadID
	parts := sortedParts(u.parts)
	u.mu.Unlock()
	if err != nil {
		return ObjectInfo{}, err
	}
	if int(u.part-1) != len(parts) {
		return ObjectInfo{}, fmt.Errorf("internal error: %d parts written, %d completed", u.part-1, len(parts))
	}
	var total int64
	crcs := make([]uint32, len(parts))
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		if p.Number != int32(i+1) {
			return ObjectInfo{}, fmt.Errorf("internal error: part %d missing", i+1)
		}
		total += p.Size
		crcs[i] = p.CRC32C
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag), ChecksumCRC32C: aws.String(crcString(p.CRC32C))}
	}
	composite := compositeCRC(crcs)
	whole, _, _ := strings.Cut(composite, "-")

	// A HEAD first even though the complete is conditional: it names the
	// conflict before anything is assembled, and it is the only guard on
	// servers that ignore If-None-Match silently.
	if err := u.checkAbsent(ctx); err != nil {
		return ObjectInfo{}, err
	}
	u.setSent(composite)
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          &u.s.bucket,
		Key:             &u.key,
		UploadId:        &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
		ChecksumCRC32C:  &whole,
		ChecksumType:    types.ChecksumTypeComposite,
		MpuObjectSize:   aws.Int64(total),
		IfNoneMatch:     aws.String("*"),
	}
	// Assembling a large object can take the server a while.
	cctx := withAttemptTimeout(ctx, u.s.timeoutFor(total/64))
	_, err = u.s.api.CompleteMultipartUpload(cctx, in)
	if isUnsupported(err) {
		u.s.logf("s3store: server does not support If-None-Match on CompleteMultipartUpload (%v); relying on the HEAD check", err)
		in.IfNoneMatch = nil
		_, err = u.s.api.CompleteMultipartUpload(cctx, in)
	}
	switch {
	case isPreconditionFailed(err):
		u.setSent("")
		return ObjectInfo{}, ErrExists
	case isNoSuchUpload(err):
		// A retried complete whose first attempt went through finds the
		// upload gone; the confirmation below tells whether the object is
		// ours.
		u.s.logf("s3store: s3://%s/%s: complete reported NoSuchUpload; checking the object", u.s.bucket, u.key)
	case err != nil:
		return ObjectInfo{}, err
	}
	return u.confirm(ctx, total, composite, len(parts))
}

// confirm checks the committed object against what was sent: its size,
// and its CRC32C (composite "-N" for multipart objects). An object that
// does not match is deleted (it was written by this upload: the writes
// are conditional) and the commit fails.
func (u *Upload) confirm(ctx context.Context, size int64, sum string, nparts int) (ObjectInfo, error) {
	info, err := u.s.Stat(ctx, u.key)
	if err != nil {
		return ObjectInfo{}, err
	}
	bad := func(e error) (ObjectInfo, error) {
		if derr := u.s.deleteIfMatch(ctx, u.key, info.ETag); derr != nil {
			u.s.logf("s3store: s3://%s/%s: removing the bad object: %v", u.s.bucket, u.key, derr)
		}
		return ObjectInfo{}, e
	}
	if info.Size != size {
		return bad(fmt.Errorf("%w: object has %d bytes, %d sent in %d parts", ErrSizeMismatch, info.Size, size, nparts))
	}
	got := info.CRC32C
	if got != "" && !strings.Contains(got, "-") && strings.Contains(sum, "-") {
		got += sum[strings.Index(sum, "-"):] // servers that omit the part count
	}
	switch {
	case info.CRC32C == "" && !u.s.opts.AllowMissingChecksum:
		return bad(ErrNoChecksum)
	case info.CRC32C == "":
		u.s.logf("s3store: s3://%s/%s: server reports no CRC32C; confirmed by size only", u.s.bucket, u.key)
	case got != sum:
		return bad(fmt.Errorf("%w: object CRC32C %s, parts sent give %s", ErrChecksum, info.CRC32C, sum))
	}
	return info, nil
}

// Abort stops the upload, waits for the parts in flight, aborts the
// multipart upload and removes the state file (kept if the server could
// not be reached: a later run resumes or aborts the upload); after a
// Commit that failed once the object was complete, it deletes the object
// if it is this upload's (same size and checksum). Abort after a
// successful Commit does nothing.
func (u *Upload) Abort(ctx context.Context) error {
	u.mu.Lock()
	if u.phase != phaseOpen {
		u.mu.Unlock()
		return nil
	}
	u.phase = phaseAborted
	u.mu.Unlock()
	u.cancel() // unblocks a Write waiting for a slot
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.wg.Wait()
	u.mu.Lock()
	id := u.uploadID
	sf := u.sf
	u.free = nil
	u.mu.Unlock()
	var first error
	gone := id == ""
	if id != "" {
		first = u.abortMultipart(ctx, id)
		if errors.Is(first, ErrNoSuchUpload) {
			gone, first = true, nil
		}
	}
	if gone && u.sentSum() != "" {
		// A Commit that failed (confirmation, cancelled while waiting for
		// the answer) after the server may have created the object:
		// remove it if it is ours.
		first = u.removeIfOurs(ctx)
	}
	if first != nil {
		// The server still holds the upload (it could not be reached):
		// keep the state file, so a later run resumes or aborts it.
		sf.close()
		return first
	}
	if err := sf.remove(); err != nil {
		return u.errf("abort", err)
	}
	return nil
}

func (u *Upload) abortMultipart(ctx context.Context, id string) error {
	actx := withAttemptTimeout(ctx, u.s.opts.RequestTimeout)
	_, err := u.s.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &u.s.bucket, Key: &u.key, UploadId: &id})
	if isNoSuchUpload(err) || (err != nil && httpStatus(err) == 404) {
		return &Error{Op: "abort", Bucket: u.s.bucket, Key: u.key, UploadID: id, Offset: -1, Err: ErrNoSuchUpload}
	}
	if err != nil {
		return &Error{Op: "abort", Bucket: u.s.bucket, Key: u.key, UploadID: id, Offset: -1, Err: err}
	}
	return nil
}

func (u *Upload) setSent(sum string) {
	u.mu.Lock()
	u.sent = sum
	u.mu.Unlock()
}

func (u *Upload) sentSum() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent
}

func (u *Upload) removeIfOurs(ctx context.Context) error {
	sent := u.sentSum()
	info, err := u.s.Stat(ctx, u.key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	got, _, _ := strings.Cut(info.CRC32C, "-")
	want, _, _ := strings.Cut(sent, "-")
	if got == "" || got != want || info.Size != u.size {
		return nil // not ours
	}
	return u.s.deleteIfMatch(ctx, u.key, info.ETag)
}
