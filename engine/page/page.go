// Package page defines the on-disk page of an engine database file and its
// verification.
//
// Every database file (.edb) and streaming file (.stm) is an array of 4 KiB
// pages. Every page starts with the same 32-byte header (wire format; never
// change these offsets):
//
//	 0      4        8            16    17    18      20      22   24       28       32
//	┌──────┬────────┬────────────┬─────┬─────┬───────┬───────┬────┬────────┬────────┬──────────────┐
//	│ csum │ pgno   │ dbtime     │kind │flags│ nslot │ upper │ -  │ link   │ aux    │ body …       │
//	└──────┴────────┴────────────┴─────┴─────┴───────┴───────┴────┴────────┴────────┴──────────────┘
//
// csum is CRC32C over the little-endian page number followed by bytes
// 4..4095, so a page copied to another offset fails as a wrong page number
// (-1118) rather than passing, and a page with a damaged pgno field fails its
// checksum (-1018). A page of all zeros was never written (-1019).
//
// B+tree pages are slotted: a slot array of uint16 cell offsets grows up from
// byte 32, cells grow down from the end; upper is the lowest cell offset.
package page

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Size is the page size in bytes (wire format).
const Size = 4096

// PagesPerChunk is the number of pages in one 64 KiB backup read.
const PagesPerChunk = 16

// Header offsets (wire format).
const (
	offCsum   = 0
	offPgno   = 4
	offDBTime = 8
	offKind   = 16
	offFlags  = 17
	offNSlot  = 18
	offUpper  = 20
	offLink   = 24
	offAux    = 28
	HeaderLen = 32
)

// Kind identifies what a page holds (wire format).
type Kind uint8

const (
	KindBlank    Kind = 0 // never initialised; invalid on disk
	KindDBHeader Kind = 1 // pages 0 and 1
	KindSpace    Kind = 2 // page 2: allocation state
	KindLeaf     Kind = 3
	KindInternal Kind = 4
	KindLong     Kind = 5 // long-value data, chained through link
	KindFree     Kind = 6 // on the free list, chained through link
	KindUnused   Kind = 7 // formatted by file extension, not yet allocated
)

func (k Kind) String() string {
	switch k {
	case KindBlank:
		return "blank"
	case KindDBHeader:
		return "header"
	case KindSpace:
		return "space"
	case KindLeaf:
		return "leaf"
	case KindInternal:
		return "internal"
	case KindLong:
		return "long-value"
	case KindFree:
		return "free"
	case KindUnused:
		return "unused"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ESE error codes reported by verification.
const (
	CodeReadVerifyFailure = -1018 // JET_errReadVerifyFailure: checksum mismatch
	CodeBlankPage         = -1019 // JET_errPageNotInitialized
	CodeBadPageNumber     = -1118 // JET_errDiskReadVerificationFailure / wrong page number
)

var (
	// ErrChecksum matches a *PageError with code -1018.
	ErrChecksum = errors.New("page: checksum mismatch (-1018)")
	// ErrBlank matches a *PageError with code -1019.
	ErrBlank = errors.New("page: page never initialised (-1019)")
	// ErrPageNumber matches a *PageError with code -1118.
	ErrPageNumber = errors.New("page: wrong page number (-1118)")
)

// PageError is a verification failure of one page of one file.
type PageError struct {
	DB   string // database or file name
	Page uint32
	Code int // -1018, -1019 or -1118
	Want uint32
	Got  uint32
}

func (e *PageError) Error() string {
	switch e.Code {
	case CodeReadVerifyFailure:
		return fmt.Sprintf("%s: page %d: checksum mismatch (%d ReadVerifyFailure): stored %08x, computed %08x", e.DB, e.Page, e.Code, e.Want, e.Got)
	case CodeBadPageNumber:
		return fmt.Sprintf("%s: page %d: wrong page number (%d): page carries number %d", e.DB, e.Page, e.Code, e.Got)
	case CodeBlankPage:
		return fmt.Sprintf("%s: page %d: page never initialised (%d PageNotInitialized)", e.DB, e.Page, e.Code)
	}
	return fmt.Sprintf("%s: page %d: verification failed (%d)", e.DB, e.Page, e.Code)
}

// Is lets errors.Is match the code sentinels.
func (e *PageError) Is(target error) bool {
	switch target {
	case ErrChecksum:
		return e.Code == CodeReadVerifyFailure
	case ErrBlank:
		return e.Code == CodeBlankPage
	case ErrPageNumber:
		return e.Code == CodeBadPageNumber
	}
	return false
}

// IsCorruption reports whether err is (or wraps) a page verification failure.
func IsCorruption(err error) bool {
	var pe *PageError
	return errors.As(err, &pe)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum computes the checksum of p as if it were page pgno.
func Checksum(p []byte, pgno uint32) uint32 {
	return crc32.Update(crcOfPgno(pgno), castagnoli, p[4:Size])
}

// crcOfPgno is crc32.Update(0, castagnoli, pgno little-endian), by table:
// through crc32.Update the 4-byte array escaped to the heap, one
// allocation per page verified or sealed (1M for a 4 GiB restore).
func crcOfPgno(pgno uint32) uint32 {
	c := ^uint32(0)
	for i := 0; i < 4; i++ {
		c = castagnoli[byte(c)^byte(pgno>>(8*i))] ^ c>>8
	}
	return ^c
}

// Seal stamps pgno and the checksum into p; called just before a page is
// written to disk.
func Seal(p []byte, pgno uint32) {
	binary.LittleEndian.PutUint32(p[offPgno:], pgno)
	binary.LittleEndian.PutUint32(p[offCsum:], Checksum(p, pgno))
}

// Verify checks one page read from offset pgno*Size of file name.
func Verify(name string, p []byte, pgno uint32) error {
	stored := binary.LittleEndian.Uint32(p[offCsum:])
	if stored == 0 && isZero(p) {
		return &PageError{DB: name, Page: pgno, Code: CodeBlankPage}
	}
	carried := binary.LittleEndian.Uint32(p[offPgno:])
	if got := Checksum(p, carried); got != stored {
		return &PageError{DB: name, Page: pgno, Code: CodeReadVerifyFailure, Want: stored, Got: got}
	}
	if carried != pgno {
		return &PageError{DB: name, Page: pgno, Code: CodeBadPageNumber, Want: pgno, Got: carried}
	}
	return nil
}

// VerifyChunk verifies len(buf)/Size consecutive pages starting at first.
func VerifyChunk(name string, buf []byte, first uint32) error {
	for i := 0; i+Size <= len(buf); i += Size {
		if err := Verify(name, buf[i:i+Size], first+uint32(i/Size)); err != nil {
			return err
		}
	}
	if len(buf)%Size != 0 {
		return fmt.Errorf("%s: chunk at page %d is %d bytes, not a whole number of pages", name, first, len(buf))
	}
	return nil
}

func isZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// Accessors for the common header.

func Pgno(p []byte) uint32         { return binary.LittleEndian.Uint32(p[offPgno:]) }
func DBTime(p []byte) uint64       { return binary.LittleEndian.Uint64(p[offDBTime:]) }
func SetDBTime(p []byte, t uint64) { binary.LittleEndian.PutUint64(p[offDBTime:], t) }
func KindOf(p []byte) Kind         { return Kind(p[offKind]) }
func Flags(p []byte) uint8         { return p[offFlags] }
func Link(p []byte) uint32         { return binary.LittleEndian.Uint32(p[offLink:]) }
func SetLink(p []byte, v uint32)   { binary.LittleEndian.PutUint32(p[offLink:], v) }
func Aux(p []byte) uint32          { return binary.LittleEndian.Uint32(p[offAux:]) }
func SetAux(p []byte, v uint32)    { binary.LittleEndian.PutUint32(p[offAux:], v) }
func NSlot(p []byte) int           { return int(binary.LittleEndian.Uint16(p[offNSlot:])) }
func setNSlot(p []byte, n int)     { binary.LittleEndian.PutUint16(p[offNSlot:], uint16(n)) }
func upper(p []byte) int           { return int(binary.LittleEndian.Uint16(p[offUpper:])) }
func setUpper(p []byte, u int)     { binary.LittleEndian.PutUint16(p[offUpper:], uint16(u)) }
func lower(p []byte) int           { return HeaderLen + 2*NSlot(p) }
func slot(p []byte, i int) int     { return int(binary.LittleEndian.Uint16(p[HeaderLen+2*i:])) }
func setSlot(p []byte, i, off int) { binary.LittleEndian.PutUint16(p[HeaderLen+2*i:], uint16(off)) }
func SetFlags(p []byte, f uint8)   { p[offFlags] = f }
func upperOrEnd(p []byte) int {
	if u := upper(p); u != 0 {
		return u
	}
	return Size
}

// Init formats p as an empty page of kind k. dbtime and link are zero.
func Init(p []byte, k Kind) {
	clear(p[:Size])
	p[offKind] = byte(k)
	setUpper(p, Size)
}
