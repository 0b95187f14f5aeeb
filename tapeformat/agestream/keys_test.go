package agestream

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// TestParseRecipient: every supported kind parses to the right stanza type
// and a description without private material; post-quantum keys need the
// opt-in and the refusal says why; private keys, small RSA keys, plugins
// and garbage are refused without echoing a secret.
func TestParseRecipient(t *testing.T) {
	x, ed, rs, pq := x25519Key(t), ed25519Key(t), rsaKey(t), hybridKey(t)
	for _, k := range []*keyPair{x, ed, rs} {
		r, err := ParseRecipient("  "+k.public+"\r\n", RecipientOptions{})
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		d := r.Description()
		if d.Type != k.name || !strings.HasPrefix(d.Fingerprint, "SHA256:") || len(d.Fingerprint) != 7+43 {
			t.Errorf("%s: description %+v", k.name, d)
		}
		if k.isSSH != (d.Tag != "") || strings.Contains(d.Recipient, "@test") {
			t.Errorf("%s: tag %q / comment kept in %q", k.name, d.Tag, d.Recipient)
		}
		if strings.Contains(d.String(), string(k.private)) {
			t.Errorf("%s: description holds the private key", k.name)
		}
	}
	_, err := ParseRecipient(pq.public, RecipientOptions{})
	if !errors.Is(err, ErrPostQuantum) || !strings.Contains(err.Error(), "Debian's age 1.1.1") {
		t.Fatalf("post-quantum without opt-in: %v", err)
	}
	if r, err := ParseRecipient(pq.public, RecipientOptions{AllowPostQuantum: true}); err != nil || r.Description().Type != "mlkem768x25519" {
		t.Fatalf("post-quantum with opt-in: %v", err)
	}

	secret := strings.TrimSpace(strings.Split(string(x.private), "\n")[2])
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPK, _ := ssh.NewPublicKey(&small.PublicKey)
	for name, s := range map[string]string{
		"secret key":  secret,
		"RSA 1024":    string(ssh.MarshalAuthorizedKey(smallPK)),
		"plugin":      "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t",
		"tagged":      "age1tag1qwe0kafsjrar4txm6heqnhpfuggzr0gvznz7fvygxrlq90u5mq2pysxtw6h",
		"bad bech32":  x.public[:len(x.public)-1] + map[bool]string{true: "p", false: "q"}[strings.HasSuffix(x.public, "q")],
		"unknown":     "pgp:ABCDEF",
		"ssh garbage": "ssh-ed25519 AAAAnotbase64",
		"ecdsa":       "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
	} {
		_, err := ParseRecipient(s, RecipientOptions{AllowPostQuantum: true})
		if !errors.Is(err, ErrRecipient) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error echoes the secret key", name)
		}
	}
}

// TestRecipientsFile: comments, blank lines, CRLF and SSH comments are
// accepted; a bad line is named by number; a private key pasted into the
// file is refused without being echoed; an empty file is an error.
func TestRecipientsFile(t *testing.T) {
	x, ed, rs := x25519Key(t), ed25519Key(t), rsaKey(t)
	file := "# operator\r\n" + x.public + "\r\n\n  # escrow (ssh)\n" + ed.public + "\n" + rs.public + "\n"
	p := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	rs3, err := ReadRecipientsFile(p, RecipientOptions{})
	if err != nil || len(rs3) != 3 {
		t.Fatalf("%d recipients, %v", len(rs3), err)
	}
	d := Describe(rs3)
	if d[0].Recipient != x.public || d[1].Type != "ssh-ed25519" || d[2].Type != "ssh-rsa" {
		t.Fatalf("descriptions %+v", d)
	}
	secret := strings.TrimSpace(strings.Split(string(x.private), "\n")[2])
	for name, tc := range map[string]struct{ file, want string }{
		"bad line":   {x.public + "\n# c\nnonsense\n", "line 3"},
		"secret":     {x.public + "\n" + secret + "\n", "line 2: a private key"},
		"empty":      {"# nothing\n\n", "no recipients"},
		"pq no opt":  {hybridKey(t).public + "\n", "Debian's age 1.1.1"},
		"long line":  {strings.Repeat("a", 9000) + "\n", "recipients.txt"},
		"not utf8":   {"age1\xff\n", "not UTF-8"},
		"ssh broken": {"ssh-rsa AAAA\n", "line 1"},
	} {
		_, err := ParseRecipients(strings.NewReader(tc.file), "recipients.txt", RecipientOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "recipients.txt") {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error echoes the secret key", name)
		}
	}
}

// TestFingerprintMatchesSSHKeygen: an SSH recipient's fingerprint is the
// one ssh-keygen shows an operator, and its Tag is what the header shows.
func TestFingerprintMatchesSSHKeygen(t *testing.T) {
	keygen := needCLI(t, "ssh-keygen")
	for _, k := range []*keyPair{ed25519Key(t), rsaKey(t)} {
		p := filepath.Join(t.TempDir(), "key.pub")
		if err := os.WriteFile(p, []byte(k.public+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := string(run(t, nil, keygen, "-l", "-E", "sha256", "-f", p))
		if f := k.rcpt.Description().Fingerprint; !strings.Contains(out, f+" ") {
			t.Errorf("%s: ssh-keygen says %q, we say %s", k.name, out, f)
		}
		member, _ := seal(t, []byte("x"), k)
		h, err := ParseHeader(member)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Stanzas) != 1 || !h.Stanzas[0].Matches(k.rcpt.Description()) || h.Stanzas[0].Args[0] != k.rcpt.Description().Tag {
			t.Errorf("%s: stanza %v does not match %+v", k.name, h.Stanzas, k.rcpt.Description())
		}
		if h.Stanzas[0].Matches(ed25519Key(t).rcpt.Description()) && k.name == "ssh-ed25519" {
			t.Errorf("stanza matches another ed25519 key")
		}
	}
}

// TestIdentities: age identity files (several keys, comments), OpenSSH
// private keys, and the environment variable; refusals for passphrase
// protected keys, recipients in an identity file, and missing files, with
// errors that name the file and never its contents.
func TestIdentities(t *testing.T) {
	x1, x2, ed, rs := x25519Key(t), x25519Key(t), ed25519Key(t), rsaKey(t)
	both := append(append([]byte("# two keys\n\n"), x1.private...), x2.private...)
	ids, err := ParseIdentities(both, "keys.txt")
	if err != nil || len(ids) != 2 || ids[1].Description().Recipient != x2.public {
		t.Fatalf("%d identities, %v", len(ids), err)
	}
	for _, k := range []*keyPair{ed, rs} {
		ids, err := ParseIdentities(k.private, "id_"+k.name)
		if err != nil || len(ids) != 1 || ids[0].Description().Fingerprint != k.rcpt.Description().Fingerprint {
			t.Fatalf("%s: %v %v", k.name, ids, err)
		}
	}

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	var encAge bytes.Buffer
	sr, _ := age.NewScryptRecipient("hunter2")
	sr.SetWorkFactor(10)
	w, _ := age.Encrypt(&encAge, sr)
	w.Write(x1.private)
	w.Close()
	secret := strings.TrimSpace(strings.Split(string(x1.private), "\n")[2])
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"ssh passphrase": {pem.EncodeToMemory(blk), "passphrase-protected SSH key"},
		"age passphrase": {encAge.Bytes(), "passphrase-encrypted identity file"},
		"recipient":      {[]byte(x1.public + "\n"), "a public key (recipient)"},
		"ssh public":     {[]byte(ed.public + "\n"), "a public key (recipient)"},
		"garbage line":   {append(append([]byte{}, x1.private...), "AGE-SECRET-KEY-1XYZ\n"...), "line 4"},
		"empty":          {[]byte("# none\n"), "no identities"},
		"bad pem":        {[]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"), "not an SSH private key"},
	} {
		_, err := ParseIdentities(tc.data, "key.txt")
		if !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "key.txt") {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error echoes the secret key", name)
		}
	}

	// The environment variable names the file when no path is given;
	// explicit paths win over it.
	p1, p2 := x1.keyFile(t), x2.keyFile(t)
	t.Setenv(IdentityFileEnv, p1)
	ids, err = LoadIdentities(nil)
	if err != nil || len(ids) != 1 || ids[0].Description().Recipient != x1.public {
		t.Fatalf("from env: %v %v", ids, err)
	}
	ids, err = LoadIdentities([]string{p2})
	if err != nil || len(ids) != 1 || ids[0].Description().Recipient != x2.public {
		t.Fatalf("explicit path: %v %v", ids, err)
	}
	t.Setenv(IdentityFileEnv, filepath.Join(t.TempDir(), "missing"))
	if _, err := LoadIdentities(nil); !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), IdentityFileEnv) {
		t.Fatalf("missing env file: %v", err)
	}
	t.Setenv(IdentityFileEnv, "")
	if ids, err := LoadIdentities(nil); err != nil || len(ids) != 0 {
		t.Fatalf("nothing given: %v %v", ids, err)
	}
}

// TestWrongIdentity: a member opened with foreign keys fails with a
// NoIdentityError naming the stanzas it was written to and the keys tried;
// with a record the header is known intact, without one the message says
// it may be damaged; with no identity at all it names the flag and the
// environment variable.
func TestWrongIdentity(t *testing.T) {
	x, ed, other, otherEd := x25519Key(t), ed25519Key(t), x25519Key(t), ed25519Key(t)
	member, rec := seal(t, testPlain(1000, 5), x, ed)
	wrong := append(append([]*Identity{}, other.id...), otherEd.id...)
	_, err := Open(member, wrong, &rec)
	var nie *NoIdentityError
	if !errors.Is(err, ErrNoIdentity) || !errors.As(err, &nie) {
		t.Fatalf("wrong keys: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"X25519 (anonymous)", "ssh-ed25519 key tag " + ed.rcpt.Description().Tag, "tried", other.rcpt.Description().Fingerprint, otherEd.rcpt.Description().Fingerprint} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if nie.MaybeDamaged || strings.Contains(msg, "damaged") {
		t.Errorf("with a matching record the header is not damaged: %q", msg)
	}
	if _, err := Open(member, wrong, nil); !errors.As(err, &nie) || !nie.MaybeDamaged {
		t.Errorf("without record: %v", err)
	}
	if _, err := Open(member, nil, &rec); !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), IdentityFileEnv) {
		t.Errorf("no identity: %v", err)
	}
	// The right key among wrong ones is found.
	if _, err := Open(member, append(wrong, ed.id...), &rec); err != nil {
		t.Errorf("right key last: %v", err)
	}
}
