package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tapestream/tapestream/catalog"
)

// writeTextfile writes the Prometheus textfile (node_exporter's textfile
// collector) from every job's state in the catalog, atomically (temp file
// + rename, as the collector requires).
func (r *Runner) writeTextfile(cat *catalog.Catalog) error {
	path := r.Config.Textfile
	if path == "" {
		return nil
	}
	states, err := cat.Jobs()
	if err != nil {
		return err
	}
	sets, err := cat.List(catalog.Filter{})
	if err != nil {
		return err
	}
	return WriteTextfile(path, states, GroupRestorePoints(sets), r.now())
}

// WriteTextfile writes the metrics of states, and the newest restore point
// of each storage group (and its age at now), to path atomically.
func WriteTextfile(path string, states []catalog.JobState, groups map[string]time.Time, now time.Time) error {
	sort.Slice(states, func(i, j int) bool { return states[i].Job < states[j].Job })
	var b bytes.Buffer
	metric := func(name, help, typ string, val func(st catalog.JobState) (float64, bool)) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, st := range states {
			if v, ok := val(st); ok {
				fmt.Fprintf(&b, "%s{job=%q} %s\n", name, st.Job, formatFloat(v))
			}
		}
	}
	ts := func(t time.Time) (float64, bool) { return float64(t.UnixNano()) / 1e9, !t.IsZero() }
	metric("tapestream_job_last_success_timestamp_seconds", "Time the job last finished successfully.", "gauge",
		func(st catalog.JobState) (float64, bool) { return ts(st.LastSuccess) })
	metric("tapestream_job_last_run_timestamp_seconds", "Time the job last started.", "gauge",
		func(st catalog.JobState) (float64, bool) { return ts(st.LastRun) })
	metric("tapestream_job_last_success", "1 if the job's last run succeeded, 0 if it failed.", "gauge",
		func(st catalog.JobState) (float64, bool) {
			if st.LastStatus == "success" {
				return 1, true
			}
			return 0, st.LastStatus != ""
		})
	metric("tapestream_job_last_duration_seconds", "Duration of the job's last run.", "gauge",
		func(st catalog.JobState) (float64, bool) { return st.DurationSeconds, !st.LastRun.IsZero() })
	metric("tapestream_job_last_bytes_read", "Bytes read by the job's last successful run.", "gauge",
		func(st catalog.JobState) (float64, bool) { return float64(st.BytesIn), !st.LastSuccess.IsZero() })
	metric("tapestream_job_last_bytes_written", "Bytes written (compressed) by the job's last successful run.", "gauge",
		func(st catalog.JobState) (float64, bool) { return float64(st.BytesOut), !st.LastSuccess.IsZero() })
	metric("tapestream_job_last_compression_ratio", "Compression ratio of the job's last successful run.", "gauge",
		func(st catalog.JobState) (float64, bool) { return st.Ratio, !st.LastSuccess.IsZero() })
	metric("tapestream_job_failures_total", "Failed runs of the job.", "counter",
		func(st catalog.JobState) (float64, bool) { return float64(st.Failures), true })
	metric("tapestream_job_runs_total", "Runs of the job.", "counter",
		func(st catalog.JobState) (float64, bool) { return float64(st.Runs), true })
	// The same age `tapestream status --max-age` checks, per group. Alert on
	// time() - the timestamp: the age below is as of the last run.
	var names []string
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	gmetric := func(name, help string, val func(t time.Time) float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
		for _, g := range names {
			fmt.Fprintf(&b, "%s{group=%q} %s\n", name, g, formatFloat(val(groups[g])))
		}
	}
	gmetric("tapestream_group_newest_restore_point_timestamp_seconds", "Time of the newest set the storage group can be restored to (its chain usable).",
		func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 })
	gmetric("tapestream_group_newest_restore_point_age_seconds", "Age of the newest restore point of the storage group when the file was written.",
		func(t time.Time) float64 { return now.Sub(t).Seconds() })
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// A temporary file of its own: daemon jobs finishing together each
	// write the textfile, and a shared ".tmp" could mix their bytes.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b.Bytes())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(f.Name(), 0o644)
	}
	if werr != nil {
		os.Remove(f.Name())
		return werr
	}
	return os.Rename(f.Name(), path)
}

func formatFloat(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", v)
}

// notify runs the notify command (sh -c) after a job, on success and on
// failure, with TAPESTREAM_JOB, TAPESTREAM_STATUS (success|failure),
// TAPESTREAM_LEVEL, TAPESTREAM_ERROR and TAPESTREAM_SETS in the
// environment and the job's JSON result on stdin. It gets a minute.
func (r *Runner) notify(ctx context.Context, j *Job, jr *JobResult) {
	cmdline := r.NotifyCmd
	if cmdline == "" {
		cmdline = j.NotifyCmd
	}
	if cmdline == "" {
		cmdline = r.Config.NotifyCmd
	}
	if cmdline == "" {
		return
	}
	data, _ := json.Marshal(jr)
	var sets []string
	for _, g := range jr.Groups {
		if g.SetID != "" {
			sets = append(sets, g.SetID)
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "TAPESTREAM_JOB="+j.Name, "TAPESTREAM_STATUS="+jr.Status, "TAPESTREAM_LEVEL="+jr.Level,
		"TAPESTREAM_ERROR="+jr.Error, "TAPESTREAM_SETS="+strings.Join(sets, " "))
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.log().Error("notify command failed", "job", j.Name, "err", err, "output", strings.TrimSpace(string(out)))
		return
	}
	r.log().Debug("notify command ran", "job", j.Name)
}
