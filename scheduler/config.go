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
//	encrypt_to      = ["age1...", "ssh-ed25519 AAAA... escrow"]  # encrypt the sets (age) to these
//	                                   # public keys: each decrypts alone; the host needs no private key
//	encrypt_to_file = "recipients.txt" # and/or every key in this file (one per line, # comments)
//	# encrypt_post_quantum = true      # allow age1pq1... keys (Debian's age 1.1.1 cannot read those sets)
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
	"github.com/tapestream/tapestream/tapeformat/agestream"
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
	// EncryptTo and EncryptToFile name the public keys the job's sets are
	// encrypted to (age1..., ssh-ed25519/ssh-rsa lines; a recipients file
	// of those); EncryptPostQuantum also accepts age1pq1... keys.
	EncryptTo          []string `toml:"encrypt_to"`
	EncryptToFile      string   `toml:"encrypt_to_file"`
	EncryptPostQuantum bool     `toml:"encrypt_post_quantum"`

	Schedule    Schedule    `toml:"schedule"`
	Destination Destination `toml:"destination"`
	Retention   Retention   `toml:"retention"`

	codec       codec.Codec
	maxRate     int64
	recordSize  int
	segmentSize int
	splitSize   int64
	recipients  []*agestream.Recipient
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
	switch {
	case d.Dir == "" && d.Tape == "":
		return errors.New("destination: give dir or tape")
	case d.Dir != "" && d.Tape != "":
		return errors.New("destination: give dir or tape, not both")
	case d.Tape != "" && !media.IsTape(d.Tape):
		return fmt.Errorf("destination tape %q: want /dev/nstN or tape:PATH", d.Tape)
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
	// The recipients are read when the configuration is: a key that does
	// not parse fails `run --check`, not the night's backup.
	ro := agestream.RecipientOptions{AllowPostQuantum: j.EncryptPostQuantum}
	for _, s := range j.EncryptTo {
		r, err := agestream.ParseRecipient(s, ro)
		if err != nil {
			return fmt.Errorf("encrypt_to: %w", err)
		}
		j.recipients = append(j.recipients, r)
	}
	if j.EncryptToFile != "" {
		j.EncryptToFile = absIn(dir, j.EncryptToFile)
		rs, err := agestream.ReadRecipientsFile(j.EncryptToFile, ro)
		if err != nil {
			return fmt.Errorf("encrypt_to_file: %w", err)
		}
		j.recipients = append(j.recipients, rs...)
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
	return filepath.Join(j.Destination.Dir, r.Replace(j.Destination.Name))
}

// readToken reads a token file (trimmed).
