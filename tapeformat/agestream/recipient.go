package agestream

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// RecipientOptions says which recipients are acceptable.
type RecipientOptions struct {
	// AllowPostQuantum accepts hybrid ML-KEM-768+X25519 recipients
	// ("age1pq1..."). Off by default because age before v1.3 (Debian's
	// 1.1.1 among them) cannot decrypt such files, which would break the
	// promise that standard tools recover every set. age itself refuses to
	// mix them with classic recipients.
	AllowPostQuantum bool
}

// Description identifies a recipient without private material, for a set's
// label and for error messages.
type Description struct {
	// Type is the stanza type the recipient writes in every header:
	// "X25519", "ssh-ed25519", "ssh-rsa" or "mlkem768x25519".
	Type string `json:"type"`
	// Recipient is the public key as an operator writes it: "age1...",
	// "age1pq1..." or "ssh-ed25519 AAAA..." (without the comment).
	Recipient string `json:"recipient"`
	// Fingerprint is "SHA256:" and the unpadded base64 SHA-256 of the key:
	// for SSH keys exactly what `ssh-keygen -l -f KEY` prints; for age keys
	// of the recipient string (printf %s age1... | sha256sum, in base64).
	Fingerprint string `json:"fingerprint"`
	// Tag is, for SSH recipients, the key tag every stanza of theirs carries
	// in the clear (base64 of the first 4 bytes of the same SHA-256), so a
	// header can be matched to its recipients without any identity. Native
	// age stanzas are anonymous and have none.
	Tag string `json:"tag,omitempty"`
}

func (d Description) String() string {
	if d.Type == "ssh-ed25519" || d.Type == "ssh-rsa" {
		return d.Type + " " + d.Fingerprint
	}
	return d.Type + " " + d.Fingerprint + " (" + abbrev(d.Recipient) + ")"
}

// abbrev shortens a post-quantum key (1959 characters) for messages.
func abbrev(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:24] + "..." + s[len(s)-8:]
}

// Recipient is a public key that members are encrypted to.
type Recipient struct {
	r    age.Recipient
	desc Description
}

// Age returns the recipient for age.Encrypt. Pass it, not a wrapper: age
// enforces that post-quantum and classic recipients do not mix through an
// optional method a wrapper would hide.
func (r *Recipient) Age() age.Recipient { return r.r }

// Description returns the label-safe description of the recipient.
func (r *Recipient) Description() Description { return r.desc }

func (r *Recipient) String() string { return r.desc.String() }

// ParseRecipient parses one public key: an age X25519 key ("age1..."), an
// OpenSSH ed25519 or RSA (at least 2048 bits) public key line (a trailing
// comment is allowed), or, with opts.AllowPostQuantum, a hybrid key
// ("age1pq1..."). Plugin and tagged recipients are refused: they need
// programs or hardware that a restore host may not have.
func ParseRecipient(s string, opts RecipientOptions) (*Recipient, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "AGE-SECRET-KEY-"), strings.HasPrefix(s, "AGE-PLUGIN-"):
		// Never echo it: it is private key material in the wrong place.
		return nil, fmt.Errorf("%w: this is a private key; recipients are public keys (age-keygen -y prints the public key)", ErrRecipient)
	case strings.HasPrefix(s, "age1pq1"):
		if !opts.AllowPostQuantum {
			return nil, fmt.Errorf("%w: %s", ErrPostQuantum, abbrev(s))
		}
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
		}
		return &Recipient{r, ageDescription("mlkem768x25519", r.String())}, nil
	case strings.HasPrefix(s, "age1tag1"), strings.HasPrefix(s, "age1tagpq1"):
		return nil, fmt.Errorf("%w: tagged (hardware) recipient %s is not supported: use an X25519 or SSH key", ErrRecipient, abbrev(s))
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			// Plugin recipients ("age1NAME1...") land here too: they need a
			// program that a restore host may not have.
			return nil, fmt.Errorf("%w: not an age X25519 key (plugin recipients are not supported): %v", ErrRecipient, err)
		}
		return &Recipient{r, ageDescription("X25519", r.String())}, nil
	case strings.HasPrefix(s, "ssh-"):
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("%w: malformed SSH public key %q: %v", ErrRecipient, abbrev(s), err)
		}
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
		}
		return &Recipient{r, sshDescription(pk)}, nil
	}
	return nil, fmt.Errorf("%w: unknown recipient type %q (want age1..., ssh-ed25519 or ssh-rsa)", ErrRecipient, abbrev(s))
}

func ageDescription(typ, pub string) Description {
	h := sha256.Sum256([]byte(pub))
	return Description{Type: typ, Recipient: pub, Fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])}
}

func sshDescription(pk ssh.PublicKey) Description {
	h := sha256.Sum256(pk.Marshal())
	return Description{
		Type:        pk.Type(),
		Recipient:   strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pk)), "\n"),
		Fingerprint: ssh.FingerprintSHA256(pk),
		Tag:         base64.RawStdEncoding.EncodeToString(h[:4]),
	}
}

// Limits of a recipients file, as age's CLI has them.
const (
	maxRecipientsFile = 16 << 20
	maxRecipientLine  = 8 << 10
)

// ParseRecipients parses a recipients file: one public key per line (any
// ParseRecipient accepts), blank lines and lines starting with '#' ignored,
// the syntax of `age -R`. name is used in errors. Errors name the line but
// never quote it, since a private key pasted by mistake must not reach a
// log.
func ParseRecipients(r io.Reader, name string, opts RecipientOptions) ([]*Recipient, error) {
	lr := &io.LimitedReader{R: r, N: maxRecipientsFile + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), maxRecipientLine+2)
	var out []*Recipient
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%w: %s line %d: not UTF-8", ErrRecipient, name, n)
		}
		rc, err := ParseRecipient(line, opts)
		if err != nil {
			if strings.HasPrefix(line, "AGE-") {
				return nil, fmt.Errorf("%w: %s line %d: a private key in a recipients file", ErrRecipient, name, n)
			}
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		out = append(out, rc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRecipient, name, err)
	}
	if lr.N == 0 {
		return nil, fmt.Errorf("%w: %s: recipients file over %d bytes", ErrRecipient, name, maxRecipientsFile)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no recipients", ErrRecipient, name)
	}
	return out, nil
}

// ReadRecipientsFile parses the recipients file at path.
func ReadRecipientsFile(path string, opts RecipientOptions) ([]*Recipient, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	defer f.Close()
	return ParseRecipients(f, path, opts)
}

// Describe returns the descriptions of recipients, in order, for a label.
func Describe(recipients []*Recipient) []Description {
	out := make([]Description, len(recipients))
	for i, r := range recipients {
		out[i] = r.desc
	}
	return out
}
