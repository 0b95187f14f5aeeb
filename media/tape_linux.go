//go:build linux

package media

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapestream/tapestream/tapeformat"
)

// Definitions from <linux/mtio.h>; x/sys/unix has none of them.

// mtop is struct mtop { short mt_op; int mt_count; }.
type mtop struct {
	op    int16
	_     int16
	count int32
}

// mtget is struct mtget { long mt_type, mt_resid, mt_dsreg, mt_gstat,
// mt_erreg; __kernel_daddr_t mt_fileno, mt_blkno; }. C long is Go int on
// every Linux architecture; __kernel_daddr_t is int.
type mtget struct {
	typ    int
	resid  int
	dsreg  int
	gstat  int
	erreg  int
	fileno int32
	blkno  int32
}

// Magnetic tape operations (mtop.mt_op).
const (
	mtRESET    = 0  // reset drive in case of problems
	mtFSF      = 1  // forward space over filemark
	mtBSF      = 2  // backward space filemark
	mtFSR      = 3  // forward space record
	mtBSR      = 4  // backward space record
	mtWEOF     = 5  // write an end-of-file record (filemark)
	mtREW      = 6  // rewind
	mtOFFL     = 7  // rewind and put the drive offline (eject)
	mtNOP      = 8  // no op, set status only
	mtBSFM     = 10 // backward space filemark, position at FM
	mtFSFM     = 11 // forward space filemark, position at FM
	mtEOM      = 12 // goto end of recorded media (for appending files)
	mtERASE    = 13 // erase tape
	mtSETBLK   = 20 // set block length (SCSI)
	mtLOAD     = 30 // load the tape
	mtUNLOAD   = 31 // unload the tape
	mtCOMPRESS = 32 // control compression with SCSI mode page 15
)

// Generic status bits (mtget.mt_gstat, GMT_* macros).
const (
	gmtEOF     = 0x80000000
	gmtBOT     = 0x40000000
	gmtEOT     = 0x20000000
	gmtSM      = 0x10000000
	gmtEOD     = 0x08000000
	gmtWRPROT  = 0x04000000
	gmtONLINE  = 0x01000000
	gmtDROPEN  = 0x00040000
	gmtIMREPEN = 0x00010000
	gmtCLN     = 0x00008000
)

// mt_dsreg holds the block size in its low 24 bits.
const mtSTBlksizeMask = 0xffffff

// ioc computes _IOC(dir, type, nr, size) for the running architecture.
// Most architectures (x86, arm, arm64, riscv, s390, loong64) use the
// generic layout: nr 8 bits, type 8, size 14, dir 2 (write=1, read=2).
// mips, powerpc and sparc use size 13 bits, dir 3 (write=4, read=2).
func ioc(write, read bool, typ, nr, size uintptr) uintptr {
	var dir, wr, rd, sizeMask, dirShift uintptr
	switch runtime.GOARCH {
	case "mips", "mipsle", "mips64", "mips64le", "ppc", "ppc64", "ppc64le", "sparc", "sparc64":
		wr, rd, sizeMask, dirShift = 4, 2, 1<<13-1, 29
	default:
		wr, rd, sizeMask, dirShift = 1, 2, 1<<14-1, 30
	}
	if write {
		dir |= wr
	}
	if read {
		dir |= rd
	}
	return dir<<dirShift | (size&sizeMask)<<16 | typ<<8 | nr
}

// mtpos is struct mtpos { long mt_blkno; }.
type mtpos struct {
	blkno int
}

var (
	// mtIOCPOS is MTIOCPOS = _IOR('m', 3, struct mtpos).
	mtIOCPOS = ioc(false, true, 'm', 3, unsafe.Sizeof(mtpos{}))
	// mtIOCTOP is MTIOCTOP = _IOW('m', 1, struct mtop).
	mtIOCTOP = ioc(true, false, 'm', 1, unsafe.Sizeof(mtop{}))
	// mtIOCGET is MTIOCGET = _IOR('m', 2, struct mtget).
	mtIOCGET = ioc(false, true, 'm', 2, unsafe.Sizeof(mtget{}))
)

// stDrive is a Linux SCSI tape (st) device, normally /dev/nstN (the
// non-rewinding device: the position survives close, which appending and
// multi-set tapes need).
type stDrive struct {
	path   string
	fd     int
	pastEW bool // a write has hit early warning on this volume
}

// OpenDrive opens a Linux st tape device (use /dev/nstN). forWrite opens it
// read-write; a write-protected tape then fails with ErrWriteProtected.
func OpenDrive(path string, forWrite bool) (Drive, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	if forWrite {
		flags = unix.O_RDWR | unix.O_CLOEXEC
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		switch err {
		case unix.EROFS:
			return nil, newErr("open", path, ErrWriteProtected)
		case unix.ENOMEDIUM, unix.EIO, unix.EBUSY:
			return nil, newErr("open", path, fmt.Errorf("%w: %w", ErrNotReady, err))
		}
		return nil, newErr("open", path, err)
	}
	d := &stDrive{path: path, fd: fd}
	if _, err := d.Status(); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return nil, newErr("open", path, ErrNotATape)
		}
		return nil, newErr("status", path, err)
	}
	return d, nil
}

// isTapeDevice reports whether path is a character device answering
// MTIOCGET.
func isTapeDevice(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		// A busy or unready st device still is one: let OpenDrive report.
		var st unix.Stat_t
		return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(uint64(st.Rdev)) == 9
	}
	defer unix.Close(fd)
	var g mtget
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), mtIOCGET, uintptr(unsafe.Pointer(&g)))
	return e == 0
}

func (d *stDrive) op(op int16, count int32) error {
	m := mtop{op: op, count: count}
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), mtIOCTOP, uintptr(unsafe.Pointer(&m)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func (d *stDrive) Status() (DriveStatus, error) {
	var g mtget
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), mtIOCGET, uintptr(unsafe.Pointer(&g)))
	if e != 0 {
		return DriveStatus{}, e
	}
	gs := uint64(uint32(g.gstat))
	return DriveStatus{
		Online:       gs&gmtONLINE != 0,
		WriteProtect: gs&gmtWRPROT != 0,
		BOT:          gs&gmtBOT != 0,
		EOT:          gs&gmtEOT != 0,
		EOD:          gs&gmtEOD != 0,
		Filemark:     gs&gmtEOF != 0,
		FileNumber:   int64(g.fileno),
		BlockNumber:  int64(g.blkno),
		BlockSize:    g.dsreg & mtSTBlksizeMask,
	}, nil
}

// WriteRecord writes one block with one write(2); it never retries a short
// write (that would split the record over two blocks).
//
// End of medium on Linux st (variable block mode, drivers/scsi/st.c): the
// write that crosses early warning completes and returns its count (the
// driver state becomes ST_EOM_OK, GMT_EOT in the status). The next write
// fails with ENOSPC without writing anything, and lets the one after it
// through ("allow next write"); every write into the reserve alternates
// like that. At the physical end the drive itself refuses the block (the
// write fails with ENOSPC, or is short), or data buffered earlier is lost
// (EIO). Mapping to the tapeformat contract:
//
//   - ENOSPC: the block is written again at once; if that goes through the
//     result is ErrEarlyWarning (written), otherwise ErrEndOfMedium (not
//     written: the drive refused it twice);
//   - any other successful write after an ENOSPC on this volume:
//     ErrEarlyWarning (written; the sink reports it once per volume);
//   - a short write: ErrEndOfMedium (the block is torn on the tape; the
//     member is rewritten on the next volume);
//   - EIO past early warning or with the drive at EOT: ErrEndOfMedium;
//     EIO elsewhere is a hard I/O error.
func (d *stDrive) WriteRecord(p []byte) (int, error) {
	return stWriteRecord(&d.pastEW, p, d.write, func() bool {
		st, err := d.Status()
		return err == nil && st.EOT
	})
}

// stWriteRecord is WriteRecord's end-of-medium mapping over a raw write
// (one write(2)) and an EOT status probe; pastEW is the per-volume state.
func stWriteRecord(pastEW *bool, p []byte, write func([]byte) (int, error), atEOT func() bool) (int, error) {
	n, err := write(p)
	if err == unix.ENOSPC {
		*pastEW = true
		n, err = write(p)
		if err == nil && n == len(p) {
			return n, fmt.Errorf("%w: ENOSPC", tapeformat.ErrEarlyWarning)
		}
	}
	switch {
	case err == nil && n == len(p):
		if *pastEW {
			return n, fmt.Errorf("%w: in the reserve", tapeformat.ErrEarlyWarning)
		}
		return n, nil
	case err == nil:
		return n, fmt.Errorf("%w: short write of %d of %d bytes", tapeformat.ErrEndOfMedium, n, len(p))
	case err == unix.ENOSPC:
		return 0, fmt.Errorf("%w: %w", tapeformat.ErrEndOfMedium, err)
	case err == unix.EIO:
		if *pastEW || atEOT() {
			return 0, fmt.Errorf("%w: %w", tapeformat.ErrEndOfMedium, err)
		}
		return 0, err
	default:
		return 0, err
	}
}

func (d *stDrive) write(p []byte) (int, error) {
	for {
		n, err := unix.Write(d.fd, p)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

func (d *stDrive) ReadRecord(p []byte) (int, error) {
	for {
		n, err := unix.Read(d.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ENOMEM:
			return 0, fmt.Errorf("%w (%d bytes): %w", ErrRecordTooLarge, len(p), err)
		case err == nil && n > 0:
			return n, nil
		case err == nil || err == unix.EIO || err == unix.ENOSPC:
			// A filemark reads as 0 bytes; at the end of data st returns
			// 0 or EIO (blank check) with GMT_EOD set.
			st, serr := d.Status()
			if serr == nil && st.EOD {
				return 0, ErrEndOfData
			}
			if err != nil {
				return 0, err
			}
			return 0, nil
		default:
			return 0, err
		}
	}
}

// IsBlank tells whether the tape holds no data without reading it (a read
// of a blank tape fails with EIO, indistinguishable from a read error): it
// spaces to end of data (MTEOM) and asks the drive for its logical block
// position (MTIOCPOS, SCSI READ POSITION); position 0 means blank. The
// position afterwards is undefined (rewind).
func (d *stDrive) IsBlank() (bool, error) {
	if err := d.SeekEOD(); err != nil {
		return false, err
	}
	var pos mtpos
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), mtIOCPOS, uintptr(unsafe.Pointer(&pos)))
	if e != 0 {
		return false, e
	}
	return pos.blkno == 0, nil
}

func (d *stDrive) WriteFilemark(n int) error {
	if n <= 0 {
		return nil
	}
	return d.op(mtWEOF, int32(n))
}

func (d *stDrive) SpaceFilemarks(n int) error {
	switch {
	case n > 0:
		return d.op(mtFSF, int32(n))
	case n < 0:
		return d.op(mtBSF, int32(-n))
	}
	return nil
}

func (d *stDrive) SeekEOD() error { return d.op(mtEOM, 1) }

func (d *stDrive) Rewind() error {
	d.pastEW = false
	return d.op(mtREW, 1)
}

func (d *stDrive) SetBlockSize(n int) error { return d.op(mtSETBLK, int32(n)) }

func (d *stDrive) Unload() error { return d.op(mtOFFL, 1) }

func (d *stDrive) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// stLoader changes volumes of a real drive: the next-volume command, or
// (after ejecting the tape) the operator prompt.
type stLoader struct {
	path     string
	opts     Options
	forWrite bool
}

func (l *stLoader) name() string { return l.path }

func (l *stLoader) open() (Drive, error) { return OpenDrive(l.path, l.forWrite) }

func (l *stLoader) cartridge() int { return 0 }

// retries: the command or the operator can load another cartridge.
func (l *stLoader) retries() bool { return true }

func (l *stLoader) change(ctx context.Context, w wantVolume) error {
	if l.opts.NextVolumeCmd == "" {
		if d, err := OpenDrive(l.path, false); err == nil {
			d.Unload()
			d.Close()
		}
	}
	if err := changeVolumeFor(ctx, l.opts, w, l.path); err != nil {
		return err
	}
	return waitReady(ctx, l.path, driveLoadTimeout)
}

// driveLoadTimeout bounds the wait for a drive to become ready after a
// volume change (loading and threading a cartridge takes a while).
const driveLoadTimeout = 3 * time.Minute

// waitReady polls the drive until it opens with a medium online, so a
// changer command or an operator may return before loading has finished.
func waitReady(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		d, err := OpenDrive(path, false)
		if err == nil {
			st, serr := d.Status()
			d.Close()
			if serr == nil && st.Online {
				return nil
			}
			err = ErrNotReady
		}
		if !errors.Is(err, ErrNotReady) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func newDeviceLoader(path string, opts Options, forWrite bool) (loader, error) {
	return &stLoader{path: path, opts: opts, forWrite: forWrite}, nil
}
