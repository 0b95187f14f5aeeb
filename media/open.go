package media

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Kind is the kind of target a name designates.
type Kind int

const (
	KindFile     Kind = iota // NAME (or NAME.001... with a volume size)
	KindStdio                // "-": stdout / stdin
	KindTape                 // /dev/nstN: a Linux st drive
	KindEmulated             // tape:PATH?...: an emulated tape
	KindDevice               // another device or FIFO: a plain byte stream
	KindS3                   // s3://BUCKET/KEY: objects in an S3-compatible store
)

func (k Kind) String() string {
	return [...]string{"file", "stdio", "tape", "emulated tape", "device", "s3"}[k]
}

var tapeName = regexp.MustCompile(`^n?st[0-9]+[lma]?$`)

// Classify tells what kind of target name is (it may stat the path).
//
//	"-"              KindStdio
//	"tape:PATH?..."  KindEmulated
//	"s3://B/KEY"     KindS3
//	"/dev/X"         KindTape if X is a tape drive (nstN, stN, or a
//	                 character device answering MTIOCGET); KindDevice for
//	                 other devices and FIFOs (/dev/null); KindFile for
//	                 regular files and paths below /dev subdirectories
//	                 (/dev/shm/x)
//	anything else    KindFile
func Classify(name string) Kind {
	switch {
	case name == "-":
		return KindStdio
	case strings.HasPrefix(name, EmulatedPrefix):
		return KindEmulated
	case strings.HasPrefix(name, S3Prefix):
		return KindS3
	case !strings.HasPrefix(name, "/dev/"):
		return KindFile
	}
	if tapeName.MatchString(filepath.Base(name)) && filepath.Dir(name) == "/dev" {
		return KindTape
	}
	fi, err := os.Stat(name)
	if err != nil {
		if filepath.Dir(name) == "/dev" {
			return KindDevice // let the open report the missing device
		}
		return KindFile
	}
	switch {
	case fi.Mode().IsRegular() || fi.IsDir():
		return KindFile
	case fi.Mode()&fs.ModeCharDevice != 0 && isTapeDevice(name):
		return KindTape
	}
	return KindDevice
}

// Open opens the destination of one backup set named by target (the CLI's
// -o):
//
//	"-"              standard output (Options.Stdout overrides it)
//	"/dev/nstN"      a Linux st tape drive (non-rewinding device)
//	"tape:PATH?..."  an emulated tape (see EmulatedTape)
//	other /dev/...   a non-tape device or FIFO written as a stream
//	"s3://B/KEY?..." an object KEY in bucket B (KEY.001, ... with a
//	                 volume size); see OpenS3
//	NAME             a file; split into NAME.001, NAME.002, ... when
//	                 Options.VolumeSize > 0
//
// The caller writes records, then calls Commit, or Abort on failure.
func Open(target string, opts Options) (Sink, error) {
	if err := opts.validate(); err != nil {
		return nil, newErr("open", target, err)
	}
	kind := Classify(target)
	if kind == KindS3 {
		return OpenS3(target, opts, opts.S3)
	}
	if kind != KindTape && kind != KindEmulated && (opts.Append || opts.Overwrite) && kind != KindFile {
		return nil, newErr("open", target, fmt.Errorf("%w: --append and --overwrite apply to tapes only", ErrInvalidOptions))
	}
	if kind != KindFile && opts.VolumeSize > 0 {
		return nil, newErr("open", target, fmt.Errorf("%w: a volume size applies to file targets only", ErrInvalidOptions))
	}
	switch kind {
	case KindStdio:
		if opts.Stdout != nil {
			if f, ok := opts.Stdout.(*os.File); ok {
				return newStreamSink("stdout", f, nil, false, opts), nil
			}
			return newStreamSink("stdout", nil, opts.Stdout, false, opts), nil
		}
		return newStreamSink("stdout", os.Stdout, nil, false, opts), nil
	case KindEmulated:
		ld, err := newEmuLoader(target, opts, true)
		if err != nil {
			return nil, err
		}
		return openTapeSink(ld, opts)
	case KindTape:
		ld, err := newDeviceLoader(target, opts, true)
		if err != nil {
			return nil, err
		}
		return openTapeSink(ld, opts)
	case KindDevice:
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return nil, newErr("open", target, err)
		}
		return newStreamSink(target, f, nil, true, opts), nil
	}
	if target == "" {
		return nil, newErr("open", target, fmt.Errorf("%w: empty target name", ErrInvalidOptions))
	}
	return openFileSink(target, opts)
}

var splitSuffix = regexp.MustCompile(`\.([0-9]{3,})$`)

// OpenReader opens the source of a backup set being read back:
//
//	"-"              standard input (Options.Stdin overrides it)
//	"/dev/nstN"      a tape drive; Options.FileNumber selects the set
//	"tape:PATH?..."  an emulated tape; FileNumber selects the set, the
//	                 volume= option the starting volume (default 1)
//	"s3://B/KEY?..." objects, see OpenS3Reader
//	NAME.001         split volumes, read from that volume on
//	NAME             a single file; or, if NAME does not exist but
//	                 NAME.001 does, split volumes
//
// Read returns io.EOF at the end of each volume; NextVolume moves to the
// next one (next split file, or next tape via the changer/prompt).
func OpenReader(source string, opts Options) (Reader, error) {
	if err := opts.validate(); err != nil {
		return nil, newErr("open", source, err)
	}
	switch Classify(source) {
	case KindS3:
		return OpenS3Reader(source, opts, opts.S3)
	case KindStdio:
		if opts.Stdin != nil {
			if f, ok := opts.Stdin.(*os.File); ok {
				return newStreamReader("stdin", f, nil, false), nil
			}
			return newStreamReader("stdin", nil, opts.Stdin, false), nil
		}
		return newStreamReader("stdin", os.Stdin, nil, false), nil
	case KindEmulated:
		ld, err := newEmuLoader(source, opts, false)
		if err != nil {
			return nil, err
		}
		return openTapeReader(ld, opts)
	case KindTape:
		ld, err := newDeviceLoader(source, opts, false)
		if err != nil {
			return nil, err
		}
		return openTapeReader(ld, opts)
	case KindDevice:
		f, err := os.Open(source)
		if err != nil {
			return nil, newErr("open", source, err)
		}
		return newStreamReader(source, f, nil, true), nil
	}
	if m := splitSuffix.FindStringSubmatch(source); m != nil {
		if _, err := os.Stat(source); err == nil {
			n, _ := strconv.Atoi(m[1])
			return openFileReader(strings.TrimSuffix(source, m[0]), true, n)
		}
	}
	if first, err := FileSetPath(source); err == nil && first != source {
		return openFileReader(source, true, 1)
	}
	return openFileReader(source, false, 0)
}

// FileSetPath is the first file of the file set named name: name itself,
// or name.001 when the set was split into volumes and name is not there.
// Neither is an error wrapping ErrNoSet that names name.
func FileSetPath(name string) (string, error) {
	_, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err2 := os.Stat(splitName(name, 1)); err2 == nil {
			return splitName(name, 1), nil
		}
		return "", &Error{Op: "open", Target: name, Err: fmt.Errorf("%w: %w", ErrNoSet, fs.ErrNotExist)}
	}
	return name, err
}
