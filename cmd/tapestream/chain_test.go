package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/backup"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/engine/vfs"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/workload"
)

// matrixStep is one backup of TestBackupTypeMatrix and what it must do.
type matrixStep struct {
	name, typ string
	refused   bool
	// lo is the first generation the set must start at (given the sets
	// before it); keep the closed generations left on disk after it.
	lo   func(s map[string]*backup.Result) uint32
	keep func(r *backup.Result, s map[string]*backup.Result) []uint32
}

// TestBackupTypeMatrix takes, from a fresh store, a full, two
// incrementals, a differential (refused: the incrementals truncated the
// logs it copies), a full, two differentials and an incremental, with
// mail between them and none during them, all through the CLI. After each
// step it checks the set's log range, the logs left on disk and the
// header sections `store header` shows; then it restores every valid
// chain prefix and compares `store dump` with the source's right after
// that prefix's last set.
func TestBackupTypeMatrix(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if code, _, errs := cli(t, dir, "store", "init", "--dir", store, "--group", "SG1", "--databases", "Mailbox1,Public", "--log-size", "128KiB"); code != 0 {
		t.Fatalf("store init: %s", errs)
	}
	if err := os.Mkdir(filepath.Join(dir, "sets"), 0o755); err != nil {
		t.Fatal(err)
	}
	load := func() {
		srv, err := engine.OpenServer(store, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		g, _ := srv.Group("SG1")
		if _, err := workload.Run(context.Background(), mailstore.New(g), workload.RunOptions{
			Workload: workload.Workload{Seed: 11, Streams: 2, Databases: g.Databases()}, StopAfterBytes: 400 << 10,
		}); err != nil {
			t.Fatal(err)
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
	group := filepath.Join(store, "SG1")
	onDisk := func() []uint32 {
		gens, _, err := wal.ListGenerations(vfs.OS, group, "E00")
		if err != nil {
			t.Fatal(err)
		}
		return gens
	}
	span := func(lo, hi uint32) []uint32 {
		var out []uint32
		for g := lo; g <= hi; g++ {
			out = append(out, g)
		}
		return out
	}
	dump := func(dir, group string) string {
		code, out, errs := cli(t, dir, "store", "dump", "--dir", dir, "--group", group)
		if code != 0 {
			t.Fatalf("store dump %s: %s", dir, errs)
		}
		return out
	}
	headers := func() map[string]*engine.DBHeader {
		hs := map[string]*engine.DBHeader{}
		for _, db := range []string{"Mailbox1", "Public"} {
			code, out, errs := cli(t, dir, "store", "header", "--json", filepath.Join(group, db+".edb"))
			var doc storeHeaderDoc
			if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.Header == nil {
				t.Fatalf("store header %s: %s", db, errs)
			}
			hs[db] = doc.Header
		}
		return hs
	}

	// Expected ranges, relative to the sets before: a full's logs stay on
	// disk (it truncates below its frozen checkpoint); an incremental
	// copies from the oldest log on disk and, with no writer, truncates
	// every log it copied; a differential truncates nothing.
	first := func(name string) func(map[string]*backup.Result) uint32 {
		return func(s map[string]*backup.Result) uint32 { return s[name].LowGen }
	}
	afterHigh := func(name string) func(map[string]*backup.Result) uint32 {
		return func(s map[string]*backup.Result) uint32 { return s[name].HighGen + 1 }
	}
	own := func(r *backup.Result, _ map[string]*backup.Result) []uint32 { return span(r.LowGen, r.HighGen) }
	none := func(*backup.Result, map[string]*backup.Result) []uint32 { return nil }
	steps := []matrixStep{
		{name: "full1", typ: "full", keep: own},
		{name: "incr1", typ: "incremental", lo: first("full1"), keep: none},
		{name: "incr2", typ: "incremental", lo: afterHigh("incr1"), keep: none},
		{name: "diff0", typ: "differential", refused: true},
		{name: "full2", typ: "full", keep: own},
		{name: "diff1", typ: "differential", lo: first("full2"), keep: own},
		{name: "diff2", typ: "differential", lo: first("full2"), keep: own},
		{name: "incr3", typ: "incremental", lo: first("full2"), keep: none},
	}
	sets := map[string]*backup.Result{}
	dumps := map[string]string{}
	paths := map[string]string{}
	for _, st := range steps {
		load()
		before := onDisk()
		var hBefore map[string]*engine.DBHeader
		if st.refused {
			hBefore = headers()
		}
		paths[st.name] = filepath.Join(dir, "sets", st.name+".tar")
		code, out, errs := cli(t, dir, "backup", "--store", store, "--group", "SG1", "--type", st.typ, "-o", paths[st.name], "--json", "--progress", "never", "--compress", "lz4")
		if st.refused {
			// Refused before anything is read: no set, no log gone, no
			// header touched, and the message names the missing logs.
			full, incr := sets["full1"], sets["incr2"]
			want := fmt.Sprintf("generations %d-%d are no longer on disk", full.HighGen+1, incr.HighGen)
			if code == 0 || !strings.Contains(errs, "(-528)") || !strings.Contains(errs, want) || !strings.Contains(errs, "incremental set "+incr.SetID) {
				t.Fatalf("%s: exit %d, stderr %q; want -528 naming %q and the incremental", st.name, code, errs, want)
			}
			if _, err := os.Stat(paths[st.name]); err == nil {
				t.Fatalf("%s: refused, but wrote %s", st.name, paths[st.name])
			}
			if after := onDisk(); !slices.Equal(after, before) {
				t.Fatalf("%s: logs on disk %v -> %v", st.name, before, after)
			}
			for db, h := range headers() {
				if !sameSections(h, hBefore[db]) {
					t.Fatalf("%s: %s header sections changed: %+v", st.name, db, h)
				}
			}
			continue
		}
		if code != 0 {
			t.Fatalf("%s: %s", st.name, errs)
		}
		var r backup.Result
		if err := decodeOneResult(out, &r); err != nil {
			t.Fatalf("%s: --json: %v\n%s", st.name, err, out)
		}
		sets[st.name] = &r
		dumps[st.name] = dump(store, "SG1")
		if r.HighGen < r.LowGen || st.lo != nil && r.LowGen != st.lo(sets) {
			t.Fatalf("%s: logs %d-%d, want from %d", st.name, r.LowGen, r.HighGen, st.lo(sets))
		}
		after := onDisk()
		if want := st.keep(&r, sets); !slices.Equal(after, want) {
			t.Fatalf("%s (logs %d-%d, truncated %v): closed logs on disk %v, want %v", st.name, r.LowGen, r.HighGen, r.Truncated, after, want)
		}
		// What was on disk (or closed by the set's rollover) and is gone is
		// exactly what it says it truncated.
		var gone []string
		for _, g := range span(slices.Min(slices.Concat(before, []uint32{r.LowGen})), r.HighGen) {
			if (slices.Contains(before, g) || g >= r.LowGen) && !slices.Contains(after, g) {
				gone = append(gone, wal.GenName("E00", g))
			}
		}
		if !slices.Equal(gone, r.Truncated) && !(len(gone) == 0 && len(r.Truncated) == 0) {
			t.Fatalf("%s: truncated %v, but %v went", st.name, r.Truncated, gone)
		}
		checkMatrixHeaders(t, st, &r, sets, headers())
		t.Logf("%-5s %-12s logs %d-%d, truncated %d, closed logs left %v", st.name, st.typ, r.LowGen, r.HighGen, len(r.Truncated), after)
	}
	// The text forms: store header shows the sections and the floor,
	// list shows an incremental's range and its label carries it.
	_, text, _ := cli(t, dir, "store", "header", filepath.Join(group, "Mailbox1.edb"))
	i3 := sets["incr3"]
	for _, want := range []string{
		"Previous Incremental Backup:\n", fmt.Sprintf("Log Gen: %s", fmtGens(i3.LowGen, i3.HighGen)),
		fmt.Sprintf("Log Floor: %d (0x%X)", i3.HighGen+1, i3.HighGen+1), "Backup Set: " + i3.SetID,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("store header lacks %q:\n%s", want, text)
		}
	}
	_, lj, _ := cli(t, dir, "list", "--json", paths["incr3"])
	var l listDoc
	if err := json.Unmarshal([]byte(lj), &l); err != nil || l.Label.LogFirst != i3.LowGen ||
		l.Label.LogLast != i3.HighGen || l.Manifest.Info.LogFirst != uint64(i3.LowGen) || l.Manifest.Info.LogLast != uint64(i3.HighGen) {
		t.Errorf("list --json of incr3 (%d-%d): %v\n%s", i3.LowGen, i3.HighGen, err, lj)
	}

	// Every valid chain prefix restores to the source as it was right
	// after the prefix's last set; overlapping logs (the full's own logs
	// repeated by the next set) are written once.
	for i, chain := range [][]string{
		{"full1"}, {"full1", "incr1"}, {"full1", "incr1", "incr2"},
		{"full2"}, {"full2", "diff1"}, {"full2", "diff2"}, {"full2", "incr3"},
	} {
		args := []string{"restore"}
		for _, s := range chain {
			args = append(args, paths[s])
		}
		to := filepath.Join(dir, "r", fmt.Sprint(i))
		args = append(args, "--to", to, "--group", "R", "--json")
		code, out, errs := cli(t, dir, args...)
		if code != 0 {
			t.Fatalf("restore %v: %s", chain, errs)
		}
		last := sets[chain[len(chain)-1]]
		if !strings.Contains(out, fmt.Sprintf(`"log_last_generation": %d`, last.HighGen)) {
			t.Fatalf("restore %v: %s", chain, out)
		}
		if got, want := dump(to, "R"), dumps[chain[len(chain)-1]]; got != want {
			t.Fatalf("restore %v: store dump differs from the source's after %s (%d and %d lines)", chain, chain[len(chain)-1], strings.Count(got, "\n"), strings.Count(want, "\n"))
		}
	}
}

// checkMatrixHeaders checks the backup sections of both databases after a
// step: what it records, what it clears, and the log floor the next
// backup truncates by.
func checkMatrixHeaders(t *testing.T, st matrixStep, r *backup.Result, sets map[string]*backup.Result, hs map[string]*engine.DBHeader) {
	t.Helper()
	is := func(b *engine.BackupInfo, s *backup.Result) bool {
		if s == nil {
			return !b.IsSet()
		}
		return b.IsSet() && b.LowGen == s.LowGen && b.HighGen == s.HighGen && b.SetID == s.SetID
	}
	full, incr, diff := sets["full1"], (*backup.Result)(nil), (*backup.Result)(nil)
	var floor uint32
	switch st.name {
	case "full1":
		floor = full.LowGen
	case "incr1", "incr2":
		incr, floor = r, r.HighGen+1
	case "full2":
		full, floor = r, r.LowGen
	case "diff1", "diff2":
		full, diff, floor = sets["full2"], r, sets["full2"].LowGen
	case "incr3":
		full, diff, incr, floor = sets["full2"], sets["diff2"], r, r.HighGen+1
	}
	for db, h := range hs {
		if !is(h.PreviousFull, full) || !is(h.PreviousIncremental, incr) || !is(h.PreviousDifferential, diff) || h.CurrentFull != nil || h.LogFloor != floor {
			t.Fatalf("after %s (logs %d-%d), %s header: full %+v incremental %+v differential %+v current %+v floor %d; want full %v incremental %v differential %v floor %d",
				st.name, r.LowGen, r.HighGen, db, h.PreviousFull, h.PreviousIncremental, h.PreviousDifferential, h.CurrentFull, h.LogFloor, setName(full), setName(incr), setName(diff), floor)
		}
	}
}

// decodeOneResult decodes what `backup --json` prints for one group: a
// document holding one group's result.
func decodeOneResult(out string, r *backup.Result) error {
	var doc backupDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return err
	}
	if len(doc.Groups) != 1 {
		return fmt.Errorf("%d results, want 1", len(doc.Groups))
	}
	g := doc.Groups[0]
	*r = backup.Result{SetID: g.SetID, Type: g.Type, Group: g.Group, Databases: g.Databases, LowGen: g.LogFirstGeneration,
		HighGen: g.LogLastGeneration, BytesIn: g.BytesIn, BytesOut: g.BytesOut, Truncated: g.TruncatedLogs, Target: g.Target,
		PreviousSetID: g.PreviousSetID}
	return nil
}

func setName(r *backup.Result) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%s %d-%d", r.Type, r.LowGen, r.HighGen)
}

// sameSections reports whether two headers record the same backups.
func sameSections(a, b *engine.DBHeader) bool {
	j := func(h *engine.DBHeader) []byte {
		v, _ := json.Marshal([]any{h.PreviousFull, h.PreviousIncremental, h.PreviousDifferential, h.PreviousCopy, h.CurrentFull, h.LogFloor})
		return v
	}
	return bytes.Equal(j(a), j(b))
}
