package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine"
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

	// restoring are the groups being restored (guarded by mu): one
	// restore per group at a time, restores of different groups at once.
	restoring map[string]bool

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
	s := &Server{eng: eng, src: src, cfg: cfg, sessions: map[string]*session{}, stopC: make(chan struct{}), restoring: map[string]bool{}}
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
	m.HandleFunc("GET /v1/groups/{group}/pressure", s.handlePressure)
	m.HandleFunc("GET /v1/groups/{group}/logs", s.handleLogReport)
	m.HandleFunc("POST /v1/groups/{group}/databases/{db}/mount", s.handleMount)
	m.HandleFunc("POST /v1/groups/{group}/databases/{db}/dismount", s.handleMount)
	m.HandleFunc("POST /v1/groups/{group}/backup", s.handleBegin)
	m.HandleFunc("POST /v1/groups/{group}/get", s.handleGet)
	m.HandleFunc("POST /v1/groups/{group}/scan", s.handleScan)
	m.HandleFunc("POST /v1/groups/{group}/commit", s.handleCommit)
	m.HandleFunc("GET /v1/sessions/{id}/files", s.handleDatabaseFiles)
	m.HandleFunc("GET /v1/sessions/{id}/files/{name}", s.handleStream)
	m.HandleFunc("POST /v1/sessions/{id}/logs", s.handleLogs)
	m.HandleFunc("POST /v1/groups/{group}/truncate", s.handleTruncateAfter)
	m.HandleFunc("POST /v1/sessions/{id}/end", s.handleEnd)
	m.HandleFunc("POST /v1/sessions/{id}/abort", s.handleAbort)
	m.HandleFunc("POST /v1/sessions/{id}/keepalive", s.handleKeepalive)
	m.HandleFunc("GET /v1/sessions/{id}/hold", s.handleHold)
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
	p := g.Pressure()
	reply(w, storeapi.GroupStatus{Info: g.Info(), DatabaseSize: g.DatabaseSize(), CheckpointGen: g.CheckpointPos().Gen, CurrentGen: g.CurrentGen(), Backup: busy, Pressure: &p})
}

// handleLogReport explains the truncation of the group's logs
// (engine.Group.LogReport).
func (s *Server) handleLogReport(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	rep, err := g.LogReport()
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, rep)
}

// handleMount mounts or dismounts a database (engine.Group.Mount and
// Dismount: kept in the group's state, refused during a backup with -505,
// and during a restore of the group) and answers the group's info.
func (s *Server) handleMount(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	db := r.PathValue("db")
	if err := engine.ValidName(db); err != nil {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "database: %v", err))
		return
	}
	if !s.beginRestore(g.Name()) {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "busy", "a restore into storage group %s is in progress", g.Name()))
		return
	}
	defer s.endRestore(g.Name())
	mount := strings.HasSuffix(r.URL.Path, "/mount")
	if mount {
		err = g.Mount(db)
	} else {
		err = g.Dismount(db)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if mount {
		s.cfg.Logf("mounted database %s of storage group %s", db, g.Name())
	} else {
		s.cfg.Logf("dismounted database %s of storage group %s", db, g.Name())
	}
	reply(w, g.Info())
}

// handlePressure answers the commit pressure alone: a paced backup polls
// it several times a second.
func (s *Server) handlePressure(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, g.Pressure())
}
