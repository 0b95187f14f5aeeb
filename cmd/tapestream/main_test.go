package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// The test binary doubles as the tapestream binary: with
// TAPESTREAM_TEST_MAIN=1 it runs main() on its arguments, so tests can run
// real subprocesses (exit codes, signals, SIGKILL) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("TAPESTREAM_TEST_MAIN") == "1" {
		os.Args = append([]string{"tapestream"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliCmd returns the command that runs `tapestream args...` as a
// subprocess in dir.
func cliCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TAPESTREAM_TEST_MAIN=1")
	return cmd
}

// cli runs `tapestream args...` in dir and returns its exit code, stdout
// and stderr.
func cli(t testing.TB, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := cliCmd(dir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("tapestream %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// damageMember flips bytes in the data of a set's member (its first
// occurrence of name is in the member's headers; its data starts at the
// 512-byte block after the ustar header that names it last).
func damageMember(t testing.TB, set []byte, name string) {
	t.Helper()
	first := bytes.Index(set, []byte(name))
	if first < 0 {
		t.Fatalf("no member %s in the set", name)
	}
	// The ustar header naming the member is the last header block before
	// its data: the block holding "ustar" after the first mention.
	u := bytes.Index(set[first:], []byte("ustar\x0000"))
	if u < 0 {
		t.Fatalf("no ustar header for %s", name)
	}
	data := (first+u)/512*512 + 512
	for i := data + 200; i < data+264; i++ {
		set[i] ^= 0x5a
	}
}
