package tapeformat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"archive/tar"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The label, the manifest and the file digests.

func (r *Reader) readLabel() error {
	start := r.off
	h, rec, err := r.readHeader()
	if err != nil {
		if err == io.EOF {
			return r.ferr(start, "", fmt.Errorf("%w: empty volume", ErrNotTapestream))
		}
		return err
	}
	if rec.Type != mtLabel || h.Size > maxLabelSize {
		if rec.Type == mtSegment && !r.labeled {
			// The label is missing: recoverLabel starts from this
			// member, whose header is read already.
			r.pendingHdr = &pendingHeader{h: h, rec: rec, start: start}
		}
		return r.ferr(start, h.Name, fmt.Errorf("%w: first member is not a label", ErrNotTapestream))
	}
	data := make([]byte, h.Size)
	if err := r.readData(data); err != nil {
		return r.ferr(start, h.Name, err)
	}
	if rec.Magic == recordV2 {
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != rec.SHA256 {
			return r.ferr(start, h.Name, fmt.Errorf("%w: label SHA-256", ErrChecksum))
		}
	}
	var l Label
	if err := json.Unmarshal(data, &l); err != nil {
		return r.ferr(start, h.Name, fmt.Errorf("%w: label: %v", ErrNotTapestream, err))
	}
	if l.FormatVersion < 1 || l.FormatVersion > FormatVersion || (l.FormatVersion >= 3) != (rec.Magic == recordV2) {
		return r.ferr(start, h.Name, fmt.Errorf("%w: unsupported format version %d (member record %q)", ErrNotTapestream, l.FormatVersion, rec.Magic))
	}
	if rec.Set != l.SetID {
		return r.ferr(start, h.Name, fmt.Errorf("%w: label set id mismatch", ErrNotTapestream))
	}
	if r.labeled {
		if l.SetID != r.label.SetID {
			return r.ferr(start, h.Name, fmt.Errorf("%w: set %q, expected %q", ErrSetMismatch, l.SetID, r.label.SetID))
		}
		r.vol = l.Volume
		return nil
	}
	c, err := codec.ParseCodec(l.Codec)
	if err != nil {
		return r.ferr(start, h.Name, err)
	}
	if _, err := NewDigest(l.Digest); err != nil {
		return r.ferr(start, h.Name, fmt.Errorf("%w: label: %v", ErrNotTapestream, err))
	}
	if e := l.Encryption; e != nil && (e.Scheme != EncryptionAge || l.FormatVersion < 3) {
		return r.ferr(start, h.Name, fmt.Errorf("%w: label: unsupported encryption scheme %q", ErrNotTapestream, e.Scheme))
	}
	l.fillTyped()
	r.setLabel(l, c)
	r.labelFull = true
	r.vol = max(l.Volume, 1)
	return nil
}

func (r *Reader) setLabel(l Label, c codec.Codec) {
	r.label, r.labeled, r.codec, r.version = l, true, c, l.FormatVersion
	r.enc = l.Encryption != nil
	r.tag = codec.SetTagOf(l.SetID)
}

// learnLabel takes the label's fields from a file-info's copy when the
// label member was lost.
func (r *Reader) learnLabel(l *Label) {
	if r.labelFull || l.SetID != r.label.SetID {
		return
	}
	c, err := codec.ParseCodec(l.Codec)
	if err != nil || c != r.codec || l.FormatVersion != r.version || (l.Encryption != nil) != r.enc ||
		l.Encryption != nil && l.Encryption.Scheme != EncryptionAge {
		return
	}
	nl := *l
	nl.Volume = 1
	r.label, r.labelFull = nl, true
}

// learnLabelFrom takes the label from a member record's file-info when the
// label member was lost (it is decoded only then).
func (r *Reader) learnLabelFrom(rec *memberRecord) {
	if r.labelFull || rec.info == nil || len(rec.info.Set) == 0 {
		return
	}
	if l, err := rec.info.label(); err == nil {
		r.learnLabel(l)
	}
}

// recoverLabel handles a damaged label of the first volume in salvage mode:
// it scans for the next member and takes the set id, codec and digest from
// its member record (the whole label, from format version 3 on, when the
// record carries a file-info). The blocks passed over are salvaged.
func (r *Reader) recoverLabel(cause error) bool {
	salvOff := r.off
	var salv []byte
	limit := r.off + r.opts.MaxMemberSize
	for r.off < limit {
		if p := r.pendingHdr; p != nil {
			r.pendingHdr = nil
			if r.adoptLabel(cause, p.h, p.rec, p.start, salvOff, nil) {
				return true
			}
			r.skip(padded(p.h.Size))
			continue
		}
		blk, _ := r.br.Peek(BlockSize)
		if len(blk) < BlockSize {
			return false
		}
		if !validHeaderBlock(blk) {
			salv = append(salv, blk...)
			r.skip(BlockSize)
			continue
		}
		start := r.off
		h, rec, err := r.readHeader()
		if err != nil {
			continue // its first block was skipped
		}
		if r.adoptLabel(cause, h, rec, start, salvOff, salv) {
			return true
		}
		r.skip(padded(h.Size))
	}
	return false
}

// adoptLabel takes the set's description from the segment header h when
// it has one, and makes it the next member to read (after the salvaged
// bytes before it).
func (r *Reader) adoptLabel(cause error, h *tar.Header, rec *memberRecord, start, salvOff int64, salv []byte) bool {
	c, err := codec.ParseCodec(rec.Codec)
	if err == nil {
		_, err = NewDigest(rec.Digest)
	}
	if rec.Type != mtSegment || err != nil || checkMemberName(h.Name, rec, c) != nil {
		return false
	}
	v := 3
	if rec.Magic == recordV1 {
		v = 2
		if rec.Digest == "" {
			v = 1
		}
	}
	l := Label{FormatVersion: v, SetID: rec.Set, Codec: rec.Codec, Digest: rec.Digest, Volume: 1}
	if rec.Age != nil {
		l.Encryption = &Encryption{Scheme: EncryptionAge} // to whom: from the first file-info
	}
	r.setLabel(l, c)
	r.learnLabelFrom(rec)
	if !r.labelFull && rec.Age != nil {
		r.peekSealedInfo(h, rec)
	} else if !r.labelFull && c.Kind != codec.None {
		// The whole label is in the file-info frame that starts the
		// member's data: read in place, so that Label is complete when
		// NewReader returns.
		r.growBuffer(codec.MaxInfoLen + 64)
		b, _ := r.br.Peek(int(min(h.Size, codec.MaxInfoLen+64)))
		r.learnInfoPeek(b)
	}
	r.pendingHdr = &pendingHeader{h: h, rec: rec, start: start}
	r.damage(salvOff, LabelName, fmt.Errorf("label unreadable (%v); the set's description taken from the next member", cause))
	if len(salv) > 0 && r.enc {
		r.memBuf = salv
		r.findAge(salv, salvOff)
	} else if len(salv) > 0 && c.Kind != codec.None {
		r.memBuf = salv
		r.mem, r.memPos, r.memRec, r.memName, r.memOff, r.memVol = salv, 0, nil, "", salvOff, r.vol
		r.memTorn, r.memFile, r.active = true, -1, true
	}
	return true
}

func (r *Reader) readManifest(start int64, h *tar.Header, rec *memberRecord) error {
	if h.Size > r.opts.MaxManifestSize {
		r.manRead = true
		return r.damage(start, h.Name, fmt.Errorf("%w: manifest of %d bytes", ErrMemberTooLarge, h.Size))
	}
	data := make([]byte, h.Size)
	if err := r.readData(data); err != nil {
		if r.vr != nil && errors.Is(err, ErrTruncated) {
			// The volume ends inside the manifest: the writer met the
			// end of the medium there and rewrote the manifest whole
			// on the next volume, as it does every member cut so.
			r.skip(1 << 62)
			if ok, nerr := r.nextVolume(); ok {
				return nerr
			}
			r.done = true
		}
		return r.damage(start, h.Name, err)
	}
	r.manRead = true
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != rec.SHA256 {
		return r.damage(start, h.Name, fmt.Errorf("%w: manifest SHA-256", ErrChecksum))
	}
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil || m.SetID != r.label.SetID {
		return r.damage(start, h.Name, fmt.Errorf("%w: manifest: %v", ErrNotTapestream, err))
	}
	for _, f := range m.Files {
		if ValidateName(f.Name) != nil || f.Index < 0 || f.Index > 1<<30 || f.Size < 0 {
			return r.damage(start, h.Name, fmt.Errorf("%w: manifest file %q", ErrBadName, f.Name))
		}
	}
	m.Info.fillTyped()
	r.manifest = m
	if r.enc {
		return r.unsealManifest(start, h.Name, m)
	}
	return nil
}

func (r *Reader) digestName() string {
	if r.label.Digest == DigestBLAKE3 {
		return "BLAKE3"
	}
	return "SHA-256"
}

// finalize closes the last file, identifies held chunks from the
// manifest, reports the files and tails never read, and checks sizes and
// digests against the manifest.
func (r *Reader) finalize() {
	r.finalized = true
	if r.manifest != nil {
		// Files known only from the manifest whose chunks were held:
		// they come last.
		for _, mf := range r.manifest.Files {
			// (an empty file whose members are lost is given back
			// whole from the manifest; the loss of its member is still
			// reported, with length 0)
			if r.files[mf.Index] == nil && (mf.Size == 0 ||
				slices.ContainsFunc(r.pend, func(p pendChunk) bool { return int(p.meta.FileIndex) == mf.Index })) {
				f := &fileState{hdr: FileHeader{Index: mf.Index, Name: mf.Name, Kind: mf.Kind, Size: mf.Size, ModTime: mf.ModTime,
					DBHeader: mf.DBHeader}, fromInfo: true, closeSize: -1}
				r.files[mf.Index] = f
				r.openFile(f)
				if mf.Size == 0 && !slices.ContainsFunc(r.pend, func(p pendChunk) bool { return int(p.meta.FileIndex) == mf.Index }) {
					r.loss(f, 0, 0, "the file's member is missing from the set (an empty file: given back from the manifest)")
				}
			}
		}
	}
	if r.open != nil {
		r.closeFile(r.open)
	}
	for _, p := range r.pend {
		r.unidentified(p)
	}
	r.pend, r.pendBytes = nil, 0
	if r.manifest == nil {
		if r.err == nil && r.opts.Strict {
			r.err = r.ferr(r.off, "", ErrNoManifest)
		}
		r.sortLosses()
		r.losses = append(r.losses, Loss{FileIndex: -1, Offset: -1, Length: -1,
			Reason: "manifest missing or damaged: files after the last one read, if any, are unknown, and file digests unchecked"})
		return
	}
	for _, mf := range r.manifest.Files {
		f := r.files[mf.Index]
		if f == nil {
			f = &fileState{hdr: FileHeader{Index: mf.Index, Name: mf.Name, Kind: mf.Kind, Size: mf.Size}}
			r.loss(f, 0, mf.Size, "file missing from the set")
			continue
		}
		if f.hdr.Name != mf.Name || f.hdr.Kind != mf.Kind {
			r.loss(f, 0, mf.Size, fmt.Sprintf("the manifest names file %d %q (%q), the set's headers %q (%q)", mf.Index, mf.Name, mf.Kind, f.hdr.Name, f.hdr.Kind))
			continue
		}
		switch cs := f.closeSize; {
		case cs < 0:
			// The end was unknown: the loss to the end gets its length.
			for i := range r.losses {
				if l := &r.losses[i]; l.FileIndex == mf.Index && l.Length < 0 {
					l.Length = mf.Size - l.Offset
					if l.Length <= 0 {
						r.losses = slices.Delete(r.losses, i, i+1)
					}
					break
				}
			}
		case cs != mf.Size:
			// Never trusted over the manifest: a size that disagrees
			// is reported, on the bytes between the two.
			r.loss(f, min(cs, mf.Size), max(cs, mf.Size)-min(cs, mf.Size),
				fmt.Sprintf("the set's headers say the file has %d bytes, the manifest %d", cs, mf.Size))
			continue
		}
		if mf.Digest() == "" && r.enc {
			// An encrypted set's digests are sealed: a sealed reader
			// has neither them nor the plaintext to check.
			continue
		}
		if f.sum != "" && f.sum != mf.Digest() {
			r.loss(f, 0, mf.Size, r.digestName()+" of the file does not match the manifest")
		} else if f.sum == "" && mf.Size > 0 && !slices.ContainsFunc(r.losses, func(l Loss) bool { return l.FileIndex == mf.Index }) {
			r.warn(r.off, "", mf.Name, "every chunk verified, but the file's digest could not be checked (chunks out of order)")
		}
	}
	r.sortLosses()
}

func (r *Reader) sortLosses() {
	slices.SortStableFunc(r.losses, func(a, b Loss) int {
		if a.FileIndex != b.FileIndex {
			return a.FileIndex - b.FileIndex
		}
		return int(a.Offset - b.Offset)
	})
}
