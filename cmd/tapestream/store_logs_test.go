package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/engine"
)

func mustCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, dir, args...)
	if code != 0 {
		t.Fatalf("tapestream %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func logReportOf(t *testing.T, dir string, args ...string) engine.LogReport {
	t.Helper()
	var rep engine.LogReport
	out := mustCLI(t, dir, append([]string{"store", "logs", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("store logs --json: %v\n%s", err, out)
	}
	return rep
}

func headerOf(t *testing.T, dir, file string) engine.DBHeader {
	t.Helper()
	var doc storeHeaderDoc
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "store", "header", "--json", file)), &doc); err != nil || doc.Header == nil {
		t.Fatal(err)
	}
	return *doc.Header
}

func keptBy(g engine.GenReport, reason, db string) bool {
	return slices.ContainsFunc(g.KeptBy, func(h engine.Hold) bool { return h.Reason == reason && h.Database == db })
}

// Seed 002 #7: "If you have two databases in a storage group, and you back
// up one of them on Tuesday and the other on Thursday, the Thursday backup
// will truncate logs only up to Tuesday. If you then back up the Tuesday
// database on Friday, the logs from Thursday will be truncated." store
// logs says so, generation by generation, in process and through the
// server, and what it predicts for Friday is what Friday does.
func TestStoreLogsExplainsTuesdayThursday(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "store", "init", "--dir", "store", "--log-size", "128KiB")
	mustCLI(t, dir, "store", "load", "--dir", "store", "--size", "3MiB", "--seed", "2")
	mustCLI(t, dir, "backup", "--store", "store", "--type", "full", "--database", "Mailbox1", "-o", "tue.tar", "--progress", "never")
	tue := headerOf(t, dir, "store/SG1/Mailbox1.edb").LogFloor
	mustCLI(t, dir, "store", "load", "--dir", "store", "--size", "4MiB", "--seed", "2")
	mustCLI(t, dir, "backup", "--store", "store", "--type", "full", "--database", "Public", "-o", "thu.tar", "--progress", "never")
	thu := headerOf(t, dir, "store/SG1/Public.edb").LogFloor
	mustCLI(t, dir, "store", "load", "--dir", "store", "--size", "5MiB", "--seed", "2")
	if tue == 0 || thu <= tue {
		t.Fatalf("log floors: Tuesday %d, Thursday %d", tue, thu)
	}
	rep := logReportOf(t, dir, "--dir", "store")
	if rep.Gens[0].Gen != tue {
		t.Fatalf("the oldest log is %d: Thursday truncates only up to Tuesday (%d)", rep.Gens[0].Gen, tue)
	}
	friday := ""
	for _, g := range rep.Gens {
		why := fmt.Sprintf("generation %d: kept by %+v, freed by %v", g.Gen, g.KeptBy, g.FreedBy)
		if !keptBy(g, "backup", "Mailbox1") {
			t.Fatalf("%s: Tuesday's backup of Mailbox1 needs it", why)
		}
		if keptBy(g, "backup", "Public") != (g.Gen >= thu) {
			t.Fatalf("%s: Thursday's backup of Public needs generations from %d", why, thu)
		}
		if keptBy(g, "checkpoint", "") != (g.Gen >= rep.Checkpoint) {
			t.Fatalf("%s: the checkpoint is at %d", why, rep.Checkpoint)
		}
		if slices.Contains(g.FreedBy, "full of Mailbox1") != (g.Gen < thu && !g.Current) {
			t.Fatalf("%s: a full of Mailbox1 on Friday truncates the logs up to Thursday (%d)", why, thu)
		}
		if slices.Contains(g.FreedBy, "full of Public") {
			t.Fatalf("%s: a full of Public alone keeps what Mailbox1's Tuesday backup needs", why)
		}
		if slices.Contains(g.FreedBy, "full of Mailbox1") {
			friday = g.File
		}
	}
	if friday == "" {
		t.Fatal("the report predicts no truncation by Friday's full of Mailbox1")
	}
	text := mustCLI(t, dir, "store", "logs", "--dir", "store")
	for _, want := range []string{
		fmt.Sprintf("Mailbox1 (its last backup needs generations from %d)", tue),
		fmt.Sprintf("Public (its last backup needs generations from %d)", thu),
		fmt.Sprintf("full of Mailbox1: generations %d-%d", tue, thu-1),
		"full of Public: nothing",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("store logs does not say %q:\n%s", want, text)
		}
	}
	// The same through the store server.
	tok := writeToken(t)
	p := startServeProc(t, filepath.Join(dir, "store"), tok)
	remote := logReportOf(t, dir, "--server", p.url, "--token-file", tok, "--group", "SG1")
	for i, g := range rep.Gens {
		if g.Gen >= rep.Checkpoint || g.Current {
			break // the server's open moved the checkpoint
		}
		if r := remote.Gens[i]; r.Gen != g.Gen || !slices.Equal(r.FreedBy, g.FreedBy) || len(r.KeptBy) != len(g.KeptBy) {
			t.Fatalf("through the server, generation %d: kept by %+v, freed by %v; in process %+v, %v", g.Gen, r.KeptBy, r.FreedBy, g.KeptBy, g.FreedBy)
		}
	}
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("store serve: exit %d: %s", code, p.stderr)
	}
	// Friday: the Tuesday database again; the logs from Thursday go.
	mustCLI(t, dir, "backup", "--store", "store", "--type", "full", "--database", "Mailbox1", "-o", "fri.tar", "--progress", "never")
	if after := logReportOf(t, dir, "--dir", "store"); after.Gens[0].Gen != thu {
		t.Fatalf("after Friday's full of Mailbox1 the oldest log is %d, want Thursday's %d", after.Gens[0].Gen, thu)
	}
	// A dismounted database keeps every log (seed 002 #6), and says so.
	mustCLI(t, dir, "store", "dismount", "--dir", "store", "--database", "Public")
	for _, g := range logReportOf(t, dir, "--dir", "store").Gens {
		if !keptBy(g, "dismounted", "Public") || len(g.FreedBy) != 0 {
			t.Fatalf("generation %d with Public dismounted: kept by %+v, freed by %v", g.Gen, g.KeptBy, g.FreedBy)
		}
	}
}

// store mount and dismount, in process and through the server: the state
// survives reopening, store header shows it, and both are refused during
// a backup (-505, exit 5).
func TestStoreMountDismount(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "store", "init", "--dir", "store")
	mustCLI(t, dir, "store", "load", "--dir", "store", "--size", "3MiB")
	out := mustCLI(t, dir, "store", "dismount", "--dir", "store", "--database", "Public")
	if !strings.Contains(out, "SG1/Public: dismounted") || !strings.Contains(out, "SG1/Mailbox1: mounted") {
		t.Fatalf("store dismount said:\n%s", out)
	}
	if h := mustCLI(t, dir, "store", "header", "store/SG1/Public.edb"); !strings.Contains(h, "Mount State: Dismounted") || !strings.Contains(h, "State: Clean Shutdown") {
		t.Fatalf("store header of the dismounted database:\n%s", h)
	}
	// The group reopens with it dismounted: the mail workload, which writes
	// to both databases, is refused, naming the state.
	if code, _, errs := cli(t, dir, "store", "load", "--dir", "store", "--duration", "100ms"); code == 0 || !strings.Contains(errs, "dismounted") {
		t.Fatalf("load with Public dismounted: exit %d: %s", code, errs)
	}
	tok := writeToken(t)
	p := startServeProc(t, filepath.Join(dir, "store"), tok)
	remote := []string{"--server", p.url, "--token-file", tok}
	if code, _, errs := cli(t, dir, append([]string{"store", "dismount", "--database", "Public"}, remote...)...); code == 0 || !strings.Contains(errs, "already") {
		t.Fatalf("a second dismount through the server: exit %d: %s", code, errs)
	}
	out = mustCLI(t, dir, append([]string{"store", "mount", "--database", "Public"}, remote...)...)
	if !strings.Contains(out, "SG1/Public: mounted") {
		t.Fatalf("store mount --server said:\n%s", out)
	}
	mustCLI(t, dir, append([]string{"store", "dismount", "--database", "Mailbox1"}, remote...)...)
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("store serve: exit %d: %s", code, p.stderr)
	}
	if h := mustCLI(t, dir, "store", "header", "store/SG1/Mailbox1.edb"); !strings.Contains(h, "Mount State: Dismounted") {
		t.Fatalf("a dismount through the server is not kept:\n%s", h)
	}
	mustCLI(t, dir, "store", "mount", "--dir", "store", "--database", "Mailbox1")
	// Refused during a backup: a backup held open by a slow reader.
	p = startServeProc(t, filepath.Join(dir, "store"), tok)
	remote = []string{"--server", p.url, "--token-file", tok}
	bk := cliCmd(dir, "backup", "--server", p.url, "--token-file", tok, "--group", "SG1", "-o", "slow.tar", "--max-rate", "256KiB", "--progress", "never")
	if err := bk.Start(); err != nil {
		t.Fatal(err)
	}
	defer bk.Process.Kill()
	var code int
	var errs string
	for range 100 {
		if code, _, errs = cli(t, dir, append([]string{"store", "dismount", "--database", "Public"}, remote...)...); code == exitBusy {
			break
		}
		if code == 0 {
			// The backup may begin between the dismount and this mount:
			// then the mount is the refused one.
			if code, _, errs = cli(t, dir, append([]string{"store", "mount", "--database", "Public"}, remote...)...); code == exitBusy {
				break
			} else if code != 0 {
				t.Fatalf("mount after a dismount: exit %d: %s", code, errs)
			}
		}
	}
	if code != exitBusy || !strings.Contains(errs, "-505") {
		t.Fatalf("a dismount during a backup: exit %d: %s", code, errs)
	}
	bk.Process.Kill()
	bk.Wait()
	p.stop(t)
}
