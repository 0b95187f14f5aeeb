package page

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func TestCrcOfPgno(t *testing.T) {
	for _, pgno := range []uint32{0, 1, 2, 255, 256, 0x12345678, 0xFFFFFFFF, 262143} {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], pgno)
		if got, want := crcOfPgno(pgno), crc32.Update(0, castagnoli, n[:]); got != want {
			t.Fatalf("pgno %d: %08x, want %08x", pgno, got, want)
		}
	}
}

// Verifying a page must not allocate: a backup or restore verifies every
// page of every database.
func TestVerifyDoesNotAllocate(t *testing.T) {
	p := make([]byte, Size)
	Seal(p, 7)
	if n := testing.AllocsPerRun(100, func() {
		if err := Verify("db", p, 7); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per Verify", n)
	}
}
