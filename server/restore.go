package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/storeapi"
)

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
	chains, err := restore.Plan(srcs, restore.Options{})
	if err == nil && len(chains) != 1 {
		err = fmt.Errorf("the sets belong to %d storage groups; restore one group at a time", len(chains))
	}
	if err != nil {
		s.fail(w, storeapi.Errorf(http.StatusBadRequest, "bad_request", "%v", err))
		return
	}
	// One restore per group; restores of different groups run at the
	// same time (seed 003: "restore multiple instances in parallel").
	if !s.beginRestore(req.Group) {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "busy", "a restore into storage group %s is in progress", req.Group))
		return
	}
	defer s.endRestore(req.Group)
	if req.Replace {
		g, err := s.eng.Group(req.Group)
		if err != nil {
			s.fail(w, storeapi.Errorf(http.StatusNotFound, "not_found", "storage group %s is not a group of this store", req.Group))
			return
		}
		if liveRestorable(chains[0], g) {
			s.restoreDatabases(w, r, chains[0], req, g)
			return
		}
		s.restoreOwned(w, r, chains[0], req)
		return
	}
	if _, err := s.eng.Group(req.Group); err == nil {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "exists", "storage group %s exists; restore into a new recovery group", req.Group))
		return
	}
	target := filepath.Join(s.eng.Root(), req.Group)
	if _, err := os.Lstat(target); err == nil {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "exists", "directory %s exists", target))
		return
	}
	if len(s.eng.Groups()) >= engine.MaxGroups {
		s.fail(w, storeapi.Errorf(http.StatusConflict, "exists", "the store already holds %d storage groups", engine.MaxGroups))
		return
	}
	t0 := time.Now()
	// Staged and recovered beside the live groups under the server's own
	// store lock; the live groups are not touched.
	res, err := restore.RunChain(r.Context(), chains[0], restore.GroupOptions{To: s.eng.Root(), Group: req.Group, UntilGen: req.UntilGen, StoreLocked: true})
	if err == nil && !res.Recovered {
		err = errors.New("the restored group was not recovered")
	}
	if err != nil {
		s.fail(w, restoreErr(fmt.Errorf("restore into recovery group %s: %w", req.Group, err)))
		return
	}
	if s.isClosing() {
		s.fail(w, storeapi.Errorf(http.StatusServiceUnavailable, "shutdown", "store server shutting down"))
		return
	}
	g, err := s.eng.AttachGroup(req.Group)
	if err != nil {
		s.fail(w, fmt.Errorf("mounting restored group %s: %w", req.Group, err))
		return
	}
	s.metrics.group(req.Group)
	s.cfg.Logf("restored %d set(s) into recovery group %s in %s", len(srcs), req.Group, time.Since(t0).Round(time.Millisecond))
	reply(w, storeapi.RestoreResponse{Result: res, Group: g.Info()})
}

// restoreOwned restores into a live group of the engine: dismount, restore
// in place under the server's own store lock, recover, mount.
func (s *Server) restoreOwned(w http.ResponseWriter, r *http.Request, chain restore.Chain, req storeapi.RestoreRequest) {
	if _, err := s.eng.Group(req.Group); err != nil {
		s.fail(w, storeapi.Errorf(http.StatusNotFound, "not_found", "storage group %s is not a group of this store", req.Group))
		return
	}
	if err := s.eng.DetachGroup(req.Group); err != nil {
		s.fail(w, err)
		return
	}
	t0 := time.Now()
	res, rerr := restore.RunChain(r.Context(), chain, restore.GroupOptions{
		To: s.eng.Root(), Group: req.Group, UntilGen: req.UntilGen, Force: true, StoreLocked: true,
	})
	// Mount whatever is in place now: the restored group, or the old one
	// when the restore failed (a failed restore leaves it untouched).
	g, merr := s.eng.AttachGroup(req.Group)
	if rerr != nil {
		s.fail(w, restoreErr(fmt.Errorf("restore into storage group %s (the old group is mounted again): %w", req.Group, rerr)))
		return
	}
	if merr != nil {
		s.fail(w, fmt.Errorf("mounting restored group %s: %w", req.Group, merr))
		return
	}
	s.cfg.Logf("restored %d set(s) into storage group %s in %s", len(chain.Sets), req.Group, time.Since(t0).Round(time.Millisecond))
	reply(w, storeapi.RestoreResponse{Result: res, Group: g.Info()})
}

// liveRestorable reports whether the chain's sets hold databases of g (of
// its log stream): they are restored while the group keeps running (its
// other databases stay mounted and keep taking mail), rather than by
// dismounting the whole group.
func liveRestorable(c restore.Chain, g *engine.Group) bool {
	l := c.Sets[0].Label
	if l == nil || l.GroupSignature != g.Config().Signature || len(l.Databases) == 0 {
		return false
	}
	have := g.Databases()
	for _, n := range l.Databases {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}

// restoreDatabases restores databases of a live group (some or all of
// them): they are dismounted, restored and recovered through the group's
// logs to the point of failure, and mounted again, while the group keeps
// running and serving the others (restore.GroupOptions.Live). A failed
// restore mounts the old ones again.
func (s *Server) restoreDatabases(w http.ResponseWriter, r *http.Request, chain restore.Chain, req storeapi.RestoreRequest, g *engine.Group) {
	t0 := time.Now()
	res, err := restore.RunChain(r.Context(), chain, restore.GroupOptions{
		To: s.eng.Root(), Group: req.Group, UntilGen: req.UntilGen, Force: true, StoreLocked: true, Live: g,
	})
	if err != nil {
		s.fail(w, restoreErr(fmt.Errorf("restore of databases %s of storage group %s (the group kept running): %w", strings.Join(chain.Sets[0].Label.Databases, ", "), req.Group, err)))
		return
	}
	s.cfg.Logf("restored %s of storage group %s from %d set(s) in %s; the group kept running", strings.Join(res.Databases, ", "), req.Group, len(chain.Sets), time.Since(t0).Round(time.Millisecond))
	reply(w, storeapi.RestoreResponse{Result: res, Group: g.Info()})
}

// restoreErr gives a refused rollback its own kind (409 "rollback") and
// one that found its group busy 409 "busy", so a client can tell them
// from a failure.
func restoreErr(err error) error {
	var re *restore.RollbackError
	var gl *engine.GroupLockError
	switch {
	case errors.As(err, &re):
		return storeapi.Errorf(http.StatusConflict, "rollback", "%v", err)
	case errors.As(err, &gl):
		return storeapi.Errorf(http.StatusConflict, "busy", "%v", err)
	}
	return err
}

// beginRestore marks group as being restored; false if it already is.
func (s *Server) beginRestore(group string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restoring[group] {
		return false
	}
	s.restoring[group] = true
	return true
}

func (s *Server) endRestore(group string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.restoring, group)
}
