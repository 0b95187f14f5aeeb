package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	// change gets the cartridge w describes loaded (volume w.n, 1-based
	// within the set). It is called with the drive closed.
	change(ctx context.Context, w wantVolume) error
	// cartridge is the emulated cartridge number loaded (0: a real drive).
	cartridge() int
	// retries reports whether another change may bring another cartridge
	// after one was refused.
	retries() bool
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
	// relocated: volume 1 was moved off a full cartridge once
	// (startElsewhere); a second full one is left to the writer.
	relocated bool

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
	var label string
	if opts.Labeler != nil {
		if label, err = s.checkFirstCartridge(); err != nil {
			d.Close()
			cancel()
			return nil, err
		}
	}
	if err := s.prepare(1, opts.Append); err != nil {
		d.Close()
		cancel()
		return nil, err
	}
	s.vols[0].Label = label
	if opts.Append {
		if st, err := s.drive.Status(); err == nil && st.EOT {
			if err := s.startElsewhere("its recorded data ends past the early-warning mark"); err != nil {
				if s.drive != nil {
					s.drive.Close()
				}
				cancel()
				return nil, err
			}
		}
	}
	return s, nil
}

// startElsewhere puts volume 1 of the set on another cartridge when the
// one loaded has no room for it and nothing of the set is written on it
// (the set would otherwise begin with a volume of nothing but its
// filemark, which no reader takes for the set's start): that cartridge is
// released untouched and the next one asked for as for a continuation,
// but labelled as a first cartridge. Held s.mu or not yet shared.
func (s *tapeSink) startElsewhere(why string) error {
	dev := s.ld.name()
	name := dev
	if l := s.vols[0].Label; l != "" {
		name = l
	}
	fmt.Fprintf(s.opts.stderr(), "tapestream: %s is full (%s): the set starts on another cartridge\n", name, why)
	s.relocated = true
	err := s.drive.Close()
	s.drive = nil
	if err != nil {
		return newErr("close", dev, err)
	}
	s.infoMu.Lock()
	s.vols = s.vols[:0]
	s.infoMu.Unlock()
	if s.opts.Labeler != nil {
		return s.labelledVolume(1)
	}
	if err := s.ld.change(s.ctx, wantVolume{n: 1, write: true}); err != nil {
		return newErr("next volume", dev, err)
	}
	d, err := s.ld.open()
	if err != nil {
		return err
	}
	s.drive = d
	return s.prepare(1, false)
}

// checkFirstCartridge refuses, before anything is written, a first
// cartridge that is not labelled for the Labeler's pool, and returns its
// label.
func (s *tapeSink) checkFirstCartridge() (string, error) {
	dev := s.ld.name()
	if err := s.checkDrive(); err != nil {
		return "", err
	}
	p0, err := probeDrive(s.drive, 0, s.rs)
	if err != nil {
		return "", newErr("read the volume label", dev, err)
	}
	switch {
	case p0.content != ContentLabel:
		return "", newErr("open", dev, fmt.Errorf("%w: the cartridge has no volume label (label it for pool %q first)", ErrWrongCartridge, s.opts.Labeler.Pool))
	case p0.label.Pool != s.opts.Labeler.Pool:
		return "", newErr("open", dev, fmt.Errorf("%w: %s belongs to pool %q, not %q: refused before writing", ErrWrongCartridge, p0.label, p0.label.Pool, s.opts.Labeler.Pool))
	}
	return p0.label.Label, nil
}

// checkDrive checks that a medium is loaded, writable, and sets variable
// blocks.
func (s *tapeSink) checkDrive() error {
	dev := s.ld.name()
	st, err := s.drive.Status()
	if err != nil {
		return newErr("status", dev, err)
	}
	if !st.Online {
		return newErr("open", dev, ErrNotReady)
	}
	if st.WriteProtect {
		return newErr("open", dev, ErrWriteProtected)
	}
	if err := s.drive.SetBlockSize(0); err != nil {
		return newErr("set variable block size", dev, err)
	}
	return nil
}

// prepare checks the loaded volume and positions it for volume n of the
// set: at end of data when appending, else at BOT of an empty tape (or any
// tape with Overwrite).
func (s *tapeSink) prepare(n int, appendSet bool) error {
	dev := s.ld.name()
	d := s.drive
	if err := s.checkDrive(); err != nil {
		return err
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
	s.vols = append(s.vols, VolumeInfo{Number: n, Name: dev, FileNumber: fileNo, Cartridge: s.ld.cartridge()})
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
	if errors.Is(err, tapeformat.ErrEndOfMedium) && !s.relocated && len(s.vols) == 1 && s.vols[0].Records == 0 {
		// The set's first block does not fit on the cartridge (a drive
		// that did not report early warning at the end of data).
		if err := s.startElsewhere("the set's first block did not fit"); err != nil {
			s.failErr = err
			return 0, err
		}
		n, err = s.drive.WriteRecord(p)
	}
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
	if s.opts.Labeler != nil {
		if err := s.labelledVolume(n); err != nil {
			s.failErr = err
			return err
		}
		return nil
	}
	if err := s.ld.change(s.ctx, wantVolume{n: n, write: true}); err != nil {
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

// labelledVolume gets a cartridge for volume n of the set and labels it
// (see Labeler): blank ones get the pool's next label, a labelled one of
// the pool holding nothing else keeps its label; any other is named,
// refused before anything is written on it, and another asked for. The
// set continues in file 1. Held s.mu.
func (s *tapeSink) labelledVolume(n int) error {
	dev := s.ld.name()
	lb := s.opts.Labeler
	var refused []string
	for {
		next, err := lb.Next()
		if err != nil {
			return newErr("next volume", dev, fmt.Errorf("the pool's next label: %w", err))
		}
		w := wantVolume{n: n, label: next, setID: lb.SetID, write: true, pool: lb.Pool}
		fmt.Fprintf(s.opts.stderr(), "tapestream: load %s into %s\n", w, dev)
		if err := s.ld.change(s.ctx, w); err != nil {
			return newErr("next volume", dev, err)
		}
		d, err := s.ld.open()
		if err != nil {
			return err
		}
		s.drive = d
		l, why, err := s.chooseLabel(w)
		if err != nil {
			return err
		}
		if why == "" {
			if err := writeLabelAtBOT(d, l, s.rs); err != nil {
				return newErr("write the volume label", dev, err)
			}
			if err := lb.Labelled(l, s.ld.cartridge()); err != nil {
				return newErr("next volume", dev, fmt.Errorf("recording cartridge %s: %w", l.Label, err))
			}
			s.infoMu.Lock()
			s.vols = append(s.vols, VolumeInfo{Number: n, Name: dev, FileNumber: 1, Label: l.Label, Cartridge: s.ld.cartridge()})
			s.infoMu.Unlock()
			s.ewSent = false
			return nil
		}
		s.drive = nil
		if err := d.Close(); err != nil {
			return newErr("close", dev, err)
		}
		msg := fmt.Sprintf("refused the cartridge in %s for %s: %s", dev, w, why)
		fmt.Fprintf(s.opts.stderr(), "tapestream: %s\n", msg)
		refused = append(refused, why)
		if len(refused) >= maxRefusals || !s.ld.retries() {
			return newErr("next volume", dev, fmt.Errorf("%w: %s", ErrWrongCartridge, strings.Join(refused, "; ")))
		}
	}
}

// chooseLabel decides what the cartridge in the drive becomes for w: the
// label to write, or why it is refused.
func (s *tapeSink) chooseLabel(w wantVolume) (VolumeLabel, string, error) {
	dev := s.ld.name()
	lb := s.opts.Labeler
	fresh := VolumeLabel{Label: w.label, Pool: lb.Pool, Created: lb.now(), SetID: lb.SetID, SetVolume: w.n}
	if w.n == 1 {
		// a first cartridge names no set (see VolumeLabel)
		fresh.SetID, fresh.SetVolume = "", 0
	}
	st, err := s.drive.Status()
	if err != nil {
		return VolumeLabel{}, "", newErr("status", dev, err)
	}
	switch {
	case !st.Online:
		return VolumeLabel{}, "no cartridge is loaded", nil
	case st.WriteProtect:
		return VolumeLabel{}, "it is write protected", nil
	}
	if err := s.drive.SetBlockSize(0); err != nil {
		return VolumeLabel{}, "", newErr("set variable block size", dev, err)
	}
	p0, err := probeDrive(s.drive, 0, s.rs)
	if err != nil {
		return VolumeLabel{}, "", newErr("read the volume label", dev, err)
	}
	switch p0.content {
	case ContentBlank:
		if w.label == "" {
			return VolumeLabel{}, "it is blank, and blank cartridges are not labelled (auto_label off: label it with tapestream tape label)", nil
		}
		return fresh, "", nil
	case ContentLabel:
		l := *p0.label
		if l.Pool != lb.Pool {
			return VolumeLabel{}, fmt.Sprintf("it is %s of pool %q, not %q", l.Label, l.Pool, lb.Pool), nil
		}
		p1, err := probeDrive(s.drive, 1, s.rs)
		if err != nil {
			return VolumeLabel{}, "", newErr("check the cartridge is empty", dev, err)
		}
		if p1.content != ContentBlank {
			return VolumeLabel{}, fmt.Sprintf("it is %s, which holds sets (a set continues on a blank cartridge)", l), nil
		}
		if w.n > 1 {
			l.SetID, l.SetVolume = lb.SetID, w.n
		}
		return l, "", nil
	}
	if s.opts.Overwrite && w.label != "" {
		return fresh, "", nil
	}
	return VolumeLabel{}, "it holds data but no volume label", nil
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
// of RecordSize bytes; a filemark ends the volume (io.EOF). It knows which
// set it reads (Options.Expect, else the set label at the start of the
// first volume) and checks every cartridge it is given: a continuation
// volume must be the next volume of that set (its volume label, or the set
// label of an unlabelled continuation, says so), and, with Expect, each
// cartridge must carry the label the catalog names. A wrong cartridge is
// named and refused, and another asked for.
type tapeReader struct {
	ld     loader
	opts   Options
	ctx    context.Context
	drive  Drive
	buf    []byte
	data   []byte // unread part of the last record(s)
	eof    bool
	vol    int    // volumes read by this reader (1-based)
	setID  string // the set being read ("" until known)
	setVol int    // the set's volume number being read
	cur    VolumeInfo
	done   bool // cur reported
}

func openTapeReader(ld loader, opts Options) (*tapeReader, error) {
	r := &tapeReader{ld: ld, opts: opts, ctx: context.Background(), buf: make([]byte, opts.recordSize()), vol: 1, setVol: 1, setID: opts.Expect.SetID}
	d, err := ld.open()
	if err != nil {
		return nil, err
	}
	r.drive = d
	r.cur = VolumeInfo{Number: 1, Name: ld.name(), FileNumber: int64(opts.FileNumber), Cartridge: ld.cartridge()}
	if w := r.want(1); w.label != "" || opts.ReadVolume != nil {
		if _, err := r.acquire(w, false); err != nil {
			r.Close()
			return nil, err
		}
	}
	if err := r.position(opts.FileNumber); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.checkSet(opts.FileNumber); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// want describes the cartridge of volume n of the set.
func (r *tapeReader) want(n int) wantVolume {
	return wantVolume{n: n, label: r.opts.Expect.label(n), setID: r.setID}
}

// acquire gets the cartridge w wants into the drive: it checks the one
// loaded (after asking for another first when change is set), names and
// refuses a wrong one and asks again. It returns the tape file the volume
// starts at: 1 after a volume label, else 0.
func (r *tapeReader) acquire(w wantVolume, change bool) (int, error) {
	dev := r.ld.name()
	var refused []string
	changed := false
	for {
		if change {
			changed = true
			if r.drive != nil {
				err := r.drive.Close()
				r.drive = nil
				if err != nil {
					return 0, newErr("close", dev, err)
				}
			}
			if w.label != "" {
				fmt.Fprintf(r.opts.stderr(), "tapestream: load %s into %s\n", w, dev)
			}
			if err := r.ld.change(r.ctx, w); err != nil {
				if len(refused) > 0 {
					err = fmt.Errorf("%w (refused before: %s)", err, strings.Join(refused, "; "))
				}
				return 0, newErr("next volume", dev, err)
			}
			d, err := r.ld.open()
			if err != nil {
				return 0, err
			}
			r.drive = d
			r.cur.Cartridge = r.ld.cartridge()
		}
		change = true
		st, err := r.drive.Status()
		if err != nil {
			return 0, newErr("status", dev, err)
		}
		var why string
		var p0, p1 probed
		if !st.Online {
			why = "no cartridge is loaded"
		} else {
			if err := r.drive.SetBlockSize(0); err != nil {
				return 0, newErr("set variable block size", dev, err)
			}
			if p0, err = probeDrive(r.drive, 0, len(r.buf)); err != nil {
				return 0, newErr("read the volume label", dev, err)
			}
			if p0.content == ContentLabel && w.n > 1 {
				if p1, err = probeDrive(r.drive, 1, len(r.buf)); err != nil {
					return 0, newErr("read", dev, err)
				}
			}
			why = w.mismatch(p0, p1)
		}
		if why == "" {
			r.cur.Label = ""
			if p0.label != nil {
				r.cur.Label = p0.label.Label
			}
			if p0.content == ContentLabel && w.n > 1 {
				return 1, nil
			}
			return 0, nil
		}
		fmt.Fprintf(r.opts.stderr(), "tapestream: refused the cartridge in %s: %s, not %s\n", dev, why, w)
		refused = append(refused, why)
		// The cartridge found in the drive is always followed by a change.
		if len(refused) >= maxRefusals || changed && !r.ld.retries() {
			return 0, newErr("read", dev, fmt.Errorf("%w: wanted %s; %s", ErrWrongCartridge, w, strings.Join(refused, "; ")))
		}
	}
}

// checkSet reads the set label at the start of the volume's file (the
// records read stay to be read): it learns the set's id from its first
// volume, and refuses a file that holds another set or volume than the
// one expected.
func (r *tapeReader) checkSet(file int) error {
	b, err := r.peek(identifyBytes)
	if err != nil {
		return err
	}
	p := identify(b)
	if p.set == nil {
		return nil
	}
	l := p.set
	switch {
	case r.setID == "":
		r.setID, r.setVol = l.SetID, max(l.Volume, 1)
		r.cur.Number = r.setVol
		return nil
	case l.SetID != r.setID || l.Volume != r.setVol:
		where := fmt.Sprintf("file %d", file)
		if r.cur.Label != "" {
			where += " of " + r.cur.Label
		}
		return newErr("read", r.ld.name(), fmt.Errorf("%w: %s holds volume %d of set %s, not volume %d of set %s (is the catalog out of date? tapestream catalog rebuild)",
			ErrWrongCartridge, where, l.Volume, l.SetID, r.setVol, r.setID))
	}
	return nil
}

// peek reads records until at least n bytes of the current file are
// buffered (or the file ends) and returns them; Read serves them again.
func (r *tapeReader) peek(n int) ([]byte, error) {
	acc := append([]byte(nil), r.data...)
	for len(acc) < n && !r.eof {
		if err := r.fill(); err != nil {
			if errors.Is(err, ErrEndOfData) {
				r.eof = true
				break
			}
			return nil, err
		}
		if r.eof {
			break
		}
		acc = append(acc, r.data...)
	}
	r.data = acc
	return acc, nil
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
	r.cur.FileNumber, r.cur.Bytes, r.done = int64(file), 0, false
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
	r.cur.Bytes += int64(n)
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

// finishVolume reports the volume being left to Options.ReadVolume, after
// reading the rest of its tape file to count its bytes.
func (r *tapeReader) finishVolume() {
	if r.opts.ReadVolume == nil || r.done || r.drive == nil {
		return
	}
	r.done = true
	for !r.eof {
		r.data = nil
		if err := r.fill(); err != nil {
			return // a volume that cannot be read to its end is not reported
		}
	}
	r.opts.ReadVolume(r.cur)
}

// NextVolume releases the drive, gets the set's next volume loaded
// (checked: see tapeReader) and positions it at the set's continuation:
// file 1 after a volume label, file 0 on an unlabelled cartridge.
func (r *tapeReader) NextVolume() error {
	r.finishVolume()
	w := r.want(r.setVol + 1)
	file, err := r.acquire(w, true)
	if err != nil {
		return err
	}
	r.vol++
	r.setVol++
	r.cur.Number = r.setVol
	r.data, r.eof = nil, false
	if err := r.position(file); err != nil {
		return err
	}
	return r.checkSet(file)
}

func (r *tapeReader) Volume() int { return r.vol }

func (r *tapeReader) Close() error {
	r.finishVolume()
	if r.drive == nil {
		return nil
	}
	err := r.drive.Close()
	r.drive = nil
	return newErr("close", r.ld.name(), err)
}

// Durable: Commit writes a filemark, which flushes the drive's buffer.
func (s *tapeSink) Durable() bool { return true }
