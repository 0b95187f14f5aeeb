package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fakeRow(name, peer string, isPeer bool, in, out int64, secs ...float64) *row {
	r := &row{Name: name, Peer: peer, IsPeer: isPeer, Section: "backup"}
	for _, s := range secs {
		r.Runs = append(r.Runs, sample{Wall: time.Duration(s * float64(time.Second)), CPU: time.Second, RSSKB: 80 << 10, In: in, Out: out})
	}
	return r
}

func TestTable(t *testing.T) {
	rows := []*row{
		fakeRow(peerZstd, "", true, 1e9, 3e8, 5, 4, 6),
		fakeRow("backup zstd:fastest w2 > file", peerZstd, false, 1e9, 3.1e8, 4, 5, 4.5),
		{Name: "broken", Err: os.ErrNotExist},
	}
	got := formatTable(rows)
	for _, want := range []string{
		`| *tar \| zstd -1 -T2 > file* (peer) | 200.0 | 166.7–250.0 | 3.33 | 1.00 | 1000 | 80 |  |`,
		`| backup zstd:fastest w2 > file | 222.2 | 200.0–250.0 | 3.23 | 1.00 | 1000 | 80 | 1.11x tar \| zstd -1 -T2 > file |`,
		`| broken | failed: file does not exist |`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	rep := &report{Config: &config{Workers: 2, SizeText: "1GiB", Runs: 3}, Main: rows, Started: time.Now(), Finished: time.Now()}
	md := rep.markdown()
	if !strings.Contains(md, "| zstd:fastest throughput vs tar \\| zstd -1 -T2 | >= 1.0x | 1.11x (222.2 / 200.0 MB/s); per CPU-second 1.00x | yes |") {
		t.Errorf("targets:\n%s", md)
	}
	svg, err := chart(rows, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("chart is not SVG: %.100s", svg)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(p, []byte("# x\n"+beginMark+"\nold\n"+endMark+"\ntail\n"), 0o644)
	if err := replaceSection(p, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "# x\n" + beginMark + "\nnew\n" + endMark + "\ntail\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

func TestFilterRows(t *testing.T) {
	rows := []*row{{Name: peerLZ4, IsPeer: true}, {Name: "backup lz4 w2 > file", Peer: peerLZ4}, {Name: "backup none w2 > file", Peer: peerTar}, {Name: peerTar, IsPeer: true}}
	got := filterRows(rows, "lz4")
	if len(got) != 2 || got[0].Name != peerLZ4 || got[1].Name != "backup lz4 w2 > file" {
		var names []string
		for _, r := range got {
			names = append(names, r.Name)
		}
		t.Errorf("filterRows = %q", names)
	}
}

func TestFormatWeek(t *testing.T) {
	nights := func(step uint32, grow bool) []night {
		var out []night
		lo := uint32(5)
		for i := range 7 {
			n := night{Type: "incremental", LowGen: lo, HighGen: 5 + uint32(i+1)*step, SetBytes: 1 << 20}
			if grow {
				n.SetBytes = int64(i+1) << 20
			} else {
				lo = n.HighGen + 1
			}
			out = append(out, n)
		}
		out[0].Type = "full"
		return out
	}
	got := formatWeek([]*weekRun{{Label: "before", Nights: nights(4, true)}, {Label: "after", Nights: nights(4, false)}})
	for _, want := range []string{
		"| night | type | before: logs in the set | before: set MiB | before: closed logs left on disk | after: logs in the set |",
		"| 2 | incremental | 13 (5-17) | 3.0 | 0 (0.0 MiB) | 4 (14-17) | 1.0 | 0 (0.0 MiB) |",
		"- before: incrementals of 2.0, 3.0, 4.0, 5.0, 6.0, 7.0 MiB on nights 1-6",
		"- after: incrementals of 1.0, 1.0, 1.0, 1.0, 1.0, 1.0 MiB on nights 1-6",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("week table lacks %q:\n%s", want, got)
		}
	}
}

// backup --json prints a document holding the groups (docs/json.md);
// older binaries printed the group's object or an array of them.
func TestDecodeBackupJSON(t *testing.T) {
	for _, in := range []string{`{"bytes_in": 7, "log_first_generation": 3}`, ` [{"bytes_in": 7, "log_first_generation": 3}]`,
		`{"schema_version": 1, "command": "backup", "ok": true, "groups": [{"bytes_in": 7, "log_first_generation": 3}], "failed": []}`} {
		var s sample
		backupJSON([]byte(in), &s)
		var n night
		if err := decodeBackupJSON([]byte(in), &n); err != nil || n.LowGen != 3 || s.In != 7 {
			t.Errorf("%s: %+v %+v %v", in, n, s, err)
		}
	}
	for _, in := range []string{`[{}, {}]`, `{"schema_version": 1, "groups": [{}, {}]}`, `{"schema_version": 2, "groups": [{}]}`} {
		if err := decodeBackupJSON([]byte(in), &night{}); err == nil {
			t.Errorf("%s decoded as one result", in)
		}
	}
}

func TestOnlineTable(t *testing.T) {
	o := &onlineResult{Workers: 2, Window: 5 * time.Second, Caps: []float64{0.5}, Scenarios: []*onlineScenario{
		{Name: "in process", Alone: []float64{1000, 1200, 1100}, Unpaced: []float64{300, 330, 310}, Paced: []float64{900, 1000, 950},
			UnpacedMBps: []float64{200, 210, 190}, PacedMBps: []float64{120, 110, 130}, PacedRate: []float64{100, 110, 120},
			Capped: [][]float64{{500, 700, 660}}, CappedMBps: [][]float64{{95, 104, 100}}},
		{Name: "through the store server", Err: os.ErrNotExist},
		// Its capped leg failed in the first run: no row, not a 0.00.
		{Name: "two groups", Alone: []float64{1000}, Unpaced: []float64{300}, Paced: []float64{900},
			UnpacedMBps: []float64{200}, PacedMBps: []float64{100}, PacedRate: []float64{100},
			Capped: [][]float64{nil}, CappedMBps: [][]float64{nil}, Err: os.ErrDeadlineExceeded},
	}}
	got := formatOnline(o)
	for _, want := range []string{
		"| in process | 1100 | 310 | 0.28 | 950 | 0.86 | 200.0 | 120.0 | 0.60 | 110.0 |",
		"| through the store server | failed: file does not exist |",
		"| in process | 0.50 | 100.0 | 660 | 0.60 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("online table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| two groups | 0.50") {
		t.Errorf("a failed capped leg is a row:\n%s", got)
	}
	ts := onlineTargets(o)
	if len(ts) != 6 || strings.Contains(ts[4].Measured, "capped") || !ts[0].Met || !ts[1].Met || ts[2].Known || !strings.Contains(ts[0].Measured, "capped at 0.50x of the unpaced speed 0.60x") {
		t.Errorf("online targets %+v", ts)
	}
}
