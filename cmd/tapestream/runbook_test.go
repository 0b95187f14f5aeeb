package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRunbooks runs every command of every ```sh block of each runbook in
// docs/runbooks, in order, in a scratch directory, with this test binary
// as `tapestream` on PATH (emulated tapes and changers stand in for the
// library), so that a runbook's procedure cannot rot. A command that is
// meant to fail says so itself (`...; test $? -eq 4`).
func TestRunbooks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the runbooks")
	}
	for _, tool := range []string{"sh", "cmp", "dd", "grep", "rm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	files, err := filepath.Glob("../../docs/runbooks/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if filepath.Base(f) != "README.md" {
			names = append(names, filepath.Base(f))
		}
	}
	for _, want := range []string{"tape-rotation.md", "database-restore.md", "disaster-recovery.md"} {
		if !slices.Contains(names, want) {
			t.Fatalf("docs/runbooks has no %s (has %v)", want, names)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(strings.TrimSuffix(name, ".md"), func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("../../docs/runbooks", name))
			if err != nil {
				t.Fatal(err)
			}
			cmds, blocks := docCommands(doc)
			if blocks == 0 {
				t.Fatalf("%s has no sh block", name)
			}
			dir := t.TempDir()
			bin := filepath.Join(dir, ".bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(self, filepath.Join(bin, "tapestream")); err != nil {
				t.Fatal(err)
			}
			env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "TAPESTREAM_TEST_MAIN=1"}
			runDocCommands(t, name, cmds, dir, env, nil)
		})
	}
}

// TestDocCommands: how a document's sh blocks split into commands.
func TestDocCommands(t *testing.T) {
	doc := "text\n```sh\n# a comment\nls -l\n\ncat > a.toml <<'TOML'\nx = 1\n\n# not a comment here\nTOML\necho a \\\n  b\n```\n```console\nnot run\n```\n```sh\ntrue\n```\n"
	cmds, blocks := docCommands([]byte(doc))
	want := []string{"ls -l", "cat > a.toml <<'TOML'\nx = 1\n\n# not a comment here\nTOML", "echo a \\\n  b", "true"}
	if blocks != 2 || !slices.Equal(cmds, want) {
		t.Fatalf("%d blocks, commands %q; want 2, %q", blocks, cmds, want)
	}
}
