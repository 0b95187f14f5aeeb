package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/storeapi"
)

// groupByName finds an engine group or a restored recovery group.
func (s *Server) groupByName(name string) (*engine.Group, error) {
	if g, err := s.eng.Group(name); err == nil {
		return g, nil
	}
	s.mu.Lock()
	g := s.extra[name]
	s.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("store %s has no storage group %q", s.eng.Root(), name)
	}
	return g, nil
}

// groups lists the engine's groups, then the restored recovery groups.
func (s *Server) groups() []*engine.Group {
	out := s.eng.Groups()
	s.mu.Lock()
	for _, n := range s.extraOrder {
		out = append(out, s.extra[n])
	}
	s.mu.Unlock()
	return out
}

func (s *Server) prepare() []engine.GroupInfo {
	var out []engine.GroupInfo
	for _, g := range s.groups() {
		out = append(out, g.Info())
	}
	return out
}

// closeExtra shuts the restored recovery groups down cleanly.
func (s *Server) closeExtra() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, n := range s.extraOrder {
		if err := s.extra[n].Close(); err != nil && first == nil {
			first = err
		}
	}
	s.extra, s.extraOrder = map[string]*engine.Group{}, nil
	return first
}

// handleRestore restores sets from the restore directory into a new
// recovery storage group: staged and recovered in a private directory
// under the store root (the live groups are not touched), then moved into
// place and mounted. A set path is resolved inside the restore directory
// only (no "..", no absolute path, no symlink out of it).
func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RestoreDir == "" {
		s.fail(w, storeapi.Errorf(http.StatusForbidden, "forbidden", "restore is disabled on this server (start it with a restore directory)"))
		return
	}
	var req storeapi.RestoreRequest
	if err := decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.fail(w, err)
		return
	}
	if len(req.Sets) == 0 || len(req.Sets) > 256 {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "give 1-256 sets"))
		return
	}
	if err := engine.ValidName(req.Group); err != nil {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "recovery group: %v", err))
		return
	}
	root, err := os.OpenRoot(s.cfg.RestoreDir)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer root.Close()
	var srcs []restore.SetSource
	for _, p := range req.Sets {
		if len(p) > 1024 || !filepath.IsLocal(p) {
			s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "set path %q must be relative to the restore directory and stay inside it", truncate(p, 100)))
			return
		}
		st, err := root.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "set %q is not a file inside the restore directory", truncate(p, 100)))
			return
		}
		srcs = append(srcs, restore.SetSource{Path: filepath.Join(s.cfg.RestoreDir, filepath.Clean(p))})
	}
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	if req.Replace {
		s.restoreOwned(w, r, srcs, req)
		return
	}
	if _, err := s.groupByName(req.Group); err == nil {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "exists", "storage group %s exists; restore into a new recovery group", req.Group))
		return
	}
	target := filepath.Join(s.eng.Root(), req.Group)
	if _, err := os.Lstat(target); err == nil {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "exists", "directory %s exists", target))
		return
	}
	if len(s.groups()) >= engine.MaxGroups {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "exists", "the store already holds %d storage groups", engine.MaxGroups))
		return
	}
	tmp, err := os.MkdirTemp(s.eng.Root(), ".serve-restore-")
	if err != nil {
		s.fail(w, err)
		return
	}
	defer os.RemoveAll(tmp)
	t0 := time.Now()
	res, err := restore.RestoreGroup(r.Context(), srcs, restore.GroupOptions{To: tmp, Group: req.Group, UntilGen: req.UntilGen})
	if err == nil && !res.Recovered {
		err = errors.New("the restored group was not recovered")
	}
	if err != nil {
		s.fail(w, fmt.Errorf("restore into recovery group %s: %w", req.Group, err))
		return
	}
	if err := os.Rename(filepath.Join(tmp, req.Group), target); err != nil {
		s.fail(w, err)
		return
	}
	g, err := engine.OpenGroup(target, engine.Options{})
	if err != nil {
		s.fail(w, fmt.Errorf("mounting restored group %s: %w", req.Group, err))
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		g.Close()
		s.fail(w, storeapi.Errorf(http.StatusServiceUnavailable, "shutdown", "store server shutting down"))
		return
	}
	s.extra[req.Group] = g
	s.extraOrder = append(s.extraOrder, req.Group)
	s.mu.Unlock()
	s.metrics.group(req.Group)
	s.cfg.Logf("restored %d set(s) into recovery group %s in %s", len(srcs), req.Group, time.Since(t0).Round(time.Millisecond))
	reply(w, storeapi.RestoreResponse{Result: res, Group: g.Info()})
}

// restoreOwned restores into a live group of the engine: dismount, restore
// in place under the server's own store lock, recover, mount.
func (s *Server) restoreOwned(w http.ResponseWriter, r *http.Request, srcs []restore.SetSource, req storeapi.RestoreRequest) {
	if _, err := s.eng.Group(req.Group); err != nil {
		s.fail(w, storeapi.Errorf(http.StatusNotFound, "not_found", "storage group %s is not a group of this store", req.Group))
		return
	}
	if err := s.eng.DetachGroup(req.Group); err != nil {
		s.fail(w, err)
		return
	}
	t0 := time.Now()
	res, rerr := restore.RestoreGroup(r.Context(), srcs, restore.GroupOptions{
		To: s.eng.Root(), Group: req.Group, UntilGen: req.UntilGen, Force: true, StoreLocked: true,
	})
	// Mount whatever is in place now: the restored group, or the old one
	// when the restore failed (a failed restore leaves it untouched).
	g, merr := s.eng.AttachGroup(req.Group)
	if rerr != nil {
		s.fail(w, fmt.Errorf("restore into storage group %s (the old group is mounted again): %w", req.Group, rerr))
		return
	}
	if merr != nil {
		s.fail(w, fmt.Errorf("mounting restored group %s: %w", req.Group, merr))
		return
	}
	s.cfg.Logf("restored %d set(s) into storage group %s in %s", len(srcs), req.Group, time.Since(t0).Round(time.Millisecond))
	reply(w, storeapi.RestoreResponse{Result: res, Group: g.Info()})
}
