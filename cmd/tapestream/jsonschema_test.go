package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tapestream/tapestream/pace"
)

var updateSchemas = flag.Bool("update", false, "rewrite docs/schema/*.json from the document types")

// schemaDir is docs/schema, from this package's directory.
const schemaDir = "../../docs/schema"

// schemaFile is the schema's file name: "catalog list" → catalog-list.json.
func schemaFile(command string) string {
	return filepath.Join(schemaDir, strings.ReplaceAll(command, " ", "-")+".json")
}

// goComments maps "importpath.Type" and "importpath.Type.Field" to the
// doc comment of every struct type and field declared in the module's
// packages (unexported types too: the documents are package main's), for
// the schemas' descriptions.
func goComments(t *testing.T) map[string]string {
	t.Helper()
	const module = "github.com/tapestream/tapestream"
	m := map[string]string{}
	root := "../.."
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "results") {
			return filepath.SkipDir
		}
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, p, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, pkg := range pkgs {
			imp := path.Join(module, filepath.ToSlash(rel))
			// In file name order: a type declared in two files (build
			// tags) gets the same comment every time.
			for _, fn := range slices.Sorted(maps.Keys(pkg.Files)) {
				ast.Inspect(pkg.Files[fn], func(n ast.Node) bool {
					gd, ok := n.(*ast.GenDecl)
					if !ok {
						return true
					}
					for _, spec := range gd.Specs {
						ts, ok := spec.(*ast.TypeSpec)
						if !ok {
							continue
						}
						doc := ts.Doc.Text()
						if doc == "" && len(gd.Specs) == 1 {
							doc = gd.Doc.Text()
						}
						m[imp+"."+ts.Name.Name] = strings.TrimSpace(doc)
						st, ok := ts.Type.(*ast.StructType)
						if !ok {
							continue
						}
						for _, fld := range st.Fields.List {
							txt := fld.Doc.Text()
							if txt == "" {
								txt = fld.Comment.Text()
							}
							for _, fn := range fld.Names {
								m[imp+"."+ts.Name.Name+"."+fn.Name] = strings.Join(strings.Fields(txt), " ")
							}
						}
					}
					return false
				})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// docSchema derives command's JSON Schema (draft 2020-12) from its
// document type: required keys are those without omitempty, no object
// takes keys it does not declare.
func docSchema(command string, comments map[string]string) ([]byte, error) {
	r := &invopop.Reflector{
		LookupComment: func(t reflect.Type, field string) string {
			if field == "" {
				return comments[t.PkgPath()+"."+t.Name()]
			}
			return comments[t.PkgPath()+"."+t.Name()+"."+field]
		},
		ExpandedStruct: true,
		// Types of several packages share names (Encryption, Problem):
		// definitions are named by package.
		Namer: func(t reflect.Type) string {
			if t.PkgPath() == "" || t.PkgPath() == "main" || strings.HasSuffix(t.PkgPath(), "/cmd/tapestream") {
				return t.Name()
			}
			return path.Base(t.PkgPath()) + "." + t.Name()
		},
		// pace.Point marshals itself (pace/pace.go).
		Mapper: func(t reflect.Type) *invopop.Schema {
			if t != reflect.TypeFor[pace.Point]() {
				return nil
			}
			props := invopop.NewProperties()
			props.Set("t_seconds", &invopop.Schema{Type: "number", Description: "seconds since the controller started"})
			props.Set("rate_bytes_per_second", &invopop.Schema{Type: "integer"})
			return &invopop.Schema{Type: "object", Properties: props, Required: []string{"t_seconds", "rate_bytes_per_second"},
				AdditionalProperties: invopop.FalseSchema}
		},
	}
	doc, ok := jsonDocuments[command]
	if !ok {
		return nil, fmt.Errorf("no document type for %q", command)
	}
	s := r.Reflect(doc)
	s.ID = invopop.ID("https://github.com/tapestream/tapestream/docs/schema/" + filepath.Base(schemaFile(command)))
	s.Title = "tapestream " + command + " --json"
	s.Description = "The document `tapestream " + command + " --json` prints (docs/json.md)."
	if p, ok := s.Properties.Get("command"); ok {
		p.Const = command
	}
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// TestJSONSchemasUpToDate: docs/schema holds exactly the schemas the
// document types and their doc comments give (go generate
// ./cmd/tapestream rewrites them).
func TestJSONSchemasUpToDate(t *testing.T) {
	var want []string
	comments := goComments(t)
	for command := range jsonDocuments {
		b, err := docSchema(command, comments)
		if err != nil {
			t.Fatal(err)
		}
		name := schemaFile(command)
		want = append(want, filepath.Base(name))
		if *updateSchemas {
			if err := os.MkdirAll(schemaDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is stale (or missing: %v): run `go generate ./cmd/tapestream`", name, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	for _, f := range files {
		if !slices.Contains(want, filepath.Base(f)) {
			t.Errorf("%s has no command: remove it", f)
		}
	}
}

// compileSchema compiles command's checked-in schema, asserting formats
// (date-time).
func compileSchema(t *testing.T, command string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	f, err := os.Open(schemaFile(command))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	url := "file:///" + strings.ReplaceAll(command, " ", "-") + ".json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("schema of %s: %v", command, err)
	}
	return s
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkDocument proves out is one document of command that keeps the
// contract: valid against its schema, schema_version 1, the command
// named, snake_case keys, times in UTC, no duration in ns or ms.
func checkDocument(t *testing.T, command, out string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s --json: %v\n%s", command, err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s --json printed more than one document (%v):\n%s", command, err, out)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s --json: not an object:\n%s", command, out)
	}
	if doc["schema_version"] != json.Number("1") || doc["command"] != command {
		t.Errorf("%s --json: schema_version %v, command %v", command, doc["schema_version"], doc["command"])
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := compileSchema(t, command).Validate(inst); err != nil {
		t.Errorf("%s --json does not match docs/schema: %v\n%s", command, err, out)
	}
	walkJSON(t, command, "", v)
	return doc
}

// walkJSON checks every key and every string under v.
func walkJSON(t *testing.T, command, at string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !snakeCase.MatchString(k) {
				t.Errorf("%s --json: key %s%s is not snake_case", command, at, k)
			}
			if strings.HasSuffix(k, "_ns") || strings.HasSuffix(k, "_ms") {
				t.Errorf("%s --json: key %s%s: durations are seconds", command, at, k)
			}
			walkJSON(t, command, at+k+".", e)
		}
	case []any:
		for i, e := range v {
			walkJSON(t, command, fmt.Sprintf("%s%d.", at, i), e)
		}
	case string:
		if tm, err := time.Parse(time.RFC3339Nano, v); err == nil && (!strings.HasSuffix(v, "Z") || tm.Location() != time.UTC) {
			t.Errorf("%s --json: %s%q is not in UTC", command, strings.TrimSuffix(at, "."), v)
		}
	}
}

const contractConfig = `
catalog = "catalog.db"

[[job]]
name = "files"
store = "store"
groups = ["SG1"]
codec = "zstd:fastest"
[job.schedule]
at = "02:00"
full = ["sun"]
[job.destination]
dir = "sets"
name = "{group}-{type}-{time}.tar.zst"

[[job]]
name = "tape"
store = "store"
groups = ["SG2"]
block_size = "64KiB"
[job.schedule]
cron = ["0 2 * * 0 full"]
[job.destination]
tape = "tape:vtape?capacity=64MiB"
label_prefix = "MAIL"
`

// TestJSONContract runs every command that reports with --json on a small
// store, its sets, a catalog written by `run` and an emulated tape, and
// checks each document against its schema and the conventions. The
// processes run in a zone east of UTC, so a time left local shows.
func TestJSONContract(t *testing.T) {
	t.Setenv("TZ", "Asia/Kolkata")
	dir := t.TempDir()
	documented := map[string]bool{}
	run := func(command string, args ...string) map[string]any {
		t.Helper()
		code, out, errs := cli(t, dir, args...)
		if code != 0 {
			t.Fatalf("tapestream %s: exit %d\n%s", strings.Join(args, " "), code, errs)
		}
		documented[command] = true
		return checkDocument(t, command, out)
	}
	mustRun := func(args ...string) {
		t.Helper()
		if code, _, errs := cli(t, dir, args...); code != 0 {
			t.Fatalf("tapestream %s: exit %d\n%s", strings.Join(args, " "), code, errs)
		}
	}
	mustRun("store", "init", "--dir", "store", "--group", "SG1", "--group", "SG2", "--log-size", "256KiB")
	mustRun("store", "load", "--dir", "store", "--group", "SG1", "--size", "2MiB")
	mustRun("store", "load", "--dir", "store", "--group", "SG2", "--size", "1MiB")

	// Two groups: one document holding both.
	doc := run("backup", "backup", "--store", "store", "--group", "SG1", "--group", "SG2", "-o", "{group}.tar", "--progress", "never", "--json")
	if g, _ := doc["groups"].([]any); len(g) != 2 || doc["ok"] != true {
		t.Errorf("backup of two groups: %v", doc)
	}
	// A group that fails: still one document, naming it.
	code, out, _ := cli(t, dir, "backup", "--store", "store", "--group", "SG1", "--group", "NOPE", "-o", "again-{group}.tar", "--progress", "never", "--json")
	doc = checkDocument(t, "backup", out)
	if f, _ := doc["failed"].([]any); code == 0 || doc["ok"] != false || len(f) != 1 || f[0].(map[string]any)["group"] != "NOPE" {
		t.Errorf("backup with a missing group: exit %d, %v", code, doc)
	}
	// A set on stdout: the document goes to --json-file (and stderr).
	code, set, errs := cli(t, dir, "backup", "--store", "store", "--group", "SG1", "--type", "full", "-o", "-", "--progress", "never",
		"--json", "--json-file", "piped.json")
	if code != 0 || !strings.HasPrefix(set, "tapestream") && len(set) < 1024 {
		t.Fatalf("backup -o -: exit %d\n%s", code, errs)
	}
	if err := os.WriteFile(filepath.Join(dir, "piped.tar"), []byte(set), 0o644); err != nil {
		t.Fatal(err)
	}
	checkDocument(t, "backup", errs)
	b, err := os.ReadFile(filepath.Join(dir, "piped.json"))
	if err != nil {
		t.Fatal(err)
	}
	checkDocument(t, "backup", string(b))

	run("verify", "verify", "SG1.tar", "--json")
	// A damaged set: the document says so, and the exit code too.
	good, err := os.ReadFile(filepath.Join(dir, "SG1.tar"))
	if err != nil {
		t.Fatal(err)
	}
	damageMember(t, good, "Mailbox1.edb")
	if err := os.WriteFile(filepath.Join(dir, "bad.tar"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, dir, "verify", "bad.tar", "--json")
	if doc = checkDocument(t, "verify", out); code != exitCorruption || doc["ok"] != false {
		t.Errorf("verify of a damaged set: exit %d, %v", code, doc)
	}
	run("list", "list", "SG1.tar", "--json")
	doc = run("restore", "restore", "SG1.tar", "--to", "restored", "--group", "RSG1", "--json")
	if g, _ := doc["groups"].([]any); len(g) != 1 || doc["ok"] != true {
		t.Errorf("restore: %v", doc)
	}
	run("truncate", "truncate", "--store", "store", "--group", "SG1", "piped.tar", "--json")
	run("store check", "store", "check", "--dir", "store", "--group", "SG1", "--json")
	run("store header", "store", "header", filepath.Join("store", "SG1", "Mailbox1.edb"), "--json")
	run("store logs", "store", "logs", "--dir", "store", "--group", "SG1", "--json")

	if err := os.WriteFile(filepath.Join(dir, "jobs.toml"), []byte(contractConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun("tape", "label", "--tape", "tape:vtape?capacity=64MiB", "--config", "jobs.toml", "--prefix", "MAIL", "--block-size", "64KiB")
	run("config check", "config", "check", "jobs.toml", "--json")
	for _, job := range []string{"files", "tape"} {
		doc = run("run", "run", "--config", "jobs.toml", "--job", job, "--json")
		if doc["ok"] != true {
			t.Errorf("run --job %s: %v", job, doc)
		}
	}
	run("status", "status", "--config", "jobs.toml", "--json")
	doc = run("catalog list", "catalog", "list", "--config", "jobs.toml", "--json")
	sets, _ := doc["sets"].([]any)
	if len(sets) != 2 {
		t.Fatalf("catalog list: %d sets", len(sets))
	}
	run("catalog show", "catalog", "show", "--config", "jobs.toml", sets[0].(map[string]any)["id"].(string), "--json")
	run("catalog volumes", "catalog", "volumes", "--config", "jobs.toml", "--json")
	doc = run("tape status", "tape", "status", "--tape", "tape:vtape", "--config", "jobs.toml", "--block-size", "64KiB", "--json")
	if s, _ := doc["sets"].([]any); doc["content"] != "label" || len(s) != 1 {
		t.Errorf("tape status: %v", doc)
	}
	for command := range jsonDocuments {
		if !documented[command] {
			t.Errorf("%s --json was not run", command)
		}
	}
}

// TestNormalize: writeJSON turns times to UTC and nil lists to [] however
// deep they are, and leaves omitempty lists alone.
func TestNormalize(t *testing.T) {
	type inner struct {
		At    time.Time `json:"at"`
		List  []string  `json:"list"`
		Maybe []string  `json:"maybe,omitempty"`
	}
	type doc struct {
		docHeader
		In  *inner  `json:"in"`
		All []inner `json:"all"`
	}
	zone := time.FixedZone("east", 5*3600+1800)
	d := &doc{header("test"), &inner{At: time.Date(2026, 12, 4, 22, 30, 0, 0, zone)}, []inner{{}}}
	var b bytes.Buffer
	if err := writeJSON(&b, d); err != nil {
		t.Fatal(err)
	}
	want := `{"schema_version":1,"command":"test","in":{"at":"2026-12-04T17:00:00Z","list":[]},"all":[{"at":"0001-01-01T00:00:00Z","list":[]}]}`
	var got bytes.Buffer
	json.Compact(&got, b.Bytes())
	if got.String() != want {
		t.Errorf("got  %s\nwant %s", got.String(), want)
	}
}
