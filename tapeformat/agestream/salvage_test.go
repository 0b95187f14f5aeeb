package agestream

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// region places member as a tar member's data would be: zero padding to
// 512 bytes, then what followed it on the medium (a damaged header).
func region(member []byte, junk int) []byte {
	r := append(bytes.Clone(member), make([]byte, -len(member)&(blockSize-1))...)
	for i := range junk {
		r = append(r, byte(i*7+1))
	}
	return r
}

// TestSalvageFindsTheEnd: without record or length, every member is read
// back whole from a region that goes on after it, with its exact size,
// whatever its last chunk's length (full, short, empty plaintext).
func TestSalvageFindsTheEnd(t *testing.T) {
	x := x25519Key(t)
	for _, n := range []int{0, 1, 500, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 4000, 4 * ChunkSize} {
		for _, junk := range []int{0, 1536, 70000} {
			plain := testPlain(n, uint64(n))
			member, _ := seal(t, plain, x)
			got, losses, size, err := Salvage(region(member, junk), x.id)
			if err != nil || len(losses) != 0 || size != len(member) || !bytes.Equal(got, plain) {
				t.Errorf("%d bytes, %d after: size %d of %d, losses %v, err %v, plaintext equal %v", n, junk, size, len(member), losses, err, bytes.Equal(got, plain))
			}
		}
	}
}

// TestSalvageTagEndingInZero: a last chunk whose tag ends in a zero byte
// looks like padding; it is found all the same.
func TestSalvageTagEndingInZero(t *testing.T) {
	x := x25519Key(t)
	for i := range 5000 {
		plain := testPlain(100+i%50, uint64(i))
		member, _ := seal(t, plain, x)
		if member[len(member)-1] != 0 {
			continue
		}
		got, losses, size, err := Salvage(region(member, 600), x.id)
		if err != nil || len(losses) != 0 || size != len(member) || !bytes.Equal(got, plain) {
			t.Fatalf("tag ending in 0: size %d of %d, losses %v, err %v", size, len(member), losses, err)
		}
		return
	}
	t.Fatal("no tag ending in a zero byte in 5000 members")
}

// TestSalvageDamage: a damaged chunk costs itself; a damaged last chunk
// costs the stream's end (unknown length); a chunk from another member
// never opens; a foreign key is an error, never a stream.
func TestSalvageDamage(t *testing.T) {
	f := newDamageFixture(t)
	h := f.h.PayloadOffset()
	for _, tc := range []struct {
		name  string
		chunk int
		want  []Loss
	}{
		{"middle", 2, []Loss{lossOf(2, 1, ChunkSize, ErrAuth)}},
		{"first", 0, []Loss{lossOf(0, 1, ChunkSize, ErrAuth)}},
		{"last", 4, []Loss{lossOf(4, 1, ChunkSize, ErrAuth), lossOf(5, 1, -1, ErrTruncated)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := bytes.Clone(f.member)
			m[h+tc.chunk*SealedChunkSize+100] ^= 0x10
			got, losses, size, err := Salvage(region(m, 2000), f.x.id)
			if err != nil || !sameLosses(losses, tc.want) {
				t.Fatalf("losses %v, err %v; want %v", losses, err, tc.want)
			}
			if tc.name != "last" && size != len(m) {
				t.Fatalf("size %d, want %d", size, len(m))
			}
			checkLosses(t, f.plain, got, losses)
		})
	}
	// chunk 1 of the other member in place of chunk 1
	m := bytes.Clone(f.member)
	copy(m[h+SealedChunkSize:], f.other[h+SealedChunkSize:h+2*SealedChunkSize])
	_, losses, _, err := Salvage(region(m, 0), f.x.id)
	if err != nil || !sameLosses(losses, []Loss{lossOf(1, 1, ChunkSize, ErrAuth)}) {
		t.Fatalf("spliced chunk: losses %v, err %v", losses, err)
	}
	if _, _, _, err := Salvage(region(f.member, 0), x25519Key(t).id); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("foreign key: %v", err)
	}
	if _, _, _, err := Salvage(bytes.Repeat([]byte{0}, 4096), f.x.id); !errors.Is(err, ErrHeader) {
		t.Fatalf("zeros: %v", fmt.Sprint(err))
	}
}
