// Package s3store keeps backup sets in an S3-compatible object store (AWS
// S3, Ceph RGW, MinIO, versitygw): streaming uploads of unknown size that
// are confirmed before they count, resumable after a crash, parallel
// ranged reads, and leases for hosts sharing a bucket. It depends on the
// AWS SDK for Go v2 only.
//
// # Locations and credentials
//
//	s3://BUCKET/KEY[?endpoint=URL][&region=R][&profile=P][&ca=FILE][&path_style=BOOL]
//
// ParseURL turns that into Options and a key (or prefix). Everything not in
// the URL comes from the usual places, through the SDK's default chain:
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_REGION,
// AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_PROFILE, AWS_CA_BUNDLE,
// the shared config and credentials files, the instance role. Buckets are
// addressed path-style whenever an endpoint is configured (S3-compatible
// servers rarely have wildcard DNS), virtual-host style on AWS.
//
// The client sends checksums only where the API requires them
// (RequestChecksumCalculation and ResponseChecksumValidation "when
// required": S3-compatible servers reject the SDK's default aws-chunked
// CRC64NVME trailers) and adds its own CRC32C to every part. Requests are
// retried by the SDK's standard retryer (jittered exponential backoff, up
// to Options.MaxAttempts, for 5xx, SlowDown and other throttling, resets,
// refused connections and attempt timeouts) without its retry quota token
// bucket. Every attempt has a deadline (Options.RequestTimeout plus the
// time to move its bytes at Options.MinRate), so a server that stops
// answering costs a retry instead of hanging the backup.
//
// # Uploads
//
// Create returns an Upload, an io.Writer for one object of unknown final
// size, sent as a multipart upload with ChecksumAlgorithm CRC32C
// (composite). Part n has the size
//
//	PartSize × 2^⌊(n−1)/G⌋, at most MaxPartSize
//
//	part  1 … G      G+1 … 2G     2G+1 … 3G  …          … 10,000
//	      8 MiB      16 MiB       32 MiB       … 1 GiB (cap)
//
// where G (PartGrowEvery) is the largest period with which 10,000 parts
// reach 5 TiB (812 for 8 MiB growing to 1 GiB: 100 GiB objects end with
// 128 MiB parts, 1 TiB ones with 1 GiB parts). The part sizes of an upload
// are fixed by its schedule, so a resumed upload cuts the re-supplied
// stream at the same offsets. Up to Concurrency parts are in flight while
// the caller fills the next one; buffers are pooled, so an upload holds at
// most (Concurrency+1) × current part size. Each part carries the CRC32C
// computed while it was filled (x-amz-checksum-crc32c; the server rejects
// a part whose bytes do not match it).
//
// Commit sends the last part and completes the upload with the part list,
// each part's CRC32C, the composite CRC32C, the total size (MpuObjectSize)
// and If-None-Match: * so an existing object is never replaced (a HEAD
// just before names the conflict early, and guards servers that ignore
// the header; one that answers 501 gets a warning and the HEAD only). It
// then confirms with HeadObject (ChecksumMode ENABLED) that the object has
// the size sent and the composite checksum
//
//	base64(CRC32C(crc₁ ‖ crc₂ ‖ … ‖ crcₙ)) "-" n      (crcᵢ: 4 bytes big-endian)
//
// and only then reports success; an object that does not match is
// deleted and Commit fails (so an upload that lost parts can never pass
// for a complete one). Objects smaller than one part are sent with a
// single conditional PutObject carrying their CRC32C, and confirmed the
// same way. Optional Object Lock retention (mode, retain-until) is set on
// the upload. Abort aborts the multipart upload (the server frees its
// parts) and removes the state file (kept when the server cannot be
// reached, so that a later run can still resume or abort the upload).
//
// # Resume
//
// With UploadOptions.StateFile, the upload records itself in a small local
// file, fsynced as each part completes:
//
//	{"format":"tapestream-s3-upload/1","bucket":"b","key":"k","upload_id":"…",
//	 "schedule":{"first":8388608,"max":1073741824,"every":812},"created":"…"}
//	{"part":1,"size":8388608,"crc32c":1234567890,"etag":"\"…\""}
//	{"part":3,…}                  one line per completed part, any order
//
// After a crash, Resume(stateFile) reconciles it with ListParts and takes
// the caller's bytes again from the start: a part recorded and held by the
// server is skipped when the bytes supplied for it have the same size and
// CRC32C; from the first part that differs on, parts are sent again (when
// the very first part differs, the old upload is aborted and a new one
// started). A multipart upload that was never completed is not an object:
// no reader can mistake it for a set. ListPending and AbortPending find and
// remove the uploads that killed runs left behind.
//
// # Reads
//
// Open returns a Reader that fetches Concurrency ranges of RangeSize bytes
// in parallel (each a GET with Range and If-Match on the ETag seen at
// Open), delivers them in order, retries each on its own (body included)
// and names the bucket, key and offset of a range that failed for good.
// Stat, List and Delete complete the set of object operations.
//
// # Leases
//
// AcquireLease claims a name for hosts that share a bucket (one archiver
// per storage group): a small JSON object
//
//	{"format":"tapestream-s3-lease/1","owner":"host-a:1234","ttl_seconds":300,
//	 "acquired":"…","renewed":"…"}
//
// created with If-None-Match: *. A lease whose Last-Modified plus TTL lies
// before the server's Date (or marked released) is taken over with
// If-Match on its ETag; Renew rewrites it with If-Match; Release deletes
// it with If-Match (servers without conditional deletes: an If-Match write
// of a released marker). Of two hosts racing, one conditional write
// succeeds and the other gets 412 (or 409): exactly one wins.
//
// # Errors
//
// Errors are *Error values naming the operation, bucket, key (and upload
// id, offset); errors.Is works on the sentinels (ErrExists, ErrNotFound,
// ErrChecksum, ErrLeaseHeld, ...), all prefixed "s3store:".
package s3store
