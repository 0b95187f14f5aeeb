//go:build linux

package media

import (
	"errors"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapestream/tapestream/tapeformat"
)

func TestMtioIoctlNumbers(t *testing.T) {
	switch runtime.GOARCH {
	case "amd64", "arm64", "riscv64", "loong64", "s390x":
		if mtIOCTOP != 0x40086d01 {
			t.Errorf("MTIOCTOP = %#x, want 0x40086d01", mtIOCTOP)
		}
		if mtIOCGET != 0x80306d02 {
			t.Errorf("MTIOCGET = %#x, want 0x80306d02", mtIOCGET)
		}
		if mtIOCPOS != 0x80086d03 {
			t.Errorf("MTIOCPOS = %#x, want 0x80086d03", mtIOCPOS)
		}
		if s := unsafe.Sizeof(mtget{}); s != 48 {
			t.Errorf("sizeof(struct mtget) = %d, want 48", s)
		}
	case "386", "arm":
		if mtIOCGET != 0x801c6d02 {
			t.Errorf("MTIOCGET = %#x, want 0x801c6d02", mtIOCGET)
		}
	}
	if s := unsafe.Sizeof(mtop{}); s != 8 {
		t.Errorf("sizeof(struct mtop) = %d, want 8", s)
	}
	// The generic _IOC layout, checked independently of GOARCH.
	if got := ioc(true, false, 'm', 1, 8); runtime.GOARCH == "amd64" && got != 0x40086d01 {
		t.Errorf("ioc = %#x", got)
	}
}

func TestOpenDriveNotATape(t *testing.T) {
	if _, err := OpenDrive("/dev/null", false); err == nil {
		t.Fatal("/dev/null opened as a tape")
	}
	if isTapeDevice("/dev/null") {
		t.Fatal("/dev/null is a tape")
	}
}

func TestSTWriteMapping(t *testing.T) {
	type res struct {
		n   int
		err error
	}
	p := make([]byte, 1024)
	run := func(pastEW bool, eot bool, results ...res) (int, error, bool) {
		i := 0
		write := func(b []byte) (int, error) {
			r := results[i]
			i++
			return r.n, r.err
		}
		n, err := stWriteRecord(&pastEW, p, write, func() bool { return eot })
		if i != len(results) {
			t.Fatalf("%d writes, want %d", i, len(results))
		}
		return n, err, pastEW
	}
	ok := res{1024, nil}
	if n, err, ew := run(false, false, ok); n != 1024 || err != nil || ew {
		t.Errorf("plain write: %d %v %v", n, err, ew)
	}
	// First ENOSPC: rewritten into the reserve.
	if n, err, ew := run(false, false, res{-1, unix.ENOSPC}, ok); n != 1024 || !errors.Is(err, tapeformat.ErrEarlyWarning) || !ew {
		t.Errorf("ENOSPC then ok: %d %v %v", n, err, ew)
	}
	if n, err, _ := run(false, false, res{-1, unix.ENOSPC}, res{-1, unix.ENOSPC}); n != 0 || !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Errorf("ENOSPC twice: %d %v", n, err)
	}
	if n, err, _ := run(true, false, ok); n != 1024 || !errors.Is(err, tapeformat.ErrEarlyWarning) {
		t.Errorf("write in reserve: %d %v", n, err)
	}
	// st alternates ENOSPC and success for writes into the reserve.
	if n, err, _ := run(true, false, res{-1, unix.ENOSPC}, ok); n != 1024 || !errors.Is(err, tapeformat.ErrEarlyWarning) {
		t.Errorf("ENOSPC past EW then ok: %d %v", n, err)
	}
	if n, err, _ := run(true, false, res{-1, unix.ENOSPC}, res{-1, unix.ENOSPC}); n != 0 || !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Errorf("ENOSPC twice past EW: %d %v", n, err)
	}
	if n, err, _ := run(false, false, res{-1, unix.ENOSPC}, res{512, nil}); n != 512 || !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Errorf("ENOSPC then short: %d %v", n, err)
	}
	if n, err, _ := run(false, false, res{512, nil}); n != 512 || !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Errorf("short write: %d %v", n, err)
	}
	if _, err, _ := run(false, false, res{-1, unix.EIO}); err != unix.EIO {
		t.Errorf("EIO mid-tape: %v", err)
	}
	if _, err, _ := run(false, true, res{-1, unix.EIO}); !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Errorf("EIO at EOT: %v", err)
	}
	if _, err, _ := run(true, false, res{-1, unix.EIO}); !errors.Is(err, tapeformat.ErrEndOfMedium) {
		t.Errorf("EIO past EW: %v", err)
	}
}
