package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The commands of the documentation are run by tests so that they cannot
// rot: every ```sh block of the README (readme_test.go) and of the
// runbooks in docs/runbooks (runbook_test.go), in order, in a scratch
// directory. ```console blocks are shown, not run (real tape drives, ssh).

var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// hereDoc matches a here-document's start and captures its terminator.
var hereDoc = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// docCommands returns the commands of a document's ```sh blocks, in order,
// and how many blocks there were. A command is a line, with the lines
// that follow a trailing backslash or a here-document up to its
// terminator; comments and blank lines between commands are not commands.
func docCommands(doc []byte) (cmds []string, blocks int) {
	for _, b := range shBlock.FindAllSubmatch(doc, -1) {
		blocks++
		lines := strings.Split(string(b[1]), "\n")
		for i := 0; i < len(lines); i++ {
			line := strings.TrimSpace(lines[i])
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			cmd := lines[i]
			for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
				i++
				cmd += "\n" + lines[i]
			}
			if m := hereDoc.FindStringSubmatch(cmd); m != nil {
				for i+1 < len(lines) {
					i++
					cmd += "\n" + lines[i]
					if strings.TrimSpace(lines[i]) == m[1] {
						break
					}
				}
			}
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	return cmds, blocks
}

// runDocCommands runs the commands of the document name with sh -c in
// dir, with env added to the environment, each after the one before it
// succeeded. prepare may return the command to run instead (the README
// builds the binary from the repository).
func runDocCommands(t *testing.T, name string, cmds []string, dir string, env []string, prepare func(string) *exec.Cmd) {
	t.Helper()
	for _, line := range cmds {
		var cmd *exec.Cmd
		if prepare != nil {
			cmd = prepare(line)
		}
		if cmd == nil {
			cmd = exec.Command("sh", "-c", line)
			cmd.Dir = dir
		}
		if len(env) > 0 {
			cmd.Env = append(cmd.Environ(), env...)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %s: %v\n%s", name, line, err, out)
		}
		t.Logf("$ %s\n%s", line, out)
	}
	t.Logf("ran %d commands of %s", len(cmds), name)
}
