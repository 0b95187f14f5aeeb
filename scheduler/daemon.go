package scheduler

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tapestream/tapestream/catalog"
)

// Daemon runs every job on its schedule until ctx is done, in one
// process. Each schedule entry is a cron entry; when it fires, the job's
// level is the schedule's level for that moment (full > differential >
// incremental when entries coincide). A run still going when its next
// slot comes is not started twice: the group lock refuses the overlap,
// which is logged. Returns after the running jobs finish.
func (r *Runner) Daemon(ctx context.Context) error {
	cat, err := catalog.Open(r.Config.Catalog)
	if err != nil {
		return err
	}
	c := cron.New(cron.WithLocation(time.Local))
	for _, j := range r.Config.Jobs {
		for _, e := range j.Schedule.entries {
			c.Schedule(e.sched, cron.FuncJob(func() {
				now := r.now()
				lvl, slot, ok := j.Schedule.LevelAt(now)
				if !ok {
					lvl, slot = e.level, now
				}
				if r.Level != "" {
					if l, err := ParseLevel(r.Level); err == nil {
						lvl = l
					}
				}
				r.RunJob(ctx, cat, j, lvl, slot)
				if err := r.writeTextfile(cat); err != nil {
					r.log().Error("writing the textfile failed", "err", err)
				}
			}))
		}
		lvl, slot, _ := j.Schedule.LevelAt(r.now())
		next := time.Time{}
		for _, e := range j.Schedule.entries {
			if n := e.sched.Next(r.now()); next.IsZero() || n.Before(next) {
				next = n
			}
		}
		r.log().Info("job scheduled", "job", j.Name, "schedule", j.Schedule.Specs(), "last_slot", slot, "last_level", lvl.String(), "next", next)
	}
	c.Start()
	<-ctx.Done()
	r.log().Info("daemon stopping; waiting for running jobs")
	<-c.Stop().Done()
	return nil
}
