//go:build !linux

package media

// OpenDrive fails outside Linux: tape drives are supported on Linux only
// (use an emulated tape, tape:PATH, elsewhere).
func OpenDrive(path string, forWrite bool) (Drive, error) {
	return nil, newErr("open", path, ErrTapeUnsupported)
}

func isTapeDevice(path string) bool { return false }

func newDeviceLoader(path string, opts Options, forWrite bool) (loader, error) {
	return nil, newErr("open", path, ErrTapeUnsupported)
}
