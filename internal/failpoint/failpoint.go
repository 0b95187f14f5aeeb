// Package failpoint stops a process at a named step of a backup or a
// restore, for the crash tests (as bbolt's gofail failpoints do). The
// steps are armed from the environment, so that a test can run the real
// binary, let it die at one step and check what it left:
//
//	TAPESTREAM_FAILPOINT=NAME[@N][=ACTION][,NAME...]
//
// NAME is a step (for example backup/after-commit); @N fires at its Nth
// hit (default 1); ACTION is kill (SIGKILL of this process: what a power
// cut or the OOM killer leaves, the default), error (Err returns an error
// there) or delay (every hit from the Nth on sleeps 50ms: a slow step, for
// a signal to arrive in it; delay:DURATION sleeps that long, to hold a
// step open while another process works). Unarmed, a step costs one map
// lookup in a nil map.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type point struct {
	at     int
	action string
	hits   int
}

var (
	once   sync.Once
	mu     sync.Mutex
	points map[string]*point
)

func load() {
	spec := os.Getenv("TAPESTREAM_FAILPOINT")
	if spec == "" {
		return
	}
	points = map[string]*point{}
	for _, p := range strings.Split(spec, ",") {
		name, action, _ := strings.Cut(p, "=")
		if action == "" {
			action = "kill"
		}
		at := 1
		if n, c, ok := strings.Cut(name, "@"); ok {
			name = n
			if v, err := strconv.Atoi(c); err == nil && v > 0 {
				at = v
			}
		}
		points[name] = &point{at: at, action: action}
	}
}

// fire reports whether the step fires now, and with what action.
func fire(name string) (string, bool) {
	once.Do(load)
	if points == nil {
		return "", false
	}
	mu.Lock()
	defer mu.Unlock()
	p := points[name]
	if p == nil {
		return "", false
	}
	p.hits++
	if strings.HasPrefix(p.action, "delay") {
		return p.action, p.hits >= p.at
	}
	return p.action, p.hits == p.at
}

// Hit is a step: armed with kill, the process dies here; with delay, it
// is slow.
func Hit(name string) {
	action, ok := fire(name)
	switch {
	case !ok:
	case action == "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	case action == "delay":
		time.Sleep(50 * time.Millisecond)
	case strings.HasPrefix(action, "delay:"):
		d, _ := time.ParseDuration(strings.TrimPrefix(action, "delay:"))
		time.Sleep(d)
	}
}

// Err is a step that can fail: armed with error, it returns an error
// naming it; armed with kill, the process dies here.
func Err(name string) error {
	action, ok := fire(name)
	if !ok {
		return nil
	}
	if action == "kill" {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return fmt.Errorf("failpoint %s: injected failure", name)
}
