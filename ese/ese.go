// Package ese is the vocabulary of ESE's backup API that every layer of
// tapestream speaks: the backup types and the kinds of files a backup
// copies. The engine takes them, the set label and manifest record them
// (their text forms are WIRE CONSTANTS of the set format), the catalog
// stores them and the CLI parses them; none of these spells them again.
//
// What each type copies and truncates is ESE's (seed 001, and the Exchange
// backup products built on it):
//
//	type          copies                              truncates  header section
//	full          databases + logs from the checkpoint  yes        Previous Full
//	incremental   logs since the last full/incremental  yes        Previous Incremental
//	differential  logs since the last full              no         Previous Differential
//	copy          like full                             no         Previous Copy
package ese

import "fmt"

// BackupType is the kind of backup a session takes. Its text form is
// what labels, manifests, the catalog and the CLI use.
type BackupType string

// The four backup types of ESE (WIRE CONSTANTS).
const (
	Full         BackupType = "full"
	Incremental  BackupType = "incremental"
	Differential BackupType = "differential"
	Copy         BackupType = "copy"
)

// BackupTypes lists the types in the order the CLI documents them.
var BackupTypes = []BackupType{Full, Incremental, Differential, Copy}

func (t BackupType) String() string { return string(t) }

// ParseBackupType parses full, incremental, differential or copy.
func ParseBackupType(s string) (BackupType, error) {
	t := BackupType(s)
	if !t.Valid() {
		return "", fmt.Errorf("unknown backup type %q (full, incremental, differential, copy)", s)
	}
	return t, nil
}

// Valid reports whether t is one of the four types.
func (t BackupType) Valid() bool {
	switch t {
	case Full, Incremental, Differential, Copy:
		return true
	}
	return false
}

// CopiesDatabases reports whether the type copies database files (full
// and copy); incremental and differential copy logs only.
func (t BackupType) CopiesDatabases() bool { return t == Full || t == Copy }

// Truncates reports whether the type truncates logs once its set is
// durable (full and incremental).
func (t BackupType) Truncates() bool { return t == Full || t == Incremental }

// StartsChain reports whether a restore can start with a set of this type.
func (t BackupType) StartsChain() bool { return t == Full || t == Copy }

// FileKind classifies the files of a backup (WIRE CONSTANTS: member
// records and manifests store them).
type FileKind string

const (
	KindDatabase  FileKind = "database"  // NAME.edb
	KindStreaming FileKind = "streaming" // NAME.stm, ESE's streaming file
	KindLog       FileKind = "log"       // E0nXXXXXXXX.log
	KindOther     FileKind = "other"     // anything else a set may carry
)

// IsDatabase reports whether files of the kind are made of pages.
func (k FileKind) IsDatabase() bool { return k == KindDatabase || k == KindStreaming }
