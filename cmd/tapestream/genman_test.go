package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestGenMan runs `tapestream gen-man DIR` (what `make man` runs) and
// checks that every command has its page, that tapestream.1 (the page the
// systemd units' Documentation=man:tapestream(1) names) lists every
// subcommand, that each page documents the command's flags, and that a
// second run writes the same bytes (the date is fixed).
func TestGenMan(t *testing.T) {
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, out := range []string{out1, out2} {
		code, stdout, stderr := cliCmdEnv(t, dir, []string{"SOURCE_DATE_EPOCH="}, "gen-man", out)
		if code != 0 {
			t.Fatalf("gen-man: exit %d: %s%s", code, stdout, stderr)
		}
	}
	root := newRootCmd()
	var want []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, must := range []string{"tapestream.1", "tapestream-backup.1", "tapestream-restore.1", "tapestream-run.1", "tapestream-store-mount.1", "tapestream-catalog-rebuild.1"} {
		if !slices.Contains(want, must) {
			t.Fatalf("the command tree has no %s (walked %v)", must, want)
		}
	}
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(out1, name))
		if err != nil {
			t.Fatalf("gen-man wrote no %s: %v", name, err)
		}
		b, err := os.ReadFile(filepath.Join(out2, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs: the pages are not reproducible", name)
		}
		if !bytes.Contains(a, []byte(`.TH "`)) || !bytes.Contains(a, []byte(`"Dec 2026" "tapestream" "tapestream manual"`)) {
			t.Errorf("%s: no .TH header with the fixed date:\n%.300s", name, a)
		}
	}
	if _, err := os.Stat(filepath.Join(out1, "tapestream-gen-man.1")); err == nil {
		t.Error("the hidden gen-man command has a page")
	}
	page, _ := os.ReadFile(filepath.Join(out1, "tapestream.1"))
	for _, sub := range root.Commands() {
		if sub.Hidden || sub.Name() == "help" {
			continue
		}
		if !bytes.Contains(page, []byte(`\fBtapestream-`+sub.Name()+`(1)\fP`)) {
			t.Errorf("tapestream.1 does not name tapestream-%s(1)", sub.Name())
		}
	}
	// tapestream.1 documents the README's exit codes, each of them.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "\n## Exit codes\n")
	table, _, _ = strings.Cut(table, "\n## ")
	codes := regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(table, -1)
	if len(codes) < 8 {
		t.Fatalf("README's exit codes: found %d rows", len(codes))
	}
	_, status, _ := strings.Cut(string(page), ".SH EXIT STATUS")
	status, _, _ = strings.Cut(status, ".SH ")
	documented := regexp.MustCompile(`\\fB(\d+)\\fP`).FindAllStringSubmatch(status, -1)
	if len(documented) != len(codes) {
		t.Errorf("tapestream.1 documents %d exit codes, the README %d:\n%s", len(documented), len(codes), status)
	}
	for i := range min(len(codes), len(documented)) {
		if codes[i][1] != documented[i][1] {
			t.Errorf("exit code %d: README %s, tapestream.1 %s", i, codes[i][1], documented[i][1])
		}
	}
	for _, section := range []string{".SH FILES", ".SH ENVIRONMENT", "TAPESTREAM_AGE_IDENTITY_FILE"} {
		if !bytes.Contains(page, []byte(section)) {
			t.Errorf("tapestream.1 has no %s", section)
		}
	}
	// The flags of a page are the command's: restore's --group is there.
	restore, _ := os.ReadFile(filepath.Join(out1, "tapestream-restore.1"))
	for _, flag := range []string{`\fB--group\fP`, `\fB--catalog\fP`, `\fB--to\fP`} {
		if !bytes.Contains(restore, []byte(flag)) {
			t.Errorf("tapestream-restore.1 has no %s", flag)
		}
	}
	// SOURCE_DATE_EPOCH (distribution builds) sets the date instead.
	out3 := filepath.Join(dir, "c")
	if code, stdout, stderr := cliCmdEnv(t, dir, []string{"SOURCE_DATE_EPOCH=1700000000"}, "gen-man", out3); code != 0 {
		t.Fatalf("gen-man: exit %d: %s%s", code, stdout, stderr)
	}
	if page, _ := os.ReadFile(filepath.Join(out3, "tapestream.1")); !bytes.Contains(page, []byte(`"Nov 2023"`)) {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000 did not date the page Nov 2023:\n%.200s", page)
	}
}

// cliCmdEnv is cli with extra environment variables.
func cliCmdEnv(t testing.TB, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := cliCmd(dir, args...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			return ee.ExitCode(), out.String(), errb.String()
		}
		t.Fatalf("tapestream %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}
