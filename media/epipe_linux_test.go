//go:build linux

package media

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestStdoutEPIPEChild is the child of TestStdoutEPIPEProcess: it writes a
// set to its real stdout (fd 1), whose reader is gone, without
// HandleSIGPIPE.
func TestStdoutEPIPEChild(t *testing.T) {
	if os.Getenv("TAPESTREAM_SINK_EPIPE_CHILD") != "1" {
		t.Skip("helper process")
	}
	s, err := Open("-", Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := 0; i < 4; i++ {
		if _, err = s.Write(record(DefaultRecordSize, 1, i)); err != nil {
			break
		}
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	if !errors.Is(err, ErrBrokenPipe) {
		os.Exit(4)
	}
	s.Abort()
	os.Exit(0)
}

// TestStdoutEPIPEProcess checks that EPIPE on fd 1 is an error, not death by
// SIGPIPE, even when the program did not call HandleSIGPIPE.
func TestStdoutEPIPEProcess(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	defer pw.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStdoutEPIPEChild$")
	cmd.Env = append(os.Environ(), "TAPESTREAM_SINK_EPIPE_CHILD=1")
	cmd.Stdout = pw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	if err != nil {
		t.Fatalf("child: %v; stderr: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stdout closed by reader (EPIPE)") {
		t.Fatalf("child stderr: %s", stderr.String())
	}
}
