// Package media writes backup sets to their destination and reads them back:
// files (atomic, optionally split into volumes), stdout/stdin pipes, Linux
// st tape drives and file-backed emulated tapes.
//
// # Shape
//
// A Sink is a tapeformat.VolumeWriter (every Write is exactly one record of
// the set's record size, a multiple of 512, default 1 MiB; NextVolume ends a
// volume and starts the next) that ends with exactly one of Commit or Abort:
//
//	Open(target, opts) ──► Write(record) … ──► Commit()   set durable, final name
//	                           │   ▲         └─► Abort()    partial output removed
//	      ErrEarlyWarning /    │   │
//	      ErrEndOfMedium       ▼   │
//	                        NextVolume()   volume durable; next one loaded/opened
//
// Readers (OpenReader) are tapeformat.VolumeReaders: Read returns io.EOF at
// the end of each volume, NextVolume moves to the following one.
//
// # Targets (Open / OpenReader)
//
//	"-"            stdout / stdin (pipe buffer raised to 1 MiB with F_SETPIPE_SZ)
//	/dev/nstN      Linux st tape drive (non-rewinding device)
//	tape:PATH?…    emulated tape: PATH is a directory of volume images
//	/dev/null, FIFO, other non-tape devices: a plain stream
//	s3://B/KEY?…   objects in an S3-compatible store (s3.go, media/s3store)
//	NAME           file; NAME.001, NAME.002, … when Options.VolumeSize > 0
//
// # Files
//
// A set is written to NAME.partial (created O_EXCL: a leftover partial file
// from a crash or a concurrent writer is refused unless Force). Commit
// fsyncs it, renames it to NAME (renameat2 RENAME_NOREPLACE: an existing
// NAME is never replaced unless Force) and fsyncs the directory. Abort
// removes the partial file. Nothing under the final name ever holds a
// partial set.
//
//	write ──► NAME.partial ──Commit: fsync, rename, fsync dir──► NAME
//	                       └─Abort: unlink──► (nothing)
//
// Split volumes (Options.VolumeSize = V) are written the same way, one file
// per volume, each a complete archive (the tapeformat writer ensures it):
//
//	NAME.001.partial  NAME.002.partial  …  NAME.00k.partial
//	      │ NextVolume: fsync + close, open the next
//	Commit: rename NAME.00k … NAME.002, NAME.001 last (NAME.001 present ⇒
//	        the whole set is), fsync dir; with Force, stale NAME.00(k+1)… of
//	        an older set are removed. Abort: unlink all.
//
// A split volume never exceeds V bytes. With R = record size and the
// reserve S (Options.VolumeReserve, default 2·R + 10 KiB):
//
//	0                         V−S                V
//	├───────── records ─────────┼──── reserve ────┤
//	                 ▲ the first Write ending inside the reserve is written
//	                   and returns ErrEarlyWarning (once per volume)
//	                                       ▲ a Write that would pass V is
//	                                         not written: ErrEndOfMedium
//
// V must be at least S + 2·R.
//
// # Streams (stdout, stdin)
//
// Writes loop on short writes. When the reader of stdout goes away the Write
// fails with *BrokenPipeError ("stdout closed by reader (EPIPE)",
// errors.Is(err, ErrBrokenPipe)). Go's runtime kills a process that gets
// EPIPE writing fd 1 through os.File unless SIGPIPE is notified: the CLI
// calls HandleSIGPIPE at start-up (on Linux the sink writes with write(2)
// and is safe regardless). A stream is one volume (NextVolume fails with
// ErrNoMoreVolumes) and cannot be unwritten: Abort just stops; the stream
// lacks its manifest member, which readers report as an incomplete set.
//
// # Tapes
//
// Tape targets run through the Drive interface: a Linux st device
// (OpenDrive; ioctl numbers and structs from <linux/mtio.h> are defined in
// tape_linux.go; elsewhere OpenDrive fails with ErrTapeUnsupported) or an
// emulated drive (OpenEmulatedDrive). Before writing, the sink checks the
// drive status (ErrNotReady, ErrWriteProtected), selects variable block
// mode (MTSETBLK 0) and positions the tape:
//
//	Append     MTEOM: the set becomes the next file after the existing ones
//	default    blank tape ⇒ rewind, write at BOT; data ⇒ ErrTapeNotEmpty.
//	           Blank = MTEOM then MTIOCPOS reports block 0 (Linux st), or
//	           the first read after a rewind hits end of data (emulated; the
//	           fallback: a record or filemark means data, an unreadable
//	           first block is an error)
//	Overwrite  rewind, write at BOT (everything after is lost)
//
// Each record is one write(2) = one tape block (never os.File.Write, which
// would retry a short write as a second block). A set ends with one
// filemark (MTWEOF, written at Commit; it also flushes the drive):
//
//	BOT │ set 0 │FM│ set 1 │FM│ set 2 │FM│ EOD
//	      file 0     file 1     file 2        ◄── Options.FileNumber (reader)
//
// A set spanning volumes continues in file 0 of the next volume, or, with
// Options.Labeler (tape jobs), in file 1 after the cartridge's volume label
// (label.go: the label names the cartridge, its pool, and the set and
// volume number file 1 holds):
//
//	volume 1: … │ set k (members…, trailer) │FM│        EW zone at the end
//	volume 2: BOT │ set k continued (interrupted member rewritten) │FM│ EOD
//	labelled: BOT │ volume label │FM│ set k continued │FM│ EOD
//
// Readers check every cartridge: a continuation must be the next volume of
// the set read (its volume label, or an unlabelled continuation's set
// label, says which), and with Options.Expect (from a catalog) each
// cartridge must carry the label cataloged. A wrong cartridge is named and
// refused ("refused the cartridge in DEV: it is MAIL0005 (pool weekly,
// volume 5 of set …), not MAIL0003 (volume 3 of set …)") and the
// next-volume command (or the operator) asked again, at most 16 times.
//
// End of medium. The Drive reports errors wrapping tapeformat's sentinels:
// ErrEarlyWarning (block written, in the early-warning zone) and
// ErrEndOfMedium (block not, or not completely, written). The sink passes
// the first early warning of a volume to its caller and later ones as
// success, so the caller can finish its member and write the trailer into
// the reserve; end of medium is always reported. For Linux st (variable
// blocks): the write crossing early warning succeeds; afterwards st fails
// every other write with ENOSPC without writing ("allow next write"), so
// the driver layer writes a block refused with ENOSPC again at once and
// reports ErrEarlyWarning if it went through. ENOSPC twice in a row, a
// short write, or EIO after early warning or at EOT status is
// ErrEndOfMedium; EIO elsewhere is a hard error.
//
// NextVolume writes a filemark, closes the drive and gets the next volume:
//
//  1. Options.NextVolumeCmd, run as `sh -c CMD` with TAPESTREAM_VOLUME=<n>
//     (1-based within the set), TAPESTREAM_VOLUME_LABEL (the cartridge
//     wanted; writing: the label a blank cartridge will get),
//     TAPESTREAM_SET_ID and TAPESTREAM_DEVICE=<device> in the environment;
//     exit 0 ⇒ continue, anything else ⇒ ErrVolumeCommand and the set is
//     incomplete (Abort it);
//  2. else Options.Prompt (after ejecting the tape with MTOFFL);
//  3. else, when stdin is a terminal, "Insert volume N in DEV and press
//     Enter" on stderr (TerminalPrompt);
//  4. else ErrNoNextVolume.
//
// The new volume is checked like the first one (not write protected, empty
// unless Overwrite) and written from BOT. Readers change volumes the same
// way. Abort ends a partial set with a filemark (the tape stays appendable;
// the file lacks the manifest and reads as incomplete).
//
// Reading: one read(2) per block into a buffer of Options.RecordSize bytes
// (a tape written with larger records must be read with that record size:
// otherwise ErrRecordTooLarge); a 0-byte read is a filemark ⇒ io.EOF. The
// reader rewinds and spaces Options.FileNumber filemarks (MTFSF) to the set.
//
// # Emulated tapes
//
//	tape:PATH[?capacity=SIZE][&early-warning=SIZE][&write-protect=BOOL][&volume=N]
//
// PATH is a directory standing for a drive plus a stack of cartridges:
//
//	PATH/state.json   {"format":"tapestream-emulated-tape/1","loaded_volume":2,
//	                   "capacity":…,"early_warning":…,"loads":7}
//	PATH/vol001.img   volume 1: "tapestream-emu1\n", then entries:
//	PATH/vol002.img     uint32le n + n bytes    a record (0 < n < 2^31)
//	                    uint32le 0xFFFFFFFF     a filemark
//	                  end of file = end of recorded data
//
// Capacity counts record payload bytes (default 1 GiB); early-warning is the
// reserve before it (default capacity/16, at most 64 MiB). A record ending
// beyond capacity−early-warning is written and reports ErrEarlyWarning; a
// record that would pass capacity is not written: ErrEndOfMedium. Values
// given once are kept in state.json. NextVolume runs the next-volume
// command if configured (so changer scripts can be tested); if the command
// loaded a cartridge (LoadEmulated, `tapestream tape load`; state.json
// counts "loads"), that one is in the drive; otherwise a reader that knows
// the cartridge it wants finds it in the directory by its volume label
// (a changer's barcode reader), and anything else gets the next image.
// Writers start on the loaded volume, readers on volume 1 (or volume=N). A torn last entry (crash) is cut off on the next write open.
// WriteFilemark and Close fsync the image.
//
// # Errors and concurrency
//
// Errors are *Error values naming the operation and the file or device
// (errors.Is works on the sentinels ErrExists, ErrTapeNotEmpty, …, and on
// tapeformat.ErrEarlyWarning / ErrEndOfMedium).
//
// A Sink is driven by one goroutine (Write, NextVolume, Commit). Abort may
// be called from any other goroutine, e.g. the CLI's SIGINT handler, during
// or after a failed Write: it cancels a pending volume change (kills the
// next-volume command, abandons a prompt), waits for an in-flight file or
// tape Write to return (a stream sink does not wait: a stalled pipe reader
// must not block it), then cleans up. Afterwards every method fails with
// ErrAborted; Abort after Commit is a no-op. Volumes is safe to call
// concurrently. Readers are not safe for concurrent use.
package media
