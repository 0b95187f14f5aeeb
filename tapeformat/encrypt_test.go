package tapeformat

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/zeebo/blake3"
	"golang.org/x/crypto/ssh"

	"github.com/tapestream/tapestream/tapeformat/agestream"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// testKey is a key pair for encrypted sets: its identity (private) and
// recipient (public) as tapestream parses them.
type testKey struct {
	ids  []*agestream.Identity
	rcpt *agestream.Recipient
	text []byte // the identity file
}

func newTestKey(t testing.TB, private []byte, public string) *testKey {
	t.Helper()
	ids, err := agestream.ParseIdentities(private, "test key")
	if err != nil {
		t.Fatal(err)
	}
	r, err := agestream.ParseRecipient(public, agestream.RecipientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{ids: ids, rcpt: r, text: private}
}

func x25519TestKey(t testing.TB) *testKey {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return newTestKey(t, []byte(k.String()+"\n"), k.Recipient().String())
}

func ed25519TestKey(t testing.TB) *testKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return newTestKey(t, pem.EncodeToMemory(blk), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))))
}

func recipients(keys ...*testKey) []*agestream.Recipient {
	var rs []*agestream.Recipient
	for _, k := range keys {
		rs = append(rs, k.rcpt)
	}
	return rs
}

// TestEncryptedRoundTrip: an encrypted set of every codec reads back
// exactly with each of its two recipients' identities alone, strictly and
// in salvage mode, on one and several goroutines; its digests and header
// snapshots are checked and given back; and nothing of the contents is in
// the clear: no chunk of data, no header snapshot, no digest.
func TestEncryptedRoundTrip(t *testing.T) {
	x, ed := x25519TestKey(t), ed25519TestKey(t)
	for _, c := range codecs {
		t.Run(c, func(t *testing.T) {
			files := sizesFiles()
			opts := smallOpts(t, c)
			opts.Recipients = recipients(x, ed)
			set := writeSet(t, opts, files)
			for _, k := range []*testKey{x, ed} {
				for _, ro := range []ReaderOptions{{Strict: true, Workers: 1}, {Workers: 3}} {
					ro.RecordSize, ro.Identities = 10240, k.ids
					res, err := readSet(t, bytes.NewReader(set), ro)
					if err != nil {
						t.Fatal(err)
					}
					if len(res.losses) != 0 || len(res.warnings) != 0 {
						t.Fatalf("losses %v warnings %v", res.losses, res.warnings)
					}
					for i, f := range files {
						if res.order[i] != f.fi.Name || !bytes.Equal(res.files[f.fi.Name], f.data) {
							t.Fatalf("file %s differs", f.fi.Name)
						}
					}
					if h := res.headers["Mailbox1.edb"]; string(h.DBHeader) != "ESE header" {
						t.Fatalf("header snapshot %q", h.DBHeader)
					}
					m := res.manifest
					sum := blake3.Sum256(files[3].data)
					if m.Files[3].BLAKE3 != hex.EncodeToString(sum[:]) || string(m.Files[3].DBHeader) != "ESE header" {
						t.Fatalf("manifest file %+v", m.Files[3])
					}
					e := res.label.Encryption
					if e == nil || e.Scheme != EncryptionAge || len(e.Recipients) != 2 || e.Recipients[0] != x.rcpt.Description() || e.Recipients[1] != ed.rcpt.Description() {
						t.Fatalf("label encryption %+v", e)
					}
				}
			}
			for _, secret := range [][]byte{[]byte("ESE header"), []byte(hex.EncodeToString(func() []byte { s := blake3.Sum256(files[3].data); return s[:] }())),
				files[3].data[100_000:100_064], files[2].data} {
				if bytes.Contains(set, secret) {
					t.Fatalf("%.20q is in the clear in the set", secret)
				}
			}
			if !bytes.Contains(set, []byte("databases/Mailbox1.edb"+mustCodec(t, c).Ext()+".part000001.age")) {
				t.Fatalf("encrypted member names end in .age")
			}
		})
	}
}

// TestEncryptedSealedRead: without an identity an encrypted set is read
// sealed: every file is announced with its size, nothing is lost,
// NextChunk and Read fail with a KeyError naming the set and recipients,
// and the manifest has no digest.
func TestEncryptedSealedRead(t *testing.T) {
	x, ed := x25519TestKey(t), ed25519TestKey(t)
	for _, c := range codecs {
		opts := smallOpts(t, c)
		opts.Recipients = recipients(x, ed)
		files := sizesFiles()
		set := writeSet(t, opts, files)
		rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true, RecordSize: 10240})
		if err != nil {
			t.Fatal(err)
		}
		if !rd.Sealed() {
			t.Fatal("not sealed")
		}
		err = rd.RequireIdentity()
		var ke *KeyError
		if !errors.As(err, &ke) || !errors.Is(err, agestream.ErrNoIdentity) || !strings.Contains(err.Error(), x.rcpt.Description().Fingerprint) ||
			!strings.Contains(err.Error(), ed.rcpt.Description().Fingerprint) || !strings.Contains(err.Error(), testLabel().SetID) {
			t.Fatalf("RequireIdentity: %v", err)
		}
		var names []string
		for {
			h, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			names = append(names, h.Name)
			if _, err := rd.NextChunk(); !errors.As(err, &ke) {
				t.Fatalf("NextChunk of a sealed reader: %v", err)
			}
		}
		if len(names) != len(files) || len(rd.Damage()) != 0 || len(rd.Warnings()) != 0 {
			t.Fatalf("%s: files %v, damage %v, warnings %v", c, names, rd.Damage(), rd.Warnings())
		}
		m, err := rd.Manifest()
		if err != nil || m.Files[3].BLAKE3 != "" || m.Files[3].DBHeader != nil || m.Sealed == "" || m.Files[3].Size != 400_000 {
			t.Fatalf("%s: sealed manifest %v %+v", c, err, m)
		}
		rd.Close()
	}
}

// TestEncryptedWrongKey: an identity that is not a recipient's is refused
// at the first member, with a KeyError that names the set, its recipients
// and the identity tried; nothing is delivered.
func TestEncryptedWrongKey(t *testing.T) {
	x, ed, other := x25519TestKey(t), ed25519TestKey(t), ed25519TestKey(t)
	for _, c := range codecs {
		opts := smallOpts(t, c)
		opts.Recipients = recipients(x, ed)
		set := writeSet(t, opts, sizesFiles())
		for _, strict := range []bool{true, false} {
			res, err := readSet(t, bytes.NewReader(set), ReaderOptions{Strict: strict, RecordSize: 10240, Identities: other.ids})
			var ke *KeyError
			if !errors.As(err, &ke) || !errors.Is(err, agestream.ErrNoIdentity) {
				t.Fatalf("%s: wrong key: %v", c, err)
			}
			msg := err.Error()
			for _, want := range []string{testLabel().SetID, x.rcpt.Description().Fingerprint, ed.rcpt.Description().Fingerprint, "tried " + other.ids[0].Description().String()} {
				if !strings.Contains(msg, want) {
					t.Fatalf("%s: %q does not say %q", c, msg, want)
				}
			}
			if len(res.got) != 0 {
				t.Fatalf("%s: delivered %v with a wrong key", c, res.got)
			}
		}
	}
}

// TestEncryptedSwappedChunk: a sealed chunk taken from another encrypted
// set (same layout, same recipients) is detected by a reader with the
// identity (authentication) and by a sealed one (the ciphertext checksum),
// and costs exactly the units of that chunk's plaintext.
func TestEncryptedSwappedChunk(t *testing.T) {
	x := x25519TestKey(t)
	for _, c := range codecs {
		a := writeMatrixSetEnc(t, c, testLabel().SetID, 100, x)
		b := writeMatrixSetEnc(t, c, testLabel().SetID, 100, x)
		// The same set id and contents: only the keys differ. Chunk 1 of
		// the largest member of a, replaced by b's.
		k := a.largestMember()
		m, mb := a.members[k], b.members[k]
		if m.data != mb.data || m.ageHdr() != mb.ageHdr() {
			t.Fatalf("%s: the two sets' layouts differ", c)
		}
		at := m.data + int64(m.ageHdr()+agestream.NonceSize+agestream.SealedChunkSize)
		d := bytes.Clone(a.set)
		copy(d[at:at+agestream.SealedChunkSize], b.set[at:at+agestream.SealedChunkSize])
		touched := a.touchRange(at, at+agestream.SealedChunkSize)
		if len(touched) == 0 {
			t.Fatalf("%s: the chunk holds no unit", c)
		}
		if _, err := readSet(t, bytes.NewReader(d), ReaderOptions{Strict: true, RecordSize: 10240, Identities: x.ids}); !errors.Is(err, ErrDamaged) || !errors.Is(err, agestream.ErrAuth) && !errors.Is(err, agestream.ErrChecksum) {
			t.Fatalf("%s: strict read of a swapped chunk: %v", c, err)
		}
		var tot matrixTotals
		checkCase(t, a, mCase{name: "swapped-chunk", set: d, touched: touched}, 2, &tot)
		if tot.silent != 0 || tot.harmless != 0 {
			t.Fatalf("%s: %+v", c, tot)
		}
		// sealed: the ciphertext checksum names the same range
		rd, err := NewReader(bytes.NewReader(d), ReaderOptions{RecordSize: 10240})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := rd.Next(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		ls := rd.Damage()
		if got, want := lossBytes(ls), a.touchedBytes(touched); got != want || len(ls) == 0 || !strings.Contains(ls[0].Reason, "ciphertext checksum mismatch") {
			t.Fatalf("%s: sealed read lost %d bytes (want %d): %v", c, got, want, ls)
		}
		rd.Close()
	}
}

// readSealed reads an encrypted set without identity, strictly: the
// files it announces, its losses and warnings.
func readSealed(t testing.TB, set []byte) ([]string, []Loss, []Warning) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(set), ReaderOptions{Strict: true, RecordSize: 10240})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var names []string
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	return names, rd.Damage(), rd.Warnings()
}

func lossBytes(ls []Loss) int64 {
	var n int64
	for _, l := range ls {
		n += l.Length
	}
	return n
}

// TestEncryptedUnitsLayout: the record's layout of every encrypted member
// matches its plaintext, unit by unit.
func TestEncryptedUnitsLayout(t *testing.T) {
	x := x25519TestKey(t)
	for _, c := range codecs {
		ms := writeMatrixSetEnc(t, c, testLabel().SetID, 100, x)
		for _, m := range ms.members {
			rec := m.rec
			if rec == nil {
				continue
			}
			data := ms.set[m.data : m.data+rec.Age.Size]
			s, err := agestream.Open(data, x.ids, rec.Age)
			if err != nil {
				t.Fatal(err)
			}
			plain, losses := s.Decrypt(nil)
			if len(losses) != 0 || int64(len(plain)) != rec.Age.Plain {
				t.Fatalf("%s: %v", m.name, losses)
			}
			p := rec.InfoLen
			off := rec.Offset
			for _, u := range rec.Units {
				if c == "none" {
					p += int(u[0])
					continue
				}
				h, err := codec.ParseHeader(plain[p:])
				if err != nil || h.UnitLen != int(u[0]) || h.Meta.Length != u[1] || h.Meta.Offset != off {
					t.Fatalf("%s: unit at %d: %v %+v, layout %v", m.name, p, err, h, u)
				}
				p += int(u[0])
				off += int64(u[1])
			}
			if p != len(plain) {
				t.Fatalf("%s: layout ends at %d of %d", m.name, p, len(plain))
			}
		}
	}
}
