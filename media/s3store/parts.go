package s3store

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
)

// PartSchedule is the part size as a function of the part number: First
// for parts 1..Every, doubling every Every parts, capped at Max. A stream of
// unknown length thus starts with small parts (little memory, early
// parallelism) and still fits TargetObjectSize in MaxParts parts.
type PartSchedule struct {
	First int64 `json:"first"`
	Max   int64 `json:"max"`
	Every int   `json:"every"`
}

// Size is the size of part number part (1-based).
func (s PartSchedule) Size(part int32) int64 { return s.size(part) }

func (s PartSchedule) size(part int32) int64 {
	d := (int(part) - 1) / s.Every
	if d >= 40 {
		return s.Max
	}
	return min(s.First<<d, s.Max)
}

// total is the size reached by n parts.
func (s PartSchedule) total(n int) int64 {
	var t int64
	for p := 1; p <= n; p += s.Every {
		k := min(s.Every, n-p+1)
		t += int64(k) * s.size(int32(p))
	}
	return t
}

// growEvery picks the schedule's doubling period: the given one, or the
// largest with which MaxParts parts reach TargetObjectSize (the later the
// growth, the less memory smaller objects need).
func growEvery(o Options) (int, error) {
	if o.PartGrowEvery > 0 {
		return o.PartGrowEvery, nil
	}
	for e := MaxParts; e >= 1; e-- {
		if (PartSchedule{First: o.PartSize, Max: o.MaxPartSize, Every: e}).total(MaxParts) >= TargetObjectSize {
			return e, nil
		}
	}
	return 0, fmt.Errorf("%w: max part size %d cannot reach %d bytes in %d parts", ErrInvalidOptions, o.MaxPartSize, int64(TargetObjectSize), MaxParts)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcString is S3's encoding of a CRC32C: base64 of its 4 big-endian bytes.
func crcString(c uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], c)
	return base64.StdEncoding.EncodeToString(b[:])
}

func parseCRC(s string) (uint32, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// compositeCRC is the COMPOSITE checksum S3 reports for a multipart object:
// the CRC32C of the concatenated part CRC32Cs, then "-" and the part count.
func compositeCRC(parts []uint32) string {
	b := make([]byte, 0, 4*len(parts))
	for _, c := range parts {
		b = binary.BigEndian.AppendUint32(b, c)
	}
	return crcString(crc32.Checksum(b, castagnoli)) + "-" + strconv.Itoa(len(parts))
}
