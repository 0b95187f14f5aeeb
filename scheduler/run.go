package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/media/s3store"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/storeapi"
	"github.com/tapestream/tapestream/tapeformat"
)

// Runner runs configured jobs.
type Runner struct {
	Config *Config
	// Now is the clock (the scripted-week test injects one).
	Now func() time.Time
	Log *slog.Logger
	// Stderr receives operator prompts of tape drives.
	Stderr io.Writer
	// NotifyCmd overrides the configuration's notify_cmd.
	NotifyCmd string
	// Level forces the level of every job run ("" = the schedule's).
	Level string
	// DryRun plans (levels, promotions, destinations) without backing up.
	DryRun bool
	// MaxRate overrides every job's max_rate (bytes per second, 0 = the job's).
	MaxRate int64
	// OpenSource opens a job's source; nil means the store (in process)
	// or the store server of the job.
	OpenSource func(ctx context.Context, j *Job) (source.Source, error)
}

// GroupResult is the outcome of one storage group of a job.
type GroupResult struct {
	Group     string   `json:"group"`
	Requested string   `json:"requested_level"`
	Level     string   `json:"level"`
	Promoted  string   `json:"promoted,omitempty"`
	SetID     string   `json:"set_id,omitempty"`
	Parent    string   `json:"parent_set_id,omitempty"`
	Location  string   `json:"location,omitempty"`
	Status    string   `json:"status"` // success, failure, planned
	Error     string   `json:"error,omitempty"`
	BytesIn   int64    `json:"bytes_in"`
	BytesOut  int64    `json:"bytes_out"`
	Ratio     float64  `json:"ratio"`
	LowGen    uint32   `json:"log_first_generation,omitempty"`
	HighGen   uint32   `json:"log_last_generation,omitempty"`
	Truncated int      `json:"truncated_logs"`
	Expired   []string `json:"expired_sets,omitempty"`
	// DurationSeconds is the group's backup time.
	DurationSeconds float64 `json:"duration_seconds"`
	// Pace is the read rate chosen over time (pace = "auto"; shared by
	// the job's groups).
	Pace *pace.Summary `json:"pace,omitempty"`
	err  error
}

// JobResult is the outcome of one job.
type JobResult struct {
	Job     string    `json:"job"`
	Status  string    `json:"status"` // success, failure, locked, not-due, planned
	Level   string    `json:"level,omitempty"`
	Slot    time.Time `json:"slot,omitzero"`
	Started time.Time `json:"started"`
	// DurationSeconds is the job's wall time (docs/json.md: durations
	// are seconds).
	DurationSeconds float64       `json:"duration_seconds"`
	Error           string        `json:"error,omitempty"`
	Groups          []GroupResult `json:"groups,omitempty"`
	BytesIn         int64         `json:"bytes_in"`
	BytesOut        int64         `json:"bytes_out"`
	err             error
}

// Summary is the outcome of a run.
type Summary struct {
	Started time.Time   `json:"started"`
	DryRun  bool        `json:"dry_run,omitempty"`
	Jobs    []JobResult `json:"jobs"`
	OK      bool        `json:"ok"`
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Due reports whether job is due at now: the newest slot of its schedule
// is within the due window and was not run yet.
func (r *Runner) Due(cat *catalog.Catalog, j *Job, now time.Time) (ese.BackupType, time.Time, bool, error) {
	lvl, slot, ok := j.Schedule.LevelAt(now)
	if !ok {
		return "", time.Time{}, false, nil
	}
	st, err := cat.Job(j.Name)
	if err != nil {
		return "", time.Time{}, false, err
	}
	due := slot.After(now.Add(-r.Config.dueWindow)) && slot.After(st.LastSlot)
	return lvl, slot, due, nil
}

// Run runs the jobs due now, or the named job whatever its schedule. The
// error is the first failing job's (a *LockedError when a group was
// locked by another run).
func (r *Runner) Run(ctx context.Context, jobName string) (*Summary, error) {
	now := r.now()
	sum := &Summary{Started: now, DryRun: r.DryRun, OK: true}
	cat, err := catalog.Open(r.Config.Catalog)
	if err != nil {
		return sum, err
	}
	jobs := r.Config.Jobs
	if jobName != "" {
		j, err := r.Config.Job(jobName)
		if err != nil {
			return sum, err
		}
		jobs = []*Job{j}
	}
	var firstErr error
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		lvl, slot, due, err := r.Due(cat, j, r.now())
		if err != nil {
			return sum, err
		}
		if jobName == "" && !due {
			r.log().Debug("job not due", "job", j.Name)
			sum.Jobs = append(sum.Jobs, JobResult{Job: j.Name, Status: "not-due", Started: r.now()})
			continue
		}
		if slot.IsZero() {
			lvl = ese.Full
		}
		if r.Level != "" {
			if lvl, err = ParseLevel(r.Level); err != nil {
				return sum, err
			}
		}
		jr := r.RunJob(ctx, cat, j, lvl, slot)
		sum.Jobs = append(sum.Jobs, jr)
		if jr.err != nil {
			sum.OK = false
			if firstErr == nil {
				firstErr = jr.err
			}
		}
	}
	if !r.DryRun {
		if err := r.writeTextfile(cat); err != nil {
			r.log().Error("writing the textfile failed", "file", r.Config.Textfile, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return sum, firstErr
}

// sourceID identifies a job's source for the group locks.
func (j *Job) sourceID() string {
	if j.Store != "" {
		return "store:" + j.Store
	}
	return "server:" + j.Server
}

func (r *Runner) openSource(ctx context.Context, j *Job) (source.Source, error) {
	if r.OpenSource != nil {
		return r.OpenSource(ctx, j)
	}
	if j.Store != "" {
		return source.OpenLocal(j.Store, engine.Options{})
	}
	var tok string
	var err error
	if j.TokenFile != "" {
		if tok, err = storeapi.ReadTokenFile(j.TokenFile); err != nil {
			return nil, fmt.Errorf("job %s: token_file: %w", j.Name, err)
		}
	}
	ro := storeapi.RemoteOptions{Token: tok}
	if j.CAFile != "" {
		if ro.TLS, err = storeapi.LoadTLS(j.CAFile, "", ""); err != nil {
			return nil, err
		}
	}
	return storeapi.OpenRemote(j.Server, ro)
}

// RunJob runs one job at level (slot is the schedule slot it serves, zero
// for a forced run): every group is locked, backed up (concurrently,
// through one source), recorded and retention applied; the job's state,
// the textfile and the notification follow.
func (r *Runner) RunJob(ctx context.Context, cat *catalog.Catalog, j *Job, lvl ese.BackupType, slot time.Time) (jr JobResult) {
	start := r.now()
	t0 := time.Now()
	jr = JobResult{Job: j.Name, Level: lvl.String(), Slot: slot, Started: start}
	log := r.log().With("job", j.Name)
	defer func() { jr.DurationSeconds = time.Since(t0).Seconds() }()
	groups, gerr := r.jobGroups(ctx, j)
	if gerr != nil && r.DryRun {
		jr.Status, jr.Error, jr.err = "failure", gerr.Error(), gerr
		return jr
	}
	if r.DryRun {
		jr.Status = "planned"
		for _, g := range groups {
			sets, err := cat.List(catalog.Filter{Group: g})
			if err != nil {
				jr.err = err
				break
			}
			typ, reason := planLevel(sets, lvl)
			gr := GroupResult{Group: g, Requested: lvl.String(), Level: typ.String(), Promoted: reason, Status: "planned"}
			if j.IsTape() {
				gr.Location = j.Destination.Tape
			} else {
				gr.Location = j.FileName(g, typ, start, "SETID")
			}
			log.Info("planned", "group", g, "level", typ.String(), "requested", lvl.String(), "promoted", reason, "destination", gr.Location)
			jr.Groups = append(jr.Groups, gr)
		}
		return jr
	}
	var locks []*groupLock
	defer func() {
		for _, l := range locks {
			l.Release()
		}
	}()
	if gerr != nil {
		r.finishJob(ctx, cat, j, &jr, slot, start, t0, gerr, log)
		return jr
	}
	lockNames := groups
	if j.IsTape() {
		// One writer per drive: two jobs appending to the same tape would interleave.
		lockNames = append(append([]string(nil), lockNames...), tapeLock)
	}
	for _, g := range lockNames {
		id := j.sourceID()
		if g == tapeLock {
			id = "tape:" + media.BaseTarget(j.Destination.Tape)
		}
		l, err := LockGroup(r.Config.LockDir, j.Name, id, g)
		if err != nil {
			jr.Status, jr.Error, jr.err = "locked", err.Error(), err
			log.Error("job refused", "err", err)
			r.notify(ctx, j, &jr)
			return jr
		}
		locks = append(locks, l)
	}
	log.Info("job started", "level", lvl.String(), "slot", slot, "groups", strings.Join(groups, ","))
	src, err := r.openSource(ctx, j)
	if err == nil {
		defer src.Close()
		jr.Groups = r.backupGroups(ctx, cat, src, j, groups, lvl, log)
		for _, g := range jr.Groups {
			jr.BytesIn += g.BytesIn
			jr.BytesOut += g.BytesOut
			if g.err != nil && err == nil {
				err = fmt.Errorf("job %s: storage group %s: %w", j.Name, g.Group, g.err)
			}
		}
	} else {
		err = fmt.Errorf("job %s: opening the source: %w", j.Name, err)
	}
	r.finishJob(ctx, cat, j, &jr, slot, start, t0, err, log)
	return jr
}

// jobGroups resolves the job's groups against its store's (a store's
// group.json files, read without opening it; a server's list): every group
// for ["*"], and a configured group the store lacks is a *ConfigError.
func (r *Runner) jobGroups(ctx context.Context, j *Job) ([]string, error) {
	infos, err := r.storeGroups(ctx, j)
	if err != nil {
		return nil, fmt.Errorf("job %s: listing the storage groups of %s: %w", j.Name, j.SourceName(), err)
	}
	var have []string
	for _, gi := range infos {
		have = append(have, gi.Name)
	}
	groups, err := j.ResolveGroups(have)
	if err != nil {
		return nil, &ConfigError{Path: r.Config.Path, Problems: []string{err.Error()}}
	}
	return groups, nil
}

// storeGroups lists the storage groups of the job's store: an in-process
// store's group.json files (read without opening the store, which another
// process may hold), or the server's list.
func (r *Runner) storeGroups(ctx context.Context, j *Job) ([]engine.GroupInfo, error) {
	if j.Store != "" {
		cfgs, err := engine.ListGroups(j.Store)
		if err != nil {
			return nil, err
		}
		var out []engine.GroupInfo
		for _, c := range cfgs {
			out = append(out, engine.GroupInfo{ID: c.ID, Name: c.Name, Signature: c.Signature})
		}
		return out, nil
	}
	src, err := r.openSource(ctx, j)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return src.Prepare(ctx)
}

// finishJob records a job's outcome (its state in the catalog) and runs
// the notify command.
func (r *Runner) finishJob(ctx context.Context, cat *catalog.Catalog, j *Job, jr *JobResult, slot, start, t0 time.Time, err error, log *slog.Logger) {
	jr.Status = "success"
	if err != nil {
		jr.Status, jr.Error, jr.err = "failure", err.Error(), err
		log.Error("job failed", "err", err, "duration", time.Since(t0))
	} else {
		log.Info("job finished", "bytes_in", jr.BytesIn, "bytes_out", jr.BytesOut, "duration", time.Since(t0))
	}
	dur := time.Since(t0).Seconds()
	if uerr := cat.UpdateJob(j.Name, func(st *catalog.JobState) {
		if !slot.IsZero() {
			st.LastSlot = slot
		}
		st.LastRun = start
		st.LastStatus = jr.Status
		st.LastError = jr.Error
		st.DurationSeconds = dur
		st.Runs++
		if jr.err != nil {
			st.Failures++
			return
		}
		st.LastSuccess = start.Add(time.Since(t0))
		st.BytesIn, st.BytesOut = jr.BytesIn, jr.BytesOut
		st.Ratio = 0
		if jr.BytesOut > 0 {
			st.Ratio = float64(jr.BytesIn) / float64(jr.BytesOut)
		}
	}); uerr != nil {
		log.Error("recording the job state failed", "err", uerr)
	}
	r.notify(ctx, j, jr)
}

// planLevel decides the level from the catalog alone: an incremental or
// differential is promoted to full when the group has no full in the
// catalog or the newest full's chain is broken, and a differential is
// promoted when logs since the full were truncated: an incremental of that
// full truncated the logs it copied, or a later set starts above the
// full's last generation + 1. The engine refuses such a differential
// before reading anything (-528); Retry is the backstop for what the
// catalog does not know.
func planLevel(sets []*catalog.Set, want ese.BackupType) (ese.BackupType, string) {
	if want == ese.Full || want == ese.Copy {
		return want, ""
	}
	chains := catalog.Chains(sets)
	var newest *catalog.Chain
	for i := len(chains) - 1; i >= 0; i-- {
		if chains[i].Full != nil && chains[i].Full.Status != catalog.StatusFailed {
			newest = chains[i]
			break
		}
	}
	if newest == nil {
		return ese.Full, "no full backup of the group in the catalog"
	}
	if err := catalog.Usable(newest.Full); err != nil {
		return ese.Full, "the newest full's chain is broken: " + err.Error()
	}
	if want == ese.Differential {
		// A differential is its full plus every log since; an incremental
		// of that full deleted the logs it copied once its set was durable.
		f := newest.Full
		for _, m := range newest.Members {
			if m.Status != catalog.StatusComplete {
				continue
			}
			if m.Type == ese.Incremental {
				return ese.Full, fmt.Sprintf("incremental set %s (logs %d-%d) truncated the logs since full set %s (logs %d-%d) that a differential copies (ESE -528); a chain is a full + incrementals, or a full + one differential",
					short(m.ID), m.LowGen, m.HighGen, short(f.ID), f.LowGen, f.HighGen)
			}
			if m.LowGen > f.HighGen+1 {
				return ese.Full, fmt.Sprintf("logs %d-%d since full set %s were truncated (set %s starts at %d); a differential needs them (ESE -528)",
					f.HighGen+1, m.LowGen-1, short(f.ID), short(m.ID), m.LowGen)
			}
		}
	}
	return want, ""
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// errChain marks a promotion decided after the session began.
type errChain struct{ reason string }

func (e *errChain) Error() string { return e.reason }

// groupRun is the scheduler's state of one group's backup in a job.
type groupRun struct {
	gr     GroupResult
	sig    string
	sets   []*catalog.Set
	reason string // why the level was promoted
	rec    *catalog.Set
	res    *backup.Result
	start  time.Time
	log    *slog.Logger
	pace   *pace.Controller // shared by the job's groups
	// unlease releases the group's S3 lease (nil: none held).
	unlease func()
}

// backupGroups backs up every group of the job through one source
// (backup.RunGroups: concurrently to files, one after the other to a
// tape), records each set and applies retention.
func (r *Runner) backupGroups(ctx context.Context, cat *catalog.Catalog, src source.Source, j *Job, groups []string, want ese.BackupType, log *slog.Logger) []GroupResult {
	t0 := time.Now()
	runs := make([]*groupRun, len(groups))
	var reqs []backup.Request
	var idx []int
	infos, perr := src.Prepare(ctx)
	var pc *pace.Controller
	if j.Pace == "auto" {
		pc = pace.New(pace.Config{})
	}
	for i, g := range groups {
		gs := &groupRun{gr: GroupResult{Group: g, Requested: want.String(), Level: want.String()}, log: log.With("group", g), pace: pc}
		runs[i] = gs
		if perr != nil {
			gs.gr.err = perr
			continue
		}
		found := false
		for _, gi := range infos {
			if gi.Name == g {
				gs.sig, found = gi.Signature, true
			}
		}
		if !found {
			gs.gr.err = fmt.Errorf("the source has no storage group %s", g)
			continue
		}
		all, err := cat.List(catalog.Filter{Group: g})
		if err != nil {
			gs.gr.err = err
			continue
		}
		gs.sets = catalog.SameGroup(all, g, gs.sig)
		r.markMissing(cat, gs.sets, gs.log)
		typ, reason := planLevel(gs.sets, want)
		req, err := r.request(cat, j, gs, g, typ, reason)
		if err != nil {
			gs.gr.err = err
			continue
		}
		req.Retry = func(err error, prev backup.Request) (backup.Request, bool) {
			var ec *errChain
			typ := prev.Options.Type
			if typ == ese.Full {
				return prev, false
			}
			switch {
			case errors.As(err, &ec):
				reason = ec.reason
			case errors.Is(err, engine.ErrMissingLogFile):
				reason = "the engine refused the " + typ.String() + " for missing logs (-528): " + err.Error()
			case errors.Is(err, engine.ErrNoBackup):
				reason = "the engine has no full backup of the group (-520)"
			default:
				return prev, false
			}
			next, nerr := r.request(cat, j, gs, g, ese.Full, reason)
			return next, nerr == nil
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
	}
	outs := backup.RunGroups(ctx, src, reqs)
	for k, o := range outs {
		if pc != nil {
			runs[idx[k]].gr.Pace = pc.Summary()
		}
		r.finishGroup(cat, j, runs[idx[k]], o)
	}
	out := make([]GroupResult, len(runs))
	for i, gs := range runs {
		gs.gr.DurationSeconds = time.Since(t0).Seconds()
		if gs.gr.err != nil {
			gs.gr.Status, gs.gr.Error = "failure", gs.gr.err.Error()
		} else {
			gs.gr.Status = "success"
		}
		out[i] = gs.gr
	}
	return out
}

// request builds the backup of one group at typ: where it goes, the chain
// check once the session has begun, and the catalog record once the set
// is durable.
func (r *Runner) request(cat *catalog.Catalog, j *Job, gs *groupRun, group string, typ ese.BackupType, reason string) (backup.Request, error) {
	if reason != "" {
		gs.log.Warn("level promoted to full", "requested", gs.gr.Requested, "reason", reason)
	}
	gs.gr.Level, gs.gr.Promoted, gs.reason = typ.String(), reason, reason
	start := r.now()
	gs.start = start
	setID := tapeformat.NewSetID()
	fullID := ""
	if typ == ese.Full {
		fullID = setID
	}
	mo := media.Options{RecordSize: j.recordSize, VolumeSize: j.splitSize, NextVolumeCmd: j.Destination.NextVolumeCmd, Stderr: r.Stderr}
	loc := catalog.Location{Kind: "file"}
	var target, volLabel string
	switch {
	case j.IsTape():
		target = j.Destination.Tape
		mo.Append = true
		loc = catalog.Location{Kind: "tape", Target: media.BaseTarget(target)}
		mo.Labeler = r.labeler(cat, j, setID, start)
	case j.IsS3():
		target = j.FileName(group, typ, start, setID)
		loc = catalog.Location{Kind: "s3", Target: target}
		mo.S3 = j.s3Options(start)
	default:
		if err := os.MkdirAll(j.Destination.Dir, 0o755); err != nil {
			return backup.Request{}, err
		}
		target = j.FileName(group, typ, start, setID)
		loc.Target = target
	}
	maxRate := j.maxRate
	if r.MaxRate > 0 {
		maxRate = r.MaxRate
	}
	ix := catalog.NewIndex(gs.sets)
	opts := backup.Options{
		Type:        typ,
		Pipeline:    pipeline.Options{Codec: j.codec, Workers: j.Workers, MaxRate: maxRate, Pace: gs.pace},
		Media:       mo,
		SegmentSize: j.segmentSize,
		Recipients:  j.recipients,
		SetID:       setID,
		Now:         func() time.Time { return start },
		Check: func(sess source.Session) error {
			if typ == ese.Incremental || typ == ese.Differential {
				parent := sess.PreviousSetID()
				path, perr := ix.Path(parent)
				if perr != nil {
					return &errChain{fmt.Sprintf("the set the %s would continue (%s, from the database headers) is not usable: %v", typ, short(parent), perr)}
				}
				fullID = path[0].ID
			}
			if j.IsTape() {
				var err error
				if volLabel, err = r.prepareTape(cat, j, start); err != nil {
					return err
				}
			}
			if j.IsS3() && gs.unlease == nil {
				return r.leaseGroup(j, gs, group)
			}
			return nil
		},
		Recorder: backup.RecorderFunc(func(_ context.Context, res *backup.Result) error {
			rec := &catalog.Set{
				ID: res.SetID, Job: j.Name, Group: group, GroupSignature: gs.sig, Databases: res.Databases, Type: res.Type,
				Status: catalog.StatusComplete, Created: start.UTC(), LowGen: res.LowGen, HighGen: res.HighGen,
				ParentID: res.PreviousSetID, FullID: fullID, Codec: res.Codec, RecordSize: j.recordSize,
				BytesIn: res.BytesIn, BytesOut: res.BytesOut, Promoted: reason, Location: loc,
			}
			if e := res.Encryption; e != nil {
				rec.Encryption = &catalog.Encryption{Scheme: e.Scheme, Recipients: e.Recipients}
			}
			for _, f := range res.Files {
				rec.Files = append(rec.Files, catalog.File{Name: f.Name, Kind: f.Kind, Size: f.Size, BLAKE3: f.BLAKE3})
			}
			for i, v := range res.Volumes {
				if j.IsTape() {
					tv := catalog.TapeVolume{Number: v.Number, Name: v.Name, FileNumber: v.FileNumber, Bytes: v.Bytes, Label: v.Label, Loaded: v.Cartridge}
					if i == 0 && tv.Label == "" {
						tv.Label = volLabel
					}
					rec.Location.Tape = append(rec.Location.Tape, tv)
				} else {
					rec.Location.Paths = append(rec.Location.Paths, v.Name)
				}
			}
			gs.rec = rec
			if j.IsTape() {
				r.noteTapeVolumes(cat, rec.Location.Tape, start)
			}
			return cat.PutSet(rec)
		}),
	}
	return backup.Request{Group: group, Target: target, Options: opts}, nil
}

// leaseGroup takes the group's lease in the job's bucket (two archiver
// hosts sharing it never back up one group at once), keeps it renewed
// while the backup runs, and cleans up the uploads a killed run of this
// group left.
func (r *Runner) leaseGroup(j *Job, gs *groupRun, group string) error {
	ctx := context.Background()
	b, err := media.OpenBucket(ctx, j.Destination.S3, j.s3Options(r.now()))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s pid %d job %s", host, os.Getpid(), j.Name)
	ttl := j.Destination.S3Options.leaseTTL
	l, err := b.Lease(ctx, group, owner, ttl)
	if err != nil {
		if errors.Is(err, s3store.ErrLeaseHeld) {
			return &LockedError{Job: j.Name, Group: group, File: b.URL("leases/" + group), Held: err.Error()}
		}
		return err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := l.Renew(ctx); err != nil {
					gs.log.Error("renewing the group's S3 lease failed", "err", err)
				}
			}
		}
	}()
	gs.unlease = func() {
		close(stop)
		<-done
		if err := l.Release(ctx); err != nil {
			gs.log.Warn("releasing the group's S3 lease failed (it expires on its own)", "err", err)
		}
	}
	aborted, err := b.AbortPending(ctx, j.Name+"/"+group+"/")
	for _, a := range aborted {
		gs.log.Warn("aborted an unfinished upload a killed run left", "upload", a)
	}
	return err
}

// finishGroup records the outcome of one group's backup: a failed set,
// or the set written and then retention.
func (r *Runner) finishGroup(cat *catalog.Catalog, j *Job, gs *groupRun, o backup.Outcome) {
	gr, log := &gs.gr, gs.log
	if gs.unlease != nil {
		defer gs.unlease()
	}
	typ := o.Request.Options.Type
	if set := gs.rec; set != nil {
		gr.SetID, gr.Parent = set.ID, set.ParentID
		gr.Location = set.Location.Target
		if tv := set.Location.Tape; len(tv) > 0 {
			gr.Location += fmt.Sprintf(" (volume %q file %d)", tv[0].Label, tv[0].FileNumber)
		}
	}
	if res := o.Result; res != nil {
		gr.BytesIn, gr.BytesOut, gr.Ratio, gr.LowGen, gr.HighGen = res.BytesIn, res.BytesOut, res.Ratio, res.LowGen, res.HighGen
		gr.Truncated = len(res.Truncated)
	}
	if o.Err == nil && gs.rec == nil {
		o.Err = errors.New("the backup finished without recording its set")
	}
	if o.Err != nil && errors.Is(o.Err, ErrJobRunning) {
		gr.err = o.Err // another archiver holds the group: nothing was tried
		log.Warn("group skipped", "err", o.Err)
		return
	}
	if o.Err != nil {
		gr.err = o.Err
		if set := gs.rec; set == nil || set.Status != catalog.StatusComplete {
			fail := &catalog.Set{ID: tapeformat.NewSetID(), Job: j.Name, Group: gr.Group, GroupSignature: gs.sig, Type: typ,
				Status: catalog.StatusFailed, Created: r.now().UTC(), Error: o.Err.Error(), Promoted: gs.reason}
			if set != nil {
				fail = set
				fail.Status, fail.Error = catalog.StatusFailed, o.Err.Error()
			}
			if perr := cat.PutSet(fail); perr != nil {
				log.Error("recording the failed set failed", "err", perr)
			}
		}
		log.Error("backup failed", "level", typ.String(), "err", o.Err)
		return
	}
	set, res := gs.rec, o.Result
	log.Info("set written", "set", set.ID, "level", typ.String(), "parent", set.ParentID, "location", set.Location.Target,
		"logs", fmt.Sprintf("%d-%d", set.LowGen, set.HighGen), "bytes_in", set.BytesIn, "bytes_out", set.BytesOut, "ratio", fmt.Sprintf("%.2f", res.Ratio), "truncated_logs", len(res.Truncated))
	expired, err := r.applyRetention(cat, j, gr.Group, gs.sig)
	gr.Expired = expired
	if err != nil {
		gr.err = fmt.Errorf("retention: %w", err)
	}
	for _, id := range expired {
		log.Info("set expired", "set", id)
	}
}

// prepareTape makes sure the loaded cartridge is labelled for the job's
// pool (labelling a blank one when auto_label is on) and returns its
// label. A cartridge of another pool is refused before anything is written
// on it. (The label of a first cartridge names no set: the set that will
// be in its file 1 is not written yet, and says what it is itself.)
func (r *Runner) prepareTape(cat *catalog.Catalog, j *Job, now time.Time) (string, error) {
	d := j.Destination
	state, vl, err := media.ReadVolumeLabel(d.Tape, j.recordSize)
	if err != nil {
		return "", err
	}
	switch state {
	case media.ContentLabel:
		if vl.Pool != d.Pool {
			return "", fmt.Errorf("%w: job %s: the cartridge in %s is %s of pool %q; the job writes to pool %q: load a cartridge of that pool or a blank one (refused before writing)",
				media.ErrWrongCartridge, j.Name, d.Tape, vl.Label, vl.Pool, d.Pool)
		}
		if _, err := cat.GetVolume(vl.Label); errors.Is(err, catalog.ErrNotFound) {
			return vl.Label, cat.PutVolume(&catalog.Volume{Label: vl.Label, Target: media.BaseTarget(d.Tape), Number: media.LoadedVolume(d.Tape),
				Created: vl.Created, Pool: vl.Pool, Status: catalog.CartridgeAppend})
		}
		return vl.Label, nil
	case media.ContentBlank:
		if d.AutoLabel != nil && !*d.AutoLabel {
			return "", fmt.Errorf("tape %s is blank: label it first (tapestream tape label)", d.Tape)
		}
		label, err := NextLabel(cat, d.LabelPrefix)
		if err != nil {
			return "", err
		}
		if err := LabelTape(cat, d.Tape, label, d.Pool, j.recordSize, false, now); err != nil {
			return "", err
		}
		r.log().Info("labelled blank tape", "job", j.Name, "label", label, "tape", d.Tape)
		return label, nil
	case media.ContentSet:
		return "", fmt.Errorf("%w: job %s: the cartridge in %s has no volume label (it starts with a set: a continuation written before every cartridge was labelled); load a cartridge of pool %q or a blank one",
			media.ErrWrongCartridge, j.Name, d.Tape, d.Pool)
	}
	return "", fmt.Errorf("tape %s holds data that is not tapestream's; label it with `tapestream tape label --overwrite` to reuse it", d.Tape)
}

// labeler labels the cartridges a tape job's set continues on: blank ones
// get the pool's next label, and each is recorded in the catalog.
func (r *Runner) labeler(cat *catalog.Catalog, j *Job, setID string, start time.Time) *media.Labeler {
	d := j.Destination
	return &media.Labeler{
		Pool: d.Pool, SetID: setID, Now: func() time.Time { return start },
		Next: func() (string, error) {
			if d.AutoLabel != nil && !*d.AutoLabel {
				return "", nil // blank cartridges are refused
			}
			return NextLabel(cat, d.LabelPrefix)
		},
		Labelled: func(l media.VolumeLabel, cartridge int) error {
			if l.SetVolume == 0 {
				r.log().Info("labelled a cartridge for the set's first volume", "job", j.Name, "label", l.Label, "set", setID, "tape", d.Tape)
			} else {
				r.log().Info("labelled a continuation cartridge", "job", j.Name, "label", l.Label, "set", setID, "volume", l.SetVolume, "tape", d.Tape)
			}
			return cat.PutVolume(&catalog.Volume{Label: l.Label, Target: media.BaseTarget(d.Tape), Number: cartridge, Created: l.Created,
				Pool: l.Pool, Status: catalog.CartridgeAppend, LastUsed: start.UTC()})
		},
	}
}

// defaultLabelPrefix starts the labels of a pool without label_prefix.
const defaultLabelPrefix = "TS"

// NextLabel returns the next free label PREFIX0001, PREFIX0002, ...
func NextLabel(cat *catalog.Catalog, prefix string) (string, error) {
	if prefix == "" {
		prefix = defaultLabelPrefix
	}
	vols, err := cat.Volumes()
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	for _, v := range vols {
		have[v.Label] = true
	}
	for n := 1; ; n++ {
		l := fmt.Sprintf("%s%04d", prefix, n)
		if !have[l] {
			return l, nil
		}
	}
}

// LabelTape writes a volume label on the loaded volume of target and
// records the volume.
func LabelTape(cat *catalog.Catalog, target, label, pool string, recordSize int, overwrite bool, now time.Time) error {
	if label == "" || strings.ContainsAny(label, " /\\") {
		return fmt.Errorf("volume label %q: want a non-empty name without spaces or slashes", label)
	}
	if v, err := cat.GetVolume(label); err == nil && !overwrite {
		return fmt.Errorf("volume label %s is already used (labelled %s in %s)", label, v.Created.Format(time.RFC3339), v.Target)
	}
	if err := media.WriteVolumeLabel(target, media.VolumeLabel{Label: label, Pool: pool, Created: now.UTC()}, recordSize, overwrite); err != nil {
		return err
	}
	if overwrite {
		// Everything that was on the volume is gone.
		_ = cat.UpdateSets(func(s *catalog.Set) bool {
			if s.Location.Kind != "tape" || s.Status == catalog.StatusExpired || len(s.Location.Tape) == 0 || s.Location.Tape[0].Label != label {
				return false
			}
			s.Status, s.ExpiredAt = catalog.StatusExpired, now.UTC()
			return true
		})
	}
	return cat.PutVolume(&catalog.Volume{Label: label, Target: media.BaseTarget(target), Number: media.LoadedVolume(target), Created: now.UTC(), Pool: pool, Status: "append"})
}

// noteTapeVolumes records when the cartridges of a set were last written
// and marks those a set continued from as full.
func (r *Runner) noteTapeVolumes(cat *catalog.Catalog, vols []catalog.TapeVolume, now time.Time) {
	for i, tv := range vols {
		if tv.Label == "" {
			continue
		}
		v, err := cat.GetVolume(tv.Label)
		if err != nil {
			continue
		}
		v.LastUsed = now.UTC()
		if i < len(vols)-1 {
			v.Full, v.Status = true, catalog.CartridgeFull
			r.log().Info("tape cartridge full; the set continued on the next", "label", tv.Label)
		}
		_ = cat.PutVolume(v)
	}
}

// JobFor maps a scanned set to the job whose destination holds it.
func (c *Config) JobFor(s *catalog.Set) string {
	for _, j := range c.Jobs {
		if j.IsTape() {
			if s.Location.Kind == "tape" && media.BaseTarget(j.Destination.Tape) == s.Location.Target {
				return j.Name
			}
			continue
		}
		if j.IsS3() {
			if s.Location.Kind == "s3" && strings.HasPrefix(s.Location.Target, strings.TrimSuffix(j.Destination.S3, "/")+"/"+j.Name+"/") && (j.AllGroups() || containsGroup(j.Groups, s.Group)) {
				return j.Name
			}
			continue
		}
		if s.Location.Kind == "file" && filepath.Dir(s.Location.Target) == j.Destination.Dir && (j.AllGroups() || containsGroup(j.Groups, s.Group)) {
			return j.Name
		}
	}
	return ""
}

func containsGroup(gs []string, g string) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// markMissing records complete file sets whose files are gone as missing.
func (r *Runner) markMissing(cat *catalog.Catalog, sets []*catalog.Set, log *slog.Logger) {
	gone := map[string]bool{}
	for _, s := range sets {
		if s.Status == catalog.StatusComplete && !catalog.Present(s) {
			gone[s.ID] = true
			log.Warn("set files are missing", "set", s.ID, "type", s.Type, "paths", s.Location.Paths)
		}
	}
	if len(gone) == 0 {
		return
	}
	err := cat.UpdateSets(func(s *catalog.Set) bool {
		if !gone[s.ID] {
			return false
		}
		s.Status, s.Error = catalog.StatusMissing, "files missing: "+strings.Join(s.Location.Paths, ", ")
		return true
	})
	if err != nil {
		log.Error("recording missing sets failed", "err", err)
		return
	}
	for _, s := range sets {
		if gone[s.ID] {
			s.Status = catalog.StatusMissing
		}
	}
}
