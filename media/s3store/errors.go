package s3store

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
)

// Sentinel errors. Every error returned by this package is an *Error (or
// wraps one) naming the bucket and key; test for the condition with
// errors.Is.
var (
	ErrInvalidURL     = errors.New("s3store: invalid s3:// URL")
	ErrInvalidOptions = errors.New("s3store: invalid options")
	ErrExists         = errors.New("s3store: object already exists (objects are written once and never overwritten)")
	ErrNotFound       = errors.New("s3store: no such object")
	ErrNoSuchUpload   = errors.New("s3store: no such multipart upload")
	ErrSizeMismatch   = errors.New("s3store: object size differs from the bytes sent")
	ErrChecksum       = errors.New("s3store: object checksum differs from the parts sent")
	ErrNoChecksum     = errors.New("s3store: server returned no CRC32C for the object (set AllowMissingChecksum to accept a size-only confirmation)")
	ErrTooManyParts   = errors.New("s3store: object exceeds 10,000 parts")
	ErrObjectChanged  = errors.New("s3store: object changed while being read")
	ErrShortRead      = errors.New("s3store: server returned fewer bytes than requested")
	ErrAborted        = errors.New("s3store: upload aborted")
	ErrCommitted      = errors.New("s3store: upload already committed")
	ErrClosed         = errors.New("s3store: reader closed")
	ErrWriteClosed    = errors.New("s3store: write after CloseWrite")
	ErrStateExists    = errors.New("s3store: upload state file exists: resume the upload or remove the file")
	ErrBadState       = errors.New("s3store: unreadable upload state file")
	ErrLeaseHeld      = errors.New("s3store: lease held by another owner")
	ErrLeaseLost      = errors.New("s3store: lease lost (taken over or removed)")
)

// Error names the operation and the object it failed on. Offset is the
// byte offset of a failed ranged read, -1 otherwise; UploadID is set for
// multipart operations.
type Error struct {
	Op       string // "upload part", "complete", "read", "lease", ...
	Bucket   string
	Key      string
	UploadID string
	Offset   int64
	Err      error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("s3store: %s s3://%s/%s", e.Op, e.Bucket, e.Key)
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	if e.UploadID != "" {
		s += " (upload " + e.UploadID + ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func (s *Store) newErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) && se.Key == key && se.Bucket == s.bucket {
		return err
	}
	return &Error{Op: op, Bucket: s.bucket, Key: key, Offset: -1, Err: err}
}

// httpStatus is the HTTP status code carried by an SDK error, or 0.
func httpStatus(err error) int {
	var v interface{ HTTPStatusCode() int }
	if errors.As(err, &v) {
		return v.HTTPStatusCode()
	}
	return 0
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return httpStatus(err) == http.StatusNotFound && apiCode(err) != "NoSuchUpload" && apiCode(err) != "NoSuchBucket"
}

func isNoSuchUpload(err error) bool { return apiCode(err) == "NoSuchUpload" }

// isPreconditionFailed: 412 is the answer to a failed If-Match /
// If-None-Match; AWS answers 409 ConditionalRequestConflict when two
// conditional writes to one key race, which means the same for us: the
// other writer won.
func isPreconditionFailed(err error) bool {
	s := httpStatus(err)
	return s == http.StatusPreconditionFailed || apiCode(err) == "PreconditionFailed" ||
		apiCode(err) == "ConditionalRequestConflict"
}

// isUnsupported tells whether the server rejected a request because it does
// not implement a header (If-None-Match on complete, If-Match on delete):
// 501 NotImplemented, or a 400 naming the header.
func isUnsupported(err error) bool {
	if httpStatus(err) == http.StatusNotImplemented || apiCode(err) == "NotImplemented" {
		return true
	}
	return false
}
