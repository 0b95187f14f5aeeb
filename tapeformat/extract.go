package tapeformat

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// ExtractAll restores every remaining file of the set under dir, through
// an os.Root so that no name can escape dir (names are also validated when
// read). Lost ranges are left as holes (zero bytes) and listed by Damage; in
// strict mode the first damage aborts. It returns the manifest's absence as
// ErrNoManifest only in strict mode (it is then in the Damage report).
func (r *Reader) ExtractAll(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for {
		h, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.extractOne(root, h); err != nil {
			return err
		}
	}
}

func (r *Reader) extractOne(root *os.Root, h *FileHeader) error {
	if err := ValidateName(h.Name); err != nil {
		return err
	}
	if d := path.Dir(h.Name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(h.Name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	var size int64
	for {
		c, err := r.NextChunk()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return err
		}
		if _, err := f.WriteAt(c.Data, c.Meta.Offset); err != nil {
			f.Close()
			return fmt.Errorf("tapeformat: extract %s: %w", h.Name, err)
		}
		size = max(size, c.Meta.End())
	}
	if r.cur != nil && r.cur.hdr.Size > size { // lost tail: keep the size
		size = r.cur.hdr.Size
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
