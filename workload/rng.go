package workload

import "math/bits"

// rng is a small, fast, deterministic PRNG (wyrand). It is used instead of
// math/rand so that generated content is stable across Go releases.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// intn returns a value in [0, n); n must be in (0, 2^32).
func (r *rng) intn(n int) int {
	return int(((r.next() >> 32) * uint64(n)) >> 32)
}

// chance reports true with probability pct/100.
func (r *rng) chance(pct int) bool { return r.intn(100) < pct }

// float returns a value in [0, 1).

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Tags separating the independent random sequences derived from a seed.
const (
	tagTxn uint64 = iota + 1
	tagPlan
	tagText
	tagHeader
	tagAttach
	tagStream
	tagDate
)

// newRNG derives an independent generator from seed and a path of values.
func newRNG(seed uint64, path ...uint64) rng {
	h := mix64(seed ^ 0x243f6a8885a308d3)
	for _, p := range path {
		h = mix64(h ^ (p + 0x9e3779b97f4a7c15))
	}
	return rng{s: h}
}
