package scheduler

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tapestream/tapestream/tapeformat"
)

// The effective configuration as `tapestream config show` prints it: the
// same keys, every default filled in, paths absolute, the schedule as the
// cron lines it compiles to. It loads back to the same configuration.
type effConfig struct {
	Catalog   string   `toml:"catalog"`
	LockDir   string   `toml:"lock_dir"`
	Textfile  string   `toml:"textfile,omitempty"`
	NotifyCmd string   `toml:"notify_cmd,omitempty"`
	LogFormat string   `toml:"log_format"`
	DueWindow string   `toml:"due_window"`
	Jobs      []effJob `toml:"job"`
}

type effJob struct {
	Name        string   `toml:"name"`
	Store       string   `toml:"store,omitempty"`
	Server      string   `toml:"server,omitempty"`
	TokenFile   string   `toml:"token_file,omitempty"`
	CAFile      string   `toml:"ca_file,omitempty"`
	Groups      []string `toml:"groups"`
	Codec       string   `toml:"codec"`
	Workers     int      `toml:"workers"`
	MaxRate     string   `toml:"max_rate,omitempty"`
	BlockSize   string   `toml:"block_size"`
	SegmentSize string   `toml:"segment_size"`
	NotifyCmd   string   `toml:"notify_cmd,omitempty"`
	Schedule    struct {
		Cron []string `toml:"cron"`
	} `toml:"schedule"`
	Destination effDest `toml:"destination"`
	Retention   struct {
		KeepFullChains int `toml:"keep_full_chains"`
	} `toml:"retention"`
}

type effDest struct {
	Dir           string `toml:"dir,omitempty"`
	Name          string `toml:"name,omitempty"`
	SplitSize     string `toml:"split_size,omitempty"`
	Tape          string `toml:"tape,omitempty"`
	NextVolumeCmd string `toml:"next_volume_cmd,omitempty"`
	LabelPrefix   string `toml:"label_prefix,omitempty"`
	Pool          string `toml:"pool,omitempty"`
	AutoLabel     *bool  `toml:"auto_label,omitempty"`
}

// WriteEffective writes the effective configuration as TOML.
func (c *Config) WriteEffective(w io.Writer) error {
	e := effConfig{Catalog: c.Catalog, LockDir: c.LockDir, Textfile: c.Textfile, NotifyCmd: c.NotifyCmd, LogFormat: c.LogFormat, DueWindow: formatDuration(c.dueWindow)}
	if e.LogFormat == "" {
		e.LogFormat = "text"
	}
	for _, j := range c.Jobs {
		ej := effJob{Name: j.Name, Store: j.Store, Server: j.Server, TokenFile: j.TokenFile, CAFile: j.CAFile, Groups: j.Groups, Codec: j.Codec,
			Workers: j.Workers, BlockSize: formatSize(int64(j.recordSize)), SegmentSize: formatSize(int64(j.segmentSize)), NotifyCmd: j.NotifyCmd}
		if ej.Workers <= 0 {
			ej.Workers = runtime.GOMAXPROCS(0)
		}
		if j.maxRate > 0 {
			ej.MaxRate = formatSize(j.maxRate)
		}
		if j.segmentSize == 0 {
			ej.SegmentSize = formatSize(tapeformat.DefaultSegmentSize)
		}
		ej.Schedule.Cron = j.Schedule.Specs()
		d := j.Destination
		if j.IsTape() {
			ej.Destination = effDest{Tape: d.Tape, NextVolumeCmd: d.NextVolumeCmd, LabelPrefix: d.LabelPrefix, Pool: d.Pool, AutoLabel: d.AutoLabel}
			if ej.Destination.LabelPrefix == "" {
				ej.Destination.LabelPrefix = defaultLabelPrefix
			}
			if ej.Destination.AutoLabel == nil {
				t := true
				ej.Destination.AutoLabel = &t
			}
		} else {
			ej.Destination = effDest{Dir: d.Dir, Name: d.Name}
			if j.splitSize > 0 {
				ej.Destination.SplitSize = formatSize(j.splitSize)
			}
		}
		ej.Retention.KeepFullChains = j.Retention.KeepFullChains
		e.Jobs = append(e.Jobs, ej)
	}
	fmt.Fprintf(w, "# effective configuration of %s: every default filled in, the schedule as cron lines \"MIN HOUR DOM MON DOW LEVEL\"\n", c.Path)
	fmt.Fprintf(w, "# workers: %d CPUs here; keep_full_chains = 0 keeps everything; max_rate absent: unlimited\n", runtime.GOMAXPROCS(0))
	return toml.NewEncoder(w).Encode(e)
}

// formatSize writes a size exactly, in the largest binary unit that
// divides it (1MiB, 64KiB, 1536).
func formatSize(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.unit)
		}
	}
	return fmt.Sprint(n)
}

// formatDuration writes 20h rather than 20h0m0s.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
