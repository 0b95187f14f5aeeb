package scheduler

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/tapestream/tapestream/ese"
)

// Schedule is a job's level schedule: the weekday shorthand (at, full,
// differential, incremental) or cron lines "SPEC LEVEL", not both. Without
// either, the job runs a full on Sunday and an incremental on the other
// days, at 01:00.
type Schedule struct {
	// At is the time of day (local, HH:MM) of the shorthand schedule.
	// Default: "01:00"
	// Example: "01:30"
	At string `toml:"at"`
	// Full are the weekdays (sun, mon, ...) of full backups; "*" or
	// "daily": every day not named by another level.
	// Default: ["sun"] when no level is named
	// Example: ["sun"]
	Full []string `toml:"full"`
	// Differential are the weekdays of differential backups (every log
	// since the full; truncates nothing).
	// Example: ["wed"]
	Differential []string `toml:"differential"`
	// Incremental are the weekdays of incremental backups (the logs since
	// the last set; truncates them).
	// Default: every day not named by full or differential
	// Example: ["mon", "tue", "thu", "fri", "sat"]
	Incremental []string `toml:"incremental"`
	// Cron are lines "MIN HOUR DOM MON DOW LEVEL" or "@daily LEVEL",
	// instead of the shorthand; the highest level wins when several fire
	// at once.
	// Example: ["30 1 * * 0 full", "30 1 * * 1-6 incremental"]
	Cron []string `toml:"cron"`

	entries []entry
}

type entry struct {
	spec  string
	sched cron.Schedule
	level ese.BackupType
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var weekdays = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

// ParseLevel parses a backup level (full, incremental/incr, differential/diff, copy).
func ParseLevel(s string) (ese.BackupType, error) {
	switch strings.ToLower(s) {
	case "incr", "inc":
		s = "incremental"
	case "diff":
		s = "differential"
	}
	return ese.ParseBackupType(strings.ToLower(s))
}

func (s *Schedule) compile() error {
	s.entries = nil
	if len(s.Cron) > 0 {
		if s.At != "" || len(s.Full)+len(s.Differential)+len(s.Incremental) > 0 {
			return errors.New("schedule: give cron lines or the at/full/differential/incremental shorthand, not both")
		}
		for _, line := range s.Cron {
			f := strings.Fields(line)
			if len(f) < 2 {
				return fmt.Errorf("schedule cron %q: want \"SPEC LEVEL\", e.g. \"0 2 * * 0 full\"", line)
			}
			lvl, err := ParseLevel(f[len(f)-1])
			if err != nil {
				return fmt.Errorf("schedule cron %q: %w", line, err)
			}
			spec := strings.Join(f[:len(f)-1], " ")
			sc, err := cronParser.Parse(spec)
			if err != nil {
				return fmt.Errorf("schedule cron %q: %w", line, err)
			}
			s.entries = append(s.entries, entry{spec: spec, sched: sc, level: lvl})
		}
		return nil
	}
	at := s.At
	if at == "" {
		at = "01:00"
	}
	hh, mm, ok := strings.Cut(at, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return fmt.Errorf("schedule at %q: want HH:MM", s.At)
	}
	used := map[int]ese.BackupType{}
	days := func(names []string, lvl ese.BackupType) ([]int, error) {
		var out []int
		for _, n := range names {
			n = strings.ToLower(strings.TrimSpace(n))
			if n == "*" || n == "daily" {
				for d := 0; d < 7; d++ {
					if _, taken := used[d]; !taken {
						out = append(out, d)
						used[d] = lvl
					}
				}
				continue
			}
			d, ok := weekdays[n]
			if !ok {
				return nil, fmt.Errorf("schedule: %q is not a weekday (sun, mon, ...)", n)
			}
			if prev, taken := used[d]; taken {
				return nil, fmt.Errorf("schedule: %s is both %s and %s", n, prev, lvl)
			}
			used[d] = lvl
			out = append(out, d)
		}
		return out, nil
	}
	full, diff, incr := s.Full, s.Differential, s.Incremental
	if len(full)+len(diff)+len(incr) == 0 {
		full = []string{"sun"}
	}
	if len(incr) == 0 {
		incr = []string{"*"}
	}
	for _, lv := range []struct {
		names []string
		level ese.BackupType
	}{{full, ese.Full}, {diff, ese.Differential}, {incr, ese.Incremental}} {
		ds, err := days(lv.names, lv.level)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			continue
		}
		var parts []string
		for _, d := range ds {
			parts = append(parts, strconv.Itoa(d))
		}
		spec := fmt.Sprintf("%d %d * * %s", m, h, strings.Join(parts, ","))
		sc, err := cronParser.Parse(spec)
		if err != nil {
			return err
		}
		s.entries = append(s.entries, entry{spec: spec, sched: sc, level: lv.level})
	}
	return nil
}

// Specs lists the compiled cron lines ("SPEC LEVEL").
func (s *Schedule) Specs() []string {
	var out []string
	for _, e := range s.entries {
		out = append(out, e.spec+" "+e.level.String())
	}
	return out
}

func levelRank(t ese.BackupType) int {
	switch t {
	case ese.Full:
		return 3
	case ese.Differential:
		return 2
	case ese.Incremental:
		return 1
	}
	return 0
}

// grace lets a timer that fires a little early still find its slot.
const grace = 5 * time.Minute

// LevelAt returns the newest schedule slot at or before now (+ a few
// minutes' grace) and its level; when several entries fire at that
// time the highest level wins (full > differential > incremental).
func (s *Schedule) LevelAt(now time.Time) (ese.BackupType, time.Time, bool) {
	limit := now.Add(grace)
	for _, back := range []time.Duration{2 * time.Hour, 26 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		var best time.Time
		var lvl ese.BackupType
		found := false
		for _, e := range s.entries {
			t := e.sched.Next(now.Add(-back))
			var last time.Time
			for n := 0; !t.IsZero() && !t.After(limit) && n < 200000; n++ {
				last = t
				t = e.sched.Next(t)
			}
			if last.IsZero() {
				continue
			}
			if !found || last.After(best) || last.Equal(best) && levelRank(e.level) > levelRank(lvl) {
				best, lvl, found = last, e.level, true
			}
		}
		if found {
			return lvl, best, true
		}
	}
	return "", time.Time{}, false
}

// Slot is one scheduled run: its time and level.
type Slot struct {
	Time  time.Time      `json:"time"`
	Level ese.BackupType `json:"level"`
}

// NextRuns returns the next n slots after t; when several entries fire at
// the same time the highest level wins (full > differential > incremental).
func (s *Schedule) NextRuns(t time.Time, n int) []Slot {
	var out []Slot
	for len(out) < n {
		var next Slot
		for _, e := range s.entries {
			at := e.sched.Next(t)
			if at.IsZero() {
				continue
			}
			if next.Time.IsZero() || at.Before(next.Time) || at.Equal(next.Time) && levelRank(e.level) > levelRank(next.Level) {
				next = Slot{Time: at, Level: e.level}
			}
		}
		if next.Time.IsZero() {
			break
		}
		out = append(out, next)
		t = next.Time
	}
	return out
}
