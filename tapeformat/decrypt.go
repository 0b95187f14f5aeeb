package tapeformat

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tapestream/tapestream/tapeformat/agestream"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Encrypted sets on the reading side (FORMAT.md 5.3). A segment's data is
// an age file. With an identity the Reader opens it, decrypts its chunks
// on up to Workers goroutines in the buffer it was read into, and parses
// the plaintext as it would a plain member's data, a lost ciphertext
// chunk being a hole in it: the units the hole overlaps are lost, the
// others delivered. Without one (sealed) it checks the member's
// ciphertext against the age record in its member record and accounts
// for the units by the layout the record gives, delivering nothing.

// hole is a lost plaintext range of the member being parsed.
type hole struct {
	off, end int
	at       int64 // volume offset of the first ciphertext chunk concerned
	err      error
	tear     bool // the member is cut here at the end of a volume (not damage)
}

// ageAt is an age file found in a damaged region (its member header lost).
type ageAt struct {
	data []byte
	off  int64 // volume offset
}

// ageMagic starts every age file.
var ageMagic = []byte("age-encryption.org/v1\n")

// KeyError says that an encrypted set cannot be read: no identity was
// given, or none of those given opens its members. It names the set and
// the recipients it was written to. errors.Is(err, agestream.ErrNoIdentity)
// holds.
type KeyError struct {
	SetID      string
	Encryption *Encryption // from the label (recipients unknown if it was lost)
	// Err is the *agestream.NoIdentityError of the member that none of
	// the identities opened; nil when no identity was given.
	Err error
}

func (e *KeyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tapeformat: set %s is encrypted (age) to %s", e.SetID, e.Encryption.RecipientList())
	var ni *agestream.NoIdentityError
	switch {
	case errors.As(e.Err, &ni) && len(ni.Tried) > 0:
		b.WriteString("; none of the identities given opens it (tried ")
		for i, d := range ni.Tried {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.String())
		}
		b.WriteString(")")
	default:
		b.WriteString("; no identity given (--identity FILE or $" + agestream.IdentityFileEnv + ")")
	}
	if ni != nil && (e.Encryption == nil || len(e.Encryption.Recipients) == 0) {
		b.WriteString("; its members' recipient stanzas: ")
		for i, s := range ni.Stanzas {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.String())
		}
	}
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

func (e *KeyError) Is(target error) bool { return target == agestream.ErrNoIdentity }

// Sealed reports whether the set is encrypted and read without an
// identity: the Reader checks its structure and every byte of its
// ciphertext (against the age records of the member records), announces
// its files and reports what is lost, but delivers no chunk (NextChunk
// fails with a *KeyError) and checks no digest.
func (r *Reader) Sealed() bool { return r.enc && len(r.opts.Identities) == 0 }

// RequireIdentity returns a *KeyError naming the set and its recipients
// if the set is encrypted and the Reader has no identity: a restore calls
// it before it writes anything.
func (r *Reader) RequireIdentity() error {
	if !r.Sealed() {
		return nil
	}
	return &KeyError{SetID: r.label.SetID, Encryption: r.label.Encryption}
}

func (r *Reader) keyError(err error) error {
	return &KeyError{SetID: r.label.SetID, Encryption: r.label.Encryption, Err: err}
}

// checkLayout validates an encrypted segment's record: its age record
// and the layout of its plaintext must add up to the member it describes.
func (rec *memberRecord) checkLayout(c codec.Codec) error {
	bad := func(what string, args ...any) error {
		return fmt.Errorf("%w: encrypted member record: %s", ErrHeader, fmt.Sprintf(what, args...))
	}
	a := rec.Age
	if a.Size != rec.Stored || a.Plain < 0 {
		return bad("age record of %d bytes (%d plaintext) for %d stored", a.Size, a.Plain, rec.Stored)
	}
	if len(rec.Units) != rec.Chunks || rec.Table != nil {
		return bad("%d units for %d chunks", len(rec.Units), rec.Chunks)
	}
	if rec.InfoLen < 0 || rec.InfoLen > codec.MaxInfoLen+64 || rec.InfoLen > 0 && (rec.Part != 1 || c.Kind == codec.None) {
		return bad("file-info frame of %d bytes", rec.InfoLen)
	}
	plain, n := int64(rec.InfoLen), int64(0)
	for _, u := range rec.Units {
		if u[1] > codec.MaxFrameSize || c.Kind == codec.None && u[0] != u[1] || c.Kind != codec.None && u[0] == 0 {
			return bad("unit of %d bytes for a chunk of %d", u[0], u[1])
		}
		plain += int64(u[0])
		n += int64(u[1])
	}
	if plain != a.Plain || n != rec.Length {
		return bad("units of %d bytes (%d uncompressed) in %d bytes of plaintext (%d)", plain, n, a.Plain, rec.Length)
	}
	return nil
}

// sealedSegment reads an encrypted segment member: it opens (or, sealed,
// checks) its data, learns its file (with the header snapshot from the
// file-info frame in the plaintext) and makes it the member being parsed.
func (r *Reader) sealedSegment(start int64, h *tar.Header, rec *memberRecord) error {
	if rec.Age == nil || !r.enc {
		what := "an encrypted member in a plain set"
		if rec.Age == nil {
			what = "a plain member in an encrypted set"
		}
		if err := r.damage(start, h.Name, fmt.Errorf("%w: %s", ErrHeader, what)); err != nil {
			return err
		}
		r.skip(padded(h.Size))
		return nil
	}
	if err := rec.checkLayout(r.codec); err != nil {
		if err := r.damage(start, h.Name, err); err != nil {
			return err
		}
		r.skip(padded(h.Size))
		return nil
	}
	r.learnLabelFrom(rec)
	rewrite := r.torn == [2]int{rec.File, rec.Part}
	r.torn = [2]int{-1, -1}
	dataAt := r.off
	data, rerr := r.readMember(h.Size)
	torn := rerr != nil
	r.mem, r.memRec, r.memName, r.memOff, r.memVol, r.memPos, r.memTable, r.memCOff = nil, rec, h.Name, dataAt, r.vol, 0, 0, rec.Offset
	r.memTorn, r.memFile, r.memDup, r.memLate, r.memRewrite = torn, rec.File, false, false, rewrite
	r.holes, r.holeSaid = r.holes[:0], 0
	r.starts = r.starts[:0]
	p := 0
	if rec.InfoLen > 0 {
		r.starts = append(r.starts, 0)
		p = rec.InfoLen
	}
	for _, u := range rec.Units {
		r.starts = append(r.starts, p)
		p += int(u[0])
	}
	var fi *fileInfoRecord
	if rec.info != nil {
		c := rec.info.File
		fi = &c
	}
	lost := false
	if r.Sealed() {
		hd, losses, err := agestream.Verify(data, rec.Age)
		if err != nil {
			lost = true
			if !torn {
				if err := r.damage(dataAt, h.Name, fmt.Errorf("%w: the member's encrypted data: %w", ErrDamaged, err)); err != nil {
					return err
				}
			}
		} else {
			if err := r.addHoles(losses, dataAt+int64(hd.PayloadOffset()), torn, 0); err != nil {
				return err
			}
		}
	} else {
		s, err := agestream.Open(data, r.opts.Identities, rec.Age)
		switch {
		case errors.Is(err, agestream.ErrNoIdentity):
			// The record's checksum of the header matched: the header is
			// intact, the identities are not the set's.
			return r.keyError(err)
		case err != nil:
			lost = true
			if !torn {
				if err := r.damage(dataAt, h.Name, fmt.Errorf("%w: the member's encrypted data: %w", ErrDamaged, err)); err != nil {
					return err
				}
			}
		default:
			// data is the member buffer, read again only for the next member.
			plain, losses := s.DecryptInPlace(r.opts.Workers)
			r.mem = plain
			if err := r.addHoles(losses, dataAt+int64(s.Header().PayloadOffset()), torn, len(plain)); err != nil {
				return err
			}
			fi = r.frameInfo(rec, fi)
		}
	}
	f, err := r.learnRecordInfo(start, h.Name, rec, fi)
	if err != nil {
		return err
	}
	r.active = f != nil && !lost
	if torn {
		// A torn member at the end of a volume (rewritten whole on the
		// next), or a truncated set: the complete units read are used.
		r.torn = [2]int{rec.File, rec.Part}
		if r.vr == nil {
			if err := r.damage(r.memOff, h.Name, rerr); err != nil {
				return err
			}
		}
	}
	return nil
}

// frameInfo returns the file-info of the frame at the start of the
// plaintext (a first segment's), which has the header snapshot the
// record leaves out, or else the record's (with the sealed snapshot of
// codec none opened). It is known before the file is announced.
func (r *Reader) frameInfo(rec *memberRecord, fi *fileInfoRecord) *fileInfoRecord {
	if n := rec.InfoLen; n > 0 && len(r.mem) >= n && r.holeIn(0, n) == nil {
		if info, _, err := codec.ParseInfo(r.mem[:n]); err == nil {
			if f, err := parseInfoFrame(info); err == nil && f.Set.SetID == r.label.SetID && f.File.Index == rec.File && f.File.Name == rec.Name {
				r.learnLabel(&f.Set)
				return &f.File
			}
		}
	}
	if fi != nil && fi.Sealed != "" && len(fi.DBHeader) == 0 {
		var si sealedInfo
		if err := unsealJSON(fi.Sealed, r.opts.Identities, &si); err != nil || len(si.DBHeader) > MaxDBHeader {
			// The record's checksum held: written so, or forged.
			r.damage(r.memOff, r.memName, fmt.Errorf("%w: the file-info's sealed header snapshot: %v", ErrDamaged, err))
		} else {
			fi.DBHeader = si.DBHeader
		}
	}
	return fi
}

// addHoles records the plaintext ranges a member lost; po is the volume
// offset of its first sealed chunk. A loss of unknown length runs to the
// end of the plaintext (plain bytes long).
func (r *Reader) addHoles(losses []agestream.Loss, po int64, torn bool, plain int) error {
	for _, l := range losses {
		if l.Len == 0 {
			// Bytes after the stream's end: nothing lost.
			if err := r.damage(po+int64(l.Chunk)*agestream.SealedChunkSize, r.memName, fmt.Errorf("%w: %w", ErrDamaged, l.Err)); err != nil {
				return err
			}
			continue
		}
		end := int64(1) << 62
		if l.Len > 0 {
			end = l.Off + l.Len
		} else if plain > 0 {
			end = int64(max(plain, int(l.Off)+1))
		}
		r.holes = append(r.holes, hole{
			off: int(l.Off), end: int(min(end, 1<<40)), at: po + int64(l.Chunk)*agestream.SealedChunkSize,
			err:  fmt.Errorf("%w: encrypted data: plaintext [%d,%d) of the member (age chunks %d..%d): %w", ErrDamaged, l.Off, end, l.Chunk, l.Chunk+l.Chunks-1, l.Err),
			tear: torn && errors.Is(l.Err, agestream.ErrTruncated),
		})
	}
	return nil
}

// holeIn returns the first hole overlapping [a,b), or nil.
func (r *Reader) holeIn(a, b int) *hole {
	for i := range r.holes {
		if h := &r.holes[i]; h.off < b && a < h.end {
			return h
		}
	}
	return nil
}

// reportHoles reports the holes up to hl (in order, each once).
func (r *Reader) reportHoles(hl *hole) error {
	for r.holeSaid < len(r.holes) && (hl == nil || r.holes[r.holeSaid].off <= hl.off) {
		h := &r.holes[r.holeSaid]
		r.holeSaid++
		if h.tear {
			continue
		}
		if err := r.damage(h.at, r.memName, h.err); err != nil {
			return err
		}
	}
	return nil
}

// skipHole moves past a hole at the member's position: if the unit (or
// file-info frame) there overlaps one, the hole is reported and parsing
// resumes at the first unit after it (by the record's layout, or found
// by its record in a salvaged region). It reports whether it moved.
func (r *Reader) skipHole() (bool, error) {
	end := r.memPos + 1
	if k, ok := slices.BinarySearch(r.starts, r.memPos); ok && r.memRec != nil {
		end = len(r.mem)
		if k+1 < len(r.starts) {
			end = r.starts[k+1]
		}
	} else if h, err := codec.ParseHeader(r.mem[r.memPos:]); err == nil && h.UnitLen <= len(r.mem)-r.memPos {
		end = r.memPos + h.UnitLen
	}
	hl := r.holeIn(r.memPos, end)
	if hl == nil {
		return false, nil
	}
	if err := r.reportHoles(hl); err != nil {
		return true, err
	}
	next := max(hl.end, r.memPos+1)
	switch {
	case next >= len(r.mem):
		next = len(r.mem)
	case r.memRec != nil:
		k, _ := slices.BinarySearch(r.starts, next)
		next = len(r.mem)
		if k < len(r.starts) {
			next = r.starts[k]
		}
	default:
		if i := codec.FindUnit(r.mem[next:]); i >= 0 {
			next += i
		} else {
			next = len(r.mem)
		}
	}
	r.memPos = min(next, len(r.mem))
	return true, nil
}

// nextSealed accounts for the next unit of a member read sealed: by the
// record's layout, each unit whose ciphertext is intact is covered (none
// is delivered); those a hole overlaps are lost.
func (r *Reader) nextSealed() (codec.ChunkMeta, bool, error) {
	rec := r.memRec
	unit0 := len(r.starts) - len(rec.Units)
	for r.memTable < len(rec.Units) {
		k := r.memTable
		p, n, length := r.starts[unit0+k], int(rec.Units[k][0]), rec.Units[k][1]
		meta := codec.ChunkMeta{FileIndex: uint32(rec.File), Offset: r.memCOff, Length: length}
		if hl := r.holeIn(p, p+n); hl != nil && hl.tear {
			break // the rest is on the next volume, or lost with the set's end
		}
		r.memTable++
		r.memCOff += int64(length)
		if hl := r.holeIn(p, p+n); hl != nil {
			if err := r.reportHoles(hl); err != nil {
				return meta, false, err
			}
			continue
		}
		return meta, true, nil
	}
	r.active = false
	return codec.ChunkMeta{}, false, r.reportHoles(nil)
}

// nextSealedRaw delivers the next chunk of an encrypted member of codec
// none: the record's layout places the chunks in the plaintext, age
// authenticated them, and their CRC-32C (not in the clear, where it would
// tell something of the contents) is computed here.
func (r *Reader) nextSealedRaw() (codec.ChunkMeta, bool, error) {
	rec := r.memRec
	for r.memTable < len(rec.Units) {
		k := r.memTable
		p, n := r.starts[k], int(rec.Units[k][1])
		meta := codec.ChunkMeta{FileIndex: uint32(rec.File), Offset: r.memCOff, Length: uint32(n)}
		hl := r.holeIn(p, p+n)
		if hl != nil && hl.tear || p+n > len(r.mem) {
			break
		}
		r.memTable++
		r.memCOff += int64(n)
		r.memPos = p + n
		if hl != nil {
			if err := r.reportHoles(hl); err != nil {
				return meta, false, err
			}
			continue
		}
		meta.CRC32C = codec.Checksum(r.mem[p : p+n])
		if r.out == nil {
			r.out = r.getOut()
		}
		r.out = append(r.out[:0], r.mem[p:p+n]...)
		return meta, true, nil
	}
	r.memPos = len(r.mem)
	r.active = false
	return codec.ChunkMeta{}, false, r.reportHoles(nil)
}

// findAge lists the age files in a damaged region (the data of members
// whose headers were lost): each starts on a 512-byte block with age's
// magic and runs to the next one or the region's end.
func (r *Reader) findAge(region []byte, off int64) {
	r.salvAge = r.salvAge[:0]
	if r.Sealed() {
		return // nothing in it can be checked without its record
	}
	var starts []int
	for p := 0; p+len(ageMagic) <= len(region); p += BlockSize {
		if bytes.HasPrefix(region[p:], ageMagic) {
			starts = append(starts, p)
		}
	}
	for i, p := range starts {
		end := len(region)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		r.salvAge = append(r.salvAge, ageAt{data: region[p:end], off: off + int64(p)})
	}
}

// openSalvaged opens the next age file of a damaged region without its
// record (agestream.Salvage) and makes its plaintext the region being
// parsed: its units say which file and range they are.
func (r *Reader) openSalvaged() error {
	a := r.salvAge[0]
	r.salvAge = r.salvAge[1:]
	plain, losses, _, err := agestream.Salvage(a.data, r.opts.Identities)
	if err != nil {
		// Without a record a damaged stanza looks like a foreign key: an
		// intact member will tell which it is.
		return r.damage(a.off, "", fmt.Errorf("%w: encrypted data in a damaged region: %w", ErrDamaged, err))
	}
	hd, _ := agestream.ParseHeader(a.data)
	r.mem, r.memPos, r.memRec, r.memName, r.memOff, r.memVol = plain, 0, nil, "", a.off, r.vol
	r.memTorn, r.memFile, r.memDup, r.memLate, r.memRewrite = true, -1, false, false, false
	r.holes, r.holeSaid, r.starts = r.holes[:0], 0, r.starts[:0]
	r.active = true
	return r.addHoles(losses, a.off+int64(hd.PayloadOffset()), false, len(plain))
}

// peekSealedInfo learns the label from the file-info frame at the start
// of an encrypted member whose data is next in the read buffer (the label
// member was lost): its first chunks are decrypted in place.
func (r *Reader) peekSealedInfo(h *tar.Header, rec *memberRecord) {
	if r.Sealed() || rec.Age == nil || rec.InfoLen == 0 {
		return
	}
	hd := 16 << 10 // room for the age header: a few stanzas
	n := int(min(h.Size, int64(hd+agestream.NonceSize+rec.InfoLen+2*agestream.SealedChunkSize)))
	r.growBuffer(n)
	b, _ := r.br.Peek(n)
	s, err := agestream.Open(b, r.opts.Identities, rec.Age)
	if err != nil {
		return
	}
	var plain []byte
	for i := 0; i < s.Chunks() && len(plain) < rec.InfoLen; i++ {
		if plain, err = s.DecryptChunk(plain, i); err != nil {
			return
		}
	}
	if len(plain) >= rec.InfoLen {
		r.learnInfoPeek(plain[:rec.InfoLen])
	}
}

// unsealManifest opens the sealed part of an encrypted set's manifest and
// puts the digests and header snapshots back in its files.
func (r *Reader) unsealManifest(start int64, name string, m *Manifest) error {
	if m.Sealed == "" {
		return r.damage(start, name, fmt.Errorf("%w: the manifest of an encrypted set has no sealed part", ErrNotTapestream))
	}
	if r.Sealed() {
		return nil
	}
	var sm sealedManifest
	if err := unsealJSON(m.Sealed, r.opts.Identities, &sm); err != nil {
		if errors.Is(err, agestream.ErrNoIdentity) {
			return r.keyError(err)
		}
		return r.damage(start, name, fmt.Errorf("manifest: its sealed part: %w", err))
	}
	at := map[int]int{}
	for i, f := range m.Files {
		at[f.Index] = i
	}
	for _, sf := range sm.Files {
		i, ok := at[sf.Index]
		if !ok || len(sf.DBHeader) > MaxDBHeader || len(sf.BLAKE3) != 2*blake3Size {
			return r.damage(start, name, fmt.Errorf("%w: manifest: sealed entry of file %d", ErrNotTapestream, sf.Index))
		}
		m.Files[i].BLAKE3, m.Files[i].DBHeader = sf.BLAKE3, sf.DBHeader
	}
	for _, f := range m.Files {
		if f.BLAKE3 == "" {
			// Every file's digest is sealed: one missing would go unchecked.
			return r.damage(start, name, fmt.Errorf("%w: manifest: no sealed digest of file %d %q", ErrNotTapestream, f.Index, f.Name))
		}
	}
	return nil
}
