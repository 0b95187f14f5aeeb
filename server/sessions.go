package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/storeapi"
)

// Backup sessions: one per storage group being backed up, bound to the
// client identity that opened it, aborted when its client disconnects,
// stops reading or stays silent past the idle timeout.

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
	ended    chan struct{} // closed when the session ends or aborts
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
	se := &session{id: newID(), owner: identity(r), group: g.Name(), es: es, info: es.Group(), lastSeen: time.Now(), ended: make(chan struct{})}
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
	if !already {
		close(se.ended)
	}
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
	if !already {
		close(se.ended)
	}
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

// sessionCall runs one exclusive call of the request's session and
// replies with what it returns.
func (s *Server) sessionCall(w http.ResponseWriter, r *http.Request, call func(se *session) (any, error)) {
	se, release, err := s.session(r, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	out, err := call(se)
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, out)
}

func (s *Server) handleDatabaseFiles(w http.ResponseWriter, r *http.Request) {
	s.sessionCall(w, r, func(se *session) (any, error) {
		files, err := se.es.DatabaseFiles(r.Context())
		return storeapi.FilesResponse{Files: files, LowGen: se.es.LowGen(), HighGen: se.es.HighGen()}, err
	})
}

// handleLogs lists the logs after the forced rollover.
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	s.sessionCall(w, r, func(se *session) (any, error) {
		logs, err := se.es.LogFiles(r.Context())
		return storeapi.FilesResponse{Files: logs, LowGen: se.es.LowGen(), HighGen: se.es.HighGen()}, err
	})
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
	names, err := se.es.End(r.Context(), req.SetID, req.Truncate)
	if names == nil {
		names = []string{}
	}
	if err != nil {
		s.abortSession(se, err.Error(), "failed")
		s.fail(w, err)
		return
	}
	s.endSession(se, "success")
	reply(w, storeapi.TruncateResponse{Truncated: names})
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

// handleTruncateAfter truncates the logs a set that the client has
// verified made unnecessary (engine.Group.TruncateAfter).
func (s *Server) handleTruncateAfter(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	var req storeapi.TruncateRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	names, err := g.TruncateAfter(req.SetID)
	if err != nil {
		s.fail(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	s.cfg.Logf("truncated %d logs of %s after set %s", len(names), g.Name(), truncate(req.SetID, 64))
	reply(w, storeapi.TruncateResponse{Truncated: names})
}

// handleHold is the client's open line for the life of its session:
// GET /v1/sessions/{id}/hold answers at once and then holds the response
// open until the session ends. A client that dies (killed, its host gone)
// closes the connection, and its session is aborted then, not at the idle
// timeout: the group is free for the next backup at once.
func (s *Server) handleHold(w http.ResponseWriter, r *http.Request) {
	se, release, err := s.session(r, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	release()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	select {
	case <-se.ended:
	case <-s.stopC:
	case <-r.Context().Done():
		s.abortSession(se, "the backup client's connection closed", "disconnected")
	}
}
