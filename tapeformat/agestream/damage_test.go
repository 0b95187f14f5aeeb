package agestream

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// damageFixture is a member of 5 sealed chunks (the last one short)
// written to an X25519 key and an ssh-rsa key (a stanza body of several
// lines), and a second member of the same size and recipients.
type damageFixture struct {
	x, rs         *keyPair
	plain, plain2 []byte
	member, other []byte
	rec, rec2     Record
	h             *Header
}

const damagePlain = 4*ChunkSize + 1000

func newDamageFixture(t *testing.T) *damageFixture {
	f := &damageFixture{x: x25519Key(t), rs: rsaKey(t)}
	f.plain, f.plain2 = testPlain(damagePlain, 21), testPlain(damagePlain, 22)
	f.member, f.rec = seal(t, f.plain, f.x, f.rs)
	f.other, f.rec2 = seal(t, f.plain2, f.x, f.rs)
	var err error
	if f.h, err = ParseHeader(f.member); err != nil {
		t.Fatal(err)
	}
	if f.h.Len != (func() int { h, _ := ParseHeader(f.other); return h.Len })() {
		t.Fatal("the two members' headers differ in length")
	}
	return f
}

func (f *damageFixture) chunkAt(i int) int { return f.h.PayloadOffset() + i*SealedChunkSize }

// open opens a damaged copy with the X25519 key and decrypts it; it checks
// the reader's promise (no wrong byte outside the losses) on every call.
func (f *damageFixture) open(t *testing.T, member []byte, rec *Record) ([]Loss, error) {
	t.Helper()
	s, err := Open(member, f.x.id, rec)
	if err != nil {
		return nil, err
	}
	got, losses := s.Decrypt(nil)
	checkLosses(t, f.plain, got, losses)
	// On several goroutines: the same bytes and the same losses.
	pgot, plosses := s.DecryptParallel([]byte("prefix"), 3)
	if !bytes.Equal(pgot[6:], got) || !slices.EqualFunc(plosses, losses, func(a, b Loss) bool { return a.String() == b.String() }) {
		t.Fatalf("DecryptParallel: %d bytes, losses %v; Decrypt: %d bytes, losses %v", len(pgot)-6, plosses, len(got), losses)
	}
	// In the member's own buffer, on one goroutine and on several: the
	// same bytes and the same losses.
	for _, workers := range []int{1, 3} {
		buf := slices.Clone(member)
		s, err := Open(buf, f.x.id, rec)
		if err != nil {
			t.Fatalf("Open of a copy: %v", err)
		}
		igot, ilosses := s.DecryptInPlace(workers)
		if !bytes.Equal(igot, got) || !slices.EqualFunc(ilosses, losses, func(a, b Loss) bool { return a.String() == b.String() }) {
			t.Fatalf("DecryptInPlace(%d): %d bytes, losses %v; Decrypt: %d bytes, losses %v", workers, len(igot), ilosses, len(got), losses)
		}
		if len(igot) > 0 && &igot[0] != &buf[0] {
			t.Fatalf("DecryptInPlace(%d) returned a new buffer", workers)
		}
	}
	return losses, nil
}

func lossOf(i, chunks int, n int64, kind error) Loss {
	return Loss{Chunk: i, Chunks: chunks, Off: int64(i) * ChunkSize, Len: n, Err: kind}
}

// sameLosses compares losses by range and kind (not message).
func sameLosses(got, want []Loss) bool {
	return slices.EqualFunc(got, want, func(a, b Loss) bool {
		return a.Chunk == b.Chunk && a.Chunks == b.Chunks && a.Off == b.Off && a.Len == b.Len && errors.Is(a.Err, b.Err)
	})
}

func chunkPlain(i int) int64 { return min(ChunkSize, damagePlain-int64(i)*ChunkSize) }

// TestDamageHeader flips every byte of the header and of the payload nonce,
// two ways: the member is always lost as a whole (Open fails), never read
// with a wrong key stream. With the record the error is ErrHeader; without
// it, a damaged stanza reads as "no identity matches (or the header is
// damaged)", and a damaged nonce loses every chunk.
func TestDamageHeader(t *testing.T) {
	f := newDamageFixture(t)
	for off := 0; off < f.h.PayloadOffset(); off++ {
		for _, mask := range []byte{0x01, 0xff} {
			m := bytes.Clone(f.member)
			m[off] ^= mask
			where := fmt.Sprintf("byte %d (%q) ^%02x", off, f.member[off], mask)
			if _, err := f.open(t, m, &f.rec); !errors.Is(err, ErrHeader) {
				t.Fatalf("%s with record: %v", where, err)
			}
			if _, _, err := Verify(m, &f.rec); !errors.Is(err, ErrHeader) {
				t.Fatalf("%s Verify with record: %v", where, err)
			}
			losses, err := f.open(t, m, nil)
			var nie *NoIdentityError
			switch {
			case off >= f.h.Len:
				if err != nil || !sameLosses(losses, []Loss{lossOf(0, 4, 4*ChunkSize, ErrAuth), lossOf(4, 1, -1, ErrAuth)}) {
					t.Fatalf("%s (nonce) without record: %v %v", where, losses, err)
				}
			case errors.Is(err, ErrHeader):
			case errors.As(err, &nie) && nie.MaybeDamaged:
			default:
				t.Fatalf("%s without record: %v %v", where, losses, err)
			}
		}
	}
	// The RSA identity reads its own stanza; damage there is header damage
	// for it too.
	bodyLine := bytes.Index(f.member, []byte("-> ssh-rsa"))
	m := bytes.Clone(f.member)
	m[bodyLine+len("-> ssh-rsa ")+12] ^= 1
	if _, err := Open(m, f.rs.id, nil); !errors.Is(err, ErrHeader) && !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("ssh-rsa stanza: %v", err)
	}
}

// TestDamageChunks flips bytes at the start, middle and end of every
// chunk's ciphertext and in its tag: exactly that chunk's plaintext is lost,
// its neighbours decrypt; Verify without the key finds the same chunk by
// its CRC-32C. Without a record the last chunk's loss runs to the end (its
// end is then unproven).
func TestDamageChunks(t *testing.T) {
	f := newDamageFixture(t)
	for i := range 5 {
		size := int(chunkPlain(i)) + TagSize
		for _, at := range []int{0, size / 2, size - TagSize - 1, size - TagSize, size - 1} {
			m := bytes.Clone(f.member)
			m[f.chunkAt(i)+at] ^= 0x40
			where := fmt.Sprintf("chunk %d byte %d", i, at)
			losses, err := f.open(t, m, &f.rec)
			if err != nil || !sameLosses(losses, []Loss{lossOf(i, 1, chunkPlain(i), ErrAuth)}) {
				t.Fatalf("%s: %v %v", where, losses, err)
			}
			if !strings.Contains(losses[0].Err.Error(), "checksum mismatch: damaged") {
				t.Errorf("%s: %v", where, losses[0].Err)
			}
			want := lossOf(i, 1, chunkPlain(i), ErrAuth)
			if i == 4 {
				want.Len = -1
			}
			if losses, err := f.open(t, m, nil); err != nil || !sameLosses(losses, []Loss{want}) {
				t.Fatalf("%s without record: %v %v", where, losses, err)
			}
			if _, losses, err := Verify(m, &f.rec); err != nil || !sameLosses(losses, []Loss{lossOf(i, 1, chunkPlain(i), ErrChecksum)}) {
				t.Fatalf("%s Verify: %v %v", where, losses, err)
			}
		}
	}
	// Two damaged chunks apart are two losses; adjacent ones one.
	m := bytes.Clone(f.member)
	m[f.chunkAt(0)+5] ^= 1
	m[f.chunkAt(2)+5] ^= 1
	m[f.chunkAt(3)+5] ^= 1
	want := []Loss{lossOf(0, 1, ChunkSize, ErrAuth), lossOf(2, 2, 2*ChunkSize, ErrAuth)}
	if losses, err := f.open(t, m, &f.rec); err != nil || !sameLosses(losses, want) {
		t.Fatalf("chunks 0, 2, 3: %v %v", losses, err)
	}
}

// TestDamageTruncation cuts the member at many offsets. With the record,
// what is cut off is lost with its exact range (ErrTruncated) and the rest
// decrypts; without it, the whole chunks before the cut decrypt and the
// loss runs from there to the unknown end: a member cut at a chunk boundary
// is caught by the missing last-chunk flag.
func TestDamageTruncation(t *testing.T) {
	f := newDamageFixture(t)
	po := f.h.PayloadOffset()
	cuts := []int{0, 1, 21, 22, f.h.Len - 1, f.h.Len, f.h.Len + 1, po - 1, po, po + 1, po + TagSize - 1, po + TagSize}
	for i := 1; i <= 4; i++ {
		for _, d := range []int{-17, -16, -1, 0, 1, 15, 16, 17} {
			cuts = append(cuts, f.chunkAt(i)+d)
		}
	}
	cuts = append(cuts, len(f.member)-1, len(f.member)-TagSize)
	for _, cut := range cuts {
		m := bytes.Clone(f.member[:cut])
		where := fmt.Sprintf("cut at %d of %d", cut, len(f.member))
		losses, err := f.open(t, m, &f.rec)
		if cut < po {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("%s: %v", where, err)
			}
			continue
		}
		k := (cut - po) / SealedChunkSize // whole chunks kept
		want := []Loss{lossOf(k, 5-k, damagePlain-int64(k)*ChunkSize, ErrTruncated)}
		if err != nil || !sameLosses(losses, want) {
			t.Fatalf("%s: %v %v, want %v", where, losses, err, want)
		}
		if _, vl, err := Verify(m, &f.rec); err != nil || !sameLosses(vl, want) {
			t.Fatalf("%s Verify: %v %v", where, vl, err)
		}
		losses, err = f.open(t, m, nil)
		if err != nil || len(losses) != 1 || losses[0].Off != int64(k)*ChunkSize || losses[0].Len != -1 {
			t.Fatalf("%s without record: %v %v", where, losses, err)
		}
		if (cut-po)%SealedChunkSize == 0 && k > 0 && !errors.Is(losses[0].Err, ErrTruncated) {
			t.Fatalf("%s: cut at a chunk boundary not reported as truncation: %v", where, losses)
		}
		// Without the record Verify can only judge the size: a cut that
		// leaves a size no writer makes is found, others look complete.
		_, perr := PlaintextSize(f.h.Len, int64(cut))
		if _, vl, err := Verify(m, nil); err != nil || (perr == nil) != (len(vl) == 0) {
			t.Fatalf("%s Verify without record: %v %v (size check: %v)", where, vl, err, perr)
		}
	}
}

// TestDamageSplice moves chunks: a chunk swapped in from another member
// (another file key) or set, two chunks swapped, a chunk copied over its
// successor, a payload moved under another header, a chunk inserted or
// removed. Only the chunks at wrong places are lost; no wrong byte is
// returned. A forged record (CRC of the foreign chunk) hides the splice
// from Verify, but not from authentication, which names it tampering.
func TestDamageSplice(t *testing.T) {
	f := newDamageFixture(t)
	piece := func(m []byte, i int) []byte {
		return m[f.chunkAt(i):min(f.chunkAt(i+1), len(m))]
	}

	m := bytes.Clone(f.member)
	copy(piece(m, 2), piece(f.other, 2))
	if losses, err := f.open(t, m, &f.rec); err != nil || !sameLosses(losses, []Loss{lossOf(2, 1, ChunkSize, ErrAuth)}) {
		t.Fatalf("swapped chunk: %v %v", losses, err)
	}
	if losses, err := f.open(t, m, nil); err != nil || !sameLosses(losses, []Loss{lossOf(2, 1, ChunkSize, ErrAuth)}) {
		t.Fatalf("swapped chunk without record: %v %v", losses, err)
	}
	forged := f.rec
	forged.Chunks = slices.Clone(f.rec.Chunks)
	forged.Chunks[2] = f.rec2.Chunks[2]
	if _, vl, err := Verify(m, &forged); err != nil || len(vl) != 0 {
		t.Fatalf("Verify with forged record: %v %v", vl, err)
	}
	losses, err := f.open(t, m, &forged)
	if err != nil || !sameLosses(losses, []Loss{lossOf(2, 1, ChunkSize, ErrAuth)}) || !strings.Contains(losses[0].Err.Error(), "tampered") {
		t.Fatalf("swapped chunk, forged record: %v %v", losses, err)
	}

	m = bytes.Clone(f.member)
	copy(piece(m, 4), piece(f.other, 4))
	if losses, err := f.open(t, m, &f.rec); err != nil || !sameLosses(losses, []Loss{lossOf(4, 1, 1000, ErrAuth)}) {
		t.Fatalf("swapped last chunk: %v %v", losses, err)
	}

	m = bytes.Clone(f.member)
	copy(piece(m, 1), piece(f.member, 2))
	copy(piece(m, 2), piece(f.member, 1))
	if losses, err := f.open(t, m, &f.rec); err != nil || !sameLosses(losses, []Loss{lossOf(1, 2, 2*ChunkSize, ErrAuth)}) {
		t.Fatalf("reordered chunks: %v %v", losses, err)
	}

	m = bytes.Clone(f.member)
	copy(piece(m, 3), piece(f.member, 2))
	if losses, err := f.open(t, m, nil); err != nil || !sameLosses(losses, []Loss{lossOf(3, 1, ChunkSize, ErrAuth)}) {
		t.Fatalf("duplicated chunk: %v %v", losses, err)
	}

	// f.member's header on f.other's payload: every chunk fails, so the
	// member is lost whole although the header is intact.
	m = append(bytes.Clone(f.member[:f.h.Len]), f.other[f.h.Len:]...)
	if losses, err := f.open(t, m, nil); err != nil || !sameLosses(losses, []Loss{lossOf(0, 4, 4*ChunkSize, ErrAuth), lossOf(4, 1, -1, ErrAuth)}) {
		t.Fatalf("foreign payload: %v %v", losses, err)
	}

	// Inserting or removing a whole chunk shifts the rest: all after the
	// change is lost (the tar member size makes this a torn member, not
	// something a tape does inside one), and nothing wrong is returned.
	ins := slices.Concat(f.member[:f.chunkAt(2)], piece(f.member, 1), f.member[f.chunkAt(2):])
	del := slices.Concat(f.member[:f.chunkAt(1)], f.member[f.chunkAt(2):])
	for name, m := range map[string][]byte{"inserted": ins, "removed": del} {
		for _, rec := range []*Record{&f.rec, nil} {
			losses, err := f.open(t, m, rec)
			if err != nil || len(losses) == 0 || losses[0].Chunk != map[string]int{"inserted": 2, "removed": 1}[name] {
				t.Fatalf("%s chunk (record %v): %v %v", name, rec != nil, losses, err)
			}
		}
	}
}

// TestTrailing: bytes after the stream's end. With a record they are
// ignored and reported (nothing lost); without one, a last chunk that is
// whole authenticates as the end and the extra bytes are reported.
func TestTrailing(t *testing.T) {
	k := x25519Key(t)
	plain := testPlain(2*ChunkSize, 9)
	member, rec := seal(t, plain, k)
	m := append(bytes.Clone(member), bytes.Repeat([]byte{0}, SealedChunkSize)...)
	for _, r := range []*Record{&rec, nil} {
		s, err := Open(m, k.id, r)
		if err != nil {
			t.Fatal(err)
		}
		got, losses := s.Decrypt(nil)
		checkLosses(t, plain, got, losses)
		if !bytes.Equal(got, plain) || len(losses) != 1 || losses[0].Len != 0 || !errors.Is(losses[0].Err, ErrTrailing) {
			t.Fatalf("record %v: %d bytes, %v", r != nil, len(got), losses)
		}
	}
	if _, vl, err := Verify(m, &rec); err != nil || len(vl) != 1 || !errors.Is(vl[0].Err, ErrTrailing) {
		t.Fatalf("Verify: %v %v", vl, err)
	}
}

// TestRecordClaimsTooMuch: a record is untrusted input too. One that is
// self-consistent but claims 10 GiB for a small member costs neither
// memory nor time: the plaintext stops at the member's data, and the rest
// is one truncation loss.
func TestRecordClaimsTooMuch(t *testing.T) {
	k := x25519Key(t)
	plain := testPlain(2*ChunkSize+5, 4)
	member, rec := seal(t, plain, k)
	h, _ := ParseHeader(member)
	big := rec
	big.Plain = 10 << 30
	big.Size = SealedSize(h.Len, big.Plain)
	big.Chunks = make(CRCs, chunkCount(big.Plain))
	copy(big.Chunks, rec.Chunks[:2]) // the first two whole chunks are intact
	s, err := Open(member, k.id, &big)
	if err != nil {
		t.Fatal(err)
	}
	got, losses := s.Decrypt(nil)
	checkLosses(t, plain, got, losses)
	want := []Loss{lossOf(2, len(big.Chunks)-2, big.Plain-2*ChunkSize, ErrTruncated)}
	if len(got) != 2*ChunkSize || !sameLosses(losses, want) {
		t.Fatalf("%d bytes, losses %v", len(got), losses)
	}
	if _, vl, err := Verify(member, &big); err != nil || !sameLosses(vl, want) {
		t.Fatalf("Verify: %v %v", vl, err)
	}
}
