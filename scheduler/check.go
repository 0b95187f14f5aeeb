package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/storeapi"
)

// CheckResult is what CheckConfig found: every problem (each naming its
// key), what was checked and found fine, and each job's next runs.
type CheckResult struct {
	Config   string     `json:"config"`
	Problems []string   `json:"problems"`
	Checked  []string   `json:"checked"`
	Jobs     []JobCheck `json:"jobs"`
}

// JobCheck is one job as CheckConfig sees it.
type JobCheck struct {
	Job      string   `json:"job"`
	Groups   []string `json:"groups"`
	NextRuns []Slot   `json:"next_runs"`
}

// OK reports whether no problem was found.
func (c *CheckResult) OK() bool { return len(c.Problems) == 0 }

// CheckConfig checks a configuration file before it runs at night: it
// parses everything, opens the catalog, lists every job's store (a
// server's with its token), resolves the groups, checks that the lock
// directory, the textfile's directory, every destination and tape device
// are writable and every command is there, and lists each job's next n
// runs with their levels. r, when not nil, lists the stores (tests inject
// a source); it must carry the loaded configuration.
func CheckConfig(ctx context.Context, path string, now time.Time, n int, r *Runner) *CheckResult {
	res := &CheckResult{Config: path, Problems: []string{}, Checked: []string{}, Jobs: []JobCheck{}}
	cfg, probs := loadConfig(path)
	res.Problems = append(res.Problems, probs...)
	if cfg == nil {
		return res
	}
	if r == nil {
		r = &Runner{Config: cfg}
	}
	bad := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	ok := func(format string, args ...any) { res.Checked = append(res.Checked, fmt.Sprintf(format, args...)) }

	if _, err := os.Stat(cfg.Catalog); err == nil {
		cat := &catalog.Catalog{Path: cfg.Catalog, Timeout: 10 * time.Second}
		if sets, err := cat.List(catalog.Filter{}); err != nil {
			bad("catalog %s: %v", cfg.Catalog, err)
		} else if err := checkWritable(filepath.Dir(cfg.Catalog)); err != nil {
			bad("catalog %s: its directory is not writable: %v", cfg.Catalog, err)
		} else {
			ok("catalog %s: %d set(s)", cfg.Catalog, len(sets))
		}
	} else if err := checkWritable(filepath.Dir(cfg.Catalog)); err != nil {
		bad("catalog %s: cannot be created: %v", cfg.Catalog, err)
	} else {
		ok("catalog %s: will be created", cfg.Catalog)
	}
	if err := checkWritable(cfg.LockDir); err != nil {
		bad("lock_dir %s: %v", cfg.LockDir, err)
	} else {
		ok("lock_dir %s: writable", cfg.LockDir)
	}
	if cfg.Textfile != "" {
		if err := checkWritable(filepath.Dir(cfg.Textfile)); err != nil {
			bad("textfile %s: %v", cfg.Textfile, err)
		} else {
			ok("textfile %s: writable", cfg.Textfile)
		}
	}
	if cfg.NotifyCmd != "" {
		if err := checkCommand(cfg.NotifyCmd); err != nil {
			bad("notify_cmd %q: %v", cfg.NotifyCmd, err)
		} else {
			ok("notify_cmd %q: found", cfg.NotifyCmd)
		}
	}
	for _, j := range cfg.Jobs {
		jc := JobCheck{Job: j.Name, Groups: []string{}, NextRuns: j.Schedule.NextRuns(now, n)}
		p := fmt.Sprintf("job %q: ", j.Name)
		reach := true
		if j.Server != "" {
			if j.TokenFile != "" {
				if _, err := storeapi.ReadTokenFile(j.TokenFile); err != nil {
					bad(p+"token_file %s: %v", j.TokenFile, err)
					reach = false
				}
			}
			if j.CAFile != "" {
				if _, err := storeapi.LoadTLS(j.CAFile, "", ""); err != nil {
					bad(p+"ca_file %s: %v", j.CAFile, err)
					reach = false
				}
			}
		} else if j.Store == "" {
			res.Jobs = append(res.Jobs, jc)
			continue // no source: already a problem
		} else if err := checkWritable(j.Store); err != nil {
			bad(p+"store %s: not writable (a backup truncates its logs): %v", j.Store, err)
		}
		var infos []engine.GroupInfo
		var err error
		if reach {
			lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			infos, err = r.storeGroups(lctx, j)
			cancel()
		}
		key := "store"
		if j.Server != "" {
			key = "server"
		}
		switch {
		case !reach:
		case err != nil:
			bad(p+"%s: %v", key, err)
		default:
			var have []string
			for _, gi := range infos {
				have = append(have, gi.Name)
			}
			if len(j.Groups) == 0 {
				ok(p+"%s: has groups %s", j.SourceName(), strings.Join(have, ", "))
			} else if groups, err := j.ResolveGroups(have); err != nil {
				bad("%v", err)
			} else {
				jc.Groups = groups
				ok(p+"%s: groups %s", j.SourceName(), strings.Join(groups, ", "))
			}
		}
		d := j.Destination
		switch {
		case d.Dir != "":
			if err := checkWritable(d.Dir); err != nil {
				bad(p+"destination dir %s: %v", d.Dir, err)
			} else {
				ok(p+"destination dir %s: writable", d.Dir)
			}
		case d.Tape == "":
		case strings.HasPrefix(d.Tape, media.EmulatedPrefix):
			if t, err := media.ParseEmulatedSpec(d.Tape); err == nil {
				if err := checkWritable(t.Dir); err != nil {
					bad(p+"destination tape %s: %v", d.Tape, err)
				} else {
					ok(p+"destination tape %s: writable", d.Tape)
				}
			}
		default:
			if err := checkDevice(d.Tape); err != nil {
				bad(p+"destination tape %s: %v", d.Tape, err)
			} else {
				ok(p+"destination tape %s: a writable tape device", d.Tape)
			}
		}
		if d.NextVolumeCmd != "" {
			if err := checkCommand(d.NextVolumeCmd); err != nil {
				bad(p+"destination next_volume_cmd %q: %v", d.NextVolumeCmd, err)
			} else {
				ok(p+"destination next_volume_cmd %q: found", d.NextVolumeCmd)
			}
		}
		if j.NotifyCmd != "" {
			if err := checkCommand(j.NotifyCmd); err != nil {
				bad(p+"notify_cmd %q: %v", j.NotifyCmd, err)
			}
		}
		if len(jc.NextRuns) == 0 {
			bad("%sschedule: never runs", p)
		}
		res.Jobs = append(res.Jobs, jc)
	}
	return res
}

// checkWritable checks that files can be created in dir, or in the nearest
// directory above it that exists when dir does not (it would be created):
// by creating and removing one.
func checkWritable(dir string) error {
	d := dir
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		if filepath.Dir(d) == d {
			return err
		}
		d = filepath.Dir(d)
	}
	f, err := os.CreateTemp(d, ".tapestream-check-*")
	if err != nil {
		if d != dir {
			return fmt.Errorf("%s does not exist and cannot be created: %w", dir, err)
		}
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// checkDevice checks that a tape device exists and can be opened for
// writing (without positioning it: a backup may be using it).
func checkDevice(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return errors.New("not a character device")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkCommand checks that the program a command line (sh -c) starts is
// there: an executable path, or a name the shell finds (a builtin, or on
// PATH). Leading VAR=value assignments are skipped; a command starting
// with shell syntax is not checked.
func checkCommand(cmdline string) error {
	fields := strings.Fields(cmdline)
	for len(fields) > 0 && strings.Contains(fields[0], "=") && !strings.HasPrefix(fields[0], "=") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return errors.New("empty command")
	}
	word := strings.Trim(fields[0], `"'`)
	if strings.ContainsAny(word, "$`(){};|&<>*?") {
		return nil
	}
	out, err := exec.Command("sh", "-c", `command -v -- "$1"`, "sh", word).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return fmt.Errorf("%s: command not found", word)
	}
	return nil
}
