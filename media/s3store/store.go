package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// Defaults of Options.
const (
	DefaultConcurrency    = 4
	DefaultPartSize       = 8 << 20
	DefaultMaxPartSize    = 1 << 30
	DefaultRangeSize      = 8 << 20
	DefaultMaxAttempts    = 10
	DefaultMaxBackoff     = 20 * time.Second
	DefaultRequestTimeout = time.Minute
	DefaultMinRate        = 1 << 20

	// MinPartSize is S3's minimum size of every part but the last.
	MinPartSize = 5 << 20
	// MaxPartSize is S3's maximum part size.
	MaxPartSize = 5 << 30
	// MaxParts is S3's maximum number of parts of one upload.
	MaxParts = 10000
	// TargetObjectSize is the object size the part schedule must reach
	// within MaxParts parts: S3's maximum object size, 5 TiB.
	TargetObjectSize = 5 << 40
)

// Options configures a Store. The zero value (plus Bucket) reaches AWS or,
// with AWS_ENDPOINT_URL set, any S3-compatible server, with credentials
// from the standard places (environment, shared config and credentials
// files, the instance role). A config-file entry maps onto it field by
// field.
type Options struct {
	Bucket string
	// Endpoint is the server's base URL ("https://s3.example.net:9000").
	// Empty: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the profile's
	// endpoint_url, else AWS.
	Endpoint string
	// Region; empty: AWS_REGION or the profile's region, else us-east-1
	// (S3-compatible servers mostly ignore it).
	Region string
	// Profile selects a shared config/credentials profile (AWS_PROFILE).
	Profile string
	// AccessKeyID and SecretAccessKey (and SessionToken) are explicit
	// credentials; empty: the SDK's default chain.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// CAFile is a PEM bundle of the CAs to trust for TLS (AWS_CA_BUNDLE
	// and the profile's ca_bundle are honoured too). It replaces the system
	// roots.
	CAFile string
	// PathStyle: "" addresses buckets path-style (https://host/bucket/key)
	// whenever an endpoint is configured and virtual-host style on AWS;
	// "true" or "false" force one.
	PathStyle string

	// Concurrency is the number of parts (uploads) or ranges (reads) in
	// flight. Memory: (Concurrency+1) × part size per upload,
	// Concurrency × RangeSize per reader.
	Concurrency int
	// PartSize is the size of the first parts of an upload (at least
	// MinPartSize); parts grow from it (see PartGrowEvery).
	PartSize int64
	// MaxPartSize caps the part size growth (at most MaxPartSize).
	MaxPartSize int64
	// PartGrowEvery is the number of parts after which the part size
	// doubles. Zero: the largest value with which MaxParts parts reach
	// TargetObjectSize (812 for the default sizes); a value given here is
	// used as is (tests).
	PartGrowEvery int
	// RangeSize is the size of each ranged GET of a reader.
	RangeSize int64

	// MaxAttempts is the number of attempts of every request (retries of
	// 5xx, SlowDown, resets and timeouts, with jittered exponential
	// backoff up to MaxBackoff).
	MaxAttempts int
	MaxBackoff  time.Duration
	// RequestTimeout bounds each attempt of a request; requests carrying or
	// returning n bytes get n/MinRate seconds more.
	RequestTimeout time.Duration
	MinRate        int64

	// AllowMissingChecksum accepts a server that does not report the
	// object's CRC32C: an upload is then confirmed by its size and part
	// count only. Otherwise such a Commit fails with ErrNoChecksum.
	AllowMissingChecksum bool

	// Logf receives warnings (a server lacking conditional writes, ...).
	// Nil: discarded.
	Logf func(format string, args ...any)
}

func (o *Options) setDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.MaxPartSize == 0 {
		o.MaxPartSize = max(DefaultMaxPartSize, o.PartSize)
	}
	if o.RangeSize == 0 {
		o.RangeSize = DefaultRangeSize
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MinRate <= 0 {
		o.MinRate = DefaultMinRate
	}
}

func (o *Options) validate() error {
	switch {
	case o.Bucket == "":
		return fmt.Errorf("%w: no bucket", ErrInvalidOptions)
	case o.PartSize < MinPartSize || o.PartSize > MaxPartSize:
		return fmt.Errorf("%w: part size %d outside [%d, %d]", ErrInvalidOptions, o.PartSize, MinPartSize, MaxPartSize)
	case o.MaxPartSize < o.PartSize || o.MaxPartSize > MaxPartSize:
		return fmt.Errorf("%w: max part size %d outside [part size %d, %d]", ErrInvalidOptions, o.MaxPartSize, o.PartSize, MaxPartSize)
	case o.RangeSize <= 0:
		return fmt.Errorf("%w: range size %d", ErrInvalidOptions, o.RangeSize)
	case o.PathStyle != "" && o.PathStyle != "true" && o.PathStyle != "false":
		return fmt.Errorf("%w: path_style %q is not true or false", ErrInvalidOptions, o.PathStyle)
	}
	return nil
}

// ParseURL parses s3://BUCKET/KEY?endpoint=URL&region=R&profile=P&ca=FILE&path_style=BOOL
// into Options (only the fields the URL names are set) and the key (or
// key prefix) after the bucket.
func ParseURL(raw string) (Options, string, error) {
	var o Options
	u, err := url.Parse(raw)
	if err != nil {
		return o, "", fmt.Errorf("%w: %q: %v", ErrInvalidURL, raw, err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.Opaque != "" {
		return o, "", fmt.Errorf("%w: %q: want s3://BUCKET/KEY", ErrInvalidURL, raw)
	}
	o.Bucket = u.Host
	key := strings.TrimPrefix(u.Path, "/")
	for name, vals := range u.Query() {
		v := vals[len(vals)-1]
		switch name {
		case "endpoint":
			o.Endpoint = v
		case "region":
			o.Region = v
		case "profile":
			o.Profile = v
		case "ca":
			o.CAFile = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, "", fmt.Errorf("%w: %q: path_style=%q is not a boolean", ErrInvalidURL, raw, v)
			}
			o.PathStyle = strconv.FormatBool(b)
		default:
			return o, "", fmt.Errorf("%w: %q: unknown parameter %q (endpoint, region, profile, ca, path_style)", ErrInvalidURL, raw, name)
		}
	}
	return o, key, nil
}

// Store is one bucket on one S3 server. It is safe for concurrent use.
type Store struct {
	bucket  string
	opts    Options
	api     api
	retryer *retry.Standard
	grow    int
}

// api is the part of *s3.Client the package uses (an in-process fake
// implements it for unit tests of part scheduling).
type api interface {
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	ListParts(context.Context, *s3.ListPartsInput, ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// New connects to the bucket o.Bucket. It does not contact the server.
func New(ctx context.Context, o Options) (*Store, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	grow, err := growEvery(o)
	if err != nil {
		return nil, err
	}
	st := &Store{bucket: o.Bucket, opts: o, grow: grow, retryer: newRetryer(o)}

	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 2*o.Concurrency + 4
		tr.ResponseHeaderTimeout = 0 // the attempt timeout bounds the whole request
	})
	lo := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		// S3-compatible servers reject the SDK's default trailing
		// checksums (aws-chunked, CRC64NVME); parts carry the CRC32C we
		// compute ourselves.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRetryer(func() aws.Retryer { return st.retryer }),
	}
	if o.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.AccessKeyID != "" {
		lo = append(lo, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %v", ErrInvalidOptions, err)
		}
		lo = append(lo, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("%w: loading AWS configuration: %v", ErrInvalidOptions, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	st.api = s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		switch o.PathStyle {
		case "":
			// BaseEndpoint is resolved from the options, the environment
			// and the shared config by now.
			so.UsePathStyle = so.BaseEndpoint != nil
		default:
			so.UsePathStyle = o.PathStyle == "true"
		}
		so.APIOptions = append(so.APIOptions, addAttemptTimeout)
	})
	return st, nil
}

// Bucket is the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

func newRetryer(o Options) *retry.Standard {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		// No retry quota: a backup must outlast a server's bad minute,
		// and a token bucket shared by all parts would fail every part
		// once a few had retried.
		so.RateLimiter = ratelimit.None
	})
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// timeoutFor is the attempt timeout of a request moving n bytes.
func (s *Store) timeoutFor(n int64) time.Duration {
	return s.opts.RequestTimeout + time.Duration(float64(n)/float64(s.opts.MinRate)*float64(time.Second))
}

type attemptTimeoutKey struct{}

// withAttemptTimeout makes every attempt of the SDK request issued with
// ctx end after d: the SDK has no per-attempt deadline of its own, and a
// server that stops answering must cost a retry, not hang the backup.
func withAttemptTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, attemptTimeoutKey{}, d)
}

// attemptTimeoutError reports an attempt that ran out of time; it is
// retryable (unlike the canceled-context error the SDK would report).
type attemptTimeoutError struct{ d time.Duration }

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("request attempt timed out after %v", e.d)
}
func (e *attemptTimeoutError) RetryableError() bool { return true }
func (e *attemptTimeoutError) Timeout() bool        { return true }

func addAttemptTimeout(st *middleware.Stack) error {
	return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3store.AttemptTimeout",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			d, _ := ctx.Value(attemptTimeoutKey{}).(time.Duration)
			if d <= 0 {
				return next.HandleFinalize(ctx, in)
			}
			actx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			out, md, err := next.HandleFinalize(actx, in)
			if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
				err = &attemptTimeoutError{d}
			}
			return out, md, err
		}), "Retry", middleware.After)
}
