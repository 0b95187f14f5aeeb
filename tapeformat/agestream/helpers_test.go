package agestream

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// keyPair is a test key: the private key file's text, its identities, and
// the recipient line for it.
type keyPair struct {
	name     string
	private  []byte // identity file contents
	public   string // recipient line
	id       []*Identity
	rcpt     *Recipient
	isSSH    bool
	keyFiles map[string]string // written by keyFile
}

func newKeyPair(t testing.TB, name string, private []byte, public string, isSSH bool) *keyPair {
	t.Helper()
	ids, err := ParseIdentities(private, name)
	if err != nil {
		t.Fatalf("%s: ParseIdentities: %v", name, err)
	}
	r, err := ParseRecipient(public, RecipientOptions{AllowPostQuantum: true})
	if err != nil {
		t.Fatalf("%s: ParseRecipient: %v", name, err)
	}
	return &keyPair{name: name, private: private, public: public, id: ids, rcpt: r, isSSH: isSSH}
}

func x25519Key(t testing.TB) *keyPair {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	file := "# created by agestream tests\n# public key: " + k.Recipient().String() + "\n" + k.String() + "\n"
	return newKeyPair(t, "X25519", []byte(file), k.Recipient().String(), false)
}

func hybridKey(t testing.TB) *keyPair {
	k, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return newKeyPair(t, "mlkem768x25519", []byte(k.String()+"\n"), k.Recipient().String(), false)
}

func sshPEM(t testing.TB, priv any) []byte {
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(blk)
}

func ed25519Key(t testing.TB) *keyPair {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " backup@test"
	return newKeyPair(t, "ssh-ed25519", sshPEM(t, priv), line, true)
}

// RSA key generation takes a noticeable fraction of a second: one per run.
var rsaPriv = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func rsaKey(t testing.TB) *keyPair {
	priv := rsaPriv()
	pk, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " escrow@test"
	return newKeyPair(t, "ssh-rsa", sshPEM(t, priv), line, true)
}

// keyFile writes the private key to a 0600 file and returns its path.
func (k *keyPair) keyFile(t testing.TB) string {
	p := filepath.Join(t.TempDir(), k.name+".key")
	if err := os.WriteFile(p, k.private, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func recipientsOf(keys ...*keyPair) []*Recipient {
	var rs []*Recipient
	for _, k := range keys {
		rs = append(rs, k.rcpt)
	}
	return rs
}

// seal encrypts plain with our Writer, feeding it in uneven writes, and
// returns the age file and its record.
func seal(t testing.TB, plain []byte, keys ...*keyPair) ([]byte, Record) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, recipientsOf(keys...))
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for p, step := plain, 1; len(p) > 0; step = step*3 + 7 {
		n := min(len(p), step)
		if k, err := w.Write(p[:n]); err != nil || k != n {
			t.Fatalf("Write: %d, %v", k, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rec, err := w.Record()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), rec
}

// testPlain is incompressible-looking but reproducible data.
func testPlain(n int, seed uint64) []byte {
	r := mrand.New(mrand.NewPCG(seed, 0x7a9e))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// needCLI returns the path of a command line tool the test needs. Outside
// CI a missing tool skips the test loudly; in CI (CI set) it fails.
func needCLI(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Logf("SKIPPING %s: %s is not installed (apt-get install -y %s); CI fails here instead", t.Name(), name, debianPackage(name))
			t.SkipNow()
		}
		t.Fatalf("%s is required in CI: %v", name, err)
	}
	return p
}

func debianPackage(cmd string) string {
	switch cmd {
	case "age", "age-keygen":
		return "age"
	case "ssh-keygen":
		return "openssh-client"
	}
	return cmd
}

func run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// checkLosses checks the reader's promise on any input: losses are sorted,
// disjoint and inside the plaintext; a loss of unknown length ends it; and
// every byte outside the losses equals want (when want is known).
func checkLosses(t testing.TB, want, got []byte, losses []Loss) {
	t.Helper()
	var end int64
	for i, l := range losses {
		if l.Off < end || l.Chunks < 1 {
			t.Fatalf("loss %d %v overlaps or is empty (after %d): %v", i, l, end, losses)
		}
		if l.Len < 0 {
			if i != len(losses)-1 || int64(len(got)) != l.Off {
				t.Fatalf("unknown-length loss %v is not at the end of %d bytes: %v", l, len(got), losses)
			}
			end = l.Off
			continue
		}
		end = l.Off + l.Len
		// Only the loss of a cut member's tail may run past the plaintext
		// returned, which then ends where it starts.
		if end > int64(len(got)) && l.Len > 0 && (i != len(losses)-1 || l.Off != int64(len(got)) || !errors.Is(l.Err, ErrTruncated)) {
			t.Fatalf("loss %v past the %d bytes returned", l, len(got))
		}
	}
	if want == nil {
		return
	}
	// A member with chunks inserted claims more plaintext than was written:
	// that is fine as long as all of it is inside the losses.
	var pos int64
	for _, l := range append(losses, Loss{Off: int64(len(got)), Len: 0}) {
		if pos < l.Off && (l.Off > int64(len(want)) || !bytes.Equal(got[pos:l.Off], want[pos:l.Off])) {
			t.Fatalf("wrong plaintext in [%d, %d) (%d written), outside the losses %v", pos, l.Off, len(want), losses)
		}
		if l.Len < 0 {
			return
		}
		pos = l.Off + l.Len
	}
}
