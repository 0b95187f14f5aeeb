// Package agestream encrypts a backup set member's data as one standard age
// file (age-encryption.org/v1, written by filippo.io/age) and reads it back
// chunk by chunk, so that encrypted sets keep the damage tolerance of plain
// ones: a damaged 64 KiB chunk costs its own plaintext and nothing else.
//
// In a set, each compressed segment member's data (its units, see
// tapeformat/FORMAT.md) is the plaintext of one age file; the tar framing,
// the member records and the label stay plain. An operator recovers a file
// with standard tools alone:
//
//	tar -xf SET
//	for p in databases/Mailbox1.edb.zst.part*; do age -d -i KEY "$p"; done | zstd -d > Mailbox1.edb
//
// # Byte layout of a member (one age file)
//
//	offset                       bytes
//	0        "age-encryption.org/v1\n"                         header, text
//	         "-> X25519 <ephemeral share, base64>\n"            one stanza per
//	         "<wrapped file key, base64>\n"                      recipient
//	         "-> ssh-ed25519 <key tag> <share>\n<body>\n"         (body lines of
//	         "-> ssh-rsa <key tag>\n<body, 64 columns>\n<...>\n"  64 columns)
//	         "--- <HMAC-SHA-256 of the lines above, base64>\n"  header MAC
//	Len      nonce, 16 random bytes                          payload key =
//	                                                         HKDF-SHA-256(file key,
//	                                                         salt=nonce, "payload")
//	Len+16   sealed chunk 0: ChaCha20-Poly1305(plaintext[0, 64 KiB)) || tag(16)
//	  +65552 sealed chunk 1: plaintext[64 KiB, 128 KiB) || tag
//	  ...
//	         sealed chunk n-1: the rest, 1..65536 bytes (0 only if the
//	                           whole plaintext is empty) || tag
//
//	chunk i nonce (12 bytes) = 00 00 00 || uint64 big-endian i || flag,
//	                           flag = 01 for chunk n-1, else 00
//	n    = max(1, ceil(P / 65536))         for a plaintext of P bytes
//	size = Len + 16 + P + 16 n             (SealedSize)
//
// The file key (16 random bytes per member) is wrapped once per recipient:
// X25519 and mlkem768x25519 stanzas are anonymous; ssh-ed25519 and ssh-rsa
// stanzas carry a 4-byte tag of the key (Description.Tag), so the header
// tells which SSH keys a member was written to, without any identity.
//
// # Reading
//
// Sealed chunk i sits at a fixed offset and authenticates under its own
// index and last-chunk flag, so Stream.DecryptChunk opens any chunk alone:
// a damaged chunk fails (ErrAuth) and its neighbours still open; a chunk
// spliced from another member or set, moved, or duplicated never
// authenticates; a member cut short is detected because its last chunk
// lacks the flag (ErrTruncated). A damaged header (or nonce) loses the
// member (ErrHeader): there is one file key per member and no other copy.
// Stream.Decrypt returns the whole plaintext with zeros in place of the
// lost ranges and the exact list of those ranges (Loss).
//
// # Integrity without the identity
//
// Record, carried in the member record, holds the plaintext and file
// sizes, the CRC-32C of the header and nonce, and one CRC-32C per sealed
// chunk. Verify checks a member against it without any key: every byte of
// ciphertext is covered, so `verify` without the identity finds the same
// damage as with it (but not forgery, which only the key can show). With
// the record, Open also tells a damaged header from a wrong key, and knows
// how much plaintext a cut member lost.
//
// # Keys
//
// Recipients (public, on the backup host): age X25519 keys ("age1..."),
// OpenSSH ed25519 and RSA public keys, recipients files of those (one per
// line, '#' comments), and post-quantum hybrid keys ("age1pq1...") only
// with RecipientOptions.AllowPostQuantum: Debian's age 1.1.1 cannot
// decrypt those. Identities (private, for restore and deep verify): age
// identity files and unencrypted OpenSSH private keys, given by path or
// by the environment variable TAPESTREAM_AGE_IDENTITY_FILE
// (IdentityFileEnv).
package agestream
