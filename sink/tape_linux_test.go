//go:build linux

package sink

import (
	"runtime"
	"testing"
	"unsafe"
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
