package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/catalog"
	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/mailstore"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/workload"
)

const cartridgeConfig = `
catalog = "catalog.db"

[[job]]
name = "mail-tape"
store = "STORE"
groups = ["SG1"]
codec = "zstd:fastest"
block_size = "64KiB"
segment_size = "64KiB"
[job.schedule]
cron = ["0 6 * * 0 full"]
[job.destination]
tape = "tape:TAPEDIR?capacity=CAPACITY&early-warning=128KiB"
next_volume_cmd = 'echo "$TAPESTREAM_VOLUME $TAPESTREAM_VOLUME_LABEL $TAPESTREAM_SET_ID" >> CHANGERLOG'
label_prefix = "MAIL"
pool = "weekly"
`

// cartridgeLabel reads the volume label of cartridge n of an emulated tape.
func cartridgeLabel(t *testing.T, target string, n int) *media.VolumeLabel {
	t.Helper()
	f, err := media.ProbeFile(media.WithVolume(target, n), 0, 64<<10)
	if err != nil || f.Content != media.ContentLabel {
		t.Fatalf("cartridge %d: %v %+v", n, err, f)
	}
	return f.Label
}

// cartridgeList is `catalog volumes --json`.
func cartridgeList(t *testing.T, catPath string) []catalog.Cartridge {
	t.Helper()
	var out bytes.Buffer
	if err := runCatalogVolumes(context.Background(), catalogOpts{Catalog: catPath, JSON: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	var doc catalogVolumesDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("catalog volumes --json: %v\n%s", err, out.String())
	}
	return doc.Cartridges
}

// TestCartridgesSixVolumes: a full over six cartridges of pool weekly,
// each labelled (MAIL0001..MAIL0006, the volume label of each continuation
// naming the set and its volume number), a cartridge of another pool refused before anything
// is written on it (as the first cartridge, and in the middle of the set);
// the catalog lists the cartridges; a restore from the catalog, with the
// cartridges handed in shuffled order by its next-volume command, names
// and refuses every wrong one and restores exactly the store's data;
// catalog rebuild from the cartridges in shuffled order gives back the
// same catalog.
func TestCartridgesSixVolumes(t *testing.T) {
	dir := t.TempDir()
	tapeDir := filepath.Join(dir, "vtape")
	target := "tape:" + tapeDir
	changer := filepath.Join(dir, "changer.log")
	cfg := strings.NewReplacer("TAPEDIR", tapeDir, "CHANGERLOG", changer, "CAPACITY", "1MiB").Replace(cartridgeConfig)
	e := newSchedEnv(t, cfg)
	defer func() {
		if t.Failed() {
			t.Log("run logs:\n" + e.logs.String())
		}
	}()
	e.load(18 << 20)
	e.now = time.Date(2026, 11, 1, 6, 0, 30, 0, time.UTC)
	catPath := filepath.Join(e.dir, "catalog.db")

	// Cartridge 3 belongs to pool daily.
	var out bytes.Buffer
	if err := runTapeLabel(context.Background(), tapeOpts{catalogOpts: catalogOpts{Config: e.cfgPath, BlockSize: "64KiB", Out: &out, Err: &out},
		Tape: target + "?volume=3", Label: "DAILY0001", Pool: "daily", now: func() time.Time { return e.now.Add(-time.Hour) }}); err != nil {
		t.Fatal(err)
	}
	load := func(n string) {
		t.Helper()
		if err := runTapeLoad(tapeOpts{catalogOpts: catalogOpts{Out: &out, BlockSize: "64KiB"}, Tape: target}, n); err != nil {
			t.Fatal(err)
		}
	}

	// As the first cartridge, it is refused before writing.
	load("3")
	daily, _ := os.ReadFile(filepath.Join(tapeDir, "vol003.img"))
	_, err := e.run("mail-tape")
	if code := exitCode(context.Background(), err); code != exitSink || !strings.Contains(fmt.Sprint(err), `DAILY0001 of pool "daily"; the job writes to pool "weekly"`) {
		t.Fatalf("run on a cartridge of pool daily: exit %d: %v", code, err)
	}
	if b, _ := os.ReadFile(filepath.Join(tapeDir, "vol003.img")); !bytes.Equal(b, daily) {
		t.Fatal("the cartridge of pool daily was written on")
	}

	// The full, from blank cartridge 1 on.
	load("1")
	sum, err := e.run("mail-tape")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, e.logs.String())
	}
	setID := sum.Jobs[0].Groups[0].SetID
	seqs := e.seqs
	set, err := e.catalog().GetSet(setID)
	if err != nil {
		t.Fatal(err)
	}
	tv := set.Location.Tape
	var labels []string
	var carts []int
	for _, v := range tv {
		labels = append(labels, v.Label)
		carts = append(carts, v.Loaded)
	}
	t.Logf("set %s: %d volumes on %v (cartridges %v), %d bytes read, %d stored", setID, len(tv), labels, carts, set.BytesIn, set.BytesOut)
	if len(tv) < 6 {
		t.Fatalf("the set spans %d cartridges, want at least 6", len(tv))
	}
	for i, v := range tv {
		want := fmt.Sprintf("MAIL%04d", i+1)
		wantCart := i + 1
		if i >= 2 {
			wantCart = i + 2 // cartridge 3 (pool daily) was refused
		}
		if v.Label != want || v.Loaded != wantCart || v.Number != i+1 || v.FileNumber != 1 || v.Bytes <= 0 {
			t.Fatalf("volume %d: %+v, want %s on cartridge %d, file 1", i+1, v, want, wantCart)
		}
		l := cartridgeLabel(t, target, wantCart)
		wantSet, wantVol := setID, i+1
		if i == 0 {
			wantSet, wantVol = "", 0 // a first cartridge: the set names itself
		}
		if l.Label != want || l.Pool != "weekly" || l.SetID != wantSet || l.SetVolume != wantVol {
			t.Fatalf("cartridge %d's volume label: %+v", wantCart, l)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(tapeDir, "vol003.img")); !bytes.Equal(b, daily) {
		t.Fatal("the cartridge of pool daily was written on")
	}
	if !strings.Contains(e.logs.String(), `it is DAILY0001 of pool \"daily\", not \"weekly\"`) && !strings.Contains(e.logs.String(), `it is DAILY0001 of pool "daily", not "weekly"`) {
		t.Fatalf("no refusal of DAILY0001 in the run's output:\n%s", e.logs.String())
	}
	// The next-volume command was told the label each cartridge gets.
	chl, _ := os.ReadFile(changer)
	for k := 2; k <= len(tv); k++ {
		if !strings.Contains(string(chl), fmt.Sprintf("%d MAIL%04d %s\n", k, k, setID)) {
			t.Fatalf("changer log lacks volume %d:\n%s", k, chl)
		}
	}

	// catalog volumes: every cartridge, its pool, status and set volume.
	before := cartridgeList(t, catPath)
	if len(before) != len(tv)+1 {
		t.Fatalf("catalog volumes: %+v", before)
	}
	if c := before[0]; c.Label != "DAILY0001" || c.Pool != "daily" || len(c.Sets) != 0 || c.Status != catalog.CartridgeAppend {
		t.Fatalf("DAILY0001: %+v", c)
	}
	for i, c := range before[1:] {
		status := catalog.CartridgeFull
		if i == len(tv)-1 {
			status = catalog.CartridgeAppend
		}
		if c.Label != fmt.Sprintf("MAIL%04d", i+1) || c.Pool != "weekly" || c.Status != status || len(c.Sets) != 1 || c.Sets[0].SetID != setID ||
			c.Sets[0].Volume != i+1 || c.Sets[0].Volumes != len(tv) || c.Bytes != tv[i].Bytes || !c.LastWritten.Equal(e.now) {
			t.Fatalf("cartridge %d: %+v", i+1, c)
		}
	}
	out.Reset()
	if err := runCatalogVolumes(context.Background(), catalogOpts{Catalog: catPath, Out: &out}); err != nil || !strings.Contains(out.String(), fmt.Sprintf("volume 3/%d, file 1", len(tv))) {
		t.Fatalf("catalog volumes: %v\n%s", err, out.String())
	}

	// Restore from the catalog. The next-volume command hands over the
	// cartridges from a shuffled box, whatever is asked for; every wrong
	// one is named and refused, and the command asked again.
	box := filepath.Join(dir, "box")
	rng := rand.New(rand.NewPCG(21, 6))
	var queue []string
	for range 8 {
		perm := rng.Perm(len(tv) + 1)
		for _, p := range perm {
			queue = append(queue, fmt.Sprint(p+1))
		}
	}
	if err := os.WriteFile(box, []byte(strings.Join(queue, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	handed := filepath.Join(dir, "handed.log")
	nextCmd := fmt.Sprintf(`n=$(head -n1 %s) && sed -i 1d %s && echo "$TAPESTREAM_VOLUME $TAPESTREAM_VOLUME_LABEL $n" >> %s && TAPESTREAM_TEST_MAIN=1 %s tape load --tape %s "$n" >/dev/null`,
		box, box, handed, os.Args[0], target)
	to := filepath.Join(dir, "restore")
	var errb bytes.Buffer
	res, err := runRestore(context.Background(), restoreOpts{Catalog: catPath, FromGroup: "SG1", Group: "RSG", To: to, Out: &bytes.Buffer{}, Err: &errb,
		Read: readMediaFlags{BlockSize: "64KiB", NextVolumeCmd: nextCmd}})
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, errb.String())
	}
	if !slices.Equal(res[0].Sets, []string{setID}) {
		t.Fatalf("restored %v", res[0].Sets)
	}
	rsrv, err := engine.OpenServer(to, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rg, _ := rsrv.Group("RSG")
	rep, err := workload.Verify(context.Background(), mailstore.New(rg))
	rsrv.Close()
	if err != nil || !rep.OK() || !slices.Equal(rep.Seqs, seqs) {
		t.Fatalf("restored: %v %v", err, rep.Err())
	}
	// It asked for each cartridge by label, volume after volume (a last
	// volume holding only its label and the archive trailer, after a
	// manifest that ended the volume before, is not needed).
	stderr := errb.String()
	asked := 0
	for k := 2; k <= len(tv); k++ {
		if !strings.Contains(stderr, fmt.Sprintf("load MAIL%04d (volume %d of set %s) into %s", k, k, setID[:12], target)) {
			break
		}
		asked = k - 1
	}
	if asked < len(tv)-2 || strings.Count(stderr, "tapestream: load ") != strings.Count(stderr, "refused the cartridge")+asked {
		t.Fatalf("restore asked for %d of the %d continuation cartridges:\n%s", asked, len(tv)-1, stderr)
	}
	if asked == len(tv)-2 {
		if tv[len(tv)-1].Bytes > 64<<10 {
			t.Fatalf("restore did not ask for the last cartridge, which holds %d bytes:\n%s", tv[len(tv)-1].Bytes, stderr)
		}
		t.Logf("the last volume holds only its label and the trailer (%d bytes): not read by the restore", tv[len(tv)-1].Bytes)
	}
	refusals := strings.Count(stderr, "refused the cartridge")
	hl, _ := os.ReadFile(handed)
	lines := strings.Split(strings.TrimSpace(string(hl)), "\n")
	if refusals == 0 || refusals != len(lines)-asked {
		t.Fatalf("%d refusals for %d cartridges handed over for %d volumes:\n%s\n%s", refusals, len(lines), asked, hl, stderr)
	}
	// Each refusal names the cartridge it got and the one it wanted.
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "refused the cartridge") && !(strings.Contains(line, "it is MAIL") || strings.Contains(line, "it is DAILY0001")) {
			t.Fatalf("refusal does not name the cartridge: %s", line)
		}
	}
	t.Logf("restore: %d cartridges handed over, %d refused", len(lines), refusals)

	// catalog rebuild from the cartridges in shuffled order.
	order := rng.Perm(len(tv) + 1)
	var args []string
	for _, n := range order {
		args = append(args, fmt.Sprintf("%s?volume=%d", target, n+1))
	}
	rebuilt := filepath.Join(dir, "rebuilt.db")
	out.Reset()
	if err := runCatalogRebuild(context.Background(), catalogOpts{Config: e.cfgPath, Catalog: rebuilt, BlockSize: "64KiB", Out: &out, Err: &out}, args); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	after := cartridgeList(t, rebuilt)
	bj, _ := json.MarshalIndent(before, "", " ")
	aj, _ := json.MarshalIndent(after, "", " ")
	if !bytes.Equal(bj, aj) {
		t.Fatalf("catalog volumes after rebuild from %v differ:\nwas %s\nnow %s\n%s", order, bj, aj, out.String())
	}
	rcat, _ := catalog.Open(rebuilt)
	rs, err := rcat.GetSet(setID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rs.Location.Tape, set.Location.Tape) || rs.Location.Target != set.Location.Target || rs.Job != set.Job || rs.Type != set.Type ||
		!slices.Equal(rs.Files, set.Files) || rs.LowGen != set.LowGen || rs.HighGen != set.HighGen || !rs.Created.Equal(set.Created) || rs.Status != catalog.StatusComplete {
		t.Fatalf("rebuilt set differs:\n was %+v\n now %+v", set, rs)
	}

	// verify --catalog reads the set, asking for its cartridges by label
	// (the emulated library finds them); status --verify reads every
	// restorable set the same way.
	var vout, verr bytes.Buffer
	if err := runVerify(context.Background(), verifyOpts{Catalog: catPath, Sets: []string{setID[:8]}, Read: readMediaFlags{BlockSize: "64KiB"}, Out: &vout, Err: &verr}); err != nil ||
		!strings.Contains(vout.String(), setID+" of SG1") || !strings.Contains(vout.String(), ": OK") || !strings.Contains(verr.String(), "load MAIL0006 (volume 6 of set") {
		t.Fatalf("verify --catalog: %v\n%s%s", err, vout.String(), verr.String())
	}
	st, _, err := e.status(statusOpts{catalogOpts: catalogOpts{JSON: true}, Verify: true})
	if err != nil || !st.Verified || len(problemsOf(st, "damaged"))+len(problemsOf(st, "medium_gone")) != 0 {
		t.Fatalf("status --verify: %v %+v", err, st.Problems)
	}
	// A damaged cartridge is found by --verify (exit 3); a missing one by
	// the cheap check.
	img := filepath.Join(tapeDir, fmt.Sprintf("vol%03d.img", tv[3].Loaded))
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	st, _, err = e.status(statusOpts{catalogOpts: catalogOpts{JSON: true}, Verify: true})
	if code := exitCode(context.Background(), err); code != exitCorruption || len(problemsOf(st, "damaged")) != 1 || problemsOf(st, "damaged")[0].Set != setID {
		t.Fatalf("status --verify of a damaged cartridge: exit %d %v %+v", code, err, st.Problems)
	}
	os.Remove(filepath.Join(tapeDir, fmt.Sprintf("vol%03d.img", tv[5].Loaded)))
	st, _, err = e.status(statusOpts{catalogOpts: catalogOpts{JSON: true}})
	if gone := problemsOf(st, "medium_gone"); err != nil || len(gone) != 1 || !strings.Contains(gone[0].Message, fmt.Sprintf("emulated cartridges gone: cartridge %d (MAIL0006)", tv[5].Loaded)) {
		t.Fatalf("status with a cartridge gone: %v %+v", err, st.Problems)
	}
}
