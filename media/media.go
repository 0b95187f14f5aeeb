package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strings"
	"syscall"

	humanize "github.com/dustin/go-humanize"

	"github.com/tapestream/tapestream/tapeformat"
)

// DefaultRecordSize is the record (tape block) size used when
// Options.RecordSize is zero: 1 MiB.
const DefaultRecordSize = 1 << 20

// Sink is the destination of one backup set. It is a
// tapeformat.VolumeWriter (one record per Write, end of medium reported as
// tapeformat.ErrEarlyWarning / tapeformat.ErrEndOfMedium, NextVolume) plus
// the end of the set's life: exactly one of Commit or Abort ends it.
//
// Concurrency: Write, NextVolume and Commit are called from one goroutine.
// Abort may be called from any goroutine at any time (for instance from a
// SIGINT handler after, or while, a Write fails): it cancels a pending
// volume change (next-volume command, operator prompt), waits for an
// in-flight Write to return, and then removes the partial output. After
// Abort every other method returns an error wrapping ErrAborted. Abort after
// a successful Commit does nothing and returns nil; Abort is idempotent.
type Sink interface {
	tapeformat.VolumeWriter
	// Commit makes the complete set durable under its final name: fsync +
	// rename + directory fsync for files, a filemark for tapes, a flush for
	// streams.
	Commit() error
	// Abort removes the partial output (files) or leaves it visibly
	// incomplete (tape, stdout: no manifest member follows); nothing is left
	// that looks like a complete set.
	Abort() error
	// Volumes describes the volumes written so far (a copy).
	Volumes() []VolumeInfo
	// Durable reports whether Commit makes the set durable where it lands
	// (files: fsync and rename; tapes: a filemark). A stream's consumer is
	// out of sight: a set piped to another program is not known durable.
	Durable() bool
}

// VolumeInfo describes one volume of a set.
type VolumeInfo struct {
	Number  int    // 1-based volume number within the set
	Name    string // final file name, device or emulated volume image
	Bytes   int64  // bytes of records written to this volume
	Records int64  // records written to this volume
	// FileNumber is the tape file number (0-based, filemarks from the
	// beginning of the tape) the set starts at on this volume; -1 when the
	// target is not a tape or the drive cannot tell.
	FileNumber int64
	// EarlyWarning is true when the volume was ended because it was full.
	EarlyWarning bool
	// Label is the volume label of the tape cartridge ("" when it has none
	// or it was not read).
	Label string
	// Cartridge is the emulated tape's cartridge number (0 for a real drive
	// and other targets).
	Cartridge int
}

// Reader is the source of a backup set being read back: a
// tapeformat.VolumeReader that can be closed.
type Reader interface {
	tapeformat.VolumeReader
	io.Closer
	// Volume is the 1-based number of the volume being read.
	Volume() int
}

// Prompt asks an operator to load volume n into device and returns when it
// is loaded. It must return ctx.Err() promptly when ctx is cancelled (Abort).
type Prompt func(ctx context.Context, volume int, device string) error

// Options configures Open and OpenReader. The zero value is usable.
type Options struct {
	// RecordSize is the size of every record (tape block) in bytes; a
	// multiple of 512. Zero means DefaultRecordSize. Write accepts records
	// of at most RecordSize bytes (multiples of 512). Tape readers read
	// each block whole into a RecordSize buffer (one read(2) per block), so
	// reading a tape written with larger records needs the same RecordSize.
	RecordSize int
	// Force allows replacing an existing final file (NAME, NAME.001...) and
	// a leftover NAME.partial.
	Force bool
	// Append positions a tape at end of data (MTEOM) and adds the set after
	// the sets already there. Tape targets only.
	Append bool
	// Overwrite allows writing from the beginning of a tape that already
	// holds data (it is lost). Tape targets only.
	Overwrite bool
	// VolumeSize > 0 splits a file target into volumes NAME.001, NAME.002,
	// ... of at most VolumeSize bytes each.
	VolumeSize int64
	// VolumeReserve is the space kept free at the end of a split-file
	// volume for finishing the current member and the archive trailer:
	// a Write that leaves less than VolumeReserve below VolumeSize returns
	// tapeformat.ErrEarlyWarning. Zero means 2*RecordSize + 10 KiB.
	VolumeReserve int64
	// NextVolumeCmd is run with `sh -c` when a tape (real or emulated)
	// needs its next volume, with TAPESTREAM_VOLUME=<n>,
	// TAPESTREAM_VOLUME_LABEL=<label> (the cartridge wanted, when known;
	// writing: the label a blank cartridge will get), TAPESTREAM_SET_ID and
	// TAPESTREAM_DEVICE=<device> in its environment; exit status 0 means the
	// volume is loaded. A wrong cartridge is refused and the command run
	// again.
	NextVolumeCmd string
	// Labeler, for tape sinks, labels every continuation volume (see
	// Labeler). Nil: continuation volumes are written unlabelled from BOT.
	Labeler *Labeler
	// Expect, for tape readers, names the set and the cartridges of its
	// volumes (from a catalog): they are asked for by label, and any other
	// cartridge is refused.
	Expect ExpectedSet
	// ReadVolume, for tape readers, is told each volume read once the
	// reader leaves it (the rest of its tape file is read to count its
	// bytes): number, cartridge label, file number, bytes.
	ReadVolume func(VolumeInfo)
	// Prompt is used for a real tape drive when NextVolumeCmd is empty.
	// Nil means: prompt on stderr and wait for Enter on stdin if stdin is a
	// terminal, otherwise fail with ErrNoNextVolume.
	Prompt Prompt
	// FileNumber selects the set to read from a tape: the reader spaces
	// FileNumber filemarks forward from the beginning of the tape (0 = the
	// first set).
	FileNumber int
	// Stdout replaces the process's standard output for the "-" target
	// (tests, embedding). Nil means os.Stdout.
	Stdout io.Writer
	// Stdin replaces the process's standard input for the "-" source.
	Stdin io.Reader
	// Stderr receives operator prompts. Nil means os.Stderr.
	Stderr io.Writer
	// S3 configures s3:// targets beyond their URL and the AWS
	// environment (a configuration file's entry). Its StateDir defaults to
	// the user's cache directory (tapestream/s3-uploads), so that an
	// interrupted upload is resumed or cleaned up by the next run.
	S3 S3Options
}

func (o Options) recordSize() int {
	if o.RecordSize == 0 {
		return DefaultRecordSize
	}
	return o.RecordSize
}

func (o Options) validate() error {
	rs := o.recordSize()
	if rs <= 0 || rs%512 != 0 {
		return fmt.Errorf("%w: record size %d is not a positive multiple of 512", ErrInvalidOptions, o.RecordSize)
	}
	if o.VolumeSize < 0 || o.VolumeReserve < 0 {
		return fmt.Errorf("%w: negative volume size or reserve", ErrInvalidOptions)
	}
	if o.Append && o.Overwrite {
		return fmt.Errorf("%w: append and overwrite exclude each other", ErrInvalidOptions)
	}
	if o.FileNumber < 0 {
		return fmt.Errorf("%w: negative file number %d", ErrInvalidOptions, o.FileNumber)
	}
	return nil
}

// Sentinel errors. Every error returned by this package is an *Error (or
// wraps one) naming the operation and the file or device; test for the
// condition with errors.Is.
var (
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNoSet: the set to read is not there (no such file or object).
	ErrNoSet           = errors.New("no such set (no file or object of that name)")
	ErrExists          = errors.New("target already exists (use --force to replace it)")
	ErrPartialExists   = errors.New("partial output exists: another tapestream is writing it or a previous run crashed (remove it or use --force)")
	ErrNoMoreVolumes   = errors.New("target has no further volume")
	ErrNoNextVolume    = errors.New("next volume needed but there is no --next-volume-cmd and stdin is not a terminal to prompt on")
	ErrVolumeCommand   = errors.New("next-volume command failed")
	ErrAborted         = errors.New("set aborted")
	ErrCommitted       = errors.New("set already committed")
	ErrRecordSize      = errors.New("record size not a positive multiple of 512 within the configured record size")
	ErrBrokenPipe      = errors.New("closed by reader (EPIPE)")
	ErrWriteProtected  = errors.New("tape is write protected")
	ErrNotReady        = errors.New("drive not ready (no tape loaded or offline)")
	ErrTapeNotEmpty    = errors.New("tape holds data; use --append to add the set after it or --overwrite to erase it")
	ErrTapeUnsupported = errors.New("tape drives are supported on Linux only")
	ErrNotATape        = errors.New("device is not a tape drive")
	// ErrEndOfData is returned by Drive.ReadRecord at the end of the
	// recorded data (blank tape after the last filemark).
	ErrEndOfData = errors.New("end of recorded data")
	// ErrRecordTooLarge is returned by Drive.ReadRecord when the record on
	// tape is larger than the buffer (Linux st: ENOMEM).
	ErrRecordTooLarge = errors.New("record on tape larger than read buffer")
)

// Error is the error type of this package: it names the operation and the
// file or device it failed on.
type Error struct {
	Op     string // "open", "write", "commit", "next volume", ...
	Target string // file name or device
	Err    error
}

func (e *Error) Error() string {
	err := e.Err
	// "write x.tar.partial: write x.tar.partial: no space left on device"
	// says the path twice.
	var pe *fs.PathError
	if errors.As(err, &pe) && (pe.Path == e.Target || strings.HasPrefix(pe.Path, e.Target)) && errors.Unwrap(err) == pe.Err {
		return fmt.Sprintf("%s %s: %v", e.Op, pe.Path, pe.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Target, err)
}

func (e *Error) Unwrap() error { return e.Err }

func newErr(op, target string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) && se.Target == target {
		return err
	}
	return &Error{Op: op, Target: target, Err: err}
}

// BrokenPipeError reports that the reader of a pipe went away (EPIPE), e.g.
// "stdout closed by reader (EPIPE)". errors.Is(err, ErrBrokenPipe) and
// errors.Is(err, syscall.EPIPE) both hold.
type BrokenPipeError struct {
	Target string
}

func (e *BrokenPipeError) Error() string { return e.Target + " closed by reader (EPIPE)" }

// Is reports ErrBrokenPipe and EPIPE.
func (e *BrokenPipeError) Is(target error) bool {
	return target == ErrBrokenPipe || target == syscall.EPIPE
}

// checkRecord validates one record handed to Write.
func checkRecord(p []byte, recordSize int) error {
	if len(p) == 0 || len(p)%512 != 0 || len(p) > recordSize {
		return fmt.Errorf("%w: got %d bytes, record size %d", ErrRecordSize, len(p), recordSize)
	}
	return nil
}

// lifecycle is the state shared by all sinks.
type lifecycle int

const (
	stateOpen lifecycle = iota
	stateCommitted
	stateAborted
	stateFailed // a fatal error happened; only Abort is useful
)

func (s lifecycle) err() error {
	switch s {
	case stateCommitted:
		return ErrCommitted
	case stateAborted:
		return ErrAborted
	}
	return nil
}

// ParseSize parses a size for --volume-size, --record-size and the like:
// a byte count or a humanized size ("64MiB", "1GB", "1.5GiB", "512k").
func ParseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%w: size %q: %v", ErrInvalidOptions, s, err)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("%w: size %q too large", ErrInvalidOptions, s)
	}
	return int64(n), nil
}
