package agestream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// IdentityFileEnv names the environment variable that holds the path of an
// identity file, for commands run without --identity (cron jobs, restore
// scripts). It names a file rather than holding the key so that the key
// never appears in a process listing or an environment dump.
const IdentityFileEnv = "TAPESTREAM_AGE_IDENTITY_FILE"

// Identity is a private key that opens members, with the description of
// its public half (for messages: "tried ssh-ed25519 SHA256:...").
type Identity struct {
	id   age.Identity
	desc Description
}

// Age returns the identity for age.DecryptHeader.
func (i *Identity) Age() age.Identity { return i.id }

// Description describes the public key of the identity.
func (i *Identity) Description() Description { return i.desc }

func (i *Identity) String() string { return i.desc.String() }

const maxIdentityFile = 16 << 20

// ParseIdentities parses an identity file, as `age -d -i` reads it: either
// an age identity file (one "AGE-SECRET-KEY-1..." or, for post-quantum
// sets, "AGE-SECRET-KEY-PQ-1..." per line; blank and '#' lines ignored) or
// one unencrypted OpenSSH ed25519 or RSA private key (PEM). Passphrase
// protected keys are refused: a restore must not stop at a prompt, and the
// key can be decrypted into a file kept offline instead. name is used in
// errors, which never quote the file's contents.
func ParseIdentities(data []byte, name string) ([]*Identity, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return parseSSHIdentity(trimmed, name)
	case bytes.HasPrefix(trimmed, []byte("age-encryption.org/")):
		return nil, fmt.Errorf("%w: %s is a passphrase-encrypted identity file: decrypt it first (age -d -o KEYFILE %s)", ErrIdentity, name, name)
	}
	var out []*Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ids, err := age.ParseIdentities(strings.NewReader(line))
		if err != nil {
			if strings.HasPrefix(line, "age1") || strings.HasPrefix(line, "ssh-") {
				return nil, fmt.Errorf("%w: %s line %d: a public key (recipient) in an identity file", ErrIdentity, name, n)
			}
			// age's message never quotes the line either; it numbers the
			// one line it was given.
			msg := strings.TrimPrefix(err.Error(), "error at line 1: ")
			return nil, fmt.Errorf("%w: %s line %d: %s (want AGE-SECRET-KEY-1... lines or one OpenSSH private key)", ErrIdentity, name, n, msg)
		}
		for _, id := range ids {
			var d Description
			switch k := id.(type) {
			case *age.X25519Identity:
				d = ageDescription("X25519", k.Recipient().String())
			case *age.HybridIdentity:
				d = ageDescription("mlkem768x25519", k.Recipient().String())
			default:
				return nil, fmt.Errorf("%w: %s line %d: unsupported identity type %T", ErrIdentity, name, n, id)
			}
			out = append(out, &Identity{id, d})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no identities", ErrIdentity, name)
	}
	return out, nil
}

func parseSSHIdentity(pem []byte, name string) ([]*Identity, error) {
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("%w: %s is a passphrase-protected SSH key: use an unencrypted copy kept offline (ssh-keygen -p -N '' -f COPY) or an age key", ErrIdentity, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not an SSH private key: %v", ErrIdentity, name, err)
	}
	id, err := agessh.ParseIdentity(pem)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, name, err)
	}
	return []*Identity{{id, sshDescription(signer.PublicKey())}}, nil
}

// ReadIdentityFile parses the identity file at path.
func ReadIdentityFile(path string) ([]*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, path, err)
	}
	if len(data) > maxIdentityFile {
		return nil, fmt.Errorf("%w: %s: over %d bytes", ErrIdentity, path, maxIdentityFile)
	}
	return ParseIdentities(data, path)
}

// LoadIdentities reads the identity files at paths (the --identity flags),
// or, when there are none, the file named by $TAPESTREAM_AGE_IDENTITY_FILE.
// With neither it returns no identities and no error: reading an encrypted
// set then fails with a NoIdentityError that names its recipients, while
// `verify` can still check what needs no key.
func LoadIdentities(paths []string) ([]*Identity, error) {
	fromEnv := false
	if len(paths) == 0 {
		if p := os.Getenv(IdentityFileEnv); p != "" {
			paths, fromEnv = []string{p}, true
		}
	}
	var out []*Identity
	for _, p := range paths {
		ids, err := ReadIdentityFile(p)
		if err != nil {
			if fromEnv {
				return nil, fmt.Errorf("%w (named by $%s)", err, IdentityFileEnv)
			}
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}
