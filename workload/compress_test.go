package workload

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCompressionRatio measures how well the generated corpus compresses
// with the zstd and lz4 command-line tools. It is skipped unless
// WORKLOAD_COMPRESS_MB is set (e.g. WORKLOAD_COMPRESS_MB=64).
func TestCompressionRatio(t *testing.T) {
	mbs := os.Getenv("WORKLOAD_COMPRESS_MB")
	if mbs == "" {
		t.Skip("set WORKLOAD_COMPRESS_MB=64 to measure compression ratios")
	}
	mb, err := strconv.Atoi(mbs)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(1)
	if s := os.Getenv("WORKLOAD_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	path := filepath.Join(t.TempDir(), "corpus")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, err := NewGenerator(seed).WriteCorpus(w, int64(mb)<<20)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"zstd -1 -c", "lz4 -1 -c"} {
		cmd := c + " " + path + " | wc -c"
		out, err := exec.Command("sh", "-c", cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		cn, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		t.Logf("%s: %d -> %d bytes, ratio %.3f", cmd, n, cn, float64(n)/float64(cn))
	}
}
