// Package tapeformat reads and writes tapestream backup sets: the on-tape
// format, specified in FORMAT.md (the specification wins over this comment).
//
// A set is a POSIX pax archive written front to back in fixed records (the
// tape block size). Every backed-up file is stored as a sequence of segment
// members; each segment holds whole units, each unit being a chunk record
// (file index, offset, length, CRC-32C) followed by one frame of the set's
// codec. The codec CLIs skip the records, so
//
//	tar -xf SET && cat databases/Mailbox1.edb.zst.part* | zstd -d > Mailbox1.edb
//
// restores a file without tapestream.
//
//	volume n (a complete pax archive, written in records of RecordSize)
//	+-------------------------------------------------------------------+
//	| tapestream/label.json            label: set id, volume n, codec.. |
//	| databases/Mailbox1.edb.zst.part000001   segment member            |
//	|   +-- pax header "comment" = member record (JSON, CRC-32C),       |
//	|       on a file's first member with its file-info                 |
//	|   +-- data: [file-info frame] unit | unit | unit ...              |
//	|         unit = [skippable frame: chunk record] [zstd frame]       |
//	|         chunk record: file, offset, length, CRC-32C, set tag      |
//	| databases/Mailbox1.edb.zst.part000002                             |
//	| ...                                                               |
//	| logs/E0000000A3.log.zst.part000001                                |
//	| tapestream/manifest.json         last volume only                 |
//	| two zero blocks (tar EOF), zero padding to the end of the record  |
//	+-------------------------------------------------------------------+
//
// Writing: NewWriter, Begin(Label), then per file BeginFile, WriteFrame
// (units from codec.Encoder, in file order) and EndFile, or CreateFile for
// a self-encoding io.WriteCloser; Close writes the manifest and trailer. The
// Writer keeps at most about two segments plus one record in memory. Given
// a VolumeWriter it follows the early warning / end of medium protocol
// described there, starting each volume with its own label and rewriting
// an interrupted member whole on the next volume.
//
// Reading: NewReader reads the label; Next moves from file to file;
// NextChunk returns verified chunks (Read gives the file in order and fails
// on a gap). The Reader verifies every metadata checksum (member records,
// label, chunk records with their set tag, file-info, manifest), every
// chunk's CRC-32C and each file's digest (BLAKE3; SHA-256 in the first sets
// written) against the manifest, validates names and caps sizes. In
// salvage mode (default) damage is skipped, resynchronising at the next
// unit or member; a file is identified from any of its member records, its
// file-info or the manifest, so a damaged label, header or manifest costs
// only itself; Damage reports exactly which byte ranges of which files
// were lost, and Warnings what cost nothing (data after the set, a second
// set, duplicated members). With ReaderOptions.Strict the first damage is
// a *FormatError. Memory is bounded by ReaderOptions whatever the set
// holds.
//
// Encryption (FORMAT.md 5.3): with WriterOptions.Recipients each segment's
// data is one age file (tar + age -d + zstd -d recover it), sealed a MiB
// at a time as the segment fills; header snapshots and file
// digests are sealed too. A Reader with ReaderOptions.Identities decrypts
// each 64 KiB chunk on its own, on several cores, so damage still costs
// only what it covers; a wrong identity is a *KeyError. Without an
// identity it reads the set sealed: structure and ciphertext checksums,
// no contents.
package tapeformat
