package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEExamples runs every line of every ```sh block of the README,
// in order, in a scratch directory, so that the documentation cannot rot.
// ```console blocks (tape drives, ssh, the demo) are shown, not run; the
// demo has its own test.
func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the README")
	}
	for _, tool := range []string{"tar", "zstd", "sh", "b3sum", "age", "age-keygen", "ssh-keygen", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs("../..")
	dir := t.TempDir()
	cmds, blocks := docCommands(readme)
	if blocks < 5 {
		t.Fatalf("found only %d sh blocks in README.md", blocks)
	}
	runDocCommands(t, "README", cmds, dir, nil, func(line string) *exec.Cmd {
		if !strings.HasPrefix(line, "go build ") {
			return nil
		}
		// Build from the repository into the scratch directory.
		line = strings.Replace(line, "-o tapestream", "-o "+filepath.Join(dir, "tapestream"), 1)
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = repo
		return cmd
	})
}
