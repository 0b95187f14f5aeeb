// Package scheduler runs tapestream's configured backup jobs: level
// selection (with promotion to full when the chain is broken), one backup
// per storage group, the catalog, retention, per-group locks, metrics for
// node_exporter's textfile collector and a notification hook. It backs
// `tapestream run` (cron, systemd timers) and `tapestream daemon`.
//
// # Configuration (TOML)
//
//	catalog    = "/var/lib/tapestream/catalog.db"   # bbolt file
//	lock_dir   = "/run/lock/tapestream"             # default: the catalog's directory
//	textfile   = "/var/lib/node_exporter/textfile/tapestream.prom"
//	notify_cmd = "/usr/local/bin/backup-notify"     # sh -c, on success and failure
//	log_format = "text"                             # or "json"
//	due_window = "20h"                              # how late `run` still starts a missed slot
//
//	[[job]]
//	name    = "mail"
//	store   = "/srv/store"             # in process; or server = "https://host:7420", token_file = "..."
//	groups  = ["SG1", "SG2"]
//	codec   = "zstd"
//	workers = 4
//	max_rate = "200MiB"
//	pace    = "auto"                   # default: adapt the read rate to the store's commit
//	                                   # latency (the job's groups share one budget); or "off"
//
//	[job.schedule]                     # shorthand: one time of day, levels by weekday
//	at           = "01:30"
//	full         = ["sun"]
//	differential = ["wed"]             # incremental on every other day
//	# or cron lines "MIN HOUR DOM MON DOW LEVEL" / "@daily LEVEL":
//	# cron = ["30 1 * * 0 full", "30 1 * * 1-6 incremental"]
//
//	[job.destination]
//	dir        = "/backup/mail"
//	name       = "{group}-{type}-{time}.tar.zst"   # {job} {group} {type} {time} {date} {set}
//	split_size = "4GiB"
//	# or tape = "/dev/nst0" (or "tape:/var/lib/vtape?capacity=400GiB"),
//	#    next_volume_cmd = "mtx -f /dev/sg1 next", label_prefix = "MAIL"
//
//	[job.retention]
//	keep_full_chains = 2
package scheduler

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Config is a job configuration file.
type Config struct {
	Catalog   string `toml:"catalog"`
	LockDir   string `toml:"lock_dir"`
	Textfile  string `toml:"textfile"`
	NotifyCmd string `toml:"notify_cmd"`
	LogFormat string `toml:"log_format"`
	DueWindow string `toml:"due_window"`
	Jobs      []*Job `toml:"job"`

	// Path is the file the configuration was loaded from.
	Path      string        `toml:"-"`
	dueWindow time.Duration //
}

// Job is one configured backup job.
type Job struct {
	Name      string   `toml:"name"`
	Store     string   `toml:"store"`
	Server    string   `toml:"server"`
	TokenFile string   `toml:"token_file"`
	CAFile    string   `toml:"ca_file"`
	Groups    []string `toml:"groups"`
	Codec     string   `toml:"codec"`
	Workers   int      `toml:"workers"`
	MaxRate   string   `toml:"max_rate"`
	// Pace is "auto" (the default: online backups adapt their read rate
	// to the store's commit latency, see package pace) or "off".
	Pace      string `toml:"pace"`
	BlockSize string `toml:"block_size"`
	// SegmentSize bounds a member (a segment of a file): with split_size
	// or small tapes it must fit in a volume.
	SegmentSize string `toml:"segment_size"`
	NotifyCmd   string `toml:"notify_cmd"`

	Schedule    Schedule    `toml:"schedule"`
	Destination Destination `toml:"destination"`
	Retention   Retention   `toml:"retention"`

	codec       codec.Codec
	maxRate     int64
	recordSize  int
	segmentSize int
	splitSize   int64
}

// Destination is where a job's sets go: a directory or a tape.
type Destination struct {
	Dir           string `toml:"dir"`
	Name          string `toml:"name"`
	SplitSize     string `toml:"split_size"`
	Tape          string `toml:"tape"`
	NextVolumeCmd string `toml:"next_volume_cmd"`
	LabelPrefix   string `toml:"label_prefix"`
	Pool          string `toml:"pool"`
	// AutoLabel labels a blank tape when it is first used (default true).
	AutoLabel *bool `toml:"auto_label"`
	// S3 is an object store location, s3://BUCKET/PREFIX: each set is an
	// object PREFIX/JOB/GROUP/NAME (written once, never replaced), and
	// PREFIX/leases/GROUP is the lease that keeps two archiver hosts from
	// backing up one group at once. Credentials and endpoint come from the
	// AWS environment, shared files, the URL's query or S3Options.
	S3        string   `toml:"s3"`
	S3Options S3Config `toml:"s3_options"`
}

// S3Config is a job's S3 settings beyond its URL.
type S3Config struct {
	Endpoint  string `toml:"endpoint"`
	Region    string `toml:"region"`
	Profile   string `toml:"profile"`
	CAFile    string `toml:"ca_file"`
	PathStyle string `toml:"path_style"` // "true", "false" or "" (auto)
	// Concurrency is the parts (and ranges) in flight; PartSize the first
	// part's size (parts grow as an upload goes).
	Concurrency int    `toml:"concurrency"`
	PartSize    string `toml:"part_size"`
	// ObjectLockMode (GOVERNANCE or COMPLIANCE) and RetainDays put an
	// Object Lock retention on every set (the bucket must have Object Lock
	// enabled): nobody deletes or overwrites them before then.
	ObjectLockMode string `toml:"object_lock_mode"`
	RetainDays     int    `toml:"retain_days"`
	// LeaseTTL is how long a group's lease holds without renewal (default
	// 1h; renewed every third of it while the backup runs).
	LeaseTTL string `toml:"lease_ttl"`
	// StateDir keeps the state of uploads, so that a killed run's upload is
	// resumed or cleaned up (default: the user's cache directory).
	StateDir string `toml:"state_dir"`

	leaseTTL time.Duration
	partSize int64
}

// Retention says how many full chains of each group to keep.
type Retention struct {
	KeepFullChains int `toml:"keep_full_chains"`
}

// DefaultName is the default set file name template.
const DefaultName = "{group}-{type}-{time}.tar{ext}"

// LoadConfig reads and validates a configuration file. Relative paths in
// it are relative to the file's directory.
func LoadConfig(path string) (*Config, error) {
	var c Config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		return nil, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	c.Path = path
	if err := c.validate(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// ParseConfig parses configuration text (relative paths against dir).
func ParseConfig(text, dir string) (*Config, error) {
	var c Config
	if _, err := toml.Decode(text, &c); err != nil {
		return nil, err
	}
	if err := c.validate(dir); err != nil {
		return nil, err
	}
	return &c, nil
}

func absIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	a, err := filepath.Abs(filepath.Join(dir, p))
	if err != nil {
		return filepath.Join(dir, p)
	}
	return a
}

func (c *Config) validate(dir string) error {
	if c.Catalog == "" {
		return errors.New("catalog (the catalog file) is required")
	}
	c.Catalog = absIn(dir, c.Catalog)
	if c.LockDir == "" {
		c.LockDir = filepath.Join(filepath.Dir(c.Catalog), "locks")
	}
	c.LockDir = absIn(dir, c.LockDir)
	c.Textfile = absIn(dir, c.Textfile)
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("log_format %q: want text or json", c.LogFormat)
	}
	c.dueWindow = 20 * time.Hour
	if c.DueWindow != "" {
		d, err := time.ParseDuration(c.DueWindow)
		if err != nil || d <= 0 {
			return fmt.Errorf("due_window %q: want a duration such as 20h", c.DueWindow)
		}
		c.dueWindow = d
	}
	if len(c.Jobs) == 0 {
		return errors.New("no [[job]]")
	}
	names := map[string]bool{}
	for i, j := range c.Jobs {
		if j.Name == "" {
			return fmt.Errorf("job %d has no name", i+1)
		}
		if names[j.Name] {
			return fmt.Errorf("job %q is defined twice", j.Name)
		}
		names[j.Name] = true
		if err := j.validate(dir); err != nil {
			return fmt.Errorf("job %q: %w", j.Name, err)
		}
	}
	return nil
}

func (j *Job) validate(dir string) error {
	switch {
	case j.Store == "" && j.Server == "":
		return errors.New("give store (a store directory) or server (a store server URL)")
	case j.Store != "" && j.Server != "":
		return errors.New("give store or server, not both")
	}
	j.Store = absIn(dir, j.Store)
	j.TokenFile = absIn(dir, j.TokenFile)
	j.CAFile = absIn(dir, j.CAFile)
	if len(j.Groups) == 0 {
		j.Groups = []string{"SG1"}
	}
	seen := map[string]bool{}
	for _, g := range j.Groups {
		if err := engine.ValidName(g); err != nil {
			return fmt.Errorf("group %q: %w", g, err)
		}
		if seen[g] {
			return fmt.Errorf("group %q listed twice", g)
		}
		seen[g] = true
	}
	if j.Codec == "" {
		j.Codec = "zstd"
	}
	var err error
	if j.codec, err = codec.ParseCodec(j.Codec); err != nil {
		return err
	}
	if j.MaxRate != "" {
		if j.maxRate, err = media.ParseSize(j.MaxRate); err != nil {
			return fmt.Errorf("max_rate: %w", err)
		}
	}
	switch j.Pace {
	case "":
		j.Pace = "auto"
	case "auto", "off":
	default:
		return fmt.Errorf("pace %q: want auto or off", j.Pace)
	}
	j.recordSize = media.DefaultRecordSize
	if j.BlockSize != "" {
		n, err := media.ParseSize(j.BlockSize)
		if err != nil || n <= 0 || n%512 != 0 {
			return fmt.Errorf("block_size %q: want a multiple of 512", j.BlockSize)
		}
		j.recordSize = int(n)
	}
	if j.SegmentSize != "" {
		n, err := media.ParseSize(j.SegmentSize)
		if err != nil || n < 64<<10 || n > 1<<30 {
			return fmt.Errorf("segment_size %q: want 64KiB..1GiB", j.SegmentSize)
		}
		j.segmentSize = int(n)
	}
	d := &j.Destination
	n := 0
	for _, v := range []string{d.Dir, d.Tape, d.S3} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("destination: give dir, tape or s3")
	case n > 1:
		return errors.New("destination: give one of dir, tape and s3")
	case d.Tape != "" && !media.IsTape(d.Tape):
		return fmt.Errorf("destination tape %q: want /dev/nstN or tape:PATH", d.Tape)
	case d.S3 != "" && media.Classify(d.S3) != media.KindS3:
		return fmt.Errorf("destination s3 %q: want s3://BUCKET/PREFIX", d.S3)
	}
	if d.S3 != "" {
		so := &d.S3Options
		so.leaseTTL = time.Hour
		if so.LeaseTTL != "" {
			t, err := time.ParseDuration(so.LeaseTTL)
			if err != nil || t < time.Minute {
				return fmt.Errorf("destination s3_options.lease_ttl %q: want a duration of a minute or more", so.LeaseTTL)
			}
			so.leaseTTL = t
		}
		if so.PartSize != "" {
			n, err := media.ParseSize(so.PartSize)
			if err != nil || n < 5<<20 {
				return fmt.Errorf("destination s3_options.part_size %q: want 5MiB or more", so.PartSize)
			}
			so.partSize = n
		}
		switch so.ObjectLockMode {
		case "", "GOVERNANCE", "COMPLIANCE":
		default:
			return fmt.Errorf("destination s3_options.object_lock_mode %q: want GOVERNANCE or COMPLIANCE", so.ObjectLockMode)
		}
		if (so.ObjectLockMode == "") != (so.RetainDays == 0) {
			return errors.New("destination s3_options: object_lock_mode and retain_days go together")
		}
		so.CAFile, so.StateDir = absIn(dir, so.CAFile), absIn(dir, so.StateDir)
	}
	if d.Tape != "" && strings.HasPrefix(d.Tape, media.EmulatedPrefix) {
		t, err := media.ParseEmulatedSpec(d.Tape)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(t.Dir) {
			d.Tape = media.EmulatedPrefix + absIn(dir, strings.TrimPrefix(d.Tape, media.EmulatedPrefix))
		}
	}
	d.Dir = absIn(dir, d.Dir)
	if d.Name == "" {
		d.Name = DefaultName
	}
	if strings.ContainsAny(d.Name, "/\\") || !strings.Contains(d.Name, "{group}") {
		return fmt.Errorf("destination name %q: a file name (no directories) containing {group}", d.Name)
	}
	if !strings.Contains(d.Name, "{time}") && !strings.Contains(d.Name, "{set}") {
		return fmt.Errorf("destination name %q: needs {time} or {set} so that every set gets its own file", d.Name)
	}
	if d.SplitSize != "" {
		if d.Tape != "" {
			return errors.New("split_size applies to file destinations only")
		}
		if j.splitSize, err = media.ParseSize(d.SplitSize); err != nil {
			return fmt.Errorf("split_size: %w", err)
		}
	}
	if j.Retention.KeepFullChains < 0 {
		return errors.New("retention keep_full_chains must be >= 1 (0 = keep everything)")
	}
	return j.Schedule.compile()
}

// Job returns the job of that name.
func (c *Config) Job(name string) (*Job, error) {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j, nil
		}
	}
	var names []string
	for _, j := range c.Jobs {
		names = append(names, j.Name)
	}
	return nil, fmt.Errorf("no job %q in %s (have %s)", name, c.Path, strings.Join(names, ", "))
}

// IsTape reports whether the job writes to a tape.
func (j *Job) IsTape() bool { return j.Destination.Tape != "" }

// FileName expands the destination name template.
func (j *Job) FileName(group string, typ ese.BackupType, t time.Time, setID string) string {
	r := strings.NewReplacer("{job}", j.Name, "{group}", group, "{type}", typ.String(),
		"{time}", t.UTC().Format("20060102T150405Z"), "{date}", t.UTC().Format("2006-01-02"),
		"{set}", setID, "{ext}", j.codec.Ext())
	if j.IsS3() {
		return strings.TrimSuffix(j.Destination.S3, "/") + "/" + j.Name + "/" + group + "/" + r.Replace(j.Destination.Name)
	}
	return filepath.Join(j.Destination.Dir, r.Replace(j.Destination.Name))
}

// IsS3 reports whether the job writes to an object store.
func (j *Job) IsS3() bool { return j.Destination.S3 != "" }

// s3Options are the media options of the job's S3 destination; at is the
// backup's start (Object Lock retention is counted from it).
func (j *Job) s3Options(at time.Time) media.S3Options {
	c := j.Destination.S3Options
	so := media.S3Options{StateDir: c.StateDir, LockMode: c.ObjectLockMode}
	so.Store.Endpoint, so.Store.Region, so.Store.Profile, so.Store.CAFile, so.Store.PathStyle = c.Endpoint, c.Region, c.Profile, c.CAFile, c.PathStyle
	so.Store.Concurrency, so.Store.PartSize = c.Concurrency, c.partSize
	if c.RetainDays > 0 {
		so.RetainUntil = at.Add(time.Duration(c.RetainDays) * 24 * time.Hour)
	}
	return so
}

// readToken reads a token file (trimmed).
