package tapeformat

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/agestream"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The damage matrix (issue 14): for every codec, plain and encrypted
// (issue 17: read with the identity), a set of several files
// (databases of several segments, small logs, an empty file, a file of
// unknown size) is damaged in every way a medium or a person can damage
// it, and two invariants are checked for every case:
//
//  1. a strict read that reports no damage delivered every file, byte for
//     byte;
//  2. a salvage read delivers every chunk the damage did not touch, byte
//     for byte, and reports every chunk it does not deliver as lost, and
//     no loss overlaps what it delivered.
//
// Which chunks a damage touches comes from the Writer's layout (where each
// member, header, file-info frame and unit sits), not from the reader. In
// an encrypted set a unit is touched when a ciphertext chunk holding any
// of its plaintext is, or its member's age header or nonce (FORMAT.md
// 5.3: a damaged header costs the member).

type mChunk struct {
	file     int
	off, end int64
	pos, n   int64 // unit in the set (encrypted: in its member's plaintext)
	member   int
}

type mSet struct {
	set     []byte
	files   []testFile
	members []layoutEvent
	chunks  []mChunk
	none    bool
	kind    codec.Kind
	enc     bool
	ids     []*agestream.Identity
}

func matrixFiles(seed uint64) []testFile {
	return []testFile{
		{FileInfo{Name: "Mailbox1.edb", Kind: KindDatabase, Size: 640_000, DBHeader: []byte("ESE header Mailbox1")}, mail(640_000, seed)},
		{FileInfo{Name: "Mailbox1.stm", Kind: KindStreaming, Size: 150_000}, mail(150_000, seed+1)},
		{FileInfo{Name: "Public.edb", Kind: KindDatabase, Size: 400_000, DBHeader: []byte("ESE header Public")}, mail(400_000, seed+2)},
		{FileInfo{Name: "E0000000A3.log", Kind: KindLog, Size: 20_000}, mail(20_000, seed+3)},
		{FileInfo{Name: "E0000000A4.log", Kind: KindLog, Size: 0}, nil},
		{FileInfo{Name: "E0000000A5.log", Kind: KindLog, Size: 9_000}, mail(9_000, seed+4)},
		{FileInfo{Name: "notes.dat", Kind: KindOther, Size: -1}, mail(30_000, seed+5)},
	}
}

func writeMatrixSet(t testing.TB, c string, setID string, seed uint64) *mSet {
	return writeMatrixSetEnc(t, c, setID, seed)
}

// writeMatrixSetEnc writes the matrix set, encrypted to keys if any.
func writeMatrixSetEnc(t testing.TB, c string, setID string, seed uint64, keys ...*testKey) *mSet {
	opts := smallOpts(t, c)
	opts.FrameSize = 4 << 10 // many units: damage hits many structures
	opts.Recipients = recipients(keys...)
	if len(keys) > 0 {
		// Members of several sealed chunks (64 KiB of plaintext each),
		// so that damage to one costs less than its member.
		opts.SegmentSize = 160 << 10
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	ms := &mSet{files: matrixFiles(seed), none: c == "none", kind: opts.Codec.Kind, enc: len(keys) > 0}
	for _, k := range keys {
		ms.ids = append(ms.ids, k.ids...)
	}
	w.layout = func(ev layoutEvent) { ms.members = append(ms.members, ev) }
	l := testLabel()
	l.SetID = setID
	if err := w.Begin(l); err != nil {
		t.Fatal(err)
	}
	for _, f := range ms.files {
		fw, err := w.CreateFile(f.fi)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(f.data)
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ms.set = buf.Bytes()
	for i, m := range ms.members {
		for _, u := range m.units {
			if u.info || u.meta.Length == 0 {
				continue
			}
			pos := m.data + int64(u.pos)
			if ms.enc {
				pos = int64(u.pos)
			}
			ms.chunks = append(ms.chunks, mChunk{file: int(u.meta.FileIndex), off: u.meta.Offset, end: u.meta.End(),
				pos: pos, n: int64(u.n), member: i})
		}
	}
	return ms
}

// mCase is one damaged set and the chunks its damage touched.
type mCase struct {
	name    string
	set     []byte
	touched map[int]bool // chunk index
	// unknown: files the damage may hide entirely (truncation): their
	// chunks need no named loss, the manifest-missing entry covers them.
	unknown map[int]bool
	intact  bool // the set's files are all there (trailing data, duplicates)
}

// touchRange marks the chunks a damaged byte range [a,b) of the original
// layout touches: their units, and with codec none the header of their
// member (it holds the chunk table).
func (ms *mSet) touchRange(a, b int64) map[int]bool {
	t := map[int]bool{}
	for i, c := range ms.chunks {
		m := ms.members[c.member]
		hit := c.pos < b && c.pos+c.n > a
		if ms.enc {
			hit = m.sealedTouched(c.pos, c.pos+c.n, a, b)
		}
		if hit || ms.none && m.hdr < b && m.data > a {
			t[i] = true
		}
	}
	return t
}

// ageHdr is the length of an encrypted member's age header.
func (m layoutEvent) ageHdr() int {
	return int(m.rec.Age.Size - agestream.SealedSize(0, m.rec.Age.Plain))
}

// cipherAt is where plaintext byte p of an encrypted member is stored.
func (m layoutEvent) cipherAt(p int64) int64 {
	return m.data + int64(m.ageHdr()+agestream.NonceSize) + p/agestream.ChunkSize*agestream.SealedChunkSize + p%agestream.ChunkSize
}

// sealedTouched reports whether damage to [a,b) of the set touches the
// plaintext range [p,q) of encrypted member m: its age header or nonce,
// or a sealed chunk holding any of it.
func (m layoutEvent) sealedTouched(p, q, a, b int64) bool {
	if m.rec == nil || m.rec.Age == nil {
		return false
	}
	start, end := m.data, m.data+m.rec.Age.Size
	a, b = max(a, start), min(b, end)
	if a >= b {
		return false
	}
	po := int64(m.ageHdr() + agestream.NonceSize)
	if a-start < po {
		return true
	}
	first := (a - start - po) / agestream.SealedChunkSize
	last := (b - 1 - start - po) / agestream.SealedChunkSize
	return first*agestream.ChunkSize < q && p < (last+1)*agestream.ChunkSize
}

// largestMember is the index of the encrypted member of most chunks.
func (ms *mSet) largestMember() int {
	k := -1
	for i, m := range ms.members {
		if m.rec != nil && m.rec.Age != nil && (k < 0 || m.rec.Age.Size > ms.members[k].rec.Age.Size) {
			k = i
		}
	}
	return k
}

// touchedBytes is the file bytes of the touched chunks.
func (ms *mSet) touchedBytes(touched map[int]bool) int64 {
	var n int64
	for i := range touched {
		n += ms.chunks[i].end - ms.chunks[i].off
	}
	return n
}

// at is where a unit's byte p (relative to the unit span's position) is
// in the set: in the clear, or in the sealed chunk holding it.
func (ms *mSet) at(m layoutEvent, pos int64) int64 {
	if ms.enc {
		return m.cipherAt(pos)
	}
	return m.data + pos
}

func (ms *mSet) memberChunks(k int) map[int]bool {
	t := map[int]bool{}
	for i, c := range ms.chunks {
		if c.member == k {
			t[i] = true
		}
	}
	return t
}

// sampled picks the members whose every structure the matrix damages:
// the label, the manifest, each file's first and last member, and every
// sixth other one.
func (ms *mSet) sampled() map[int]bool {
	out := map[int]bool{0: true, len(ms.members) - 1: true}
	prev := -2
	for i, m := range ms.members {
		f := ms.fileOfMember(m)
		next := -2
		if i+1 < len(ms.members) {
			next = ms.fileOfMember(ms.members[i+1])
		}
		if f != prev || f != next || i%6 == 0 {
			out[i] = true
		}
		prev = f
	}
	return out
}

func (ms *mSet) segments() []int {
	var out []int
	for i, m := range ms.members {
		if m.name != LabelName && m.name != ManifestName {
			out = append(out, i)
		}
	}
	return out
}

func (ms *mSet) fileOf(k int) int {
	for _, c := range ms.chunks {
		if c.member == k {
			return c.file
		}
	}
	return -1
}

// reorderLost simulates the reading rule for members out of order: a file
// is closed when another file starts; chunks of a closed file are lost.
func (ms *mSet) reorderLost(order []int) map[int]bool {
	lost := map[int]bool{}
	closed := map[int]bool{}
	open := -1
	for _, k := range order {
		f := ms.fileOf(k)
		if f < 0 {
			continue
		}
		if f != open {
			if closed[f] {
				for i := range ms.memberChunks(k) {
					lost[i] = true
				}
				continue
			}
			if open >= 0 {
				closed[open] = true
			}
			open = f
		}
	}
	return lost
}

func (ms *mSet) cases(t testing.TB, other *mSet, rng *rand.Rand) []mCase {
	set := ms.set
	n := int64(len(set))
	var cs []mCase
	flip := func(name string, p int64) {
		if p < 0 || p >= n {
			return
		}
		d := bytes.Clone(set)
		d[p] ^= byte(1 << rng.IntN(8))
		cs = append(cs, mCase{name: fmt.Sprintf("%s@%d", name, p), set: d, touched: ms.touchRange(p, p+1)})
	}
	trunc := func(name string, p int64) {
		if p <= 0 || p >= n {
			return
		}
		cs = append(cs, mCase{name: fmt.Sprintf("truncate-%s@%d", name, p), set: bytes.Clone(set[:p]), touched: ms.touchRange(p, n),
			unknown: ms.unknownFiles(p, n)})
	}
	// truncation: inside the label, at every member boundary, inside
	// every header, at 512-byte steps inside members, before and inside
	// the manifest
	trunc("label", 100)
	trunc("label", 1024)
	sampled := ms.sampled()
	for k, m := range ms.members {
		if !sampled[k] {
			continue
		}
		trunc("member-start", m.hdr)
		trunc("in-header", m.hdr+512)
		if k%2 == 0 {
			trunc("after-header", m.data)
			trunc("mid-member", m.data+(m.end-m.data)/2/512*512)
		} else {
			trunc("mid-member-odd", m.data+(m.end-m.data)/3+7)
		}
		if m.name == ManifestName {
			trunc("before-manifest", m.hdr)
			trunc("inside-manifest", m.data+100)
		}
	}
	trunc("in-trailer", ms.members[len(ms.members)-1].end+256)
	// single-byte flips at random
	for range 25 {
		flip("random", rng.Int64N(n))
	}
	// flips in every metadata structure of (a sample of) the members
	for k, m := range ms.members {
		if !sampled[k] {
			continue
		}
		kind := "segment"
		if m.name == LabelName {
			kind = "label"
		} else if m.name == ManifestName {
			kind = "manifest"
		}
		u := m.data - BlockSize // the ustar header
		for _, off := range []int64{0, 124, 148, 257} {
			flip(kind+"-pax-x-header", m.hdr+off)
			flip(kind+"-ustar-header", u+off)
		}
		// the pax records (the member record JSON), beginning to end
		for p := m.hdr + BlockSize; p < u; p += max(1, (u-m.hdr-BlockSize)/4) {
			flip(kind+"-pax-records", p)
		}
		if kind != "segment" {
			for p := m.data; p < m.end; p += max(1, (m.end-m.data)/12) {
				flip(kind+"-data", p)
			}
		}
		flip(kind+"-padding", m.end-1)
	}
	// chunk records, file-info frames, payloads (encrypted: the sealed
	// chunks holding them)
	for k, m := range ms.members {
		for j, un := range m.units {
			at := func(off int64) int64 { return ms.at(m, int64(un.pos)+off) }
			switch {
			case un.info:
				for _, off := range []int64{0, 8, 12, 20, int64(un.n) / 2, int64(un.n) - 1} {
					flip("file-info", at(off))
				}
			case ms.none:
				if j%13 == 0 {
					flip("raw-chunk", at(int64(un.n)/2))
				}
			case (k+j)%37 == 0:
				// the prefix, then each field of the record
				pre := int64(codec.PrefixLen(ms.kind))
				for _, off := range []int64{0, 4, pre, pre + 4, pre + 5, pre + 8, pre + 12, pre + 20, pre + 24, pre + 28, pre + 32, pre + 40} {
					flip("chunk-record", at(off))
				}
				flip("payload", at(pre+44+int64(un.n-int(pre)-44)/2))
				flip("unit-end", at(int64(un.n)-1))
			}
		}
	}
	// the age layer of every sampled encrypted member: the header's
	// version line, a stanza, its MAC, the nonce, and a chunk's tag
	for k, m := range ms.members {
		if !sampled[k] || m.rec == nil || m.rec.Age == nil {
			continue
		}
		h := int64(m.ageHdr())
		for _, off := range []int64{0, 30, h - 5, h + 3} {
			flip("age-header", m.data+off)
		}
		if m.rec.Age.Size > h+agestream.NonceSize+agestream.SealedChunkSize {
			flip("age-tag", m.data+h+agestream.NonceSize+agestream.SealedChunkSize-3)
		}
		flip("age-last-byte", m.data+m.rec.Age.Size-1)
	}
	// a zeroed 1 MiB range, at three places
	for _, a := range []int64{0, n/2 - 500_000, n - 1<<20 + 4096} {
		a = max(a, 0)
		b := min(a+1<<20, n)
		d := bytes.Clone(set)
		clear(d[a:b])
		cs = append(cs, mCase{name: fmt.Sprintf("zero-1MiB@%d", a), set: d, touched: ms.touchRange(a, b), unknown: ms.unknownFiles(a, b)})
	}
	segs := ms.segments()
	cut := func(order []int) []byte {
		var d []byte
		d = append(d, set[:ms.members[0].hdr]...)
		for _, k := range order {
			d = append(d, set[ms.members[k].hdr:ms.members[k].end]...)
		}
		return append(d, set[ms.members[len(ms.members)-1].end:]...)
	}
	all := make([]int, len(ms.members))
	for i := range all {
		all[i] = i
	}
	for _, k := range append([]int{0, len(ms.members) - 1}, segs...) {
		// dropped
		order := slices.Delete(slices.Clone(all), k, k+1)
		cs = append(cs, mCase{name: "drop-" + ms.members[k].name, set: cut(order), touched: ms.memberChunks(k)})
		// duplicated
		if k != 0 {
			order = slices.Insert(slices.Clone(all), k, k)
			cs = append(cs, mCase{name: "dup-" + ms.members[k].name, set: cut(order), touched: map[int]bool{}, intact: true})
		}
	}
	for i := 0; i+1 < len(segs); i++ {
		a, b := segs[i], segs[i+1]
		order := slices.Clone(all)
		order[a], order[b] = order[b], order[a]
		cs = append(cs, mCase{name: "swap-" + ms.members[a].name, set: cut(order), touched: ms.reorderLost(order)})
	}
	// spliced from another set: in place of a member, or inserted
	for _, k := range segs {
		if k >= len(other.members)-1 {
			continue
		}
		om := other.members[k]
		var d []byte
		d = append(d, set[:ms.members[k].hdr]...)
		d = append(d, other.set[om.hdr:om.end]...)
		d = append(d, set[ms.members[k].end:]...)
		cs = append(cs, mCase{name: "splice-" + ms.members[k].name, set: d, touched: ms.memberChunks(k)})
		d = nil
		d = append(d, set[:ms.members[k].hdr]...)
		d = append(d, other.set[om.hdr:om.end]...)
		d = append(d, set[ms.members[k].hdr:]...)
		cs = append(cs, mCase{name: "insert-foreign-" + ms.members[k].name, set: d, touched: map[int]bool{}, intact: true})
	}
	// a second set after the first; garbage after the set
	cs = append(cs, mCase{name: "concatenated-sets", set: append(bytes.Clone(set), other.set...), touched: map[int]bool{}, intact: true})
	g := make([]byte, 3000)
	for i := range g {
		g[i] = byte(rng.Uint32())
	}
	cs = append(cs, mCase{name: "trailing-garbage", set: append(bytes.Clone(set), g...), touched: map[int]bool{}, intact: true})
	cs = append(cs, mCase{name: "trailing-zeros-and-text", set: append(append(bytes.Clone(set), make([]byte, 4096)...), "hello\n"...),
		touched: map[int]bool{}, intact: true})
	return cs
}

// unknownFiles lists the files a damaged range [a,b) may hide entirely:
// with the manifest gone, those with no intact member header and no
// intact file-info frame.
func (ms *mSet) unknownFiles(a, b int64) map[int]bool {
	man := ms.members[len(ms.members)-1]
	if man.hdr >= b || man.end <= a {
		return nil
	}
	known := map[int]bool{}
	for _, m := range ms.members {
		f := ms.fileOfMember(m)
		if f < 0 {
			continue
		}
		if m.hdr >= b || m.data <= a {
			known[f] = true
		}
		for _, u := range m.units {
			intact := m.data+int64(u.pos) >= b || m.data+int64(u.pos+u.n) <= a
			if ms.enc {
				intact = !m.sealedTouched(int64(u.pos), int64(u.pos+u.n), a, b)
			}
			if u.info && intact {
				known[f] = true
			}
		}
	}
	unknown := map[int]bool{}
	for f := range ms.files {
		if !known[f] {
			unknown[f] = true
		}
	}
	return unknown
}

func (ms *mSet) fileOfMember(m layoutEvent) int {
	for _, u := range m.units {
		if !u.info {
			return int(u.meta.FileIndex)
		}
	}
	for i, f := range ms.files {
		if strings.Contains(m.name, "/"+f.fi.Name+".") || strings.HasSuffix(m.name, "/"+f.fi.Name+".part000001") {
			return i
		}
	}
	return -1
}

type matrixTotals struct {
	cases, silent, strictOK, untouched, recovered, touched, harmless, inexact int
}

func TestDamageMatrix(t *testing.T) {
	key := x25519TestKey(t)
	variants := []struct {
		name string
		keys []*testKey
	}{{"", nil}, {"+age", []*testKey{key}}}
	totals := make([]matrixTotals, len(codecs)*len(variants))
	t.Run("codec", func(t *testing.T) {
		for ci, c := range codecs {
			for vi, v := range variants {
				if v.keys != nil && c != "zstd" && c != "none" {
					// The age layer is the same for every compressing
					// codec (whose own damage the plain rows cover):
					// zstd stands for them, none has its own path.
					continue
				}
				ti := ci*len(variants) + vi
				t.Run(c+v.name, func(t *testing.T) {
					t.Parallel()
					ms := writeMatrixSetEnc(t, c, testLabel().SetID, 100, v.keys...)
					other := writeMatrixSetEnc(t, c, "fedcba9876543210fedcba9876543210", 200, v.keys...)
					rng := rand.New(rand.NewPCG(uint64(ci), 14))
					for i, mc := range ms.cases(t, other, rng) {
						if testing.Short() && i%8 != 0 {
							continue // -short (the race run): every 8th case
						}
						totals[ti].cases++
						checkCase(t, ms, mc, 1+i%2, &totals[ti])
					}
				})
			}
		}
	})
	var tot matrixTotals
	for _, x := range totals {
		tot.cases += x.cases
		tot.silent += x.silent
		tot.strictOK += x.strictOK
		tot.untouched += x.untouched
		tot.recovered += x.recovered
		tot.touched += x.touched
		tot.harmless += x.harmless
		tot.inexact += x.inexact
	}
	recall := 100 * float64(tot.recovered) / float64(max(tot.untouched, 1))
	t.Logf("damage matrix: %d cases over %d codecs, plain and encrypted, %d silent, %d passed strict reads (all exact); salvage recall %.2f%% (%d of %d untouched chunks delivered); %d touched chunks, %d of them delivered intact (harmless damage), %d cases where the losses differ from the touched chunks only by such",
		tot.cases, len(codecs), tot.silent, tot.strictOK, recall, tot.recovered, tot.untouched, tot.touched, tot.harmless, tot.inexact)
	if tot.silent != 0 || tot.recovered != tot.untouched {
		t.Fatalf("silent cases %d, recall %d/%d", tot.silent, tot.recovered, tot.untouched)
	}
}

// checkCase reads a damaged set strictly and in salvage mode, decoding
// in the reading goroutine (workers 1) or ahead in parallel (2).
func checkCase(t *testing.T, ms *mSet, mc mCase, workers int, tot *matrixTotals) {
	t.Helper()
	opts := ReaderOptions{RecordSize: 10240, Workers: workers, Identities: ms.ids}
	// invariant 1: strict and quiet means complete and exact
	sopts := opts
	sopts.Strict = true
	sres, strictErr := readSet(t, bytes.NewReader(mc.set), sopts)
	if res := sres; strictErr == nil {
		for _, f := range ms.files {
			if !bytes.Equal(res.files[f.fi.Name], f.data) || !slices.Contains(res.order, f.fi.Name) {
				tot.silent++
				t.Errorf("%s: SILENT: strict read succeeded, %s has %d bytes (want %d)", mc.name, f.fi.Name, len(res.files[f.fi.Name]), len(f.data))
				return
			}
		}
		tot.strictOK++
	} else if mc.intact {
		t.Errorf("%s: strict read of an intact set failed: %v", mc.name, strictErr)
	}
	// invariant 2: salvage
	res, err := readSet(t, bytes.NewReader(mc.set), opts)
	generic := false
	if err != nil {
		if len(mc.touched) == 0 {
			t.Errorf("%s: salvage read failed: %v", mc.name, err)
			return
		}
		// NewReader fails only when no member is left to read: every
		// file is unknown, which the error says
		res = &readResult{files: map[string][]byte{}, got: map[string][][2]int64{}}
		generic, mc.unknown = true, map[int]bool{}
		for f := range ms.files {
			mc.unknown[f] = true
		}
	}
	if mc.intact && len(res.losses) != 0 {
		t.Errorf("%s: intact set reported losses %s", mc.name, lossesString(res.losses))
	}
	damageWarned := slices.ContainsFunc(res.warnings, func(w Warning) bool { return w.Damage })
	if mc.intact && damageWarned {
		t.Errorf("%s: intact set reported damage: %v", mc.name, res.warnings)
	}
	if err == nil && strictErr != nil && len(res.losses) == 0 && !damageWarned {
		// what a strict read fails on, a salvage read reports
		tot.silent++
		t.Errorf("%s: SILENT: strict read failed (%v), salvage reported nothing", mc.name, strictErr)
	}
	generic = generic || slices.ContainsFunc(res.losses, func(l Loss) bool { return l.FileIndex == -1 })
	for _, f := range ms.files {
		name := f.fi.Name
		for _, g := range res.got[name] {
			if g[1] > int64(len(f.data)) || !bytes.Equal(res.files[name][g[0]:g[1]], f.data[g[0]:g[1]]) {
				tot.silent++
				t.Errorf("%s: SILENT: %s: wrong bytes delivered at %v", mc.name, name, g)
				return
			}
		}
	}
	covered := func(name string, a, b int64, ranges [][2]int64) bool {
		for _, r := range ranges {
			if r[0] <= a && b <= r[1] {
				return true
			}
		}
		return false
	}
	lossRanges := map[string][][2]int64{}
	for _, l := range res.losses {
		if l.FileIndex < 0 {
			continue
		}
		end := l.Offset + l.Length
		if l.Length < 0 {
			end = 1 << 62
		}
		name := l.File
		if name == "" && l.FileIndex < len(ms.files) {
			name = ms.files[l.FileIndex].fi.Name
		}
		lossRanges[name] = append(lossRanges[name], [2]int64{l.Offset, end})
		for _, g := range res.got[name] {
			if g[0] < end && l.Offset < g[1] {
				t.Errorf("%s: %s: loss [%d,%d) overlaps delivered %v", mc.name, name, l.Offset, end, g)
			}
		}
	}
	inexact := false
	for i, c := range ms.chunks {
		name := ms.files[c.file].fi.Name
		delivered := covered(name, c.off, c.end, res.got[name])
		lost := covered(name, c.off, c.end, lossRanges[name])
		if !mc.touched[i] {
			tot.untouched++
			if delivered {
				tot.recovered++
			} else {
				t.Errorf("%s: %s [%d,%d) untouched but not delivered (lost: %v; losses %s)", mc.name, name, c.off, c.end, lost, lossesString(res.losses))
			}
			continue
		}
		tot.touched++
		switch {
		case delivered:
			tot.harmless++
			inexact = true
		case lost, mc.unknown[c.file] && generic && len(res.got[name]) == 0:
		default:
			tot.silent++
			t.Errorf("%s: SILENT: %s [%d,%d) neither delivered nor reported lost (losses %s)", mc.name, name, c.off, c.end, lossesString(res.losses))
		}
	}
	if inexact {
		tot.inexact++
		if testing.Verbose() {
			t.Logf("%s: touched chunks delivered intact (the damage was harmless to them)", mc.name)
		}
	}
}

// TestMatrixGroundTruth: the layout the matrix relies on matches the set
// (every unit is where the Writer says, and decodes to its chunk).
func TestMatrixGroundTruth(t *testing.T) {
	for _, c := range codecs {
		ms := writeMatrixSet(t, c, testLabel().SetID, 100)
		if len(ms.chunks) < 300 || len(ms.segments()) < 12 {
			t.Fatalf("%s: %d chunks in %d segments: the matrix needs more", c, len(ms.chunks), len(ms.segments()))
		}
		for _, ch := range ms.chunks {
			f := ms.files[ch.file]
			if c == "none" {
				if !bytes.Equal(ms.set[ch.pos:ch.pos+ch.n], f.data[ch.off:ch.end]) {
					t.Fatalf("%s: chunk layout wrong", c)
				}
				continue
			}
			h, err := codec.ParseHeader(ms.set[ch.pos:])
			if err != nil || int64(h.UnitLen) != ch.n || h.Meta.Offset != ch.off {
				t.Fatalf("%s: unit layout wrong at %d: %v", c, ch.pos, err)
			}
		}
		res, err := readSet(t, bytes.NewReader(ms.set), ReaderOptions{Strict: true, RecordSize: 10240})
		if err != nil || len(res.warnings) != 0 {
			t.Fatalf("%s: %v %v", c, err, res.warnings)
		}
	}
}
