package media

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// runVolumeCmd runs the next-volume command with `sh -c`, with
// TAPESTREAM_VOLUME, TAPESTREAM_VOLUME_LABEL, TAPESTREAM_SET_ID and
// TAPESTREAM_DEVICE in its environment, its stdout and stderr going to
// stderr. It returns nil when the command exits 0, an error wrapping
// ErrVolumeCommand otherwise (the tail of its output included). Cancelling
// ctx (Abort) kills it.
func runVolumeCmd(ctx context.Context, cmdline string, w wantVolume, device string, stderr io.Writer) error {
	volume := w.n
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Env = append(os.Environ(),
		"TAPESTREAM_VOLUME="+strconv.Itoa(volume),
		"TAPESTREAM_VOLUME_LABEL="+w.label,
		"TAPESTREAM_SET_ID="+w.setID,
		"TAPESTREAM_DEVICE="+device,
	)
	var tail tailBuffer
	var out io.Writer = &tail
	if stderr != nil {
		out = io.MultiWriter(stderr, &tail)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	// A killed shell's children may keep the output pipe open: bound the
	// wait for it.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %q for volume %d: cancelled: %w", ErrVolumeCommand, cmdline, volume, ctx.Err())
		}
		msg := strings.TrimSpace(tail.String())
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("%w: %q for volume %d: %v%s", ErrVolumeCommand, cmdline, volume, err, msg)
	}
	return nil
}

// tailBuffer keeps the last 512 bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 512 {
		t.b = append(t.b[:0], t.b[len(t.b)-512:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(bytes.ToValidUTF8(t.b, nil)) }

// changeVolume obtains volume n for a real drive: the next-volume command
// if configured, else the Prompt option, else a terminal prompt when stdin
// is a terminal, else ErrNoNextVolume.
func changeVolume(ctx context.Context, opts Options, volume int, device string) error {
	return changeVolumeFor(ctx, opts, wantVolume{n: volume}, device)
}

// changeVolumeFor is changeVolume for a cartridge described by w (its label
// goes to the next-volume command).
func changeVolumeFor(ctx context.Context, opts Options, w wantVolume, device string) error {
	volume := w.n
	if opts.NextVolumeCmd != "" {
		return runVolumeCmd(ctx, opts.NextVolumeCmd, w, device, opts.stderr())
	}
	if opts.Prompt != nil {
		return opts.Prompt(ctx, volume, device)
	}
	if opts.Stdin == nil && isTerminal(os.Stdin) {
		return TerminalPrompt(os.Stdin, opts.stderr())(ctx, volume, device)
	}
	return fmt.Errorf("%w (volume %d for %s)", ErrNoNextVolume, volume, device)
}

func (o Options) stderr() io.Writer {
	if o.Stderr != nil {
		return o.Stderr
	}
	return os.Stderr
}

// TerminalPrompt returns a Prompt that writes "Insert volume N in DEV and
// press Enter" to out and waits for a line on in. Cancelling the context
// returns at once (the pending line read is abandoned).
func TerminalPrompt(in io.Reader, out io.Writer) Prompt {
	br := bufio.NewReader(in)
	return func(ctx context.Context, volume int, device string) error {
		fmt.Fprintf(out, "Insert volume %d in %s and press Enter ", volume, device)
		done := make(chan error, 1)
		go func() {
			_, err := br.ReadString('\n')
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("prompt for volume %d: %w", volume, err)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
