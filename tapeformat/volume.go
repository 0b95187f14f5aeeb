package tapeformat

import (
	"errors"
	"io"
)

// VolumeWriter is the destination of a backup set: a sequence of volumes
// (tapes, split files), each written in records of the set's record size.
// Every Write call carries exactly one record.
//
// End of medium is reported through Write's error:
//   - errors.Is(err, ErrEarlyWarning): the record WAS written, but the volume
//     is nearly full. The Writer finishes the member in progress, writes the
//     archive trailer into the reserve, and calls NextVolume.
//   - errors.Is(err, ErrEndOfMedium): the record was NOT written and the
//     volume takes nothing more. The volume's last member is torn; the Writer
//     calls NextVolume and rewrites the interrupted member whole on the next
//     volume.
type VolumeWriter interface {
	io.Writer
	// NextVolume makes the current volume durable (filemark, fsync, close)
	// and opens the next one. It fails when no further volume can be had.
	NextVolume() error
}

// VolumeReader is the source of a backup set being read back. Read returns
// io.EOF at the end of a volume (a filemark on tape, the end of a split
// file); NextVolume moves to the following volume of the same set.
type VolumeReader interface {
	io.Reader
	NextVolume() error
}

var (
	// ErrEarlyWarning reports that the volume is nearly full; the record was written.
	ErrEarlyWarning = errors.New("tapeformat: early warning: volume nearly full")
	// ErrEndOfMedium reports that the volume is full; the record was not written.
	ErrEndOfMedium = errors.New("tapeformat: end of medium")
)
