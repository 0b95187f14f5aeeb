package main

// The --json contract (docs/json.md): every command that reports prints
// exactly one JSON object, the document, that starts with
//
//	{"schema_version": 1, "command": "backup", ...}
//
// and holds the command's report beside those two keys. Keys are
// snake_case, times RFC 3339 in UTC, durations seconds as numbers (keys
// ending in _seconds), sizes bytes as integers. Additive changes keep
// schema_version; a change that removes, renames or retypes a key bumps
// it. docs/schema/<command>.json is derived from the document types below
// (jsonDocuments) by TestJSONSchemasUpToDate, so the schemas cannot drift
// from what is printed.

import (
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"time"
)

//go:generate go test . -run TestJSONSchemasUpToDate -update

// jsonSchemaVersion is the version of every --json document.
const jsonSchemaVersion = 1

// docHeader opens every document. Each document type embeds it, so its
// keys sit at the top level beside the report's own.
type docHeader struct {
	// SchemaVersion is the version of the document's shape (1).
	SchemaVersion int `json:"schema_version" jsonschema:"enum=1"`
	// Command is the command that printed the document ("backup",
	// "catalog list", "store header", ...).
	Command string `json:"command"`
}

func header(command string) docHeader {
	return docHeader{SchemaVersion: jsonSchemaVersion, Command: command}
}

// jsonDocuments maps each command to a value of its document type, for
// the schemas. A command that gains --json adds its type here.
var jsonDocuments = map[string]any{
	"backup":          backupDoc{},
	"restore":         restoreDoc{},
	"verify":          verifyDoc{},
	"list":            listDoc{},
	"run":             runDoc{},
	"status":          statusDoc{},
	"truncate":        truncateDoc{},
	"config check":    configCheckDoc{},
	"catalog list":    catalogListDoc{},
	"catalog show":    catalogShowDoc{},
	"catalog volumes": catalogVolumesDoc{},
	"tape status":     tapeStatusDoc{},
	"store check":     storeCheckDoc{},
	"store header":    storeHeaderDoc{},
	"store logs":      storeLogsDoc{},
}

// writeJSON prints doc, a pointer to a document, as indented JSON: every
// --json output goes through it. It first normalizes doc (see normalize),
// which is why doc must be a pointer.
func writeJSON(w io.Writer, doc any) error {
	v := reflect.ValueOf(doc)
	if v.Kind() != reflect.Pointer {
		panic("writeJSON: the document must be a pointer")
	}
	normalize(v)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// writeJSONFile writes doc into path (backup --json-file).
func writeJSONFile(path string, doc any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeJSON(f, doc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var timeType = reflect.TypeFor[time.Time]()

// normalize makes v keep the contract whatever the library filled in:
// every time.Time reachable from it (through pointers, interfaces, struct
// fields and slice elements) becomes UTC (time.Now gives local times, and
// the documents hold the library's own records: a catalog set, a label),
// and a nil list that is not omitempty becomes empty, so that it prints as
// [] and not as null.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == timeType {
			if v.CanSet() {
				v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
			}
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Slice && fv.IsNil() && fv.CanSet() && !strings.Contains(f.Tag.Get("json"), "omitempty") {
				fv.Set(reflect.MakeSlice(fv.Type(), 0, 0))
			}
			normalize(fv)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	}
}
