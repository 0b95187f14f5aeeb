// Package testgen generates deterministic test data for tapeformat tests
// and benchmarks.
package testgen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
)

// MailData returns n bytes of mail-like data: mostly text with headers and
// quoted bodies, with about 1/4 random binary (attachments), deterministic.
func MailData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	words := []string{"the", "meeting", "Exchange", "mailbox", "Re:", "From:", "To:", "Subject:", "quarterly",
		"report", "please", "find", "attached", "regards", "thanks", "server", "backup", "database",
		"tomorrow", "budget", "\r\n", "\r\n> ", "Content-Type: text/plain; charset=utf-8\r\n", "Date: Mon, 3 Feb 2025 10:11:12 +0100\r\n"}
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(8) == 0 {
			blk := make([]byte, 4096+r.IntN(16384))
			for i := range blk {
				blk[i] = byte(r.Uint32())
			}
			b.Write(blk)
			continue
		}
		for range 200 + r.IntN(400) {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
			if r.IntN(30) == 0 {
				fmt.Fprintf(&b, "%08x ", r.Uint32())
			}
		}
	}
	return b.Bytes()[:n]
}
