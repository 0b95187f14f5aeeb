package s3store

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ObjectInfo describes an object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
	// CRC32C is the checksum the server reports ("" if none): base64,
	// followed by "-N" for a multipart object (composite checksum).
	CRC32C string
	// LockMode and RetainUntil are the object's Object Lock retention.
	LockMode    string
	RetainUntil time.Time
}

// Stat describes key (HEAD, with the checksum). A missing object is
// ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	out, err := s.api.HeadObject(withAttemptTimeout(ctx, s.opts.RequestTimeout), &s3.HeadObjectInput{
		Bucket:       &s.bucket,
		Key:          &key,
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		if isNotFound(err) {
			err = ErrNotFound
		}
		return ObjectInfo{}, s.newErr("stat", key, err)
	}
	info := ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		CRC32C:       aws.ToString(out.ChecksumCRC32C),
		LockMode:     string(out.ObjectLockMode),
		RetainUntil:  aws.ToTime(out.ObjectLockRetainUntilDate),
	}
	return info, nil
}

// List lists the objects whose keys start with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var res []ObjectInfo
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	for {
		out, err := s.api.ListObjectsV2(withAttemptTimeout(ctx, s.opts.RequestTimeout), in)
		if err != nil {
			return nil, s.newErr("list", prefix, err)
		}
		for _, o := range out.Contents {
			res = append(res, ObjectInfo{
				Key:          aws.ToString(o.Key),
				Size:         aws.ToInt64(o.Size),
				ETag:         aws.ToString(o.ETag),
				LastModified: aws.ToTime(o.LastModified),
			})
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Key < res[j].Key })
	return res, nil
}

// Delete removes key. A missing object is not an error (S3 semantics).
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.api.DeleteObject(withAttemptTimeout(ctx, s.opts.RequestTimeout), &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	return s.newErr("delete", key, err)
}

// deleteIfMatch removes key only while its ETag is etag (a server that
// ignores If-Match on DELETE deletes it regardless).
func (s *Store) deleteIfMatch(ctx context.Context, key, etag string) error {
	_, err := s.api.DeleteObject(withAttemptTimeout(ctx, s.opts.RequestTimeout), &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key, IfMatch: &etag})
	return s.newErr("delete", key, err)
}

// PendingUpload is a multipart upload that was neither completed nor
// aborted (a killed run). It is not an object: readers never see it.
type PendingUpload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// ListPending lists the multipart uploads in progress under prefix.
func (s *Store) ListPending(ctx context.Context, prefix string) ([]PendingUpload, error) {
	var res []PendingUpload
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &prefix}
	for {
		out, err := s.api.ListMultipartUploads(withAttemptTimeout(ctx, s.opts.RequestTimeout), in)
		if err != nil {
			return nil, s.newErr("list uploads", prefix, err)
		}
		for _, u := range out.Uploads {
			res = append(res, PendingUpload{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	sort.Slice(res, func(i, j int) bool {
		if res[i].Key != res[j].Key {
			return res[i].Key < res[j].Key
		}
		return res[i].Initiated.Before(res[j].Initiated)
	})
	return res, nil
}

// AbortPending aborts a pending multipart upload, freeing its parts. One
// that is already gone is not an error.
func (s *Store) AbortPending(ctx context.Context, p PendingUpload) error {
	_, err := s.api.AbortMultipartUpload(withAttemptTimeout(ctx, s.opts.RequestTimeout), &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: &p.Key, UploadId: &p.UploadID,
	})
	if err != nil && (isNoSuchUpload(err) || httpStatus(err) == 404) {
		return nil
	}
	if err != nil {
		return &Error{Op: "abort pending", Bucket: s.bucket, Key: p.Key, UploadID: p.UploadID, Offset: -1, Err: err}
	}
	return nil
}

// Resume continues the upload recorded in stateFile (see
// UploadOptions.StateFile). The caller writes the same stream again from
// its first byte: a recorded part whose bytes match (size and CRC32C, and
// the server still holds it) is not sent again; from the first part that
// differs on, parts are sent anew (if the very first part differs, the old
// upload is aborted and a new one started). If the server no longer has
// the upload, a new one is started. o.StateFile is ignored: the state
// stays in stateFile.
func (s *Store) Resume(ctx context.Context, stateFile string, o UploadOptions) (*Upload, error) {
	st, err := ReadState(stateFile)
	if err != nil {
		return nil, &Error{Op: "resume", Bucket: s.bucket, Key: stateFile, Offset: -1, Err: err}
	}
	if st.Bucket != s.bucket {
		return nil, &Error{Op: "resume", Bucket: s.bucket, Key: st.Key, Offset: -1,
			Err: errors.New("state file " + stateFile + " is for bucket " + st.Bucket)}
	}
	if err := o.validate(); err != nil {
		return nil, s.newErr("resume", st.Key, err)
	}
	o.StateFile = stateFile
	u := s.newUpload(st.Key, o, st.Schedule)
	sf, err := openStateFile(stateFile)
	if err != nil {
		return nil, s.newErr("resume", st.Key, err)
	}
	u.sf = sf

	server, err := s.listParts(ctx, st.Key, st.UploadID)
	if errors.Is(err, ErrNoSuchUpload) {
		s.logf("s3store: s3://%s/%s: upload %s of %s is gone from the server; starting anew", s.bucket, st.Key, st.UploadID, stateFile)
		u.stats.Restarted = true
		return u, nil
	}
	if err != nil {
		sf.close()
		return nil, err
	}
	u.uploadID = st.UploadID
	u.prior = map[int32]PartInfo{}
	for _, p := range st.Parts {
		if sp, ok := server[p.Number]; ok && sp.Size == p.Size && sp.ETag == p.ETag &&
			(sp.CRC32C == 0 || sp.CRC32C == p.CRC32C) {
			u.prior[p.Number] = p
		}
	}
	return u, nil
}

// listParts lists the parts the server holds for an upload. Their CRC32C
// is 0 when the server does not report it.
func (s *Store) listParts(ctx context.Context, key, id string) (map[int32]PartInfo, error) {
	res := map[int32]PartInfo{}
	in := &s3.ListPartsInput{Bucket: &s.bucket, Key: &key, UploadId: &id}
	for {
		out, err := s.api.ListParts(withAttemptTimeout(ctx, s.opts.RequestTimeout), in)
		if err != nil {
			if isNoSuchUpload(err) || httpStatus(err) == 404 {
				err = ErrNoSuchUpload
			}
			return nil, &Error{Op: "list parts", Bucket: s.bucket, Key: key, UploadID: id, Offset: -1, Err: err}
		}
		for _, p := range out.Parts {
			pi := PartInfo{Number: aws.ToInt32(p.PartNumber), Size: aws.ToInt64(p.Size), ETag: aws.ToString(p.ETag)}
			if c, ok := parseCRC(aws.ToString(p.ChecksumCRC32C)); ok {
				pi.CRC32C = c
			}
			res[pi.Number] = pi
		}
		if !aws.ToBool(out.IsTruncated) || out.NextPartNumberMarker == nil {
			break
		}
		in.PartNumberMarker = out.NextPartNumberMarker
	}
	return res, nil
}

func sortedParts(m map[int32]PartInfo) []PartInfo {
	res := make([]PartInfo, 0, len(m))
	for _, p := range m {
		res = append(res, p)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Number < res[j].Number })
	return res
}
