package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tapestream/tapestream/tapeformat"
)

// Drive is a tape drive positioned on a loaded volume: a Linux st device
// (OpenDrive, /dev/nstN) or an emulated drive (OpenEmulatedDrive). All
// operations act at the current position; writing anywhere discards what
// followed on the tape (tape semantics).
type Drive interface {
	// Status reports the drive and medium state (MTIOCGET).
	Status() (DriveStatus, error)
	// WriteRecord writes p as one tape block with one write(2).
	// End of medium: an error wrapping tapeformat.ErrEarlyWarning means the
	// block WAS written and the drive is in the early-warning zone; an error
	// wrapping tapeformat.ErrEndOfMedium means it was NOT (completely)
	// written and the volume takes nothing more.
	WriteRecord(p []byte) (int, error)
	// ReadRecord reads the next block into p with one read(2). It returns
	// (0, nil) for a filemark (the position is then after it), ErrEndOfData
	// at the end of the recorded data, and an error wrapping
	// ErrRecordTooLarge if the block does not fit in p.
	ReadRecord(p []byte) (int, error)
	// WriteFilemark writes n filemarks (MTWEOF), flushing the drive buffer.
	WriteFilemark(n int) error
	// SpaceFilemarks moves over n filemarks, forward (MTFSF, ending after
	// the nth) for n > 0, backward (MTBSF, ending before it) for n < 0.
	SpaceFilemarks(n int) error
	// SeekEOD moves to the end of recorded data (MTEOM), to append.
	SeekEOD() error
	// Rewind moves to the beginning of the tape (MTREW).
	Rewind() error
	// SetBlockSize sets the block size (MTSETBLK); 0 = variable blocks.
	SetBlockSize(n int) error
	// Unload rewinds and ejects the medium (MTOFFL).
	Unload() error
	// Close releases the device.
	Close() error
}

// DriveStatus is what Drive.Status reports.
type DriveStatus struct {
	Online       bool  // a medium is loaded and the drive is ready
	WriteProtect bool  // the medium is write protected
	BOT          bool  // at the beginning of the tape
	EOT          bool  // at (or past early warning towards) the end of the tape
	EOD          bool  // at the end of recorded data
	Filemark     bool  // just after a filemark
	FileNumber   int64 // filemarks from BOT to the position; -1 if unknown
	BlockNumber  int64 // blocks since the last filemark; -1 if unknown
	BlockSize    int   // 0 = variable
}

// loader obtains volumes for a tape target: it opens the drive on the
// loaded volume and changes the medium between volumes.
type loader interface {
	// name is the device (for messages and TAPESTREAM_DEVICE).
	name() string
	// open opens the drive on the currently loaded volume.
	open() (Drive, error)
	// change makes volume n (1-based within the set) the loaded one. It is
	// called with the drive closed; cur is the drive's volume index.
	change(ctx context.Context, n int) error
}

// tapeSink writes a set to a tape drive through a loader.
type tapeSink struct {
	mu     sync.Mutex
	ld     loader
	opts   Options
	rs     int
	ctx    context.Context
	cancel context.CancelFunc

	drive  Drive
	ewSent bool

	// infoMu guards vols so that Volumes (progress display) does not wait
	// behind a volume change blocked on an operator.
	infoMu sync.Mutex
	vols   []VolumeInfo

	state   lifecycle
	failErr error
}

func openTapeSink(ld loader, opts Options) (*tapeSink, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &tapeSink{ld: ld, opts: opts, rs: opts.recordSize(), ctx: ctx, cancel: cancel}
	d, err := ld.open()
	if err != nil {
		cancel()
		return nil, err
	}
	s.drive = d
	if err := s.prepare(1, opts.Append); err != nil {
		d.Close()
		cancel()
		return nil, err
	}
	return s, nil
}

// prepare checks the loaded volume and positions it for volume n of the
// set: at end of data when appending, else at BOT of an empty tape (or any
// tape with Overwrite).
func (s *tapeSink) prepare(n int, appendSet bool) error {
	dev := s.ld.name()
	d := s.drive
	st, err := d.Status()
	if err != nil {
		return newErr("status", dev, err)
	}
	if !st.Online {
		return newErr("open", dev, ErrNotReady)
	}
	if st.WriteProtect {
		return newErr("open", dev, ErrWriteProtected)
	}
	if err := d.SetBlockSize(0); err != nil {
		return newErr("set variable block size", dev, err)
	}
	if appendSet {
		if err := d.SeekEOD(); err != nil {
			return newErr("seek end of data", dev, err)
		}
	} else {
		if err := d.Rewind(); err != nil {
			return newErr("rewind", dev, err)
		}
		if !s.opts.Overwrite {
			empty, err := tapeEmpty(d)
			if err != nil {
				return newErr("check tape is empty", dev, fmt.Errorf("%w (use --overwrite to write anyway)", err))
			}
			if !empty {
				return newErr("open", dev, ErrTapeNotEmpty)
			}
			if err := d.Rewind(); err != nil {
				return newErr("rewind", dev, err)
			}
		}
	}
	fileNo := int64(-1)
	if st, err := d.Status(); err == nil {
		fileNo = st.FileNumber
	}
	s.infoMu.Lock()
	s.vols = append(s.vols, VolumeInfo{Number: n, Name: dev, FileNumber: fileNo})
	s.infoMu.Unlock()
	s.ewSent = false
	return nil
}

// blankChecker is implemented by drives that can tell a blank tape without
// reading it (Linux st: MTEOM + MTIOCPOS). The position afterwards is
// undefined.
type blankChecker interface {
	IsBlank() (bool, error)
}

// tapeEmpty tells whether the tape in d (rewound) holds no data: through
// blankChecker when the drive has it, else by reading the first record
// (end of data means empty; a record, a filemark or a record larger than
// the probe buffer means data). An unreadable first block is an error:
// overwriting it needs Overwrite.
func tapeEmpty(d Drive) (bool, error) {
	if bc, ok := d.(blankChecker); ok {
		blank, err := bc.IsBlank()
		if rerr := d.Rewind(); err == nil && rerr != nil {
			return false, rerr
		}
		if err == nil {
			return blank, nil
		}
	}
	buf := make([]byte, 64<<10)
	n, err := d.ReadRecord(buf)
	switch {
	case errors.Is(err, ErrEndOfData):
		return true, nil
	case errors.Is(err, ErrRecordTooLarge):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cannot read the first block (a new blank tape or a read error): %w", err)
	}
	_ = n // a record (n > 0) or a filemark (n == 0): the tape holds data
	return false, nil
}

func (s *tapeSink) usable() error {
	if err := s.state.err(); err != nil {
		return err
	}
	if s.failErr != nil {
		return fmt.Errorf("earlier failure: %w", s.failErr)
	}
	if s.drive == nil {
		return errors.New("no volume loaded")
	}
	return nil
}

// Write writes one record as one tape block. Early warning is reported
// once per volume (the first block written into the early-warning zone);
// later blocks written into the reserve succeed silently until the drive
// reports end of medium.
func (s *tapeSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := s.ld.name()
	if err := s.usable(); err != nil {
		return 0, newErr("write", dev, err)
	}
	if err := checkRecord(p, s.rs); err != nil {
		return 0, newErr("write", dev, err)
	}
	n, err := s.drive.WriteRecord(p)
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	v := &s.vols[len(s.vols)-1]
	switch {
	case err == nil:
	case errors.Is(err, tapeformat.ErrEarlyWarning):
		v.EarlyWarning = true
		if !s.ewSent {
			s.ewSent = true
		} else {
			err = nil
		}
	case errors.Is(err, tapeformat.ErrEndOfMedium):
		v.EarlyWarning = true
		return 0, newErr("write", dev, err)
	default:
		s.failErr = err
		return n, newErr("write", dev, err)
	}
	v.Bytes += int64(n)
	v.Records++
	return n, newErr("write", dev, err)
}

// NextVolume writes a filemark, releases the drive, gets the next volume
// loaded (next-volume command, operator prompt, or the emulated changer),
// checks it (online, not write protected, empty unless Overwrite) and
// positions it at BOT.
func (s *tapeSink) NextVolume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := s.ld.name()
	if err := s.usable(); err != nil {
		return newErr("next volume", dev, err)
	}
	if err := s.endVolume(dev); err != nil {
		return err
	}
	s.infoMu.Lock()
	n := len(s.vols) + 1
	s.infoMu.Unlock()
	if err := s.ld.change(s.ctx, n); err != nil {
		s.failErr = err
		return newErr("next volume", dev, err)
	}
	d, err := s.ld.open()
	if err != nil {
		s.failErr = err
		return err
	}
	s.drive = d
	if err := s.prepare(n, false); err != nil {
		s.failErr = err
		return err
	}
	return nil
}

// endVolume writes the filemark that ends the volume's part of the set
// and releases the drive; held s.mu.
func (s *tapeSink) endVolume(dev string) error {
	if err := s.drive.WriteFilemark(1); err != nil {
		s.failErr = err
		return newErr("write filemark", dev, err)
	}
	err := s.drive.Close()
	s.drive = nil
	if err != nil {
		s.failErr = err
		return newErr("close", dev, err)
	}
	return nil
}

// Commit writes the filemark that ends the set (MTWEOF also flushes the
// drive's buffer to the medium) and releases the drive.
func (s *tapeSink) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := s.ld.name()
	if err := s.usable(); err != nil {
		return newErr("commit", dev, err)
	}
	if err := s.endVolume(dev); err != nil {
		return err
	}
	s.state = stateCommitted
	s.cancel()
	return nil
}

// Abort cancels a pending volume change, then ends the partial set with a
// filemark (so the tape stays consistently appendable; the set lacks its
// manifest member and readers report it incomplete) and releases the drive.
func (s *tapeSink) Abort() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return nil
	}
	s.state = stateAborted
	if s.drive == nil {
		return nil
	}
	var err error
	if s.failErr == nil {
		err = s.drive.WriteFilemark(1)
	}
	if cerr := s.drive.Close(); err == nil {
		err = cerr
	}
	s.drive = nil
	return newErr("abort", s.ld.name(), err)
}

// Volumes does not block during a volume change.
func (s *tapeSink) Volumes() []VolumeInfo {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	return append([]VolumeInfo(nil), s.vols...)
}

// tapeReader reads one set from tape, one block per read(2) into a buffer
// of RecordSize bytes; a filemark ends the volume (io.EOF).
type tapeReader struct {
	ld    loader
	ctx   context.Context
	drive Drive
	buf   []byte
	data  []byte // unread part of the last record
	eof   bool
	vol   int
}

func openTapeReader(ld loader, opts Options) (*tapeReader, error) {
	r := &tapeReader{ld: ld, ctx: context.Background(), buf: make([]byte, opts.recordSize()), vol: 1}
	d, err := ld.open()
	if err != nil {
		return nil, err
	}
	r.drive = d
	if err := r.position(opts.FileNumber); err != nil {
		d.Close()
		return nil, err
	}
	return r, nil
}

func (r *tapeReader) position(file int) error {
	dev := r.ld.name()
	st, err := r.drive.Status()
	if err != nil {
		return newErr("status", dev, err)
	}
	if !st.Online {
		return newErr("open", dev, ErrNotReady)
	}
	if err := r.drive.SetBlockSize(0); err != nil {
		return newErr("set variable block size", dev, err)
	}
	if err := r.drive.Rewind(); err != nil {
		return newErr("rewind", dev, err)
	}
	if file > 0 {
		if err := r.drive.SpaceFilemarks(file); err != nil {
			return newErr(fmt.Sprintf("space to file %d", file), dev, err)
		}
	}
	// Read the first block now, so that a missing set is reported here.
	if err := r.fill(); err != nil {
		if errors.Is(err, ErrEndOfData) {
			return newErr("read", dev, fmt.Errorf("no set at file %d of volume %d: %w", file, r.vol, err))
		}
		return err
	}
	return nil
}

// fill reads the next block into r.data, or sets r.eof at a filemark.
func (r *tapeReader) fill() error {
	n, err := r.drive.ReadRecord(r.buf)
	switch {
	case err == nil && n == 0:
		r.eof = true
		return nil
	case errors.Is(err, ErrRecordTooLarge):
		return newErr("read", r.ld.name(), fmt.Errorf("%w: read with the record size the set was written with", err))
	case err != nil:
		return newErr("read", r.ld.name(), err)
	}
	r.data = r.buf[:n]
	return nil
}

func (r *tapeReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		if r.drive == nil {
			return 0, newErr("read", r.ld.name(), errors.New("no volume loaded"))
		}
		if err := r.fill(); err != nil {
			if errors.Is(err, ErrEndOfData) {
				r.eof = true // recorded data ends without a filemark
				return 0, io.EOF
			}
			return 0, err
		}
		if r.eof {
			return 0, io.EOF
		}
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// NextVolume releases the drive, gets the next volume loaded and positions
// it at BOT: a set continues in the first file of the next volume.
func (r *tapeReader) NextVolume() error {
	dev := r.ld.name()
	if r.drive != nil {
		err := r.drive.Close()
		r.drive = nil
		if err != nil {
			return newErr("close", dev, err)
		}
	}
	if err := r.ld.change(r.ctx, r.vol+1); err != nil {
		return newErr("next volume", dev, err)
	}
	d, err := r.ld.open()
	if err != nil {
		return err
	}
	r.drive = d
	r.vol++
	r.data, r.eof = nil, false
	return r.position(0)
}

func (r *tapeReader) Volume() int { return r.vol }

func (r *tapeReader) Close() error {
	if r.drive == nil {
		return nil
	}
	err := r.drive.Close()
	r.drive = nil
	return newErr("close", r.ld.name(), err)
}

// Durable: Commit writes a filemark, which flushes the drive's buffer.
func (s *tapeSink) Durable() bool { return true }
