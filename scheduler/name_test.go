package scheduler

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/ese"
)

// TestFileNameExt: {ext} is the codec's extension, so one name template
// (the default and contrib's) names sets right for every codec. An
// encrypted set is still a pax archive of codec members, so its name takes
// the same extension.
func TestFileNameExt(t *testing.T) {
	at := time.Date(2026, 11, 5, 1, 30, 0, 0, time.UTC)
	for _, c := range []struct{ codec, encrypt, want string }{
		{"zstd", "", "SG1-full-20261105T013000Z.tar.zst"},
		{"zstd:3", "", "SG1-full-20261105T013000Z.tar.zst"},
		{"lz4", "", "SG1-full-20261105T013000Z.tar.lz4"},
		{"gzip", "", "SG1-full-20261105T013000Z.tar.gz"},
		{"none", "", "SG1-full-20261105T013000Z.tar"},
		{"zstd", "encrypt_to = ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p']\n", "SG1-full-20261105T013000Z.tar.zst"},
	} {
		dir := t.TempDir()
		cfg, err := ParseConfig("catalog='c'\n[[job]]\nname='mail'\nstore='s'\ngroups=['SG1']\ncodec='"+c.codec+"'\n"+c.encrypt+"[job.destination]\ndir='d'\n", dir)
		if err != nil {
			t.Fatalf("codec %s: %v", c.codec, err)
		}
		if got := cfg.Jobs[0].FileName("SG1", ese.Full, at, "0a1b"); got != filepath.Join(dir, "d", c.want) {
			t.Errorf("codec %s (default name %s): %s, want %s", c.codec, DefaultName, got, c.want)
		}
	}
	// contrib's template uses {ext}: another codec there names its sets right.
	cfg, err := LoadConfig("../contrib/tapestream.toml")
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jobs[0]
	if !strings.Contains(j.Destination.Name, "{ext}") {
		t.Fatalf("contrib/tapestream.toml: name %q does not use {ext}", j.Destination.Name)
	}
	j.Codec = "lz4"
	if probs := cfg.validate(filepath.Dir(cfg.Path)); len(probs) > 0 {
		t.Fatal(probs)
	}
	if got := filepath.Base(j.FileName("SG1", ese.Incremental, at, "0a1b")); got != "SG1-incremental-20261105T013000Z.tar.lz4" {
		t.Errorf("contrib with codec lz4: %s", got)
	}
}
