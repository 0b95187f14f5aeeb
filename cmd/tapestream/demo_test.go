package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's main command on a small store.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	dir := filepath.Join(t.TempDir(), "demo")
	if err := runDemo(context.Background(), demoOpts{Dir: dir, Size: "16MiB", Out: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"online full backup", "incremental backup 1", "incremental backup 2", "verified the three sets", "proved the restore", "Summary"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
