package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/storeapi"
)

// Config configures a store server.
type Config struct {
	// Token every request but /healthz must present as
	// "Authorization: Bearer TOKEN". Empty: see NoAuth.
	Token string
	// NoAuth serves without a token (loopback tests only). Without Token
	// and without NoAuth every request but /healthz is refused.
	NoAuth bool
	// SessionIdleTimeout aborts a backup session nobody called for this
	// long (default 60s). Clients send keepalives while they work.
	SessionIdleTimeout time.Duration
	// MaxBodyBytes bounds a control request body (default 1 MiB);
	// MaxCommitBytes a commit (default 96 MiB: a 64 MiB value in base64).
	MaxBodyBytes   int64
	MaxCommitBytes int64
	// MaxScanEntries bounds one page of a scan (default 1000) and
	// MaxScanBytes its payload (default 8 MiB).
	MaxScanEntries int
	MaxScanBytes   int
	// RestoreDir is the directory whose backup sets POST /v1/restore may
	// restore into new recovery groups; empty disables restore.
	RestoreDir string
	// Logf receives one line per notable event (session start/end/abort).
	Logf func(format string, args ...any)
	// Source serves the backup sessions (default: the engine in process,
	// source.NewLocal).
	Source source.Source
}

func (c *Config) fill() {
	if c.SessionIdleTimeout <= 0 {
		c.SessionIdleTimeout = 60 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxCommitBytes <= 0 {
		c.MaxCommitBytes = 96 << 20
	}
	if c.MaxScanEntries <= 0 {
		c.MaxScanEntries = 1000
	}
	if c.MaxScanBytes <= 0 {
		c.MaxScanBytes = 8 << 20
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Server serves one open engine store over HTTP.
type Server struct {
	eng   *engine.Server
	src   source.Source // backup sessions
	cfg   Config
	mux   *http.ServeMux
	token [32]byte

	mu       sync.Mutex
	sessions map[string]*session
	closing  bool
	// untold are the sessions Shutdown aborted whose clients have not yet
	// had an answer saying so; closed when one has.
	untold   map[string]chan struct{}
	stopC    chan struct{}
	reaperWG sync.WaitGroup
	httpSrv  *http.Server

	restoreMu sync.Mutex // one restore at a time

	metrics metrics
}

// New serves eng. The caller keeps ownership of eng (close it after
// Shutdown).
func New(eng *engine.Server, cfg Config) *Server {
	cfg.fill()
	src := cfg.Source
	if src == nil {
		src = source.NewLocal(eng)
	}
	s := &Server{eng: eng, src: src, cfg: cfg, sessions: map[string]*session{}, stopC: make(chan struct{})}
	s.token = sha256.Sum256([]byte(cfg.Token))
	s.metrics.groups = map[string]*groupMetrics{}
	for _, g := range eng.Groups() {
		s.metrics.groups[g.Name()] = &groupMetrics{}
	}
	s.routes()
	s.reaperWG.Add(1)
	go s.reaper()
	return s
}

// Handler is the server's HTTP handler (authentication included).
func (s *Server) Handler() http.Handler { return s }

// Serve accepts connections on ln until Shutdown. With tlsCfg the
// connections are TLS (HTTP/2 negotiated by ALPN).
func (s *Server) Serve(ln net.Listener, tlsCfg *tls.Config) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.httpSrv = hs
	s.mu.Unlock()
	if tlsCfg != nil {
		hs.TLSConfig = tlsCfg.Clone()
		if len(hs.TLSConfig.NextProtos) == 0 {
			hs.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		}
		return hs.ServeTLS(ln, "", "")
	}
	return hs.Serve(ln)
}

// Shutdown stops the server gracefully: new requests are refused with
// 503, every backup session is aborted (checkpoint unfrozen, nothing
// truncated, headers untouched; a client streaming a file gets an error
// frame), then in-flight requests are waited for until ctx is done (then
// cut). Recovery groups restored through the server are closed; the
// engine is not (the caller closes it).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.stopC)
	sess := make([]*session, 0, len(s.sessions))
	s.untold = map[string]chan struct{}{}
	var told []chan struct{}
	for _, se := range s.sessions {
		sess = append(sess, se)
		c := make(chan struct{})
		s.untold[se.id], told = c, append(told, c)
	}
	hs := s.httpSrv
	s.mu.Unlock()
	for _, se := range sess {
		s.abortSession(se, "store server shutting down", "shutdown")
	}
	s.reaperWG.Wait()
	// Keep answering (503, "shutting down") until every aborted session's
	// client has been told, or shutdownGrace: a client between two
	// requests would otherwise find the port closed and could only say
	// "connection refused".
	// At most half of what is left of ctx: the in-flight requests still
	// need time to finish.
	g := shutdownGrace
	if dl, ok := ctx.Deadline(); ok {
		g = min(g, time.Until(dl)/2)
	}
	grace := time.NewTimer(g)
	defer grace.Stop()
wait:
	for _, c := range told {
		select {
		case <-c:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	var err error
	if hs != nil {
		if err = hs.Shutdown(ctx); err != nil {
			// A client that stopped reading holds its handler: cut it.
			hs.Close()
		}
	}
	return err
}

// shutdownGrace bounds how long Shutdown waits for the clients of aborted
// sessions to come back and be told.
var shutdownGrace = 3 * time.Second

// toldIfSession records that the client of the session r names had its
// answer.
func (s *Server) toldIfSession(r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/sessions/")
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.untold[id]; ok {
		close(c)
		delete(s.untold, id)
	}
}

// identity is who a request comes from: the TLS client certificate when
// there is one, else the bearer token, else the peer's address.
func identity(r *http.Request) [32]byte {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return sha256.Sum256(append([]byte("cert:"), r.TLS.PeerCertificates[0].Raw...))
	}
	if tok, ok := bearer(r); ok {
		return sha256.Sum256([]byte("token:" + tok))
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return sha256.Sum256([]byte("addr:" + host))
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
		return h[len(p):], true
	}
	return "", false
}

// ServeHTTP authenticates and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		s.health(w, r)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tapestream"`)
		s.fail(w, storeapi.Errorf(http.StatusUnauthorized, "auth", "missing or wrong bearer token"))
		return
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		s.fail(w, storeapi.Errorf(http.StatusServiceUnavailable, "shutdown", "store server shutting down"))
		s.toldIfSession(r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return s.cfg.NoAuth
	}
	tok, ok := bearer(r)
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1 && ok
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if closing {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "shutting down\n")
		return
	}
	io.WriteString(w, "ok\n")
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /metrics", s.handleMetrics)
	m.HandleFunc("GET /v1/groups", s.handleGroups)
	m.HandleFunc("GET /v1/groups/{group}", s.handleGroup)
	m.HandleFunc("POST /v1/groups/{group}/backup", s.handleBegin)
	m.HandleFunc("POST /v1/groups/{group}/get", s.handleGet)
	m.HandleFunc("POST /v1/groups/{group}/scan", s.handleScan)
	m.HandleFunc("POST /v1/groups/{group}/commit", s.handleCommit)
	m.HandleFunc("GET /v1/sessions/{id}/files", s.handleDatabaseFiles)
	m.HandleFunc("GET /v1/sessions/{id}/files/{name}", s.handleStream)
	m.HandleFunc("POST /v1/sessions/{id}/logs", s.handleLogs)
	m.HandleFunc("POST /v1/sessions/{id}/truncate", s.handleTruncate)
	m.HandleFunc("POST /v1/sessions/{id}/end", s.handleEnd)
	m.HandleFunc("POST /v1/sessions/{id}/abort", s.handleAbort)
	m.HandleFunc("POST /v1/sessions/{id}/keepalive", s.handleKeepalive)
	m.HandleFunc("POST /v1/restore", s.handleRestore)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, storeapi.Errorf(http.StatusNotFound, "not_found", "no such endpoint: %s %s", r.Method, truncate(r.URL.Path, 200)))
	})
	s.mux = m
}

func truncate(str string, n int) string {
	if len(str) > n {
		return str[:n] + "..."
	}
	return str
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	st, e := storeapi.ToWire(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(st)
	json.NewEncoder(w).Encode(storeapi.ErrorBody{Error: e})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// decode reads a bounded JSON body into v, refusing unknown fields and
// trailing data.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return storeapi.Errorf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", limit)
		}
		if err == io.EOF {
			return storeapi.Errorf(http.StatusBadRequest, "bad_request", "empty request body")
		}
		return storeapi.Errorf(http.StatusBadRequest, "bad_request", "invalid request body: %v", err)
	}
	if dec.More() {
		return storeapi.Errorf(http.StatusBadRequest, "bad_request", "trailing data after the request body")
	}
	return nil
}

// group resolves the {group} path value.
func (s *Server) group(r *http.Request) (*engine.Group, error) {
	name := r.PathValue("group")
	if err := engine.ValidName(name); err != nil {
		return nil, storeapi.Errorf(http.StatusBadRequest, "bad_request", "storage group: %v", err)
	}
	g, err := s.eng.Group(name)
	if err != nil {
		return nil, storeapi.Errorf(http.StatusNotFound, "not_found", "%v", err)
	}
	return g, nil
}

func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request) {
	infos, err := s.src.Prepare(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, infos)
}

func (s *Server) handleGroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.mu.Lock()
	s.mu.Unlock()
	busy := g.BackupInProgress()
	reply(w, storeapi.GroupStatus{Info: g.Info(), DatabaseSize: g.DatabaseSize(), CheckpointGen: g.CheckpointPos().Gen, CurrentGen: g.CurrentGen(), Backup: busy})
}

// ---- backup sessions ----

type session struct {
	id    string
	owner [32]byte
	group string
	es    source.Session
	info  engine.GroupInfo

	op sync.Mutex // one call at a time (keepalive and abort excepted)

	mu       sync.Mutex
	lastSeen time.Time
	active   int
	done     bool
}

func (se *session) touch(delta int) {
	se.mu.Lock()
	se.active += delta
	se.lastSeen = time.Now()
	se.mu.Unlock()
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func (s *Server) handleBegin(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	var req storeapi.BeginRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	typ, err := ese.ParseBackupType(req.Type)
	if err != nil {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "%v", err))
		return
	}
	if len(req.Databases) > 64 {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "too many databases (%d)", len(req.Databases)))
		return
	}
	for _, d := range req.Databases {
		if err := engine.ValidName(d); err != nil {
			s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "database: %v", err))
			return
		}
	}
	es, err := s.src.Begin(r.Context(), g.Name(), typ, req.Databases)
	if err != nil {
		s.fail(w, err)
		return
	}
	se := &session{id: newID(), owner: identity(r), group: g.Name(), es: es, info: es.Group(), lastSeen: time.Now()}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		es.Abort(errors.New("store server shutting down"))
		s.fail(w, storeapi.Errorf(http.StatusServiceUnavailable, "shutdown", "store server shutting down"))
		return
	}
	s.sessions[se.id] = se
	s.mu.Unlock()
	s.metrics.sessionsStarted.Add(1)
	s.cfg.Logf("session %s: %s backup of %s started by %s", se.id[:8], typ, g.Name(), r.RemoteAddr)
	reply(w, storeapi.BeginResponse{
		Session: se.id, Type: typ.String(), Group: se.info, Databases: es.Databases(),
		PreviousSetID: es.PreviousSetID(), LowGen: es.LowGen(), IdleTimeoutMS: s.cfg.SessionIdleTimeout.Milliseconds(),
	})
}

// session finds the {id} session and checks it belongs to the caller.
// The returned release must be called when the call is done.
func (s *Server) session(r *http.Request, exclusive bool) (*session, func(), error) {
	id := r.PathValue("id")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, nil, storeapi.Errorf(http.StatusBadRequest, "bad_request", "invalid session id")
	}
	s.mu.Lock()
	se := s.sessions[id]
	s.mu.Unlock()
	if se == nil {
		return nil, nil, storeapi.Errorf(http.StatusNotFound, "not_found", "no backup session %s (ended, aborted or timed out)", id)
	}
	owner := identity(r)
	if subtle.ConstantTimeCompare(owner[:], se.owner[:]) != 1 {
		return nil, nil, storeapi.Errorf(http.StatusForbidden, "forbidden", "backup session %s belongs to another client", id)
	}
	se.touch(1)
	if exclusive {
		se.op.Lock()
	}
	return se, func() {
		if exclusive {
			se.op.Unlock()
		}
		se.touch(-1)
	}, nil
}

// abortSession aborts and forgets a session (idempotent).
func (s *Server) abortSession(se *session, reason, result string) {
	s.mu.Lock()
	_, ok := s.sessions[se.id]
	delete(s.sessions, se.id)
	s.mu.Unlock()
	se.es.Abort(errors.New(reason))
	se.mu.Lock()
	already := se.done
	se.done = true
	se.mu.Unlock()
	if ok && !already {
		s.metrics.result(result)
		s.cfg.Logf("session %s: backup of %s aborted: %s", se.id[:8], se.group, reason)
	}
}

func (s *Server) endSession(se *session, result string) {
	s.mu.Lock()
	_, ok := s.sessions[se.id]
	delete(s.sessions, se.id)
	s.mu.Unlock()
	se.mu.Lock()
	already := se.done
	se.done = true
	se.mu.Unlock()
	if ok && !already {
		s.metrics.result(result)
		s.cfg.Logf("session %s: backup of %s ended: %s", se.id[:8], se.group, result)
	}
}

// reaper aborts sessions idle past the timeout.
func (s *Server) reaper() {
	defer s.reaperWG.Done()
	iv := max(s.cfg.SessionIdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.stopC:
			return
		case <-t.C:
		}
		now := time.Now()
		var idle []*session
		s.mu.Lock()
		for _, se := range s.sessions {
			se.mu.Lock()
			if se.active == 0 && now.Sub(se.lastSeen) > s.cfg.SessionIdleTimeout {
				idle = append(idle, se)
			}
			se.mu.Unlock()
		}
		s.mu.Unlock()
		for _, se := range idle {
			s.abortSession(se, fmt.Sprintf("no call from the backup client for %s", s.cfg.SessionIdleTimeout), "timeout")
		}
	}
}

func (s *Server) handleDatabaseFiles(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	files, err := se.es.DatabaseFiles(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, storeapi.FilesResponse{Files: files, LowGen: se.es.LowGen(), HighGen: se.es.HighGen()})
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	logs, err := se.es.LogFiles(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, storeapi.FilesResponse{Files: logs, LowGen: se.es.LowGen(), HighGen: se.es.HighGen()})
}

func (s *Server) handleTruncate(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	names, err := se.es.Truncate(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	reply(w, storeapi.TruncateResponse{Truncated: names})
}

func (s *Server) handleEnd(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	var req storeapi.EndRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	if len(req.SetID) > 128 {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "set id over 128 bytes"))
		return
	}
	if !req.Success {
		s.abortSession(se, "aborted by the backup client", "aborted")
		reply(w, struct{}{})
		return
	}
	if err := se.es.End(r.Context(), true, req.SetID); err != nil {
		s.abortSession(se, err.Error(), "failed")
		s.fail(w, err)
		return
	}
	s.endSession(se, "success")
	reply(w, struct{}{})
}

func (s *Server) handleAbort(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	var req storeapi.AbortRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	reason := "aborted by the backup client"
	if req.Reason != "" {
		reason += ": " + truncate(req.Reason, 512)
	}
	s.abortSession(se, reason, "aborted")
	reply(w, struct{}{})
}

func (s *Server) handleKeepalive(w http.ResponseWriter, r *http.Request) {
	_, release, err := s.session(r, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	release()
	reply(w, struct{}{})
}

// streamBuffers recycles chunk buffers of file streams.
var streamBuffers = sync.Pool{New: func() any { b := make([]byte, 5+engine.ChunkSize); return &b }}

// handleStream sends one file as frames: Start, Data per 64 KiB chunk,
// then End or Error. The engine reads (and verifies) the next chunk while
// the previous one is on the wire. A client that goes away mid-stream
// aborts the session.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	name := r.PathValue("name")
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "invalid file name"))
		return
	}
	fr, err := se.es.OpenFile(r.Context(), name)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer fr.Close()
	start, _ := json.Marshal(storeapi.FileStart{File: fr.Info(), Size: fr.Size(), Header: fr.HeaderSnapshot()})
	w.Header().Set("Content-Type", "application/x-tapestream-frames")
	w.WriteHeader(http.StatusOK)
	// Frames go straight to the connection: a data frame is one write
	// of the pooled buffer (header and chunk contiguous), no copy.
	bw := bufio.NewWriterSize(w, 64)
	gm := s.metrics.group(se.group)

	// Read ahead: the engine reads into a small ring while the writer
	// sends.
	type chunk struct {
		buf *[]byte
		n   int
		err error
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	chunks := make(chan chunk, 4)
	go func() {
		defer close(chunks)
		for {
			bp := streamBuffers.Get().(*[]byte)
			n, err := fr.Read((*bp)[5:])
			select {
			case chunks <- chunk{bp, n, err}:
			case <-ctx.Done():
				streamBuffers.Put(bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// On return, wait for the reader goroutine before fr.Close runs.
	defer func() {
		cancel()
		for c := range chunks {
			streamBuffers.Put(c.buf)
		}
	}()

	// A client that stops reading (but keeps the connection) is silent
	// too: every write must make progress within the idle timeout.
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.cfg.SessionIdleTimeout)) }
	defer rc.SetWriteDeadline(time.Time{})
	deadline()
	clientGone := func(err error) {
		s.abortSession(se, fmt.Sprintf("backup client went away while reading %s: %v", name, err), "disconnected")
	}
	if err := storeapi.WriteFrame(bw, storeapi.FrameStart, start); err != nil {
		clientGone(err)
		return
	}
	var total int64
	for c := range chunks {
		if c.err == io.EOF {
			streamBuffers.Put(c.buf)
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(total))
			if err := storeapi.WriteFrame(bw, storeapi.FrameEnd, b[:]); err == nil {
				err = bw.Flush()
				if err != nil {
					clientGone(err)
				}
			} else {
				clientGone(err)
			}
			return
		}
		if c.err != nil {
			streamBuffers.Put(c.buf)
			_, e := storeapi.ToWire(c.err)
			if s.isClosing() {
				e.Kind = "shutdown"
				// The client reading this stream is told.
				defer s.toldIfSession(r)
			}
			body, _ := json.Marshal(storeapi.ErrorBody{Error: e})
			storeapi.WriteFrame(bw, storeapi.FrameError, body)
			bw.Flush()
			return
		}
		deadline()
		b := *c.buf
		b[0] = storeapi.FrameData
		binary.BigEndian.PutUint32(b[1:5], uint32(c.n))
		_, err := bw.Write(b[:5+c.n])
		streamBuffers.Put(c.buf)
		if err == nil {
			err = r.Context().Err()
		}
		if err != nil {
			clientGone(err)
			return
		}
		total += int64(c.n)
		gm.bytes.Add(int64(c.n))
		s.metrics.bytes.Add(int64(c.n))
		se.touch(0)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// ---- data API ----

func validTable(db, table string) error {
	if err := engine.ValidName(db); err != nil {
		return storeapi.Errorf(http.StatusBadRequest, "bad_request", "database: %v", err)
	}
	if table == "" || len(table) > engine.MaxKeyLen {
		return storeapi.Errorf(http.StatusBadRequest, "bad_request", "table name must be 1-%d bytes", engine.MaxKeyLen)
	}
	return nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	var req storeapi.GetRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	if err := validTable(req.DB, req.Table); err != nil {
		s.fail(w, err)
		return
	}
	if len(req.Key) > engine.MaxKeyLen {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "key over %d bytes", engine.MaxKeyLen))
		return
	}
	var resp storeapi.GetResponse
	err = g.View(func(tx *engine.Tx) error {
		var err error
		resp.Value, resp.Found, err = tx.Get(req.DB, req.Table, req.Key)
		return err
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, resp)
}

var errScanFull = errors.New("scan page full")

func (s *Server) handleScan(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	var req storeapi.ScanRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	if err := validTable(req.DB, req.Table); err != nil {
		s.fail(w, err)
		return
	}
	if len(req.Start) > engine.MaxKeyLen+1 {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "start key over %d bytes", engine.MaxKeyLen+1))
		return
	}
	limit := req.Limit
	if limit <= 0 || limit > s.cfg.MaxScanEntries {
		limit = s.cfg.MaxScanEntries
	}
	resp := storeapi.ScanResponse{Entries: []storeapi.KV{}}
	size := 0
	err = g.View(func(tx *engine.Tx) error {
		return tx.Scan(req.DB, req.Table, req.Start, func(k, v []byte) error {
			if len(resp.Entries) >= limit || (size > 0 && size+len(k)+len(v) > s.cfg.MaxScanBytes) {
				resp.More = true
				return errScanFull
			}
			resp.Entries = append(resp.Entries, storeapi.KV{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
			size += len(k) + len(v)
			return nil
		})
	})
	if err != nil && !errors.Is(err, errScanFull) && !errors.Is(err, engine.ErrNoTable) {
		s.fail(w, err)
		return
	}
	reply(w, resp)
}

func (s *Server) handleCommit(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	// The body must arrive in bounded time (no server-wide ReadTimeout:
	// it would cancel long file streams).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(5 * time.Minute))
	var req storeapi.CommitRequest
	if err := decode(w, r, s.cfg.MaxCommitBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	n := 0
	for _, wr := range req.Writes {
		if err := validTable(wr.DB, wr.Table); err != nil {
			s.fail(w, err)
			return
		}
		if len(wr.Key) == 0 || len(wr.Key) > engine.MaxKeyLen {
			s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "key must be 1-%d bytes", engine.MaxKeyLen))
			return
		}
		n += len(wr.Value)
	}
	err = g.Update(func(tx *engine.Tx) error {
		for _, wr := range req.Writes {
			var err error
			if wr.Delete {
				err = tx.Delete(wr.DB, wr.Table, wr.Key)
			} else {
				err = tx.Put(wr.DB, wr.Table, wr.Key, wr.Value)
			}
			if err != nil {
				return storeapi.Errorf(http.StatusBadRequest, "bad_request", "%v", err)
			}
		}
		return nil
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(req.Writes) > 0 {
		gm := s.metrics.group(g.Name())
		gm.commits.Add(1)
		gm.commitBytes.Add(int64(n))
	}
	reply(w, struct{}{})
}
