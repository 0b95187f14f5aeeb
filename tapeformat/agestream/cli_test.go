package agestream

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/tapeformat/codec"
	"github.com/tapestream/tapestream/tapeformat/internal/testgen"
)

var cliSizes = []int{0, 1, ChunkSize, ChunkSize + 1, 3<<20 + 17}

// TestCLIDecryptsOurs: what our Writer produces, `age -d -i KEY` (Debian's
// age 1.1.1) decrypts byte for byte, with every key type and with each of
// two recipients' keys alone.
func TestCLIDecryptsOurs(t *testing.T) {
	ageCmd := needCLI(t, "age")
	x, ed, rs := x25519Key(t), ed25519Key(t), rsaKey(t)
	for _, keys := range [][]*keyPair{{x}, {ed}, {rs}, {x, rs}} {
		for _, size := range cliSizes {
			plain := testPlain(size, uint64(size)+9)
			member, _ := seal(t, plain, keys...)
			in := filepath.Join(t.TempDir(), "member.age")
			if err := os.WriteFile(in, member, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				got := run(t, nil, ageCmd, "-d", "-i", k.keyFile(t), in)
				if !bytes.Equal(got, plain) {
					t.Errorf("%s, %d bytes: age -d returned %d different bytes", k.name, size, len(got))
				}
			}
		}
	}
}

// TestCLIEncryptedReadByChunks: a file made by `age -e` (-r for each key
// kind, and -R with a recipients file) is read by our chunk reader, each
// identity alone, and its record and Verify agree.
func TestCLIEncryptedReadByChunks(t *testing.T) {
	ageCmd := needCLI(t, "age")
	x, ed, rs := x25519Key(t), ed25519Key(t), rsaKey(t)
	rfile := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(rfile, []byte("# escrow\n"+ed.public+"\n"+rs.public+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		keys []*keyPair
	}{
		{[]string{"-r", x.public}, []*keyPair{x}},
		{[]string{"-r", ed.public}, []*keyPair{ed}},
		{[]string{"-r", rs.public, "-r", x.public}, []*keyPair{rs, x}},
		{[]string{"-R", rfile}, []*keyPair{ed, rs}},
	} {
		for _, size := range cliSizes {
			plain := testPlain(size, uint64(size)+11)
			member := run(t, plain, ageCmd, append([]string{"-e"}, tc.args...)...)
			rec, err := ComputeRecord(member)
			if err != nil {
				t.Fatalf("%v, %d bytes: %v", tc.args, size, err)
			}
			if rec.Plain != int64(size) {
				t.Fatalf("%v: record says %d plaintext bytes, want %d", tc.args, rec.Plain, size)
			}
			for _, k := range tc.keys {
				for _, r := range []*Record{&rec, nil} {
					s, err := Open(member, k.id, r)
					if err != nil {
						t.Fatalf("%v, %d bytes, %s: %v", tc.args, size, k.name, err)
					}
					if got, losses := s.Decrypt(nil); len(losses) != 0 || !bytes.Equal(got, plain) {
						t.Errorf("%v, %d bytes, %s: losses %v", tc.args, size, k.name, losses)
					}
				}
			}
		}
	}
}

// TestCLIRecoversUnits is the operator's recovery path for one file split
// into two segment members: `age -d` per member, concatenate, and the
// codec's own tool (zstd, lz4, gzip) gives the file back; with the
// operator's key and with the escrow (ssh) key alike.
func TestCLIRecoversUnits(t *testing.T) {
	ageCmd := needCLI(t, "age")
	op, escrow := x25519Key(t), ed25519Key(t)
	data := append(testgen.MailData(3<<20, 7), testPlain(300<<10, 7)...)
	for _, name := range []string{"zstd", "lz4", "gzip"} {
		tool := needCLI(t, name)
		c, err := codec.ParseCodec(name)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := codec.NewEncoder(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var parts []string
		for seg, off := 1, 0; off < len(data); seg++ {
			var units []byte
			for k := 0; k < 2 && off < len(data); k++ {
				end := min(off+1<<20, len(data))
				units = enc.EncodeFrame(units, codec.ChunkMeta{Offset: int64(off)}, data[off:end])
				off = end
			}
			member, _ := seal(t, units, op, escrow)
			p := filepath.Join(dir, fmt.Sprintf("Mailbox1.edb%s.part%06d", c.Ext(), seg))
			if err := os.WriteFile(p, member, 0o644); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, p)
		}
		for _, k := range []*keyPair{op, escrow} {
			key := k.keyFile(t)
			var stream []byte
			for _, p := range parts {
				stream = append(stream, run(t, nil, ageCmd, "-d", "-i", key, p)...)
			}
			if got := run(t, stream, tool, "-d", "-c"); !bytes.Equal(got, data) {
				t.Errorf("%s with %s key: %d bytes recovered, want %d", name, k.name, len(got), len(data))
			}
		}
	}
}

// TestCLIPostQuantumUnreadable is why post-quantum recipients are opt-in:
// age before v1.3 (Debian's 1.1.1) cannot decrypt such a member.
func TestCLIPostQuantumUnreadable(t *testing.T) {
	ageCmd := needCLI(t, "age")
	ver := strings.TrimPrefix(strings.TrimSpace(string(run(t, nil, ageCmd, "--version"))), "v")
	if !strings.HasPrefix(ver, "1.0") && !strings.HasPrefix(ver, "1.1") && !strings.HasPrefix(ver, "1.2") {
		t.Skipf("age %s reads post-quantum files; nothing to show", ver)
	}
	pq := hybridKey(t)
	member, _ := seal(t, []byte("secret"), pq)
	in := filepath.Join(t.TempDir(), "pq.age")
	if err := os.WriteFile(in, member, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ageCmd, "-d", "-i", pq.keyFile(t), in)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("age %s decrypted a post-quantum member: %q", ver, out)
	}
}
