package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 5 {
		t.Fatalf("found only %d sh blocks in README.md", len(blocks))
	}
	n := 0
	for _, b := range blocks {
		for _, line := range strings.Split(strings.TrimSpace(string(b[1])), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if strings.HasPrefix(line, "go build ") {
				// Build from the repository into the scratch directory.
				line = strings.Replace(line, "-o tapestream", "-o "+filepath.Join(dir, "tapestream"), 1)
				cmd := exec.Command("sh", "-c", line)
				cmd.Dir = repo
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("README: %s: %v\n%s", line, err, out)
				}
				n++
				continue
			}
			cmd := exec.Command("sh", "-c", line)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("README: %s: %v\n%s", line, err, out)
			}
			t.Logf("$ %s\n%s", line, out)
			n++
		}
	}
	t.Logf("ran %d README commands", n)
}
