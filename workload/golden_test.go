package workload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Golden hashes of generated content. If a change to the generator or the
// transaction mix alters them, stores written by older builds no longer
// verify: bump Version and update the hashes.
const (
	goldenCorpus = "c6c7b292585b5be206911a505a4ffdf1d4b8b02f6e46eb569cbb8ffb347b40e0"
	goldenStore  = "057e7ef886ee7b725e8ec03deaeaa5300f4e4a0b86690730c705d1770edff336"
)

func TestGolden(t *testing.T) {
	h := sha256.New()
	if _, err := NewGenerator(1).WriteCorpus(h, 4<<20); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenCorpus {
		t.Errorf("corpus hash %s, want %s (content changed: bump Version)", got, goldenCorpus)
	}

	s := NewMemStore()
	if _, err := Run(context.Background(), s, RunOptions{Workload: Workload{Seed: 1, Streams: 2}, StopAtSeq: 100}); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	w, _ := Workload{Seed: 1, Streams: 2}.normalize()
	err := s.View(func(tx Tx) error {
		for _, db := range w.Databases {
			for _, table := range []string{TableMessages, TableAttachments, TableFolders, TableMeta} {
				if err := tx.Scan(db, table, nil, func(k, v []byte) error {
					h.Write([]byte(db + "/" + table + "/"))
					h.Write(k)
					h.Write(v)
					return nil
				}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenStore {
		t.Errorf("store hash %s, want %s (content or mix changed: bump Version)", got, goldenStore)
	}
}
