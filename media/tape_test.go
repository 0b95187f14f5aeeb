package media

import (
	"context"
	"errors"
	"testing"
)

// fakeDrive overrides parts of an emulated drive.
type fakeDrive struct {
	*EmulatedDrive
	offline  bool
	blank    *bool
	blankErr error
}

func (f *fakeDrive) Status() (DriveStatus, error) {
	st, err := f.EmulatedDrive.Status()
	st.Online = !f.offline
	return st, err
}

type blankFake struct {
	*fakeDrive
}

func (b blankFake) IsBlank() (bool, error) {
	if b.blankErr != nil {
		return false, b.blankErr
	}
	return *b.blank, nil
}

type fakeLoader struct {
	open_ func() (Drive, error)
}

func (l fakeLoader) name() string                                   { return "/dev/fake" }
func (l fakeLoader) open() (Drive, error)                           { return l.open_() }
func (l fakeLoader) change(ctx context.Context, w wantVolume) error { return ErrNoNextVolume }
func (l fakeLoader) cartridge() int                                 { return 0 }
func (l fakeLoader) retries() bool                                  { return false }

func newFakeEmu(t *testing.T) *EmulatedDrive {
	d, err := OpenEmulatedDrive(EmulatedTape{Dir: t.TempDir()}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestTapeSinkNotReady(t *testing.T) {
	d := &fakeDrive{EmulatedDrive: newFakeEmu(t), offline: true}
	_, err := openTapeSink(fakeLoader{func() (Drive, error) { return d, nil }}, Options{})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("offline drive: %v", err)
	}
	_, err = openTapeReader(fakeLoader{func() (Drive, error) { return d, nil }}, Options{})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("offline drive (reader): %v", err)
	}
}

func TestTapeEmptyBlankChecker(t *testing.T) {
	e := newFakeEmu(t)
	e.WriteRecord(record(512, 1, 0))
	e.Rewind()
	yes, no := true, false
	if empty, err := tapeEmpty(blankFake{&fakeDrive{EmulatedDrive: e, blank: &no}}); err != nil || empty {
		t.Fatalf("blank checker says data: %v %v", empty, err)
	}
	if empty, err := tapeEmpty(blankFake{&fakeDrive{EmulatedDrive: e, blank: &yes}}); err != nil || !empty {
		t.Fatalf("blank checker says blank: %v %v", empty, err)
	}
	// A failing blank check falls back to reading.
	if empty, err := tapeEmpty(blankFake{&fakeDrive{EmulatedDrive: e, blankErr: errors.New("no READ POSITION")}}); err != nil || empty {
		t.Fatalf("fallback: %v %v", empty, err)
	}
	// The next volume cannot be had: NextVolume fails cleanly.
	e2 := newFakeEmu(t)
	s, err := openTapeSink(fakeLoader{func() (Drive, error) { return e2, nil }}, Options{RecordSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(512, 1, 0))
	if err := s.NextVolume(); !errors.Is(err, ErrNoNextVolume) {
		t.Fatalf("next volume: %v", err)
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
}
