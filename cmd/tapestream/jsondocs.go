package main

// The --json documents (docs/json.md). Those of backup and restore are
// written out here field by field: their library results carry durations
// as time.Duration and volumes without JSON names, and restore.Result is
// also the store server's wire format, whose keys stay. The others hold
// the library's report as it is.

import (
	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/restore"
	"github.com/tapestream/tapestream/scheduler"
	"github.com/tapestream/tapestream/tapeformat"
)

// backupDoc is backup's document: one entry per storage group backed up,
// one per group that failed.
type backupDoc struct {
	docHeader
	// OK is false when a group failed.
	OK     bool             `json:"ok"`
	Groups []backupGroupDoc `json:"groups"`
	Failed []groupFailure   `json:"failed"`
	// Pace is the read rate chosen over time with --pace auto, shared by
	// the groups.
	Pace *pace.Summary `json:"pace,omitempty"`
}

// groupFailure is a storage group whose backup or restore failed.
type groupFailure struct {
	Group string `json:"group"`
	Error string `json:"error"`
}

// backupGroupDoc is the set written for one storage group.
type backupGroupDoc struct {
	SetID              string         `json:"set_id"`
	Type               ese.BackupType `json:"type"`
	Group              string         `json:"group"`
	Databases          []string       `json:"databases"`
	LogFirstGeneration uint32         `json:"log_first_generation"`
	LogLastGeneration  uint32         `json:"log_last_generation"`
	// BytesIn is what was read from the store, BytesOut what was written
	// to the medium; Ratio is BytesIn / BytesOut.
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
	Ratio    float64 `json:"ratio"`
	// DurationSeconds is the wall time from Begin to the end of the
	// session; ThroughputBytesPerSecond is BytesIn over it.
	DurationSeconds          float64               `json:"duration_seconds"`
	ThroughputBytesPerSecond float64               `json:"throughput_bytes_per_second"`
	Codec                    string                `json:"codec"`
	Files                    []pipeline.FileResult `json:"files"`
	TruncatedLogs            []string              `json:"truncated_logs"`
	// TruncationSkipped says why a full or incremental truncated nothing.
	TruncationSkipped string                 `json:"truncation_skipped,omitempty"`
	Volumes           []volumeDoc            `json:"volumes"`
	PreviousSetID     string                 `json:"previous_set_id,omitempty"`
	Target            string                 `json:"target"`
	Encryption        *tapeformat.Encryption `json:"encryption,omitempty"`
}

// volumeDoc is one volume a set was written to.
type volumeDoc struct {
	Number int    `json:"number"`
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	// FileNumber is the tape file number the set starts at on the
	// volume; -1 when the target is not a tape.
	FileNumber   int64  `json:"file_number"`
	EarlyWarning bool   `json:"early_warning"`
	Label        string `json:"label,omitempty"`
	// Cartridge is the emulated tape's cartridge number (0 otherwise).
	Cartridge int `json:"cartridge,omitempty"`
}

func newBackupDoc(results []*backup.Result, failed []groupFailure, ps *pace.Summary) *backupDoc {
	d := &backupDoc{docHeader: header("backup"), OK: len(failed) == 0, Groups: []backupGroupDoc{}, Failed: failed, Pace: ps}
	if d.Failed == nil {
		d.Failed = []groupFailure{}
	}
	for _, r := range results {
		if r == nil {
			continue
		}
		g := backupGroupDoc{SetID: r.SetID, Type: r.Type, Group: r.Group, Databases: nonNil(r.Databases),
			LogFirstGeneration: r.LowGen, LogLastGeneration: r.HighGen, BytesIn: r.BytesIn, BytesOut: r.BytesOut, Ratio: r.Ratio,
			DurationSeconds: r.Duration.Seconds(), ThroughputBytesPerSecond: r.Throughput, Codec: r.Codec, Files: nonNil(r.Files),
			TruncatedLogs: nonNil(r.Truncated), TruncationSkipped: r.TruncationSkipped, Volumes: volumeDocs(r.Volumes),
			PreviousSetID: r.PreviousSetID, Target: r.Target, Encryption: r.Encryption}
		d.Groups = append(d.Groups, g)
	}
	return d
}

func volumeDocs(vs []media.VolumeInfo) []volumeDoc {
	out := []volumeDoc{}
	for _, v := range vs {
		out = append(out, volumeDoc{Number: v.Number, Name: v.Name, Bytes: v.Bytes, FileNumber: v.FileNumber,
			EarlyWarning: v.EarlyWarning, Label: v.Label, Cartridge: v.Cartridge})
	}
	return out
}

// nonNil makes an empty list print as [] (the schemas want an array).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// restoreDoc is restore's document: one entry per storage group restored
// (a chain of sets), one per group that failed.
type restoreDoc struct {
	docHeader
	// OK is false when a group failed or lost data (problems).
	OK     bool              `json:"ok"`
	Groups []restoreGroupDoc `json:"groups"`
	Failed []groupFailure    `json:"failed"`
}

// restoreGroupDoc is one storage group restored.
type restoreGroupDoc struct {
	Group string `json:"group"`
	// Dir is the group's directory (local restores; the server's path
	// for --server).
	Dir                string   `json:"dir"`
	Sets               []string `json:"sets"`
	LogFirstGeneration uint32   `json:"log_first_generation"`
	LogLastGeneration  uint32   `json:"log_last_generation"`
	Bytes              int64    `json:"bytes"`
	DurationSeconds    float64  `json:"duration_seconds"`
	Recovered          bool     `json:"recovered"`
	// Recovery is the replay of the logs (absent with --no-recover).
	Recovery *recoveryDoc `json:"recovery,omitempty"`
	// Problems are the damaged ranges a salvaging restore lost.
	Problems []restore.Problem `json:"problems"`
	// Replaced is where the group (or the databases) this restore
	// replaced was moved (--force).
	Replaced string `json:"replaced,omitempty"`
	// Databases are the databases restored when not the whole group was.
	Databases []string `json:"databases,omitempty"`
	// Mounted says the server mounted the group (--server).
	Mounted bool `json:"mounted,omitempty"`
}

// recoveryDoc is the replay of a restored group's logs (engine.RecoveryInfo).
type recoveryDoc struct {
	FromGeneration  uint32  `json:"from_generation"`
	ToGeneration    uint32  `json:"to_generation"`
	Records         int     `json:"records"`
	Commits         int     `json:"commits"`
	LogBytes        int64   `json:"log_bytes"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Clean: there was nothing to replay.
	Clean bool `json:"clean"`
}

func newRestoreGroupDoc(r *restore.Result) restoreGroupDoc {
	g := restoreGroupDoc{Group: r.Group, Dir: r.Dir, Sets: nonNil(r.Sets), LogFirstGeneration: r.LowGen, LogLastGeneration: r.HighGen,
		Bytes: r.Bytes, DurationSeconds: r.Duration.Seconds(), Recovered: r.Recovered, Problems: nonNil(r.Problems),
		Replaced: r.Replaced, Databases: r.Databases}
	if ri := r.Recovery; ri != nil {
		g.Recovery = &recoveryDoc{FromGeneration: ri.FromGen, ToGeneration: ri.ToGen, Records: ri.Records, Commits: ri.Commits,
			LogBytes: ri.LogBytes, DurationSeconds: ri.Duration.Seconds(), Clean: ri.Clean}
	}
	return g
}

// The documents below hold a library's report as it is: its keys already
// keep the conventions, and several are formats on media or in the
// catalog whose names never change.

// verifyDoc is verify's document.
type verifyDoc struct {
	docHeader
	*verifyReport
}

// listDoc is list's document: the set's label and manifest as they are on
// the medium.
type listDoc struct {
	docHeader
	Label tapeformat.Label `json:"label"`
	// Manifest is null when the set's manifest could not be read (a
	// set cut short).
	Manifest *tapeformat.Manifest `json:"manifest" jsonschema:"nullable"`
}

// runDoc is run's document: each job's outcome.
type runDoc struct {
	docHeader
	*scheduler.Summary
}

// statusDoc is status's document.
type statusDoc struct {
	docHeader
	*scheduler.Status
}

// truncateDoc is truncate's document: the logs a set read back allowed to
// delete.
type truncateDoc struct {
	docHeader
	SetID         string   `json:"set_id"`
	Group         string   `json:"group"`
	TruncatedLogs []string `json:"truncated_logs"`
}

// configCheckDoc is config check's document.
type configCheckDoc struct {
	docHeader
	OK bool `json:"ok"`
	*scheduler.CheckResult
}

// catalogListDoc is catalog list's document: the sets as the catalog
// records them, oldest first.
type catalogListDoc struct {
	docHeader
	Sets []*catalog.Set `json:"sets"`
}

// catalogShowDoc is catalog show's document.
type catalogShowDoc struct {
	docHeader
	Set *catalog.Set `json:"set"`
}

// catalogVolumesDoc is catalog volumes's document: the cartridges.
type catalogVolumesDoc struct {
	docHeader
	Cartridges []catalog.Cartridge `json:"cartridges"`
}

// storeHeaderDoc is store header's document: the database file's header as
// it is in the file.
type storeHeaderDoc struct {
	docHeader
	File   string           `json:"file"`
	Header *engine.DBHeader `json:"header"`
}

// storeLogsDoc is store logs's document: which log generations are kept,
// by what, and what each backup taken now would delete.
type storeLogsDoc struct {
	docHeader
	*engine.LogReport
}
