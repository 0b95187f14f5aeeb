package tapeformat

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tapestream/tapestream/tapeformat/codec"
)

// Member record encoding (FORMAT.md, "Member record"). A version 2 record
// ends with its own checksum, as the last key:
//
//	{"tapestream":"2",...,"crc":"1a2b3c4d"}
//
// crc is the CRC-32C, 8 lowercase hex digits, of every byte of the JSON
// text before `,"crc":`. A record that does not end so is rejected
// whole, so no byte of it is trusted unchecked.

const crcSuffixLen = len(`,"crc":"00000000"}`)

// encodeRecord marshals rec as a version 2 record with its checksum.
func encodeRecord(rec *memberRecord) ([]byte, error) {
	rec.Magic = recordV2
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	js = js[:len(js)-1] // the closing brace
	return fmt.Appendf(js, `,"crc":"%08x"}`, codec.Checksum(js)), nil
}

// decodeRecord parses a pax comment as a member record: version 2 with a
// valid checksum, or version 1 (format versions 1 and 2, no checksum) when
// v1 is allowed.
func decodeRecord(s string, v1 bool) (*memberRecord, error) {
	rec := new(memberRecord)
	if err := json.Unmarshal([]byte(s), rec); err != nil {
		return nil, fmt.Errorf("%w: member record: %v", ErrNotTapestream, err)
	}
	switch rec.Magic {
	case recordV1:
		if !v1 {
			return nil, fmt.Errorf("%w: member record version 1 in a set of format version 3", ErrNotTapestream)
		}
		return rec, nil
	case recordV2:
		n := len(s) - crcSuffixLen
		if n < 1 || s[n:n+8] != `,"crc":"` || s[len(s)-2:] != `"}` {
			return nil, fmt.Errorf("%w: member record without its checksum", ErrChecksum)
		}
		want, err := strconv.ParseUint(s[n+8:len(s)-2], 16, 32)
		if err != nil || len(s[n+8:len(s)-2]) != 8 || uint32(want) != codec.Checksum([]byte(s[:n])) {
			return nil, fmt.Errorf("%w: member record", ErrChecksum)
		}
		if len(rec.Info) > 0 {
			rec.info = new(fileInfoLazy)
			if err := json.Unmarshal(rec.Info, rec.info); err != nil {
				return nil, fmt.Errorf("%w: file-info: %v", ErrNotTapestream, err)
			}
			if err := rec.info.check(rec); err != nil {
				return nil, err
			}
		}
		return rec, nil
	}
	return nil, fmt.Errorf("%w: member record version %q", ErrNotTapestream, rec.Magic)
}

// check validates a file-info record against the member record carrying
// it (the record's checksum covers both; the label part is checked when
// it is decoded, by learnLabel).
func (fi *fileInfoLazy) check(rec *memberRecord) error {
	f := &fi.File
	if f.Index != rec.File || f.Name != rec.Name || f.Kind != rec.Kind {
		return fmt.Errorf("%w: file-info does not match its member record", ErrNotTapestream)
	}
	return validFileInfo(f)
}

// label decodes the file-info's copy of the label.
func (fi *fileInfoLazy) label() (*Label, error) {
	l := new(Label)
	if err := json.Unmarshal(fi.Set, l); err != nil {
		return nil, fmt.Errorf("%w: file-info label: %v", ErrNotTapestream, err)
	}
	return l, nil
}

// validFileInfo checks what a file-info brings into the reader.
func validFileInfo(f *fileInfoRecord) error {
	if ValidateName(f.Name) != nil || f.Index < 0 || f.Index > 1<<30 || f.Size < -1 || len(f.DBHeader) > MaxDBHeader {
		return fmt.Errorf("%w: file-info of %q", ErrBadName, f.Name)
	}
	if !validKind(f.Kind) {
		return fmt.Errorf("%w: file-info kind %q", ErrNotTapestream, f.Kind)
	}
	return nil
}

// parseInfoFrame decodes the description carried by a file-info frame.
func parseInfoFrame(b []byte) (*fileInfo, error) {
	fi := new(fileInfo)
	if err := json.Unmarshal(b, fi); err != nil {
		return nil, fmt.Errorf("%w: file-info: %v", ErrNotTapestream, err)
	}
	if err := validFileInfo(&fi.File); err != nil {
		return nil, err
	}
	return fi, nil
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
