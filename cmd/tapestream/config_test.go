package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/scheduler"
)

const goodConfig = `
catalog = "cat/catalog.db"

[[job]]
name = "mail"
store = "store"
groups = ["*"]
[job.schedule]
at = "01:30"
full = ["sun"]
[job.destination]
dir = "sets"

[[job]]
name = "mail-tape"
store = "store"
groups = ["SG1"]
block_size = "256KiB"
[job.schedule]
cron = ["0 6 * * 0 full"]
[job.destination]
tape = "tape:vtape"
next_volume_cmd = "true"
label_prefix = "MAIL"
pool = "weekly"
`

// TestConfigCheck: `config check` passes a good configuration and lists
// each job's next five runs with their levels; every mistake is refused
// with exit 2 naming its key, all of them at once; run refuses the same
// mistakes, and a group the store does not have at run time; `config
// show` prints the effective configuration, which loads back to itself.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	if err := engine.InitStore(filepath.Join(dir, "store"), []engine.GroupSpec{{Name: "SG1", Databases: []string{"Mailbox1"}}, {Name: "SG2", Databases: []string{"Mailbox1"}}}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("not-a-dir", "a file")

	// A good configuration: exit 0, the groups of "*", the next runs.
	good := write("good.toml", goodConfig)
	code, out, stderr := cli(t, dir, "config", "check", good, "--json")
	if code != exitOK {
		t.Fatalf("config check good.toml: exit %d\n%s%s", code, out, stderr)
	}
	var res scheduler.CheckResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Jobs) != 2 || strings.Join(res.Jobs[0].Groups, ",") != "SG1,SG2" || strings.Join(res.Jobs[1].Groups, ",") != "SG1" {
		t.Fatalf("jobs: %+v", res.Jobs)
	}
	for _, j := range res.Jobs {
		if len(j.NextRuns) != 5 {
			t.Fatalf("job %s: next runs %+v", j.Job, j.NextRuns)
		}
		for i, s := range j.NextRuns {
			lt := s.Time.Local()
			sunday := lt.Weekday() == time.Sunday
			switch {
			case i > 0 && !s.Time.After(j.NextRuns[i-1].Time):
				t.Fatalf("job %s: runs out of order: %+v", j.Job, j.NextRuns)
			case j.Job == "mail" && (lt.Hour() != 1 || lt.Minute() != 30 || sunday != (s.Level == "full") || !sunday && s.Level != "incremental"):
				t.Fatalf("job mail: run %d: %s %s", i, lt, s.Level)
			case j.Job == "mail-tape" && (!sunday || lt.Hour() != 6 || s.Level != "full"):
				t.Fatalf("job mail-tape: run %d: %s %s", i, lt, s.Level)
			}
		}
	}
	code, out, _ = cli(t, dir, "config", "check", good)
	if code != exitOK || !strings.Contains(out, "job mail: next runs\n") || !strings.Contains(out, "store "+filepath.Join(dir, "store")+": groups SG1, SG2") {
		t.Fatalf("config check good.toml (text): exit %d\n%s", code, out)
	}

	// Each mistake alone, then all of them at once.
	mistakes := []struct {
		name, from, to string
		want           []string
	}{
		{"no-groups", `groups = ["*"]`, ``, []string{`job "mail": groups: required`}},
		{"unknown-group", `groups = ["*"]`, `groups = ["SG1", "SG9"]`, []string{`job "mail": groups: storage group SG9 is not in store ` + filepath.Join(dir, "store") + ` (it has SG1, SG2)`}},
		{"star-and-more", `groups = ["*"]`, `groups = ["*", "SG1"]`, []string{`job "mail": groups: "*" (every group of the store) stands alone`}},
		{"bad-dir", `dir = "sets"`, `dir = "not-a-dir/sets"`, []string{`job "mail": destination dir ` + filepath.Join(dir, "not-a-dir/sets") + `: ` + filepath.Join(dir, "not-a-dir") + ` is not a directory`}},
		{"no-changer", `next_volume_cmd = "true"`, `next_volume_cmd = "no-such-changer -f /dev/sg1 next"`, []string{`job "mail-tape": destination next_volume_cmd "no-such-changer -f /dev/sg1 next": no-such-changer: command not found`}},
		{"no-store", `store = "store"` + "\ngroups = [\"SG1\"]", `store = "nostore"` + "\ngroups = [\"SG1\"]", []string{`job "mail-tape": store: open ` + filepath.Join(dir, "nostore")}},
		{"server", `store = "store"` + "\ngroups = [\"SG1\"]", `server = "http://127.0.0.1:1"` + "\ntoken_file = \"no-token\"\ngroups = [\"SG1\"]",
			[]string{`job "mail-tape": token_file ` + filepath.Join(dir, "no-token")}},
		{"no-server", `store = "store"` + "\ngroups = [\"SG1\"]", `server = "http://127.0.0.1:1"` + "\ngroups = [\"SG1\"]",
			[]string{`job "mail-tape": server: `, `connection refused`}},
	}
	all := goodConfig
	var allWant []string
	for _, m := range mistakes {
		text := strings.Replace(goodConfig, m.from, m.to, 1)
		if text == goodConfig {
			t.Fatalf("%s: %q is not in the configuration", m.name, m.from)
		}
		p := write(m.name+".toml", text)
		code, out, stderr := cli(t, dir, "config", "check", p)
		for _, w := range m.want {
			line := w
			if strings.HasPrefix(w, "job ") {
				line = "PROBLEM  " + w
			}
			if code != exitUsage || !strings.Contains(out, line) || !strings.Contains(stderr, w) {
				t.Errorf("config check %s: exit %d, want 2 naming %q\n%s%s", m.name, code, w, out, stderr)
			}
		}
		if m.name != "star-and-more" && m.name != "no-groups" && m.name != "no-store" && m.name != "no-server" {
			all = strings.Replace(all, m.from, m.to, 1)
			allWant = append(allWant, m.want...)
		}
	}
	all = strings.Replace(all, `groups = ["SG1", "SG9"]`, ``, 1) // no groups at all for job mail
	allWant = append(allWant[1:], mistakes[0].want...)
	p := write("all.toml", all)
	code, out, stderr = cli(t, dir, "config", "check", p)
	if code != exitUsage || !strings.Contains(stderr, "problems:") {
		t.Fatalf("config check all.toml: exit %d\n%s%s", code, out, stderr)
	}
	for _, w := range allWant {
		if !strings.Contains(out, "PROBLEM  "+w) {
			t.Errorf("config check all.toml does not name %q:\n%s", w, out)
		}
	}

	// run refuses a configuration mistake, and a group the store lacks.
	code, _, stderr = cli(t, dir, "run", "--config", filepath.Join(dir, "no-groups.toml"))
	if code != exitUsage || !strings.Contains(stderr, `job "mail": groups: required`) {
		t.Fatalf("run --config no-groups.toml: exit %d\n%s", code, stderr)
	}
	code, _, stderr = cli(t, dir, "run", "--config", filepath.Join(dir, "unknown-group.toml"), "--job", "mail")
	if code != exitUsage || !strings.Contains(stderr, `job "mail": groups: storage group SG9 is not in store`) {
		t.Fatalf("run --config unknown-group.toml: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "sets")); err == nil {
		t.Fatal("the refused run created the destination")
	}

	// config show: every default, and it loads back to itself.
	code, shown, stderr := cli(t, dir, "config", "show", good)
	if code != exitOK {
		t.Fatalf("config show: exit %d\n%s", code, stderr)
	}
	for _, line := range []string{`lock_dir = "` + filepath.Join(dir, "cat", "locks") + `"`, `log_format = "text"`, `due_window = "20h"`, `codec = "zstd"`,
		`block_size = "1MiB"`, `block_size = "256KiB"`, `segment_size = "4MiB"`, `groups = ["*"]`, `cron = ["30 1 * * 0 full", "30 1 * * 1,2,3,4,5,6 incremental"]`,
		`name = "{group}-{type}-{time}.tar{ext}"`, `label_prefix = "MAIL"`, `auto_label = true`, `keep_full_chains = 0`, `tape = "tape:` + filepath.Join(dir, "vtape") + `"`} {
		if !strings.Contains(shown, line+"\n") {
			t.Errorf("config show lacks %s:\n%s", line, shown)
		}
	}
	again := write("shown.toml", shown)
	code, shown2, stderr := cli(t, dir, "config", "show", again)
	_, body1, _ := strings.Cut(shown, "\n")
	_, body2, _ := strings.Cut(shown2, "\n")
	if code != exitOK || body1 != body2 {
		t.Fatalf("config show of the shown configuration differs (exit %d):\n%s\n---\n%s%s", code, shown, shown2, stderr)
	}
}
