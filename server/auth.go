package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/tapestream/tapestream/storeapi"
)

// Authentication: the bearer token, compared in constant time, and the
// identity a backup session belongs to.

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
