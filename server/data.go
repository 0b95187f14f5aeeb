package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/storeapi"
)

// The data API: the mail workload runs remotely through it
// (storeapi.RemoteStore is its client).

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
