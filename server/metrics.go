package server

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tapestream/tapestream/engine"
)

type groupMetrics struct {
	bytes       atomic.Int64
	commits     atomic.Int64
	commitBytes atomic.Int64
}

type metrics struct {
	mu              sync.Mutex
	groups          map[string]*groupMetrics
	sessionsStarted atomic.Int64
	bytes           atomic.Int64
	results         map[string]int64
}

func (m *metrics) group(name string) *groupMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[name]
	if g == nil {
		g = &groupMetrics{}
		m.groups[name] = g
	}
	return g
}

func (m *metrics) result(r string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.results == nil {
		m.results = map[string]int64{}
	}
	m.results[r]++
}

// handleMetrics writes the Prometheus text exposition format (0.0.4).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	s.mu.Lock()
	active := len(s.sessions)
	s.mu.Unlock()
	metric("tapestream_backup_sessions_active", "gauge", "Backup sessions open now.")
	fmt.Fprintf(&b, "tapestream_backup_sessions_active %d\n", active)
	metric("tapestream_backup_sessions_started_total", "counter", "Backup sessions begun.")
	fmt.Fprintf(&b, "tapestream_backup_sessions_started_total %d\n", s.metrics.sessionsStarted.Load())
	metric("tapestream_backup_sessions_ended_total", "counter", "Backup sessions ended, by result (success, aborted, failed, disconnected, timeout, shutdown).")
	s.metrics.mu.Lock()
	res := make([]string, 0, len(s.metrics.results))
	for k := range s.metrics.results {
		res = append(res, k)
	}
	sort.Strings(res)
	for _, k := range res {
		fmt.Fprintf(&b, "tapestream_backup_sessions_ended_total{result=%q} %d\n", k, s.metrics.results[k])
	}
	s.metrics.mu.Unlock()
	metric("tapestream_backup_bytes_streamed_total", "counter", "File bytes sent to backup clients.")
	fmt.Fprintf(&b, "tapestream_backup_bytes_streamed_total %d\n", s.metrics.bytes.Load())

	type row struct {
		name                   string
		bytes, commits, cbytes int64
		chk, cur               uint32
		size                   int64
		p                      engine.Pressure
	}
	var rows []row
	for _, g := range s.eng.Groups() {
		gm := s.metrics.group(g.Name())
		rows = append(rows, row{g.Name(), gm.bytes.Load(), gm.commits.Load(), gm.commitBytes.Load(), g.CheckpointPos().Gen, g.CurrentGen(), g.DatabaseSize(), g.Pressure()})
	}
	per := func(name, typ, help string, v func(row) int64) {
		metric(name, typ, help)
		for _, r := range rows {
			fmt.Fprintf(&b, "%s{group=%q} %d\n", name, r.name, v(r))
		}
	}
	per("tapestream_group_backup_bytes_streamed_total", "counter", "File bytes sent to backup clients, per storage group.", func(r row) int64 { return r.bytes })
	per("tapestream_group_commits_total", "counter", "Transactions committed through the data API.", func(r row) int64 { return r.commits })
	per("tapestream_group_commit_bytes_total", "counter", "Value bytes committed through the data API.", func(r row) int64 { return r.cbytes })
	per("tapestream_group_checkpoint_generation", "gauge", "Log generation of the checkpoint.", func(r row) int64 { return int64(r.chk) })
	per("tapestream_group_log_generation", "gauge", "Generation of the current log file.", func(r row) int64 { return int64(r.cur) })
	per("tapestream_group_database_bytes", "gauge", "Size of the group's database files.", func(r row) int64 { return r.size })
	perF := func(name, help string, v func(row) float64) {
		metric(name, "gauge", help)
		for _, r := range rows {
			fmt.Fprintf(&b, "%s{group=%q} %g\n", name, r.name, v(r))
		}
	}
	perF("tapestream_group_commit_latency_seconds", "Mean commit latency of the last second or so (each commit weighted by e^(-age/1s)).", func(r row) float64 { return r.p.EWMA.Seconds() })
	perF("tapestream_group_commit_latency_baseline_seconds", "Mean commit latency while no backup was running (weighted by e^(-age/30s)).", func(r row) float64 { return r.p.Baseline.Seconds() })
	per("tapestream_group_commits_in_flight", "gauge", "Commits in progress (the commit queue).", func(r row) int64 { return r.p.InFlight })
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}
