package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	humanize "github.com/dustin/go-humanize"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/restore"
)

// Status is what `tapestream status` reports: per storage group what it
// can be restored to and from which sets, per job its last and next run,
// and every problem found, each named.
type Status struct {
	Now      time.Time     `json:"now"`
	Catalog  string        `json:"catalog"`
	Groups   []GroupStatus `json:"groups"`
	Jobs     []JobStatus   `json:"jobs"`
	Problems []Problem     `json:"problems"`
	// Verified is set when every restorable set was read back (--verify).
	Verified bool `json:"verified,omitempty"`
}

// GroupStatus is one storage group: the jobs that cover it, the newest
// chain of each, and the oldest and newest points it can be restored to
// (restore points are the sets whose chain back to their full is usable).
type GroupStatus struct {
	Group     string        `json:"group"`
	Signature string        `json:"signature,omitempty"`
	Jobs      []string      `json:"jobs"`
	Chains    []ChainStatus `json:"chains"`
	// OldestRestorePoint and NewestRestorePoint are zero when there is none.
	OldestRestorePoint time.Time `json:"oldest_restore_point,omitzero"`
	NewestRestorePoint time.Time `json:"newest_restore_point,omitzero"`
	// AgeSeconds is the age of the newest restore point (-1: there is none).
	AgeSeconds    float64 `json:"age_seconds"`
	RestorePoints int     `json:"restore_points"`
}

// ChainStatus is the newest full of a group written by a job and the sets
// chained on it, oldest first.
type ChainStatus struct {
	Job                string      `json:"job"`
	Sets               []SetStatus `json:"sets"`
	OldestRestorePoint time.Time   `json:"oldest_restore_point,omitzero"`
	NewestRestorePoint time.Time   `json:"newest_restore_point,omitzero"`
}

// SetStatus is one set in a status report.
type SetStatus struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	Created    time.Time `json:"created"`
	AgeSeconds float64   `json:"age_seconds"`
	LowGen     uint32    `json:"log_first_generation"`
	HighGen    uint32    `json:"log_last_generation"`
	Bytes      int64     `json:"bytes"` // stored
	BytesIn    int64     `json:"bytes_in"`
	Location   string    `json:"location"`
	Cartridges []string  `json:"cartridges,omitempty"`
	// RestorePoint: the set and its chain back to the full are usable.
	RestorePoint bool `json:"restore_point"`
}

// JobStatus is one job: its last run and its next.
type JobStatus struct {
	Job         string    `json:"job"`
	Groups      []string  `json:"groups"`
	Destination string    `json:"destination,omitempty"`
	Schedule    []string  `json:"schedule,omitempty"`
	LastRun     time.Time `json:"last_run,omitzero"`
	LastStatus  string    `json:"last_status,omitempty"` // success, failure, locked
	LastError   string    `json:"last_error,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Runs        int64     `json:"runs_total"`
	Failures    int64     `json:"failures_total"`
	NextRun     time.Time `json:"next_run,omitzero"`
	NextLevel   string    `json:"next_level,omitempty"`
}

// Problem kinds.
const (
	ProblemUncoveredGroup = "uncovered_group"   // a group of a store that no job backs up
	ProblemMissingGroup   = "missing_group"     // a job names a group its store does not have
	ProblemUnreachable    = "store_unreachable" // a job's store could not be listed
	ProblemExpiresNext    = "expires_next"      // the chain retention expires at the next full
	ProblemMediumGone     = "medium_gone"       // a set's files, cartridge or medium are gone
	ProblemShortOfSpace   = "short_of_space"    // a destination cannot hold the next full
	ProblemJobFailed      = "job_failed"        // a job's last run failed
	ProblemDamaged        = "damaged"           // --verify: a set failed verification
	ProblemTooOld         = "too_old"           // --max-age: the newest restore point is older
)

// Problem is one thing an operator should look at, named.
type Problem struct {
	Kind    string `json:"kind"`
	Group   string `json:"group,omitempty"`
	Job     string `json:"job,omitempty"`
	Set     string `json:"set,omitempty"`
	Message string `json:"message"`
}

// StatusOptions configure BuildStatus.
type StatusOptions struct {
	Now func() time.Time
	// MaxAge > 0 reports each group whose newest restore point is older
	// (or that has none) as ProblemTooOld.
	MaxAge time.Duration
	// Verify reads every set that is a restore point completely.
	Verify bool
	// Stderr receives tape prompts while verifying.
	Stderr io.Writer
	// Runner lists the jobs' stores (nil: a Runner of the configuration;
	// tests inject a source).
	Runner *Runner
}

// TooOldError is BuildStatus's error when --max-age found groups whose
// newest restore point is too old.
type TooOldError struct{ Problems []Problem }

func (e *TooOldError) Error() string {
	var msgs []string
	for _, p := range e.Problems {
		msgs = append(msgs, p.Message)
	}
	return strings.Join(msgs, "; ")
}

// DamagedError is BuildStatus's error when --verify found damaged sets.
type DamagedError struct{ Problems []Problem }

func (e *DamagedError) Error() string {
	var msgs []string
	for _, p := range e.Problems {
		msgs = append(msgs, p.Message)
	}
	return strings.Join(msgs, "; ")
}

type groupKey struct{ name, sig string }

// restorePoints reports, for every set, whether it is a restore point:
// complete, present, and its chain back to its full usable.
func restorePoints(sets []*catalog.Set) map[string]bool {
	out := map[string]bool{}
	byGroup := map[string][]*catalog.Set{}
	for _, s := range sets {
		byGroup[s.Group] = append(byGroup[s.Group], s)
	}
	for _, gs := range byGroup {
		ix := catalog.NewIndex(gs)
		for _, s := range gs {
			if s.Status != catalog.StatusComplete || s.Type == ese.Copy {
				continue
			}
			if _, err := ix.Path(s.ID); err == nil {
				out[s.ID] = true
			}
		}
	}
	return out
}

// groupKeys assigns each set to a group key: its name and signature; a set
// without a signature (written before they were recorded) joins the one
// group of its name.
func groupKeys(sets []*catalog.Set, extra []groupKey) map[*catalog.Set]groupKey {
	sigs := map[string]map[string]bool{}
	note := func(k groupKey) {
		if sigs[k.name] == nil {
			sigs[k.name] = map[string]bool{}
		}
		if k.sig != "" {
			sigs[k.name][k.sig] = true
		}
	}
	for _, s := range sets {
		note(groupKey{s.Group, s.GroupSignature})
	}
	for _, k := range extra {
		note(k)
	}
	out := map[*catalog.Set]groupKey{}
	for _, s := range sets {
		k := groupKey{s.Group, s.GroupSignature}
		if k.sig == "" && len(sigs[k.name]) == 1 {
			for sig := range sigs[k.name] {
				k.sig = sig
			}
		}
		out[s] = k
	}
	return out
}

// GroupRestorePoints returns the newest restore point of every storage
// group in the catalog (the Prometheus textfile carries its age).
func GroupRestorePoints(sets []*catalog.Set) map[string]time.Time {
	rp := restorePoints(sets)
	out := map[string]time.Time{}
	for _, s := range sets {
		if rp[s.ID] && s.Created.After(out[s.Group]) {
			out[s.Group] = s.Created
		}
	}
	return out
}

// storeListing is one store's groups as a job sees them.
type storeListing struct {
	source string // j.sourceID()
	groups []engine.GroupInfo
	err    error
}

// BuildStatus reports the state of every storage group and job: from the
// catalog, the configuration (nil: the catalog alone) and a cheap look at
// the stores and destinations. It returns a *TooOldError when MaxAge found
// groups too old, a *DamagedError when Verify found damaged sets.
func BuildStatus(ctx context.Context, cfg *Config, cat *catalog.Catalog, o StatusOptions) (*Status, error) {
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	st := &Status{Now: now.UTC(), Catalog: cat.Path, Groups: []GroupStatus{}, Jobs: []JobStatus{}, Problems: []Problem{}}
	sets, err := cat.List(catalog.Filter{})
	if err != nil {
		return nil, err
	}
	states, err := cat.Jobs()
	if err != nil {
		return nil, err
	}
	stateOf := map[string]catalog.JobState{}
	for _, s := range states {
		stateOf[s.Job] = s
	}
	problem := func(p Problem) { st.Problems = append(st.Problems, p) }

	// The configured jobs' groups, from their stores.
	r := o.Runner
	if r == nil {
		r = &Runner{Config: cfg}
	}
	listings := map[string]*storeListing{}
	jobGroups := map[string][]string{}
	var extra []groupKey
	covered := map[groupKey][]string{} // by name (signature from the store)
	if cfg != nil {
		for _, j := range cfg.Jobs {
			l := listings[j.sourceID()]
			if l == nil {
				l = &storeListing{source: j.sourceID()}
				lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				l.groups, l.err = r.storeGroups(lctx, j)
				cancel()
				listings[j.sourceID()] = l
				if l.err != nil {
					problem(Problem{Kind: ProblemUnreachable, Job: j.Name, Message: fmt.Sprintf("job %s: %s: %v", j.Name, j.SourceName(), l.err)})
				}
			}
			groups := j.Groups
			if l.err == nil {
				var have []string
				for _, gi := range l.groups {
					have = append(have, gi.Name)
				}
				if g, err := j.ResolveGroups(have); err != nil {
					problem(Problem{Kind: ProblemMissingGroup, Job: j.Name, Message: err.Error()})
					groups = nil
					for _, x := range j.Groups {
						if containsGroup(have, x) {
							groups = append(groups, x)
						}
					}
				} else {
					groups = g
				}
			} else if j.AllGroups() {
				groups = nil
			}
			jobGroups[j.Name] = groups
			for _, g := range groups {
				k := groupKey{name: g}
				for _, gi := range l.groups {
					if gi.Name == g {
						k.sig = gi.Signature
					}
				}
				extra = append(extra, k)
				covered[k] = append(covered[k], j.Name)
			}
		}
		var srcs []string
		for id := range listings {
			srcs = append(srcs, id)
		}
		sort.Strings(srcs)
		for _, id := range srcs {
			l := listings[id]
			for _, gi := range l.groups {
				k := groupKey{gi.Name, gi.Signature}
				if len(covered[k]) == 0 {
					extra = append(extra, k)
					problem(Problem{Kind: ProblemUncoveredGroup, Group: gi.Name,
						Message: fmt.Sprintf("storage group %s of %s is backed up by no job (add it to a job's groups, or groups = [\"*\"])", gi.Name, strings.Replace(id, ":", " ", 1))})
				}
			}
		}
	}

	keys := groupKeys(sets, extra)
	rp := restorePoints(sets)
	byKey := map[groupKey][]*catalog.Set{}
	var order []groupKey
	seen := map[groupKey]bool{}
	addKey := func(k groupKey) {
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	for _, k := range extra {
		addKey(k)
	}
	for _, s := range sets {
		k := keys[s]
		addKey(k)
		byKey[k] = append(byKey[k], s)
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].name != order[j].name {
			return order[i].name < order[j].name
		}
		return order[i].sig < order[j].sig
	})
	ambiguous := map[string]int{}
	for _, k := range order {
		ambiguous[k.name]++
	}
	for _, k := range order {
		gs := GroupStatus{Group: k.name, Signature: k.sig, Jobs: []string{}, Chains: []ChainStatus{}, AgeSeconds: -1}
		label := k.name
		if ambiguous[k.name] > 1 && k.sig != "" {
			label = fmt.Sprintf("%s (%s)", k.name, short(k.sig))
		}
		jobs := append([]string(nil), covered[k]...)
		if k.sig != "" {
			jobs = append(jobs, covered[groupKey{name: k.name}]...)
		}
		for _, s := range byKey[k] {
			if s.Job != "" && !containsGroup(jobs, s.Job) && s.Status != catalog.StatusExpired {
				jobs = append(jobs, s.Job)
			}
		}
		sort.Strings(jobs)
		gs.Jobs = append(gs.Jobs, jobs...)
		for _, s := range byKey[k] {
			if !rp[s.ID] {
				continue
			}
			gs.RestorePoints++
			if gs.OldestRestorePoint.IsZero() || s.Created.Before(gs.OldestRestorePoint) {
				gs.OldestRestorePoint = s.Created.UTC()
			}
			if s.Created.After(gs.NewestRestorePoint) {
				gs.NewestRestorePoint = s.Created.UTC()
			}
		}
		if !gs.NewestRestorePoint.IsZero() {
			gs.AgeSeconds = now.Sub(gs.NewestRestorePoint).Seconds()
		}
		for _, job := range jobs {
			var js []*catalog.Set
			for _, s := range byKey[k] {
				if s.Job == job {
					js = append(js, s)
				}
			}
			chains := catalog.Chains(js)
			for i := len(chains) - 1; i >= 0; i-- {
				c := chains[i]
				if c.Full == nil || c.Full.Status == catalog.StatusExpired || c.Full.Status == catalog.StatusFailed {
					continue
				}
				cs := ChainStatus{Job: job}
				for _, s := range c.Sets() {
					if s.Status == catalog.StatusExpired {
						continue
					}
					cs.Sets = append(cs.Sets, setStatus(s, now, rp[s.ID]))
					if rp[s.ID] {
						if cs.OldestRestorePoint.IsZero() {
							cs.OldestRestorePoint = s.Created.UTC()
						}
						cs.NewestRestorePoint = s.Created.UTC()
					}
				}
				gs.Chains = append(gs.Chains, cs)
				break
			}
		}
		if o.MaxAge > 0 && (gs.NewestRestorePoint.IsZero() || now.Sub(gs.NewestRestorePoint) > o.MaxAge) {
			msg := fmt.Sprintf("storage group %s has no restore point", label)
			if !gs.NewestRestorePoint.IsZero() {
				msg = fmt.Sprintf("storage group %s: newest restore point %s is %s old (--max-age %s)", label, gs.NewestRestorePoint.Format(time.RFC3339),
					FormatAge(now.Sub(gs.NewestRestorePoint)), FormatAge(o.MaxAge))
			}
			problem(Problem{Kind: ProblemTooOld, Group: k.name, Message: msg})
		}
		st.Groups = append(st.Groups, gs)
	}

	// Jobs: configured ones in order, then those only the catalog knows.
	known := map[string]bool{}
	if cfg != nil {
		for _, j := range cfg.Jobs {
			known[j.Name] = true
			js := JobStatus{Job: j.Name, Groups: jobGroups[j.Name], Schedule: j.Schedule.Specs()}
			if js.Groups == nil {
				js.Groups = []string{}
			}
			js.Destination = j.Destination.Dir
			if j.IsTape() {
				js.Destination = j.Destination.Tape
			}
			if next := j.Schedule.NextRuns(now, 1); len(next) > 0 {
				js.NextRun, js.NextLevel = next[0].Time, next[0].Level.String()
			}
			fillJobState(&js, stateOf[j.Name])
			st.Jobs = append(st.Jobs, js)
		}
	}
	for _, s := range states {
		if !known[s.Job] {
			js := JobStatus{Job: s.Job, Groups: []string{}}
			fillJobState(&js, s)
			st.Jobs = append(st.Jobs, js)
		}
	}
	for _, js := range st.Jobs {
		if js.LastStatus != "" && js.LastStatus != "success" {
			problem(Problem{Kind: ProblemJobFailed, Job: js.Job, Message: fmt.Sprintf("job %s: last run %s %s: %s", js.Job, js.LastRun.Format(time.RFC3339), js.LastStatus, js.LastError)})
		}
	}

	// Sets whose medium is gone.
	for _, s := range sets {
		if s.Status != catalog.StatusComplete && s.Status != catalog.StatusMissing {
			continue
		}
		if why := mediumGone(s); why != "" {
			problem(Problem{Kind: ProblemMediumGone, Group: s.Group, Job: s.Job, Set: s.ID,
				Message: fmt.Sprintf("%s set %s of %s (%s): %s", s.Type, s.ID, s.Group, s.Created.UTC().Format(time.RFC3339), why)})
		}
	}

	if cfg != nil {
		for _, j := range cfg.Jobs {
			expiresNext(st, j, jobGroups[j.Name], sets, now, problem)
			if !j.IsTape() {
				shortOfSpace(j, jobGroups[j.Name], sets, problem)
			}
		}
	}

	if o.Verify {
		st.Verified = true
		var damaged []Problem
		for _, s := range sets {
			if !rp[s.ID] {
				continue
			}
			if p := verifySet(ctx, cfg, s, o.Stderr); p != nil {
				damaged = append(damaged, *p)
				problem(*p)
			}
		}
		if len(damaged) > 0 {
			return st, &DamagedError{damaged}
		}
	}
	var old []Problem
	for _, p := range st.Problems {
		if p.Kind == ProblemTooOld {
			old = append(old, p)
		}
	}
	if len(old) > 0 {
		return st, &TooOldError{old}
	}
	return st, nil
}

func fillJobState(js *JobStatus, s catalog.JobState) {
	js.LastRun, js.LastStatus, js.LastError, js.LastSuccess, js.Runs, js.Failures = s.LastRun, s.LastStatus, s.LastError, s.LastSuccess, s.Runs, s.Failures
}

func setStatus(s *catalog.Set, now time.Time, restorePoint bool) SetStatus {
	ss := SetStatus{ID: s.ID, Type: s.Type.String(), Status: s.Status, Created: s.Created.UTC(), AgeSeconds: now.Sub(s.Created).Seconds(),
		LowGen: s.LowGen, HighGen: s.HighGen, Bytes: s.BytesOut, BytesIn: s.BytesIn, RestorePoint: restorePoint}
	ss.Location, ss.Cartridges = DescribeLocation(s.Location)
	return ss
}

// DescribeLocation says where a set is, for people: the file (and how many
// split volumes), or the cartridges and the file the set starts at.
func DescribeLocation(l catalog.Location) (string, []string) {
	switch l.Kind {
	case "tape":
		if len(l.Tape) == 0 {
			return l.Target, nil
		}
		var labels []string
		for _, tv := range l.Tape {
			lbl := tv.Label
			if lbl == "" {
				lbl = "(unlabelled)"
			}
			labels = append(labels, lbl)
		}
		s := fmt.Sprintf("%s file %d", labels[0], l.Tape[0].FileNumber)
		if len(labels) > 1 {
			s += " … " + labels[len(labels)-1] + fmt.Sprintf(" (%d cartridges)", len(labels))
		}
		return s, labels
	case "file":
		if len(l.Paths) > 1 {
			return fmt.Sprintf("%s (%d volumes)", l.Target, len(l.Paths)), nil
		}
	}
	return l.Target, nil
}

// mediumGone is the cheap existence check of a set's location (and
// copies): every file of a file set; the cartridge image of an emulated
// tape. Real cartridges and objects are trusted (reading them is
// --verify's job). "" when the set is there.
func mediumGone(s *catalog.Set) string {
	var whys []string
	for _, l := range append([]catalog.Location{s.Location}, s.Copies...) {
		why := ""
		switch l.Kind {
		case "file":
			var gone []string
			for _, p := range l.Paths {
				if _, err := os.Stat(p); err != nil {
					gone = append(gone, p)
				}
			}
			if len(l.Paths) == 0 {
				why = "no files recorded"
			} else if len(gone) > 0 {
				why = "files gone: " + strings.Join(gone, ", ")
			}
		case "tape":
			if !strings.HasPrefix(l.Target, media.EmulatedPrefix) {
				break
			}
			t, err := media.ParseEmulatedSpec(l.Target)
			if err != nil {
				break
			}
			var gone []string
			for _, tv := range l.Tape {
				if tv.Loaded > 0 {
					if _, err := os.Stat(t.VolumePath(tv.Loaded)); err != nil {
						gone = append(gone, fmt.Sprintf("cartridge %d (%s)", tv.Loaded, tv.Label))
					}
				}
			}
			if len(gone) > 0 {
				why = "emulated cartridges gone: " + strings.Join(gone, ", ")
			}
		}
		if why == "" {
			return ""
		}
		whys = append(whys, why)
	}
	return strings.Join(whys, "; ")
}

// expiresNext names the chain of each group of a job that retention
// expires when the job's next full is written.
func expiresNext(st *Status, j *Job, groups []string, sets []*catalog.Set, now time.Time, problem func(Problem)) {
	keep := j.Retention.KeepFullChains
	if keep <= 0 {
		return
	}
	nextFull := ""
	for _, s := range j.Schedule.NextRuns(now, 400) {
		if s.Level == ese.Full {
			nextFull = " (next scheduled full: " + s.Time.UTC().Format(time.RFC3339) + ")"
			break
		}
	}
	for _, g := range groups {
		var js []*catalog.Set
		for _, s := range sets {
			if s.Job == j.Name && s.Group == g {
				js = append(js, s)
			}
		}
		var valid []*catalog.Chain
		for _, c := range catalog.Chains(js) {
			if c.Valid() {
				valid = append(valid, c)
			}
		}
		if len(valid) < keep {
			continue
		}
		c := valid[len(valid)-keep]
		var ids []string
		for _, s := range c.Sets() {
			if s.Status != catalog.StatusExpired {
				ids = append(ids, short(s.ID))
			}
		}
		problem(Problem{Kind: ProblemExpiresNext, Group: g, Job: j.Name, Set: c.Full.ID,
			Message: fmt.Sprintf("job %s: the chain of %s's full set %s of %s (%d set(s): %s) expires when the next full is written (keep_full_chains = %d)%s",
				j.Name, g, short(c.Full.ID), c.Full.Created.UTC().Format(time.RFC3339), len(ids), strings.Join(ids, " "), keep, nextFull)})
	}
}

// shortOfSpace reports a file destination whose free space is less than
// the job's next full needs, at the size of the last full of each group
// (retention frees older chains only after the new full is written).
func shortOfSpace(j *Job, groups []string, sets []*catalog.Set, problem func(Problem)) {
	var need int64
	var parts []string
	for _, g := range groups {
		var last *catalog.Set
		for _, s := range sets {
			if s.Job == j.Name && s.Group == g && s.Type == ese.Full && s.Status == catalog.StatusComplete {
				last = s // sets are oldest first
			}
		}
		if last != nil {
			need += last.BytesOut
			parts = append(parts, fmt.Sprintf("%s %s", g, humanize.IBytes(uint64(last.BytesOut))))
		}
	}
	if need == 0 {
		return
	}
	dir := j.Destination.Dir
	for {
		if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	free, err := freeSpace(dir)
	if err != nil || free < 0 {
		return
	}
	if free < need {
		problem(Problem{Kind: ProblemShortOfSpace, Job: j.Name,
			Message: fmt.Sprintf("job %s: destination %s has %s free; the next full needs about %s (the last full of %s)",
				j.Name, j.Destination.Dir, humanize.IBytes(uint64(free)), humanize.IBytes(uint64(need)), strings.Join(parts, ", "))})
	}
}

// verifySet reads a set completely (asking for its cartridges by label)
// and returns the problem found, if any.
func verifySet(ctx context.Context, cfg *Config, s *catalog.Set, stderr io.Writer) *Problem {
	loc, _ := catalog.Available(s)
	src := restore.SetSource{Path: loc.Target}
	mo := media.Options{RecordSize: s.RecordSize, Stderr: stderr}
	if loc.Kind == "tape" && len(loc.Tape) > 0 {
		src.Path, src.FileNumber = media.WithVolume(loc.Target, loc.Tape[0].Loaded), int(loc.Tape[0].FileNumber)
		src.Expect = media.ExpectedSet{SetID: s.ID}
		for _, tv := range loc.Tape {
			src.Expect.Labels = append(src.Expect.Labels, tv.Label)
		}
		if cfg != nil {
			if j, err := cfg.Job(s.Job); err == nil {
				mo.NextVolumeCmd = j.Destination.NextVolumeCmd
			}
		}
	}
	infos, _, err := restore.Verify(ctx, []restore.SetSource{src}, restore.Options{Sink: mo})
	what := ""
	switch {
	case err != nil:
		what = err.Error()
	case len(infos) == 0:
		what = "nothing read"
	case len(infos[0].Problems) > 0:
		what = fmt.Sprintf("%d problem(s), the first: %s", len(infos[0].Problems), infos[0].Problems[0])
	case infos[0].Label.SetID != s.ID:
		what = "the medium holds set " + infos[0].Label.SetID
	default:
		return nil
	}
	return &Problem{Kind: ProblemDamaged, Group: s.Group, Job: s.Job, Set: s.ID,
		Message: fmt.Sprintf("%s set %s of %s (%s): %s", s.Type, s.ID, s.Group, s.Created.UTC().Format(time.RFC3339), what)}
}

// FormatAge writes a duration the way the status table shows ages:
// 45m, 26h, 3d4h.
func FormatAge(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + FormatAge(-d)
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	days := int(d / (24 * time.Hour))
	h := int((d - time.Duration(days)*24*time.Hour) / time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}
