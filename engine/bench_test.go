package engine

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkCommit measures small commits (1 KiB) from N concurrent
// committers: group commit shares fsyncs between them.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("committers=%d", n), func(b *testing.B) {
			g, _ := newBackupGroup(b, DefaultLogSize, false)
			defer g.Close()
			val := make([]byte, 1024)
			b.SetBytes(1024)
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + n - 1) / n
			for w := 0; w < n; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if err := g.Update(func(tx *Tx) error {
							return tx.Put("Mailbox1", "m", []byte(fmt.Sprintf("w%03d-%08d", w, i)), val)
						}); err != nil {
							b.Error(err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			b.ReportMetric(float64(n*per)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
