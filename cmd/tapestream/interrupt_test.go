package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl-C (issue 22): each command stopped by a signal says what was
// interrupted and what state it left, and exits 6; and the state is true.
// Reads are held half way by feeding the set through a pipe, so the signal
// lands mid-flow without timing guesses.
func TestInterruptedSaysWhatItLeft(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"store", "init", "--dir", "store", "--log-size", "256KiB"},
		{"store", "load", "--dir", "store", "--size", "6MiB"},
		{"backup", "--store", "store", "-o", "full.tar", "--progress", "never"},
		{"store", "init", "--dir", "target", "--group", "SG1", "--log-size", "256KiB"},
	} {
		if code, _, errs := cli(t, dir, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	set, err := os.ReadFile(filepath.Join(dir, "full.tar"))
	if err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, filepath.Join(dir, "target"))

	// stopMidway runs the command with half the set on its stdin, waits
	// until ready says it is under way, then sends SIGINT.
	stopMidway := func(t *testing.T, ready func() bool, args ...string) (int, string) {
		t.Helper()
		cmd := cliCmd(dir, args...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb strings.Builder
		cmd.Stderr, cmd.Stdout = &errb, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Write(set[:len(set)/2]); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%v never got under way: %s", args, errb.String())
			}
		}
		time.Sleep(200 * time.Millisecond) // the reader is now blocked on the pipe
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		in.Close()
		return cmd.ProcessState.ExitCode(), errb.String()
	}
	exists := func(glob string) func() bool {
		return func() bool {
			m, _ := filepath.Glob(filepath.Join(dir, glob))
			return len(m) > 0
		}
	}
	always := func() bool { return true }

	for _, c := range []struct {
		name  string
		args  []string
		ready func() bool
		say   string
		check func(t *testing.T)
	}{
		{"verify", []string{"verify", "-"}, always, "verify interrupted: nothing was written", nil},
		{"list", []string{"list", "-"}, always, "list interrupted: nothing was written", nil},
		{"copy", []string{"copy", "-", "copy.tar"}, always, "copy interrupted: the partial copy was removed",
			func(t *testing.T) {
				if m, _ := filepath.Glob(filepath.Join(dir, "copy.tar*")); len(m) > 0 {
					t.Fatalf("an interrupted copy left %v", m)
				}
			}},
		{"restore", []string{"restore", "-", "--to", "target", "--group", "SG1", "--force"}, exists("target/.restore-*"),
			"restore interrupted: the restore was undone",
			func(t *testing.T) {
				if after := treeDigest(t, filepath.Join(dir, "target")); after != before {
					t.Fatalf("an interrupted restore changed the target:\nbefore %s\nafter  %s", before, after)
				}
			}},
		{"restore into a new directory", []string{"restore", "-", "--to", "newtarget"}, exists("newtarget/.restore-*"),
			"restore interrupted: the restore was undone",
			func(t *testing.T) {
				// "As it was" was no directory: not one holding lock files.
				if _, err := os.Lstat(filepath.Join(dir, "newtarget")); !os.IsNotExist(err) {
					m, _ := filepath.Glob(filepath.Join(dir, "newtarget", "*"))
					t.Fatalf("an interrupted restore into a new directory left it (%v): %v", err, m)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, errs := stopMidway(t, c.ready, c.args...)
			if code != exitInterrupted || !strings.Contains(errs, c.say) {
				t.Fatalf("%v on SIGINT: exit %d (want %d), stderr:\n%s\nwant it to say %q", c.args, code, exitInterrupted, errs, c.say)
			}
			if strings.Contains(errs, "context canceled") || strings.Contains(errs, "verification failed") {
				t.Fatalf("%v on SIGINT still says: %s", c.args, errs)
			}
			if c.check != nil {
				c.check(t)
			}
		})
	}

	t.Run("store load", func(t *testing.T) {
		cmd := cliCmd(dir, "store", "load", "--dir", "store", "--duration", "60s")
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(errb.String(), "store load interrupted: every transaction committed") {
			t.Fatalf("store load on SIGINT: exit %d: %s", code, errb.String())
		}
		if code, out, e := cli(t, dir, "store", "check", "--dir", "store", "--group", "SG1"); code != 0 {
			t.Fatalf("the store after an interrupted load: exit %d\n%s%s", code, out, e)
		}
	})

	t.Run("backup", func(t *testing.T) {
		cmd := cliCmd(dir, "backup", "--store", "store", "--type", "incremental", "-o", "incr.tar", "--progress", "never")
		cmd.Env = append(cmd.Env, "TAPESTREAM_FAILPOINT=media/write=delay")
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !exists("incr.tar*")(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the backup never started writing: %s", errb.String())
			}
		}
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(errb.String(), "partial set was removed and no log was truncated") {
			t.Fatalf("backup on SIGINT: exit %d: %s", code, errb.String())
		}
		if exists("incr.tar*")() {
			t.Fatal("an interrupted backup left its partial set")
		}
	})
}

// treeDigest is every file under dir with its size and SHA-256 (the lock
// files, LOCK and GROUP.lock, whose content is the last holder's pid, aside).
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "LOCK" || strings.HasSuffix(d.Name(), ".lock") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %d %x\n", rel, len(data), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
