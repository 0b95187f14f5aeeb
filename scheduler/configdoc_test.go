package scheduler

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tapestream/tapestream/media/s3store"
)

//go:generate go test -run TestConfigReference -update .

var update = flag.Bool("update", false, "rewrite docs/config.md")

// refKey is one key of the configuration as docs/config.md describes it.
type refKey struct {
	path    string // job.destination.name
	table   string // the TOML table headers its example goes under: "", "[[job]]", "[[job]]\n[job.destination]"
	key     string // name
	typ     string
	doc     string // the description
	def     string // the "Default:" line
	example string // the "Example:" line (a TOML value)
}

// refSection is a table of the configuration with its keys.
type refSection struct {
	path  string // "", "job", "job.destination"
	table string
	doc   string
	keys  []refKey
}

// fieldDocs returns the doc comments of the struct types declared in
// files and of their fields, by type and field name ("" for the type).
func fieldDocs(t *testing.T, files ...string) map[string]map[string]string {
	docs := map[string]map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			gd, ok := n.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE || len(gd.Specs) != 1 {
				return true
			}
			ts := gd.Specs[0].(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			m := map[string]string{"": gd.Doc.Text()}
			for _, fld := range st.Fields.List {
				for _, id := range fld.Names {
					m[id.Name] = fld.Doc.Text()
				}
			}
			docs[ts.Name.Name] = m
			return false
		})
	}
	return docs
}

// nameKey makes a doc comment about the Go name goName one about the
// TOML key: the Go name starts the comment; the document names the key.
func nameKey(doc, goName, key string) string {
	if rest, ok := strings.CutPrefix(doc, goName+" "); ok {
		return "`" + key + "` " + rest
	}
	return doc
}

var sizeValue = regexp.MustCompile(`^"\d+(KiB|MiB|GiB)"$`)
var durationValue = regexp.MustCompile(`^"\d+[hms]"$`)

// configReference walks the configuration's types by their toml tags.
func configReference(t *testing.T) []refSection {
	docs := fieldDocs(t, "config.go", "schedule.go")
	var sections []refSection
	var walk func(rt reflect.Type, path, table, doc string)
	walk = func(rt reflect.Type, path, table, doc string) {
		sec := refSection{path: path, table: table, doc: doc}
		type sub struct {
			rt               reflect.Type
			path, table, doc string
		}
		var subs []sub
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			key := f.Tag.Get("toml")
			if !f.IsExported() || key == "" || key == "-" {
				continue
			}
			d := docs[rt.Name()][f.Name]
			if strings.TrimSpace(d) == "" {
				t.Errorf("%s.%s (%s): no doc comment: it is the key's entry in docs/config.md", rt.Name(), f.Name, key)
			}
			kpath := strings.TrimPrefix(path+"."+key, ".")
			ft := f.Type
			// A table's example needs the headers of the array tables
			// above it: [job.destination] alone is not valid TOML.
			above := ""
			if strings.HasPrefix(table, "[[") {
				above = table + "\n"
			} else if i := strings.LastIndex(table, "\n"); i >= 0 {
				above = table[:i+1]
			}
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem().Kind() == reflect.Struct {
				subs = append(subs, sub{ft.Elem().Elem(), kpath, above + "[[" + kpath + "]]", nameKey(d, f.Name, key)})
				continue
			}
			if ft.Kind() == reflect.Struct {
				subs = append(subs, sub{ft, kpath, above + "[" + kpath + "]", cmp.Or(nameKey(docs[ft.Name()][""], ft.Name(), key), d)})
				continue
			}
			k := refKey{path: kpath, table: table, key: key}
			var desc []string
			for _, line := range strings.Split(strings.TrimSpace(d), "\n") {
				switch {
				case strings.HasPrefix(line, "Default: "):
					k.def = strings.TrimPrefix(line, "Default: ")
				case strings.HasPrefix(line, "Example: "):
					k.example = strings.TrimPrefix(line, "Example: ")
				default:
					desc = append(desc, line)
				}
			}
			k.doc = nameKey(strings.Join(desc, " "), f.Name, key)
			switch ft.Kind() {
			case reflect.String:
				k.typ = "string"
				if sizeValue.MatchString(k.example) {
					k.typ = "string (a size: 512KiB, 4GiB, bytes)"
				} else if durationValue.MatchString(k.example) {
					k.typ = "string (a duration: 90m, 20h)"
				}
			case reflect.Int:
				k.typ = "integer"
			case reflect.Bool:
				k.typ = "boolean"
			case reflect.Pointer:
				if ft.Elem().Kind() == reflect.Bool {
					k.typ = "boolean"
				}
			case reflect.Slice:
				if ft.Elem().Kind() == reflect.String {
					k.typ = "array of strings"
				}
			}
			if k.typ == "" {
				t.Errorf("%s: no TOML type for Go type %s", kpath, ft)
			}
			if k.example == "" {
				t.Errorf("%s: no Example: line in the doc comment of %s.%s", kpath, rt.Name(), f.Name)
			}
			sec.keys = append(sec.keys, k)
		}
		sections = append(sections, sec)
		for _, s := range subs {
			walk(s.rt, s.path, s.table, s.doc)
		}
	}
	walk(reflect.TypeOf(Config{}), "", "", "")
	return sections
}

// renderReference writes docs/config.md.
func renderReference(sections []refSection) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Configuration reference\n\n")
	p("<!-- Generated from the doc comments of scheduler/config.go and scheduler/schedule.go by\n")
	p("     go test ./scheduler -run TestConfigReference -update\n")
	p("     Do not edit: edit those comments (the test fails when this file is stale). -->\n\n")
	p("The configuration of `tapestream run` and `tapestream daemon` is a TOML file\n")
	p("([contrib/tapestream.toml](../contrib/tapestream.toml) is a commented example). Relative paths in\n")
	p("it are relative to the file's directory. `tapestream config check FILE` names every problem\n")
	p("(exit 2) and each job's next runs; `tapestream config show FILE` prints the effective\n")
	p("configuration with every default filled in. Sizes take binary units (`512KiB`, `1MiB`, `4GiB`)\n")
	p("or bytes; durations are Go durations (`90m`, `20h`).\n\n")
	for _, s := range sections {
		if s.path == "" {
			p("## Top level\n\n")
		} else {
			p("## `%s`\n\n", s.table[strings.LastIndex(s.table, "\n")+1:])
			if s.doc != "" {
				p("%s\n\n", strings.Join(strings.Fields(s.doc), " "))
			}
		}
		p("| key | type | default |\n|---|---|---|\n")
		for _, k := range s.keys {
			def := k.def
			if def == "" {
				def = "unset"
			}
			p("| `%s` | %s | %s |\n", k.key, k.typ, tableCell(def))
		}
		p("\n")
		for _, k := range s.keys {
			p("### `%s`\n\n%s\n\n", k.path, k.doc)
			def := k.def
			if def == "" {
				def = "unset"
			}
			p("Type: %s. Default: %s.\n\n```toml\n", k.typ, tableCell(def))
			if k.table != "" {
				p("%s\n", k.table)
			}
			p("%s = %s\n```\n\n", k.key, k.example)
		}
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func tableCell(s string) string {
	if strings.HasPrefix(s, `"`) || s == "true" || s == "false" || strings.HasPrefix(s, "[") || regexp.MustCompile(`^\d+$`).MatchString(s) {
		if i := strings.Index(s, " "); i > 0 && !strings.HasPrefix(s, `"`) {
			return "`" + s[:i] + "`" + s[i:]
		}
		if strings.HasPrefix(s, `"`) {
			if end := strings.Index(s[1:], `"`); end >= 0 {
				return "`" + s[:end+2] + "`" + s[end+2:]
			}
		}
		return "`" + s + "`"
	}
	return s
}

// TestConfigReference regenerates docs/config.md from the configuration's
// types and fails when the file differs (-update rewrites it). It also
// checks the document against the code: every key has a description and
// an example that decodes into that key; every documented default is what
// validate (or `config show`) fills in; every required key is refused when
// missing.
func TestConfigReference(t *testing.T) {
	sections := configReference(t)
	got := append(renderReference(sections), '\n')
	const file = "../docs/config.md"
	if *update {
		if err := os.MkdirAll("../docs", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(file); err != nil || !bytes.Equal(want, got) {
		t.Errorf("docs/config.md is stale (or missing: %v): regenerate it with\n\tgo test ./scheduler -run TestConfigReference -update", err)
	}

	keys := map[string]refKey{}
	for _, s := range sections {
		for _, k := range s.keys {
			keys[k.path] = k
			// The example decodes into that key and nothing else.
			text := k.key + " = " + k.example + "\n"
			if k.table != "" {
				text = k.table + "\n" + text
			}
			var c Config
			md, err := toml.Decode(text, &c)
			if err != nil {
				t.Errorf("%s: example does not decode: %v\n%s", k.path, err, text)
				continue
			}
			if und := md.Undecoded(); len(und) > 0 {
				t.Errorf("%s: example has keys the configuration does not: %v", k.path, und)
			}
			if reflect.DeepEqual(c, Config{}) {
				t.Errorf("%s: example defines no such key:\n%s", k.path, text)
			}
		}
	}

	// The defaults, as validate and `config show` fill them in.
	dir := t.TempDir()
	const minimal = `catalog = "cat/catalog.db"
[[job]]
name = "d"
store = "s"
groups = ["SG1"]
[job.destination]
dir = "sets"
[[job]]
name = "t"
store = "s"
groups = ["SG1"]
[job.destination]
tape = "tape:vt"
[[job]]
name = "o"
store = "s"
groups = ["SG1"]
[job.destination]
s3 = "s3://bucket/prefix"
`
	c, err := ParseConfig(minimal, dir)
	if err != nil {
		t.Fatal(err)
	}
	var effText bytes.Buffer
	if err := c.WriteEffective(&effText); err != nil {
		t.Fatal(err)
	}
	var eff struct {
		LogFormat string `toml:"log_format"`
		Jobs      []struct {
			Workers     int    `toml:"workers"`
			SegmentSize string `toml:"segment_size"`
			Destination struct {
				LabelPrefix string `toml:"label_prefix"`
				AutoLabel   *bool  `toml:"auto_label"`
			} `toml:"destination"`
		} `toml:"job"`
	}
	if _, err := toml.Decode(effText.String(), &eff); err != nil {
		t.Fatal(err)
	}
	dj, tj, oj := c.Jobs[0], c.Jobs[1], c.Jobs[2]
	q := func(s string) string { return `"` + s + `"` }
	specs := strings.Join(dj.Schedule.Specs(), "; ")
	observed := map[string]func() string{
		"lock_dir": func() string {
			if c.LockDir == dir+"/cat/locks" {
				return `"locks" in the catalog's directory`
			}
			return c.LockDir
		},
		"log_format": func() string { return q(eff.LogFormat) },
		"due_window": func() string { return q(formatDuration(c.dueWindow)) },
		"job.codec":  func() string { return q(dj.Codec) },
		"job.workers": func() string {
			if eff.Jobs[0].Workers == runtime.GOMAXPROCS(0) {
				return "the number of CPUs"
			}
			return fmt.Sprint(eff.Jobs[0].Workers)
		},
		"job.pace":                 func() string { return q(dj.Pace) },
		"job.block_size":           func() string { return q(formatSize(int64(dj.recordSize))) },
		"job.segment_size":         func() string { return q(eff.Jobs[0].SegmentSize) },
		"job.encrypt_post_quantum": func() string { return fmt.Sprint(dj.EncryptPostQuantum) },
		"job.schedule.at": func() string {
			if strings.HasPrefix(specs, "0 1 * * ") {
				return `"01:00"`
			}
			return specs
		},
		"job.schedule.full": func() string {
			if strings.Contains(specs, "0 1 * * 0 full") {
				return `["sun"] when no level is named`
			}
			return specs
		},
		"job.schedule.incremental": func() string {
			if strings.Contains(specs, "0 1 * * 1,2,3,4,5,6 incremental") {
				return "every day not named by full or differential"
			}
			return specs
		},
		"job.destination.name":         func() string { return q(dj.Destination.Name) },
		"job.destination.label_prefix": func() string { return q(eff.Jobs[1].Destination.LabelPrefix) },
		"job.destination.pool":         func() string { return q(tj.Destination.Pool) },
		"job.destination.auto_label":   func() string { return fmt.Sprint(*eff.Jobs[1].Destination.AutoLabel) },
		"job.destination.s3_options.concurrency": func() string {
			if n := oj.s3Options(time.Now()).Store.Concurrency; n != 0 {
				return fmt.Sprint(n)
			}
			return fmt.Sprint(s3store.DefaultConcurrency)
		},
		"job.destination.s3_options.part_size": func() string {
			if n := oj.s3Options(time.Now()).Store.PartSize; n != 0 {
				return q(formatSize(n))
			}
			return q(formatSize(s3store.DefaultPartSize))
		},
		"job.destination.s3_options.lease_ttl": func() string { return q(formatDuration(oj.Destination.S3Options.leaseTTL)) },
		"job.destination.s3_options.state_dir": func() string {
			if oj.s3Options(time.Now()).StateDir == "" {
				return "the user's cache directory"
			}
			return oj.s3Options(time.Now()).StateDir
		},
		"job.retention.keep_full_chains": func() string { return fmt.Sprint(dj.Retention.KeepFullChains) },
	}
	// A required key left out is a problem that names it.
	required := map[string][2]string{
		"catalog":    {`catalog = "cat/catalog.db"`, "catalog"},
		"job.name":   {`name = "d"`, "name is required"},
		"job.groups": {"groups = [\"SG1\"]\n[job.destination]\ndir", "groups: required"},
	}
	for path, k := range keys {
		if k.def == "required" {
			r, ok := required[path]
			if !ok {
				t.Errorf("%s: documented as required, but the test does not check it", path)
				continue
			}
			text := strings.Replace(minimal, r[0], strings.TrimPrefix(r[0], strings.Split(r[0], "\n")[0]), 1)
			if _, err := ParseConfig(text, dir); err == nil || !strings.Contains(err.Error(), r[1]) {
				t.Errorf("%s: documented as required; without it: %v", path, err)
			}
			continue
		}
		obs, ok := observed[path]
		if k.def != "" && !ok {
			t.Errorf("%s: documents the default %s that the test does not check against the code", path, k.def)
		}
		if ok && !strings.HasPrefix(k.def, obs()) {
			t.Errorf("%s: documented default %s; validate/config show give %s", path, k.def, obs())
		}
	}
	for path := range observed {
		if keys[path].def == "" {
			t.Errorf("%s: the code fills in a default (%s) that the doc comment does not state", path, observed[path]())
		}
	}
	for path := range required {
		if keys[path].def != "required" {
			t.Errorf("%s: is required but not documented so", path)
		}
	}
}
