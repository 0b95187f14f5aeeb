package workload

import (
	"io"
	"testing"
)

// BenchmarkGenerate measures content generation throughput on one core.
func BenchmarkGenerate(b *testing.B) {
	g := NewGenerator(1)
	const chunk = 8 << 20
	b.SetBytes(chunk)
	for b.Loop() {
		if _, err := g.WriteCorpus(io.Discard, chunk); err != nil {
			b.Fatal(err)
		}
	}
}
