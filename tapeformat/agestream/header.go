package agestream

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
)

// Header is what an age header shows without any identity.
type Header struct {
	// Len is the header's length in bytes, through the newline after the
	// MAC; the 16-byte payload nonce follows, then chunk 0.
	Len int
	// Stanzas are the recipient stanzas, without their bodies (the wrapped
	// file key).
	Stanzas []Stanza
	raw     []byte
}

// PayloadOffset is where sealed chunk 0 starts in the member.
func (h *Header) PayloadOffset() int { return h.Len + NonceSize }

// Stanza is the public part of a recipient stanza.
type Stanza struct {
	Type string   `json:"type"`
	Args []string `json:"args,omitempty"`
}

// String names the stanza's recipient as far as the header tells: SSH
// stanzas carry a tag of their key (Description.Tag), native ones are
// anonymous.
func (s Stanza) String() string {
	switch {
	case (s.Type == "ssh-ed25519" || s.Type == "ssh-rsa") && len(s.Args) > 0:
		return s.Type + " key tag " + s.Args[0]
	case s.Type == "X25519" || s.Type == "mlkem768x25519":
		return s.Type + " (anonymous)"
	}
	return s.Type
}

// Matches reports whether the stanza can have been written for d: same
// type, and for SSH keys the same tag. Anonymous stanzas match every key
// of their type.
func (s Stanza) Matches(d Description) bool {
	if s.Type != d.Type {
		return false
	}
	if d.Tag != "" {
		return len(s.Args) > 0 && s.Args[0] == d.Tag
	}
	return true
}

// ParseHeader parses the age header at the start of member and checks
// what needs no key: syntax (age's own parser), that the bytes are the
// canonical encoding (so Len is exact), and that a nonce follows. Errors
// wrap ErrHeader.
func ParseHeader(member []byte) (*Header, error) {
	raw, err := age.ExtractHeader(bytes.NewReader(member))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	// ExtractHeader returns the header re-encoded. age's parser accepts only
	// the canonical encoding, so this is a prefix of the member; checking
	// it makes Len trustworthy however the parser evolves.
	if !bytes.HasPrefix(member, raw) {
		return nil, fmt.Errorf("%w: header is not in canonical encoding", ErrHeader)
	}
	if len(member) < len(raw)+NonceSize {
		return nil, fmt.Errorf("%w: member ends inside the payload nonce", ErrHeader)
	}
	h := &Header{Len: len(raw), raw: raw}
	// age exports no stanza parser, but hands every stanza to each identity
	// it tries: an identity that only records them reads the header with
	// age's parser. It fails as "incorrect identity", which is expected.
	var c stanzaCollector
	if _, err := age.DecryptHeader(raw, &c); err != nil && !errors.As(err, new(*age.NoIdentityMatchError)) {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	h.Stanzas = c.stanzas
	return h, nil
}

type stanzaCollector struct{ stanzas []Stanza }

func (c *stanzaCollector) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	c.stanzas = c.stanzas[:0]
	for _, s := range stanzas {
		c.stanzas = append(c.stanzas, Stanza{Type: s.Type, Args: append([]string(nil), s.Args...)})
	}
	return nil, age.ErrIncorrectIdentity
}

// NoIdentityError says that no identity opened a member's header. It wraps
// ErrNoIdentity.
type NoIdentityError struct {
	Stanzas []Stanza      // what the member was written to
	Tried   []Description // the identities tried
	// MaybeDamaged is set when no integrity record could show that the
	// header is intact: a damaged stanza body looks like a foreign key.
	MaybeDamaged bool
}

func (e *NoIdentityError) Error() string {
	var b strings.Builder
	b.WriteString("agestream: no identity matches the member's recipients: ")
	for i, s := range e.Stanzas {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.String())
	}
	if len(e.Tried) == 0 {
		b.WriteString("; no identity given (--identity or $" + IdentityFileEnv + ")")
	} else {
		b.WriteString("; tried ")
		for i, d := range e.Tried {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.String())
		}
	}
	if e.MaybeDamaged {
		b.WriteString(" (or the header is damaged)")
	}
	return b.String()
}

func (e *NoIdentityError) Is(target error) bool { return target == ErrNoIdentity }
