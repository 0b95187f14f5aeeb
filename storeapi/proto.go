package storeapi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
)

// APIVersion is the path prefix of every call but /healthz and /metrics.
const APIVersion = "/v1"

// Error is the JSON body of every failed call: {"error": {...}}.
type Error struct {
	// Kind: "ese" (Code is an ESE error code), "page" (a page failed
	// verification: Page holds the details), "dismounted" (a database
	// named is dismounted), "busy" (a restore of the group is in
	// progress), "rollback" (a restore would roll back commits), "auth", "forbidden",
	// "not_found", "bad_request", "too_large", "shutdown", "internal".
	Kind    string          `json:"kind"`
	Code    int             `json:"code,omitempty"`
	Group   string          `json:"group,omitempty"`
	Message string          `json:"message"`
	Page    *page.PageError `json:"page,omitempty"`
}

// ErrorBody wraps Error on the wire.
type ErrorBody struct {
	Error Error `json:"error"`
}

// BeginRequest starts a backup session: POST /v1/groups/{group}/backup.
type BeginRequest struct {
	Type      string   `json:"type"`
	Databases []string `json:"databases,omitempty"`
}

// BeginResponse describes the new session. The session id is a bearer
// secret bound to the client identity that opened it.
type BeginResponse struct {
	Session       string           `json:"session"`
	Type          string           `json:"type"`
	Group         engine.GroupInfo `json:"group"`
	Databases     []string         `json:"databases"`
	PreviousSetID string           `json:"previous_set_id,omitempty"`
	LowGen        uint32           `json:"low_gen"`
	// IdleTimeoutMS is how long the server waits for the next call (or a
	// keepalive) before it aborts the session.
	IdleTimeoutMS int64 `json:"idle_timeout_ms"`
}

// FilesResponse lists files: GET /v1/sessions/{id}/files and
// POST /v1/sessions/{id}/logs (which forces the log rollover).
type FilesResponse struct {
	Files   []engine.BackupFile `json:"files"`
	LowGen  uint32              `json:"low_gen"`
	HighGen uint32              `json:"high_gen"`
}

// TruncateResponse lists the truncated logs.
type TruncateResponse struct {
	Truncated []string `json:"truncated"`
}

// EndRequest finishes a session: POST /v1/sessions/{id}/end.
type EndRequest struct {
	Success bool   `json:"success"`
	SetID   string `json:"set_id"`
	// Truncate: the set is durable; delete the logs it made unnecessary
	// once the headers record it. The reply is a TruncateResponse.
	Truncate bool `json:"truncate,omitempty"`
}

// TruncateRequest truncates, later, the logs a backup taken without
// truncation made unnecessary: POST /v1/groups/{group}/truncate. The client
// has read the stored set back and verified it.
type TruncateRequest struct {
	SetID string `json:"set_id"`
}

// AbortRequest aborts a session: POST /v1/sessions/{id}/abort.
type AbortRequest struct {
	Reason string `json:"reason"`
}

// FileStart is the first frame of a file stream.
type FileStart struct {
	File   engine.BackupFile `json:"file"`
	Size   int64             `json:"size"`
	Header []byte            `json:"header,omitempty"` // pages 0-1 snapshot (databases)
}

// GroupStatus answers GET /v1/groups/{group}.
type GroupStatus struct {
	Info          engine.GroupInfo `json:"info"`
	DatabaseSize  int64            `json:"database_size"`
	CheckpointGen uint32           `json:"checkpoint_gen"`
	CurrentGen    uint32           `json:"current_gen"`
	Backup        bool             `json:"backup_in_progress"`
	// Pressure is the group's commit latency and queue (servers before
	// it omit it; GET /v1/groups/{group}/pressure answers it alone).
	Pressure *engine.Pressure `json:"pressure,omitempty"`
}

// GetRequest reads one key: POST /v1/groups/{group}/get.
type GetRequest struct {
	DB    string `json:"db"`
	Table string `json:"table"`
	Key   []byte `json:"key"`
}

// GetResponse is the value of a key.
type GetResponse struct {
	Value []byte `json:"value,omitempty"`
	Found bool   `json:"found"`
}

// ScanRequest reads a page of keys >= Start: POST /v1/groups/{group}/scan.
type ScanRequest struct {
	DB    string `json:"db"`
	Table string `json:"table"`
	Start []byte `json:"start,omitempty"`
	Limit int    `json:"limit,omitempty"` // entries; server bounds it
}

// KV is one entry of a scan.
type KV struct {
	Key   []byte `json:"k"`
	Value []byte `json:"v"`
}

// ScanResponse is one page of a scan; More says there are further keys
// (continue from the successor of the last key).
type ScanResponse struct {
	Entries []KV `json:"entries"`
	More    bool `json:"more"`
}

// Write is one buffered write of a transaction (Delete or Put of Value).
type Write struct {
	DB     string `json:"db"`
	Table  string `json:"table"`
	Key    []byte `json:"key"`
	Value  []byte `json:"value,omitempty"`
	Delete bool   `json:"delete,omitempty"`
}

// CommitRequest commits a transaction's writes atomically:
// POST /v1/groups/{group}/commit.
type CommitRequest struct {
	Writes []Write `json:"writes"`
}

// Frame types of a file stream. A frame is 1 type byte, a 4-byte big
// endian payload length, the payload.
const (
	FrameStart = 'S' // JSON FileStart
	FrameData  = 'D' // one chunk (engine.ChunkSize bytes but the last)
	FrameError = 'E' // JSON ErrorBody: the stream failed
	FrameEnd   = 'Z' // 8-byte big endian total data length
)

// MaxFramePayload bounds a frame a client accepts.
const MaxFramePayload = 1 << 20

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrameHeader reads a frame's type and payload length.
func ReadFrameHeader(r *bufio.Reader) (typ byte, n int, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	n = int(binary.BigEndian.Uint32(h[1:]))
	if n > MaxFramePayload {
		return 0, 0, fmt.Errorf("stream frame of %d bytes (max %d)", n, MaxFramePayload)
	}
	return h[0], n, nil
}

// ToWire describes err for a client: its HTTP status and error body.
func ToWire(err error) (int, Error) {
	var ee *engine.ESEError
	var pe *page.PageError
	var he *StatusError
	switch {
	case errors.As(err, &he):
		return he.Status, Error{Kind: he.Kind, Message: he.Msg}
	case errors.As(err, &ee):
		st := http.StatusUnprocessableEntity
		if ee.Code == engine.CodeBackupInProgress {
			st = http.StatusConflict
		}
		return st, Error{Kind: "ese", Code: ee.Code, Group: ee.Group, Message: err.Error()}
	case errors.As(err, &pe):
		return http.StatusUnprocessableEntity, Error{Kind: "page", Code: pe.Code, Message: err.Error(), Page: pe}
	case errors.Is(err, engine.ErrBackupInProgress):
		return http.StatusConflict, Error{Kind: "ese", Code: engine.CodeBackupInProgress, Message: err.Error()}
	case errors.Is(err, engine.ErrDismounted):
		return http.StatusConflict, Error{Kind: "dismounted", Message: err.Error()}
	}
	return http.StatusInternalServerError, Error{Kind: "internal", Message: err.Error()}
}

// RemoteError is a failure the server reported that has no engine type.
type RemoteError struct {
	Status int
	Kind   string
	Msg    string
}

func (e *RemoteError) Error() string { return e.Msg }

// ErrServerShutdown matches a RemoteError of kind "shutdown".
var ErrServerShutdown = errors.New("store server shutting down")

// Is matches ErrServerShutdown (kind "shutdown") and engine.ErrDismounted
// (kind "dismounted": a transaction or call named a dismounted database).
func (e *RemoteError) Is(target error) bool {
	return target == ErrServerShutdown && e.Kind == "shutdown" || target == engine.ErrDismounted && e.Kind == "dismounted"
}

// FromWire rebuilds an error: an *engine.ESEError for kind "ese" (so
// errors.Is(err, engine.ErrBackupInProgress) holds), a *page.PageError for
// "page", a *RemoteError otherwise.
func FromWire(status int, e Error) error {
	switch e.Kind {
	case "ese":
		msg := e.Message
		// The message already carries group and code; keep it whole.
		if p := "storage group " + e.Group + ": "; strings.HasPrefix(msg, p) {
			msg = strings.TrimPrefix(msg, p)
			msg = strings.TrimSuffix(msg, fmt.Sprintf(" (%d)", e.Code))
		}
		return &engine.ESEError{Code: e.Code, Group: e.Group, Msg: msg}
	case "page":
		if e.Page != nil {
			return e.Page
		}
	}
	if e.Kind == "" {
		e.Kind = "internal"
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return &RemoteError{Status: status, Kind: e.Kind, Msg: e.Message}
}

// StatusError is a protocol-level failure with its HTTP status and kind.
type StatusError struct {
	Status int
	Kind   string
	Msg    string
}

func (e *StatusError) Error() string { return e.Msg }

// Errorf builds a *StatusError.
func Errorf(status int, kind, format string, args ...any) error {
	return &StatusError{Status: status, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// ReadTokenFile reads a bearer token (surrounding white space trimmed). The
// token must be at least 16 characters of printable ASCII.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || len(tok) > 4096 {
		return "", fmt.Errorf("token file %s: the token must be 16-4096 characters", path)
	}
	for _, r := range tok {
		if r < 0x21 || r > 0x7e {
			return "", fmt.Errorf("token file %s: the token must be printable ASCII without spaces", path)
		}
	}
	return tok, nil
}
