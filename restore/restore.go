// Package restore reads backup sets back: it validates a chain of sets,
// verifies everything in them, and restores a storage group.
//
// A restore never touches its target until it has succeeded:
//
//	SET… ─► reader (file, stdin, split volumes, tape) ─► tapeformat ─► staging dir beside the target
//	          databases → staging/NAME.edb       logs → staging/restore-logs/E00XXXXXXXX.log
//	      ─► hard recovery in the staging dir (replay from the full's first generation
//	          through the last restored one, then on through the target's later logs)
//	      ─► switch: target → target.old, staging → target, remove target.old
//
// A set is untrusted input: every file is created through an os.Root on
// the staging directory, under a name that must be one of the names the
// format allows (validated member names, base names only, known kinds).
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/engine/page"
	"github.com/tapestream/tapestream/engine/verify"
	"github.com/tapestream/tapestream/engine/wal"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/tapeformat"
	"github.com/tapestream/tapestream/tapeformat/agestream"
)

// SetSource names a backup set to read.
type SetSource struct {
	Path       string // file, NAME.001, -, tape:PATH, /dev/nstN
	FileNumber int    // set number on a tape
	// Expect names the set and its cartridges (from a catalog): a tape
	// reader asks for them by label and refuses any other.
	Expect media.ExpectedSet
}

// Problem is one thing wrong with a set, for verify's report.
type Problem struct {
	Set    string `json:"set"`
	Member string `json:"member,omitempty"`
	File   string `json:"file,omitempty"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Page   int64  `json:"page"`
	Gen    uint32 `json:"generation,omitempty"`
	What   string `json:"what"`
}

// ProblemError is the first Problem of a strict read (a restore that is
// not a salvage stops there).
type ProblemError struct{ Problem Problem }

func (e *ProblemError) Error() string { return e.Problem.String() }

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(Printable(p.Set) + ": ")
	if p.File != "" {
		b.WriteString(Printable(p.File) + ": ")
	}
	if p.Member != "" {
		b.WriteString("member " + Printable(p.Member) + ": ")
	}
	switch {
	case p.Offset < 0: // not attributable to a place in a file
	case p.Length > 0:
		fmt.Fprintf(&b, "bytes [%d,+%d): ", p.Offset, p.Length)
	case p.Length < 0:
		fmt.Fprintf(&b, "bytes from %d to the end: ", p.Offset)
	}
	if p.Page >= 0 && (p.Page > 0 || p.File != "" && p.Length > 0 && p.Offset == 0) {
		fmt.Fprintf(&b, "page %d: ", p.Page)
	}
	if p.Gen != 0 {
		fmt.Fprintf(&b, "generation %d: ", p.Gen)
	}
	b.WriteString(Printable(p.What))
	return b.String()
}

// Printable is s as a terminal may show it: a string from a set (a name,
// a host) is untrusted, and an escape sequence or a newline in it could
// forge report lines; such a string is shown quoted, with escapes.
func Printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// SetInfo is what reading a set found.
type SetInfo struct {
	Source   SetSource
	Label    tapeformat.Label
	Manifest *tapeformat.Manifest
	Problems []Problem
	Files    []tapeformat.FileHeader
	Volumes  int
	// Warnings are what the reader noticed that leaves the set intact
	// (data after its end, a member written twice).
	Warnings []string
	// Sealed: the set is encrypted and was read without an identity: its
	// structure and every ciphertext byte were checked, not its contents
	// (pages, logs, digests).
	Sealed bool
}

// LogRange is the set's log generation range (from the manifest).
// A set whose manifest is lost (truncated, damaged) still says it: an
// incremental's or differential's label carries it, and a full's is the
// range of the log files it holds (they are its last files).
func (s *SetInfo) LogRange() (uint32, uint32) {
	if s.Manifest != nil {
		return uint32(s.Manifest.Info.LogFirst), uint32(s.Manifest.Info.LogLast)
	}
	if lo, hi, ok := LabelLogRange(s.Label); ok {
		return lo, hi
	}
	var lo, hi uint32
	for _, f := range s.Files {
		if f.Kind != tapeformat.KindLog {
			continue
		}
		if g, ok := wal.ParseGenName(s.Label.LogPrefix, f.Name); ok {
			if lo == 0 || g < lo {
				lo = g
			}
			hi = max(hi, g)
		}
	}
	return lo, hi
}

// Options configure reading sets.
type Options struct {
	Sink    media.Options
	Salvage bool
	// Identities decrypt encrypted sets. A restore of an encrypted set
	// without one fails before anything is written (a *tapeformat.KeyError
	// naming the set and its recipients); a verify reads it sealed.
	Identities []*agestream.Identity
	// Deep makes a verify of an encrypted set without an identity fail
	// instead of checking only its ciphertext.
	Deep bool
}

func openSet(src SetSource, o Options) (media.Reader, *tapeformat.Reader, error) {
	so := o.Sink
	so.FileNumber = src.FileNumber
	if src.Expect.SetID != "" {
		so.Expect = src.Expect
	}
	rd, err := media.OpenReader(src.Path, so)
	if err != nil {
		return nil, nil, err
	}
	tr, err := tapeformat.NewReader(rd, tapeformat.ReaderOptions{RecordSize: so.RecordSize, Strict: !o.Salvage, Identities: o.Identities})
	if err != nil {
		rd.Close()
		return nil, nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	return rd, tr, nil
}

// ReadLabel reads only the label of a set.
func ReadLabel(src SetSource, o Options) (tapeformat.Label, error) {
	rd, tr, err := openSet(src, o)
	if err != nil {
		return tapeformat.Label{}, err
	}
	defer rd.Close()
	defer tr.Close()
	return tr.Label(), nil
}

// ValidateChain checks that labels form a restorable chain: a full (or
// copy) first, then incrementals each continuing the one before, or one
// differential continuing the full. Log ranges are checked by
// ValidateLogRanges once the manifests are read.
func ValidateChain(labels []tapeformat.Label) error {
	if len(labels) == 0 {
		return errors.New("no backup set given")
	}
	first := labels[0]
	if first.SetType != ese.Full && first.SetType != ese.Copy {
		return fmt.Errorf("set %s is a %s backup; a restore starts with a full (or copy) set", first.SetID, first.SetType)
	}
	seen := map[string]bool{first.SetID: true}
	for i, l := range labels[1:] {
		prev := labels[i]
		if l.StorageGroup != first.StorageGroup || l.GroupSignature != first.GroupSignature {
			return fmt.Errorf("set %s belongs to storage group %s (%s), the full set %s to %s (%s)", l.SetID, l.StorageGroup, l.GroupSignature, first.SetID, first.StorageGroup, first.GroupSignature)
		}
		if seen[l.SetID] {
			return fmt.Errorf("set %s is given twice", l.SetID)
		}
		seen[l.SetID] = true
		switch l.SetType {
		case ese.Incremental:
			if prev.SetType == ese.Differential {
				return fmt.Errorf("incremental set %s follows differential set %s: a chain is full+incrementals or full+one differential", l.SetID, prev.SetID)
			}
			if l.PreviousSetID != "" && l.PreviousSetID != prev.SetID {
				return fmt.Errorf("incremental set %s continues set %s, not %s: a set is missing or the order is wrong", l.SetID, l.PreviousSetID, prev.SetID)
			}
		case ese.Differential:
			if i != 0 || len(labels) != 2 {
				return fmt.Errorf("differential set %s must directly follow its full set, alone", l.SetID)
			}
			if l.PreviousSetID != "" && l.PreviousSetID != first.SetID {
				return fmt.Errorf("differential set %s belongs to full set %s, not %s", l.SetID, l.PreviousSetID, first.SetID)
			}
		default:
			return fmt.Errorf("set %s (%s) cannot follow set %s in a chain", l.SetID, l.SetType, prev.SetID)
		}
	}
	return nil
}

// ValidateLogRanges checks that each set's logs continue the previous
// set's without a gap.
func ValidateLogRanges(sets []*SetInfo) error {
	for i := 1; i < len(sets); i++ {
		prev := sets[i-1]
		if sets[i].Label.SetType == ese.Differential {
			prev = sets[0]
		}
		_, prevHigh := prev.LogRange()
		lo, hi := sets[i].LogRange()
		if err := checkLink(prev.Label.SetID, prevHigh, sets[i].Label.SetID, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

// checkLink checks that a set's logs (lo-hi) continue the logs of the set
// before it in the chain, which end at prevHigh: no generation may be
// missing between them. They may overlap (an incremental repeats what the
// checkpoint had not passed); the copies are compared as they are read.
func checkLink(prevID string, prevHigh uint32, id string, lo, hi uint32) error {
	if lo > prevHigh+1 {
		return fmt.Errorf("set %s starts at log generation %d but set %s ends at %d: generations %d-%d are missing", id, lo, prevID, prevHigh, prevHigh+1, lo-1)
	}
	if hi < prevHigh {
		return fmt.Errorf("set %s ends at log generation %d, before set %s (%d): wrong order", id, hi, prevID, prevHigh)
	}
	return nil
}

// LabelLogRange is the log range the label of an incremental or
// differential set carries (ok is false for full and copy sets, and for
// sets written before labels carried it).
func LabelLogRange(l tapeformat.Label) (lo, hi uint32, ok bool) {
	if l.LogFirst == 0 || l.LogLast < l.LogFirst {
		return 0, 0, false
	}
	return l.LogFirst, l.LogLast, true
}

// fileSink receives the files of a set being read.
type fileSink interface {
	// begin sees the set's label before any file.
	begin(l tapeformat.Label) error
	// create reports whether file fh's bytes are kept (then they go
	// through write) or discarded.
	create(fh *tapeformat.FileHeader, kind string) (bool, error)
	// write takes ownership of data (from Reader.TakeData).
	write(fh *tapeformat.FileHeader, data []byte, off int64) error
	// recycle gives buffers written back to put.
	recycle(put func([]byte))
	finish(fh *tapeformat.FileHeader) error
}

// readSet reads a whole set: every chunk verified by the format reader,
// every database page verified, every log verified record by record and
// against the previous generation's header. Problems are collected; in
// strict mode the first one is returned as an error.
func readSet(ctx context.Context, src SetSource, o Options, out fileSink) (*SetInfo, error) {
	rd, tr, err := openSet(src, o)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	defer tr.Close()
	return readFrom(ctx, src, tr, o, out)
}

// VerifyStream reads one set from r (a tapeformat.VolumeReader when the set
// spans volumes) and verifies all of it, as Verify does a set it opens:
// copy reads a set through it while the bytes go to another medium.
func VerifyStream(ctx context.Context, name string, r io.Reader, o Options) (*SetInfo, error) {
	o.Salvage = true
	tr, err := tapeformat.NewReader(r, tapeformat.ReaderOptions{RecordSize: o.Sink.RecordSize, Identities: o.Identities})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer tr.Close()
	return readFrom(ctx, SetSource{Path: name}, tr, o, nil)
}

// readFrom reads a set from an open reader (see readSet).
func readFrom(ctx context.Context, src SetSource, tr *tapeformat.Reader, o Options, out fileSink) (*SetInfo, error) {
	info := &SetInfo{Source: src, Label: tr.Label(), Sealed: tr.Sealed()}
	setName := src.Path
	if out != nil || o.Deep {
		// Nothing is written before it is known that the set can be read.
		if err := tr.RequireIdentity(); err != nil {
			return nil, fmt.Errorf("%s: %w", setName, err)
		}
	}
	if out != nil {
		if err := out.begin(info.Label); err != nil {
			return nil, err
		}
	}
	problem := func(p Problem) error {
		p.Set = setName
		info.Problems = append(info.Problems, p)
		if !o.Salvage {
			return &ProblemError{p}
		}
		return nil
	}
	var chain verify.Chain
	var prevGen uint32
	sig := engine.ParseSignature(info.Label.GroupSignature)
	for {
		if err := ctx.Err(); err != nil {
			return info, err
		}
		fh, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, fmt.Errorf("%s: %w", setName, err)
		}
		info.Files = append(info.Files, *fh)
		if info.Sealed {
			// Only the ciphertext can be checked, which the reader did.
			continue
		}
		var keep bool
		if out != nil {
			if keep, err = out.create(fh, fh.Kind); err != nil {
				return info, err
			}
		}
		ver := verify.New(fh.Name, ese.FileKind(fh.Kind), sig)
		for {
			if keep {
				out.recycle(tr.Recycle)
			}
			if err := ctx.Err(); err != nil {
				return info, err
			}
			c, err := tr.NextChunk()
			if err == io.EOF {
				break
			}
			if err != nil {
				return info, fmt.Errorf("%s: %s: %w", setName, fh.Name, err)
			}
			if verr := ver.Write(c.Meta.Offset, c.Data); verr != nil {
				p := Problem{File: fh.Name, Page: -1, What: verr.Error()}
				var pe *page.PageError
				if errors.As(verr, &pe) {
					p.Offset, p.Length, p.Page = c.Meta.Offset, int64(c.Meta.Length), int64(pe.Page)
				}
				if err := problem(p); err != nil {
					return info, err
				}
			}
			if keep {
				if err := out.write(fh, tr.TakeData(), c.Meta.Offset); err != nil {
					return info, err
				}
			}
		}
		if fh.Kind == tapeformat.KindLog {
			gi, err := ver.Finish()
			switch {
			case errors.Is(err, verify.ErrIncomplete):
				// The lost range is in the reader's damage report.
			case err != nil:
				if err := problem(Problem{File: fh.Name, Page: -1, What: err.Error()}); err != nil {
					return info, err
				}
			default:
				if err := chain.Add(fh.Name, gi); err != nil {
					if err := problem(Problem{File: fh.Name, Gen: gi.Header.Gen, Page: -1, What: err.Error()}); err != nil {
						return info, err
					}
				}
				if prevGen != 0 && gi.Header.Gen != prevGen+1 {
					if err := problem(Problem{File: fh.Name, Gen: gi.Header.Gen, Page: -1, What: fmt.Sprintf("generation gap: previous log in the set is %d", prevGen)}); err != nil {
						return info, err
					}
				}
				prevGen = gi.Header.Gen
			}
		}
		if out != nil {
			if err := out.finish(fh); err != nil {
				return info, err
			}
		}
	}
	info.Volumes = tr.Volume()
	m, err := tr.Manifest()
	if err != nil {
		if perr := problem(Problem{What: "manifest: " + err.Error()}); perr != nil {
			return info, perr
		}
	}
	info.Manifest = m
	for _, l := range tr.Damage() {
		if err := problem(Problem{File: l.File, Offset: l.Offset, Length: l.Length, Page: -1, What: "lost: " + l.Reason}); err != nil {
			return info, err
		}
	}
	// A database the label names that the set gave nothing of (cut before
	// it began) is lost whole; the reader alone cannot know it existed.
	for _, db := range info.Label.Databases {
		if !info.Label.SetType.CopiesDatabases() {
			break // an incremental or differential holds logs only
		}
		name := db + ".edb"
		if !slices.ContainsFunc(info.Files, func(f tapeformat.FileHeader) bool { return f.Name == name }) {
			if err := problem(Problem{File: name, Page: -1, What: "lost: the set holds nothing of this database its label names"}); err != nil {
				return info, err
			}
		}
	}
	// Damage the reader got around (a lost header or file-info that other
	// copies replaced) costs no byte, but the medium is damaged: it is a
	// problem all the same. Other warnings (data after the set, a
	// duplicate member) leave the set intact.
	for _, w := range tr.Warnings() {
		if !w.Damage {
			info.Warnings = append(info.Warnings, w.String())
			continue
		}
		if err := problem(Problem{Member: w.Member, File: w.File, Page: -1, What: "damaged (no data lost): " + w.String()}); err != nil {
			return info, err
		}
	}
	return info, nil
}

// Verify reads sets completely and reports every problem; with several
// sets it also checks that they form a valid chain.
func Verify(ctx context.Context, srcs []SetSource, o Options) ([]*SetInfo, []string, error) {
	o.Salvage = true // collect everything rather than stop at the first
	var infos []*SetInfo
	var chainProblems []string
	for _, s := range srcs {
		info, err := readSet(ctx, s, o, nil)
		if err != nil {
			if info == nil || errors.Is(err, agestream.ErrNoIdentity) {
				// A wrong key says nothing about the set.
				return infos, nil, err
			}
			info.Problems = append(info.Problems, Problem{Set: s.Path, What: err.Error()})
		}
		infos = append(infos, info)
	}
	if len(infos) > 1 {
		var labels []tapeformat.Label
		for _, i := range infos {
			labels = append(labels, i.Label)
		}
		if err := ValidateChain(labels); err != nil {
			chainProblems = append(chainProblems, err.Error())
		} else if err := ValidateLogRanges(infos); err != nil {
			chainProblems = append(chainProblems, err.Error())
		}
	}
	return infos, chainProblems, nil
}
