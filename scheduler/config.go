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
//	groups  = ["SG1", "SG2"]           # required; ["*"]: every group of the store
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
//	name       = "{group}-{type}-{time}.tar{ext}"  # {job} {group} {type} {time} {date} {set} {ext}
//	split_size = "4GiB"
//	# or tape = "/dev/nst0" (or "tape:/var/lib/vtape?capacity=400GiB"),
//	#    next_volume_cmd = "mtx -f /dev/sg1 next", label_prefix = "MAIL", pool = "weekly"
//
//	[job.retention]
//	keep_full_chains = 2
package scheduler

import (
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

// The doc comment of every configuration field is its entry in
// docs/config.md, which TestConfigReference generates from these types: a
// description, then "Default:" (what validate fills in, checked against
// it by the test; "required" for a key that must be given) and "Example:"
// (the value as TOML, decoded by the test). Regenerate with
// `go test ./scheduler -run TestConfigReference -update`.

// Config is a job configuration file.
type Config struct {
	// Catalog is the catalog file (bbolt) that records every set, volume
	// and run; `tapestream catalog rebuild` recreates it from the sets.
	// Default: required
	// Example: "/var/lib/tapestream/catalog.db"
	Catalog string `toml:"catalog"`
	// LockDir holds the per-group lock files that keep two runs from
	// backing up one storage group at once.
	// Default: "locks" in the catalog's directory
	// Example: "/run/lock/tapestream"
	LockDir string `toml:"lock_dir"`
	// Textfile is the node_exporter textfile collector file written after
	// every run (metrics per job and per storage group). Unset: none.
	// Example: "/var/lib/prometheus/node-exporter/tapestream.prom"
	Textfile string `toml:"textfile"`
	// NotifyCmd is run (sh -c) after every job, on success and failure,
	// with TAPESTREAM_JOB, TAPESTREAM_STATUS, TAPESTREAM_LEVEL,
	// TAPESTREAM_ERROR and TAPESTREAM_SETS in its environment and the run's
	// JSON on stdin. A job's own notify_cmd and `run --notify-cmd`
	// override it. Unset: none.
	// Example: "/usr/local/bin/tapestream-notify"
	NotifyCmd string `toml:"notify_cmd"`
	// LogFormat is the format of the log on stderr: "text" or "json" (one
	// object per line, for journald and log shippers).
	// Default: "text"
	// Example: "json"
	LogFormat string `toml:"log_format"`
	// DueWindow is how late `tapestream run` still starts a missed slot (a
	// machine that was off, a Persistent= timer firing at boot), a Go
	// duration.
	// Default: "20h"
	// Example: "12h"
	DueWindow string `toml:"due_window"`
	// Jobs holds the backup jobs, each a [[job]] table; at least one is
	// required.
	Jobs []*Job `toml:"job"`

	// Path is the file the configuration was loaded from.
	Path      string        `toml:"-"`
	dueWindow time.Duration //
}

// Job is one configured backup job.
type Job struct {
	// Name names the job in the catalog, logs, metrics and
	// `run --job NAME`; unique in the file.
	// Default: required
	// Example: "mail"
	Name string `toml:"name"`
	// Store is the store directory, backed up in process (the store must
	// not be open in another process). Give store or server.
	// Example: "/srv/tapestream/store"
	Store string `toml:"store"`
	// Server is the URL of a `tapestream store serve` to back up through.
	// Give store or server.
	// Example: "https://mail1:7420"
	Server string `toml:"server"`
	// TokenFile holds the bearer token of the server.
	// Example: "/etc/tapestream/token"
	TokenFile string `toml:"token_file"`
	// CAFile is the CA certificate (PEM) that the server's certificate is
	// checked against. Unset: the system's roots.
	// Example: "/etc/tapestream/ca.pem"
	CAFile string `toml:"ca_file"`
	// Groups are the storage groups to back up, one set each, or ["*"] for
	// every group of the store. A group the store does not have is an
	// error at `config check` and at run time.
	// Default: required
	// Example: ["SG1", "SG2"]
	Groups []string `toml:"groups"`
	// Codec compresses each chunk: zstd, lz4, gzip or none, with an
	// optional level (zstd:1..4, gzip:1..9, lz4:0..9).
	// Default: "zstd"
	// Example: "lz4"
	Codec string `toml:"codec"`
	// Workers is the number of compression workers.
	// Default: the number of CPUs
	// Example: 4
	Workers int `toml:"workers"`
	// MaxRate caps the read rate of a backup, a size per second. Unset:
	// no cap.
	// Example: "200MiB"
	MaxRate string `toml:"max_rate"`
	// Pace is "auto" (online backups adapt their read rate to the store's
	// commit latency, the job's groups sharing one budget; see package
	// pace) or "off".
	// Default: "auto"
	// Example: "off"
	Pace string `toml:"pace"`
	// BlockSize is the record size, a multiple of 512: on tape, the block
	// size of the variable-block drive (read the set back with the same).
	// Default: "1MiB"
	// Example: "256KiB"
	BlockSize string `toml:"block_size"`
	// SegmentSize bounds a member (a segment of a file), 64KiB..1GiB: with
	// split_size or small tapes it must fit in a volume.
	// Default: "4MiB"
	// Example: "16MiB"
	SegmentSize string `toml:"segment_size"`
	// NotifyCmd overrides the top-level notify_cmd for this job.
	// Example: "/usr/local/bin/mail-backup-notify"
	NotifyCmd string `toml:"notify_cmd"`
	// EncryptTo are public keys (age1..., ssh-ed25519 or ssh-rsa lines)
	// the job's sets are encrypted to with age; each one decrypts alone,
	// and the backup host needs no private key. Unset: not encrypted.
	// Example: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
	EncryptTo []string `toml:"encrypt_to"`
	// EncryptToFile is a file of such public keys, one per line (#
	// comments), as `age -R` reads it; added to encrypt_to.
	// Example: "/etc/tapestream/recipients.txt"
	EncryptToFile string `toml:"encrypt_to_file"`
	// EncryptPostQuantum also accepts post-quantum age1pq1... keys
	// (Debian's age 1.1.1 cannot decrypt those sets).
	// Default: false
	// Example: true
	EncryptPostQuantum bool `toml:"encrypt_post_quantum"`

	// Schedule is the job's level schedule.
	Schedule Schedule `toml:"schedule"`
	// Destination is where the sets go.
	Destination Destination `toml:"destination"`
	// Retention is what is kept.
	Retention Retention `toml:"retention"`

	codec       codec.Codec
	maxRate     int64
	recordSize  int
	segmentSize int
	splitSize   int64
	recipients  []*agestream.Recipient
}

// Destination is where a job's sets go: a directory, a tape or an object
// store (one of dir, tape and s3).
type Destination struct {
	// Dir is the directory the sets are written to as files.
	// Example: "/backup/mail"
	Dir string `toml:"dir"`
	// Name is the file name template of a set: {job} {group} {type}
	// {time} (UTC, 20261105T013000Z) {date} {set} (the set ID) and {ext}
	// (the codec's extension: .zst, .lz4, .gz or none). It must contain
	// {group} and {time} or {set}.
	// Default: "{group}-{type}-{time}.tar{ext}"
	// Example: "{job}-{group}-{type}-{date}-{set}.tar{ext}"
	Name string `toml:"name"`
	// SplitSize splits a file set into volumes NAME.001, NAME.002, ... of
	// at most this size. Unset: one file.
	// Example: "4GiB"
	SplitSize string `toml:"split_size"`
	// Tape is the tape drive (/dev/nstN, the non-rewinding device) or an
	// emulated tape directory, tape:PATH?capacity=SIZE.
	// Example: "/dev/nst0"
	Tape string `toml:"tape"`
	// NextVolumeCmd is run (sh -c) when a set needs another cartridge, and
	// again after a refused one; it must exit 0 once the cartridge is
	// loaded. It gets TAPESTREAM_VOLUME, TAPESTREAM_VOLUME_LABEL,
	// TAPESTREAM_SET_ID and TAPESTREAM_DEVICE. Unset: a set that needs
	// another cartridge fails (exit 4).
	// Example: "mtx -f /dev/sg1 next"
	NextVolumeCmd string `toml:"next_volume_cmd"`
	// LabelPrefix starts the labels given to blank cartridges (PREFIX0001,
	// PREFIX0002, ...); no spaces or slashes.
	// Default: "TS"
	// Example: "MAIL"
	LabelPrefix string `toml:"label_prefix"`
	// Pool is the pool the job's cartridges belong to: a cartridge of
	// another pool is refused before anything is written on it.
	// Default: "" (the unnamed pool)
	// Example: "weekly"
	Pool string `toml:"pool"`
	// AutoLabel labels a blank tape when it is first used.
	// Default: true
	// Example: false
	AutoLabel *bool `toml:"auto_label"`
	// S3 is an object store location, s3://BUCKET/PREFIX: each set is an
	// object PREFIX/JOB/GROUP/NAME (written once, never replaced), and
	// PREFIX/leases/GROUP is the lease that keeps two archiver hosts from
	// backing up one group at once. Credentials and endpoint come from the
	// AWS environment, shared files, the URL's query or s3_options.
	// Example: "s3://backups/mail"
	S3 string `toml:"s3"`
	// S3Options are the S3 settings beyond the URL.
	S3Options S3Config `toml:"s3_options"`
}

// S3Config is a job's S3 settings beyond its URL (destination s3).
type S3Config struct {
	// Endpoint is the S3 endpoint URL (MinIO, Ceph, versitygw...). Unset:
	// AWS's, or AWS_ENDPOINT_URL.
	// Example: "https://s3.example.net:9000"
	Endpoint string `toml:"endpoint"`
	// Region is the bucket's region. Unset: from the AWS configuration.
	// Example: "eu-west-1"
	Region string `toml:"region"`
	// Profile is the AWS shared-configuration profile for credentials.
	// Example: "backup"
	Profile string `toml:"profile"`
	// CAFile is a CA certificate (PEM) the endpoint is checked against.
	// Example: "/etc/tapestream/s3-ca.pem"
	CAFile string `toml:"ca_file"`
	// PathStyle is "true" (bucket in the path), "false" (virtual-hosted)
	// or unset (automatic).
	// Example: "true"
	PathStyle string `toml:"path_style"`
	// Concurrency is the number of parts (and ranges, reading) in flight.
	// Default: 4
	// Example: 8
	Concurrency int `toml:"concurrency"`
	// PartSize is the first part's size, 5MiB or more (parts grow as an
	// upload goes).
	// Default: "8MiB"
	// Example: "16MiB"
	PartSize string `toml:"part_size"`
	// ObjectLockMode (GOVERNANCE or COMPLIANCE) with retain_days puts an
	// Object Lock retention on every set: nobody deletes or overwrites
	// them before then. The bucket must have Object Lock enabled.
	// Example: "COMPLIANCE"
	ObjectLockMode string `toml:"object_lock_mode"`
	// RetainDays is the Object Lock retention, in days from the backup's
	// start; goes with object_lock_mode.
	// Example: 35
	RetainDays int `toml:"retain_days"`
	// LeaseTTL is how long a group's lease holds without renewal (renewed
	// every third of it while the backup runs), a minute or more.
	// Default: "1h"
	// Example: "30m"
	LeaseTTL string `toml:"lease_ttl"`
	// StateDir keeps the state of uploads, so that a killed run's upload
	// is resumed or cleaned up.
	// Default: the user's cache directory
	// Example: "/var/lib/tapestream/s3"
	StateDir string `toml:"state_dir"`

	leaseTTL time.Duration
	partSize int64
}

// Retention says how many full chains of each group to keep. A chain is
// a full and every set depending on it.
type Retention struct {
	// KeepFullChains is how many full chains (a full and every set
	// depending on it) of each group are kept; older chains expire with
	// all their sets (files deleted, tape sets marked expired). The newest
	// valid chain never expires. 0 keeps everything.
	// Default: 0
	// Example: 2
	KeepFullChains int `toml:"keep_full_chains"`
}

// DefaultName is the default set file name template.
const DefaultName = "{group}-{type}-{time}.tar{ext}"

// ConfigError lists every problem found in a configuration, each naming
// the key it is about (`tapestream config check` prints them all; run and
// daemon refuse to start, exit 2). A job whose groups are not in its store
// at run time fails with one too.
type ConfigError struct {
	Path     string
	Problems []string
}

func (e *ConfigError) Error() string {
	where := "config"
	if e.Path != "" {
		where = "config " + e.Path
	}
	if len(e.Problems) == 1 {
		return where + ": " + e.Problems[0]
	}
	return fmt.Sprintf("%s: %d problems:\n  %s", where, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// LoadConfig reads and validates a configuration file. Relative paths in
// it are relative to the file's directory. Every problem found is in the
// *ConfigError.
func LoadConfig(path string) (*Config, error) {
	c, probs := loadConfig(path)
	if len(probs) > 0 {
		return nil, &ConfigError{Path: path, Problems: probs}
	}
	return c, nil
}

// loadConfig reads and validates a configuration file as far as it can:
// the configuration is nil only when the file does not parse as TOML.
func loadConfig(path string) (*Config, []string) {
	var c Config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var probs []string
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		probs = append(probs, "unknown keys: "+strings.Join(keys, ", "))
	}
	c.Path = path
	probs = append(probs, c.validate(filepath.Dir(path))...)
	return &c, probs
}

// ParseConfig parses configuration text (relative paths against dir).
func ParseConfig(text, dir string) (*Config, error) {
	var c Config
	if _, err := toml.Decode(text, &c); err != nil {
		return nil, err
	}
	if probs := c.validate(dir); len(probs) > 0 {
		return nil, &ConfigError{Problems: probs}
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

// validate fills defaults and returns every problem found, each naming
// its key.
func (c *Config) validate(dir string) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if c.Catalog == "" {
		add("catalog (the catalog file) is required")
	}
	c.Catalog = absIn(dir, c.Catalog)
	if c.LockDir == "" && c.Catalog != "" {
		c.LockDir = filepath.Join(filepath.Dir(c.Catalog), "locks")
	}
	c.LockDir = absIn(dir, c.LockDir)
	c.Textfile = absIn(dir, c.Textfile)
	switch c.LogFormat {
	case "", "text", "json":
	default:
		add("log_format %q: want text or json", c.LogFormat)
	}
	c.dueWindow = 20 * time.Hour
	if c.DueWindow != "" {
		d, err := time.ParseDuration(c.DueWindow)
		if err != nil || d <= 0 {
			add("due_window %q: want a duration such as 20h", c.DueWindow)
		} else {
			c.dueWindow = d
		}
	}
	if len(c.Jobs) == 0 {
		add("no [[job]]")
	}
	names := map[string]bool{}
	for i, j := range c.Jobs {
		name := j.Name
		if name == "" {
			add("job %d: name is required", i+1)
			name = fmt.Sprintf("#%d", i+1)
		} else if names[j.Name] {
			add("job %q: name: defined twice", j.Name)
		}
		names[j.Name] = true
		for _, err := range j.validate(dir) {
			add("job %q: %v", name, err)
		}
	}
	return probs
}

// AllGroups is the groups value that means every group of the store.
const AllGroups = "*"

// AllGroups reports whether the job backs up every group of its store.
func (j *Job) AllGroups() bool { return len(j.Groups) == 1 && j.Groups[0] == AllGroups }

// ResolveGroups returns the groups the job backs up, given the groups its
// store has: all of them for groups = ["*"], else the configured ones, each
// of which must be there (an error naming the key and what the store has).
func (j *Job) ResolveGroups(have []string) ([]string, error) {
	if j.AllGroups() {
		if len(have) == 0 {
			return nil, fmt.Errorf("job %q: groups = [\"*\"]: the store has no storage group", j.Name)
		}
		return append([]string(nil), have...), nil
	}
	var missing []string
	for _, g := range j.Groups {
		if !containsGroup(have, g) {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("job %q: groups: storage group %s is not in %s (it has %s)", j.Name, strings.Join(missing, ", "), j.SourceName(), strings.Join(have, ", "))
	}
	return j.Groups, nil
}

// SourceName names the job's store for messages.
func (j *Job) SourceName() string {
	if j.Store != "" {
		return "store " + j.Store
	}
	return "server " + j.Server
}

func (j *Job) validate(dir string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case j.Store == "" && j.Server == "":
		add("give store (a store directory) or server (a store server URL)")
	case j.Store != "" && j.Server != "":
		add("give store or server, not both")
	}
	j.Store = absIn(dir, j.Store)
	j.TokenFile = absIn(dir, j.TokenFile)
	j.CAFile = absIn(dir, j.CAFile)
	if len(j.Groups) == 0 {
		add(`groups: required: name the storage groups to back up (groups = ["SG1", "SG2"]), or groups = ["*"] for every group of the store`)
	}
	seen := map[string]bool{}
	for _, g := range j.Groups {
		if g == AllGroups {
			if len(j.Groups) > 1 {
				add(`groups: "*" (every group of the store) stands alone`)
			}
			continue
		}
		if err := engine.ValidName(g); err != nil {
			add("groups: %q: %v", g, err)
		}
		if seen[g] {
			add("groups: %q listed twice", g)
		}
		seen[g] = true
	}
	if j.Codec == "" {
		j.Codec = "zstd"
	}
	var err error
	if j.codec, err = codec.ParseCodec(j.Codec); err != nil {
		add("codec: %v", err)
	}
	if j.MaxRate != "" {
		if j.maxRate, err = media.ParseSize(j.MaxRate); err != nil {
			add("max_rate: %v", err)
		}
	}
	switch j.Pace {
	case "":
		j.Pace = "auto"
	case "auto", "off":
	default:
		add("pace %q: want auto or off", j.Pace)
	}
	j.recordSize = media.DefaultRecordSize
	if j.BlockSize != "" {
		n, err := media.ParseSize(j.BlockSize)
		if err != nil || n <= 0 || n%512 != 0 {
			add("block_size %q: want a multiple of 512", j.BlockSize)
		} else {
			j.recordSize = int(n)
		}
	}
	if j.SegmentSize != "" {
		n, err := media.ParseSize(j.SegmentSize)
		if err != nil || n < 64<<10 || n > 1<<30 {
			add("segment_size %q: want 64KiB..1GiB", j.SegmentSize)
		} else {
			j.segmentSize = int(n)
		}
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
		add("destination: give dir, tape or s3")
	case n > 1:
		add("destination: give one of dir, tape and s3")
	case d.Tape != "" && !media.IsTape(d.Tape):
		add("destination tape %q: want /dev/nstN or tape:PATH", d.Tape)
	case d.S3 != "" && media.Classify(d.S3) != media.KindS3:
		add("destination s3 %q: want s3://BUCKET/PREFIX", d.S3)
	}
	if d.S3 != "" {
		so := &d.S3Options
		so.leaseTTL = time.Hour
		if so.LeaseTTL != "" {
			t, err := time.ParseDuration(so.LeaseTTL)
			if err != nil || t < time.Minute {
				add("destination s3_options.lease_ttl %q: want a duration of a minute or more", so.LeaseTTL)
			}
			so.leaseTTL = t
		}
		if so.PartSize != "" {
			n, err := media.ParseSize(so.PartSize)
			if err != nil || n < 5<<20 {
				add("destination s3_options.part_size %q: want 5MiB or more", so.PartSize)
			}
			so.partSize = n
		}
		switch so.ObjectLockMode {
		case "", "GOVERNANCE", "COMPLIANCE":
		default:
			add("destination s3_options.object_lock_mode %q: want GOVERNANCE or COMPLIANCE", so.ObjectLockMode)
		}
		if (so.ObjectLockMode == "") != (so.RetainDays == 0) {
			add("destination s3_options: object_lock_mode and retain_days go together")
		}
		so.CAFile, so.StateDir = absIn(dir, so.CAFile), absIn(dir, so.StateDir)
	}
	if d.Tape != "" && strings.HasPrefix(d.Tape, media.EmulatedPrefix) {
		t, err := media.ParseEmulatedSpec(d.Tape)
		if err != nil {
			add("destination tape: %v", err)
		} else if !filepath.IsAbs(t.Dir) {
			d.Tape = media.EmulatedPrefix + absIn(dir, strings.TrimPrefix(d.Tape, media.EmulatedPrefix))
		}
	}
	d.Dir = absIn(dir, d.Dir)
	if d.Name == "" {
		d.Name = DefaultName
	}
	if strings.ContainsAny(d.Name, "/\\") || !strings.Contains(d.Name, "{group}") {
		add("destination name %q: a file name (no directories) containing {group}", d.Name)
	}
	if !strings.Contains(d.Name, "{time}") && !strings.Contains(d.Name, "{set}") {
		add("destination name %q: needs {time} or {set} so that every set gets its own file", d.Name)
	}
	if d.SplitSize != "" {
		if d.Tape != "" {
			add("destination split_size applies to file destinations only")
		} else if j.splitSize, err = media.ParseSize(d.SplitSize); err != nil {
			add("destination split_size: %v", err)
		}
	}
	if d.Tape == "" && (d.NextVolumeCmd != "" || d.LabelPrefix != "" || d.Pool != "" || d.AutoLabel != nil) {
		add("destination next_volume_cmd, label_prefix, pool and auto_label apply to tape destinations only")
	}
	if strings.ContainsAny(d.LabelPrefix, " /\\") {
		add("destination label_prefix %q: no spaces or slashes", d.LabelPrefix)
	}
	// The recipients are read when the configuration is: a key that does
	// not parse fails `config check`, not the night's backup.
	ro := agestream.RecipientOptions{AllowPostQuantum: j.EncryptPostQuantum}
	for _, s := range j.EncryptTo {
		r, err := agestream.ParseRecipient(s, ro)
		if err != nil {
			add("encrypt_to: %v", err)
			continue
		}
		j.recipients = append(j.recipients, r)
	}
	if j.EncryptToFile != "" {
		j.EncryptToFile = absIn(dir, j.EncryptToFile)
		rs, err := agestream.ReadRecipientsFile(j.EncryptToFile, ro)
		if err != nil {
			add("encrypt_to_file: %v", err)
		}
		j.recipients = append(j.recipients, rs...)
	}
	if j.Retention.KeepFullChains < 0 {
		add("retention keep_full_chains must be >= 1 (0 = keep everything)")
	}
	if err := j.Schedule.compile(); err != nil {
		errs = append(errs, err)
	}
	return errs
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
