package pidlock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Shared holders coexist and keep an exclusive opener out (and the other
// way round); the refusal names the exclusive holder, never a stale pid.
func TestSharedAndExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "LOCK")
	x, err := Acquire(p)
	if err != nil {
		t.Fatal(err)
	}
	var held *HeldError
	if _, err := AcquireShared(p); !errors.As(err, &held) || held.PID != os.Getpid() {
		t.Fatalf("shared while held exclusively: %v", err)
	}
	x.Release()
	a, err := AcquireShared(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := AcquireShared(p)
	if err != nil {
		t.Fatalf("a second shared holder: %v", err)
	}
	if _, err := Acquire(p); !errors.As(err, &held) || held.PID != 0 {
		t.Fatalf("exclusive while held shared: %v (the pid of the former exclusive holder must not be named)", err)
	}
	a.Release()
	if _, err := Acquire(p); err == nil {
		t.Fatal("exclusive while one shared holder remains")
	}
	b.Release()
	x, err = Acquire(p)
	if err != nil {
		t.Fatalf("exclusive once every shared holder is gone: %v", err)
	}
	x.Release()
}
