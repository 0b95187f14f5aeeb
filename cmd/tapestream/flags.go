package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/media"
	"github.com/tapestream/tapestream/pace"
	"github.com/tapestream/tapestream/pipeline"
	"github.com/tapestream/tapestream/source"
	"github.com/tapestream/tapestream/storeapi"
	"github.com/tapestream/tapestream/tapeformat/agestream"
	"github.com/tapestream/tapestream/tapeformat/codec"
)

// The flag groups several commands share (like restic's option groups):
// each registers its flags and turns them into the options of the package
// that uses them, so that no command parses a flag of a group itself.

// sourceFlags name the store a backup reads: in process (--store) or
// through its server (--server and the remote flags).
type sourceFlags struct {
	Store  string
	Remote remoteFlags
}

func (s *sourceFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&s.Store, "store", "", "store root directory (embedded, in process)")
	addRemoteFlags(c, &s.Remote)
}

// open opens the source; the caller closes it.
func (s sourceFlags) open() (source.Source, error) {
	switch {
	case s.Store != "" && s.Remote.Server != "":
		return nil, usagef("give --store or --server, not both")
	case s.Remote.Server != "":
		return s.Remote.open()
	case s.Store == "":
		return nil, usagef("--store (or --server) is required")
	}
	return source.OpenLocal(s.Store, engine.Options{})
}

// remoteFlags select a store server (backup, restore, store load).
type remoteFlags struct {
	Server    string
	TokenFile string
	TLSCA     string
	TLSCert   string
	TLSKey    string
}

func addRemoteFlags(c *cobra.Command, r *remoteFlags) {
	f := c.Flags()
	f.StringVar(&r.Server, "server", "", "store server URL (tapestream store serve), e.g. http://127.0.0.1:7420")
	f.StringVar(&r.TokenFile, "token-file", "", "file holding the store server's bearer token")
	f.StringVar(&r.TLSCA, "tls-ca", "", "CA certificate (PEM) the store server's certificate must chain to")
	f.StringVar(&r.TLSCert, "tls-client-cert", "", "client certificate (PEM) for the store server")
	f.StringVar(&r.TLSKey, "tls-client-key", "", "client certificate key (PEM)")
}

// open connects to the store server.
func (r remoteFlags) open() (*storeapi.Remote, error) {
	ro := storeapi.RemoteOptions{}
	if r.TokenFile != "" {
		tok, err := storeapi.ReadTokenFile(r.TokenFile)
		if err != nil {
			return nil, usagef(err.Error())
		}
		ro.Token = tok
	}
	if r.TLSCA != "" || r.TLSCert != "" || r.TLSKey != "" {
		t, err := storeapi.LoadTLS(r.TLSCA, r.TLSCert, r.TLSKey)
		if err != nil {
			return nil, usagef(err.Error())
		}
		ro.TLS = t
	}
	rem, err := storeapi.OpenRemote(r.Server, ro)
	if err != nil {
		return nil, usagef(err.Error())
	}
	return rem, nil
}

// pipelineFlags shape the set: codec, workers, frame and segment size,
// read rate, verification of bytes that crossed the network.
type pipelineFlags struct {
	Compress    string
	Workers     int
	FrameSize   string
	SegmentSize string
	MaxRate     string
	Pace        string
	NoVerify    bool
}

func (p *pipelineFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&p.Compress, "compress", "zstd", "zstd, zstd:fastest|default|better|best, zstd:N, lz4, gzip, gzip:N or none")
	f.IntVar(&p.Workers, "workers", 0, "compression workers (default: number of CPUs)")
	f.StringVar(&p.FrameSize, "frame-size", "", "uncompressed bytes per compressed frame (multiple of 64KiB; default 1MiB)")
	f.StringVar(&p.SegmentSize, "segment-size", "", "largest stored segment member (default 4MiB); a volume must hold at least one, and memory grows with it")
	f.StringVar(&p.MaxRate, "max-rate", "", "limit the read rate, e.g. 100MiB (per second)")
	f.StringVar(&p.Pace, "pace", "off", "auto: adapt the read rate to the store's commit latency (several groups share one budget; --max-rate still caps), or off")
	f.BoolVar(&p.NoVerify, "no-verify", false, "skip the check of pages and logs that came through a store server (the engine always verifies what it reads)")
}

// options returns the pipeline options and the segment size.
func (p pipelineFlags) options() (pipeline.Options, int, error) {
	cdc, err := codec.ParseCodec(p.Compress)
	if err != nil {
		return pipeline.Options{}, 0, usagef(err.Error())
	}
	o := pipeline.Options{Codec: cdc, Workers: p.Workers, NoVerify: p.NoVerify}
	var seg int64
	for _, s := range []struct {
		flag, val string
		dst       *int64
	}{{"frame-size", p.FrameSize, nil}, {"segment-size", p.SegmentSize, &seg}, {"max-rate", p.MaxRate, &o.MaxRate}} {
		if s.val == "" {
			continue
		}
		n, err := parseSize(s.flag, s.val)
		if err != nil {
			return o, 0, err
		}
		if s.dst == nil {
			o.FrameSize = int(n)
		} else {
			*s.dst = n
		}
	}
	return o, int(seg), nil
}

// pacer returns the controller --pace asks for (nil: off); the backups of
// one command share it.
func (p pipelineFlags) pacer() (*pace.Controller, error) {
	switch p.Pace {
	case "", "off":
		return nil, nil
	case "auto":
		return pace.New(pace.Config{}), nil
	}
	return nil, usagef(fmt.Sprintf("--pace %q: want auto or off", p.Pace))
}

// writeMediaFlags say how a set is written to its destination.
type writeMediaFlags struct {
	BlockSize     string
	VolumeSize    string
	NextVolumeCmd string
	Force         bool
	Append        bool
	Overwrite     bool
}

func (m *writeMediaFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&m.BlockSize, "block-size", "1MiB", "record (tape block) size, a multiple of 512")
	f.StringVar(&m.VolumeSize, "volume-size", "", "split a file set into volumes NAME.001, NAME.002, ... of this size")
	f.StringVar(&m.NextVolumeCmd, "next-volume-cmd", "", "command run to load the next tape volume (gets TAPESTREAM_VOLUME, TAPESTREAM_DEVICE)")
	f.BoolVar(&m.Force, "force", false, "overwrite an existing set file")
	f.BoolVar(&m.Append, "append", false, "tape: append after the data already on the tape")
	f.BoolVar(&m.Overwrite, "overwrite", false, "tape: overwrite a tape that holds data")
}

func (m writeMediaFlags) options(stderr io.Writer) (media.Options, error) {
	o := media.Options{Force: m.Force, Append: m.Append, Overwrite: m.Overwrite, NextVolumeCmd: m.NextVolumeCmd, Stderr: stderr}
	if m.BlockSize != "" {
		n, err := parseSize("block-size", m.BlockSize)
		if err != nil {
			return o, err
		}
		o.RecordSize = int(n)
	}
	if m.VolumeSize != "" {
		n, err := parseSize("volume-size", m.VolumeSize)
		if err != nil {
			return o, err
		}
		o.VolumeSize = n
	}
	return o, nil
}

// readMediaFlags say how a set is read back (restore, verify, list,
// catalog rebuild).
type readMediaFlags struct {
	FileNumber    int
	BlockSize     string
	NextVolumeCmd string
}

func (m *readMediaFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.IntVar(&m.FileNumber, "file", 0, "tape: the set's file number on the tape (0 = first)")
	f.StringVar(&m.BlockSize, "block-size", "1MiB", "record (tape block) size the set was written with")
	f.StringVar(&m.NextVolumeCmd, "next-volume-cmd", "", "command run to load the next tape volume")
}

// options are the media options of reading sources. When one of them is
// standard input ("-"), it is read so that ctx ends a read waiting on it;
// otherwise Stdin stays unset, and a real tape drive may prompt on the
// terminal for its next volume.
func (m readMediaFlags) options(ctx context.Context, sources ...string) (media.Options, error) {
	o := media.Options{NextVolumeCmd: m.NextVolumeCmd, FileNumber: m.FileNumber}
	if slices.Contains(sources, "-") {
		o.Stdin = media.InterruptibleStdin(ctx)
	}
	if m.BlockSize != "" {
		n, err := parseSize("block-size", m.BlockSize)
		if err != nil {
			return o, err
		}
		o.RecordSize = int(n)
	}
	return o, nil
}

// encryptFlags name the public keys a backup encrypts its sets to (age):
// the backup host needs no private key and cannot read its own sets.
type encryptFlags struct {
	To          []string
	ToFile      []string
	PostQuantum bool
}

func (e *encryptFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&e.To, "encrypt-to", nil, "encrypt the set to this public key: age1..., or an ssh-ed25519/ssh-rsa public key line (repeatable; each recipient decrypts alone)")
	f.StringArrayVar(&e.ToFile, "encrypt-to-file", nil, "encrypt the set to every public key in this file (one per line, # comments, as age -R reads it; repeatable)")
	f.BoolVar(&e.PostQuantum, "encrypt-post-quantum", false, "accept post-quantum recipients (age1pq1...): age before v1.3, Debian's 1.1.1 among them, cannot decrypt such sets")
}

// recipients parses the recipients (none: the set is not encrypted).
func (e encryptFlags) recipients() ([]*agestream.Recipient, error) {
	o := agestream.RecipientOptions{AllowPostQuantum: e.PostQuantum}
	var rs []*agestream.Recipient
	for _, s := range e.To {
		r, err := agestream.ParseRecipient(s, o)
		if err != nil {
			return nil, usagef("--encrypt-to: " + err.Error())
		}
		rs = append(rs, r)
	}
	for _, p := range e.ToFile {
		more, err := agestream.ReadRecipientsFile(p, o)
		if err != nil {
			return nil, usagef("--encrypt-to-file: " + err.Error())
		}
		rs = append(rs, more...)
	}
	return rs, nil
}

// identityFlags name the private keys that decrypt encrypted sets
// (restore, verify, copy, list).
type identityFlags struct {
	Files []string
}

func (i *identityFlags) add(c *cobra.Command) {
	c.Flags().StringArrayVar(&i.Files, "identity", nil, "decrypt encrypted sets with this key file: an age identity file or an unencrypted OpenSSH private key (repeatable; default: the file $"+agestream.IdentityFileEnv+" names)")
}

// load reads the identity files (or $TAPESTREAM_AGE_IDENTITY_FILE's).
func (i identityFlags) load() ([]*agestream.Identity, error) {
	ids, err := agestream.LoadIdentities(i.Files)
	if err != nil {
		return nil, usagef("--identity: " + err.Error())
	}
	return ids, nil
}

// parseSize parses a size flag (256MiB, 1GiB, 64K) with the one size
// parser (media.ParseSize); a bad value is a usage error naming the flag.
func parseSize(flag, s string) (int64, error) {
	n, err := media.ParseSize(s)
	if err != nil {
		return 0, usagef(fmt.Sprintf("--%s %q: want a size such as 64MiB", flag, s))
	}
	return n, nil
}
