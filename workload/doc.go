// Package workload is tapestream's deterministic mail workload and its
// verifiable model. It is used by the crash tests, the backup/restore
// consistency tests, `tapestream store load` and `tapestream store check`.
//
// Everything the workload writes is a pure function of the parameters
// (Workload: Seed, Streams, Databases, Version) and of each stream's
// committed sequence number. The parameters are written by the very first
// transaction, and every transaction writes its stream's sequence number in
// the same transaction as its data, so a checker can rebuild the exact
// expected contents from the store alone (Verify). Equality with the model
// at the stored sequence numbers proves that no transaction is partially
// visible (atomicity) and, combined with the acknowledgements a crash test
// collected (VerifyAtLeast), that acknowledged commits survived (durability).
//
// # Engine interface
//
// The engine is adapted to Store/Tx: Update runs a function in one
// transaction (error → rollback), View runs a read-only one, Tx has Get, Put,
// Delete and an ordered Scan. MemStore is a map-based reference
// implementation. The workload only deletes keys that exist as seen by the
// transaction, may write the same key several times in one transaction
// (e.g. insert then delete a message), and never reads inside Update except
// for the parameters. Values range from 8 bytes to 4 MiB. Update's function may be
// called more than once (e.g. retried by the engine): the writes are
// computed beforehand.
//
// # Streams
//
// A workload has Streams independent streams (1..9999). Stream s owns every
// key starting with "sSSSS/" (SSSS = s, 4 decimal digits) plus its sequence
// key, so streams never conflict and can run concurrently (group commit)
// while the result stays reproducible. Transaction seq (1, 2, …) of stream s
// is decided by a PRNG seeded from (Seed, s, seq) and the stream's model
// state after seq-1, which is itself a deterministic function; Run resumes a
// stream by reading its committed seq and replaying the (content-free) model
// decisions up to it.
//
//   - seq 1 creates the stream's 8 folders in every database (Inbox, Sent
//     Items, Deleted Items, Drafts, Archive, …; "Public Folders/…" in the
//     other databases).
//   - every later transaction performs 1 operation (7/8) or 2–4 (1/8),
//     each: insert 55 %, flag change 20 %, move 10 %, delete 15 % (insert if
//     the stream has no live message).
//   - insert: allocate the next message number m; the message goes to
//     Databases[0] (85 %: Inbox 60 %, Sent Items 20 %, Drafts 3 %, custom
//     folders 17 %) or to a public database (15 %, any public folder);
//     writes the message, its separately stored attachments and the folder
//     index entry.
//   - flag change: toggle one flag bit of a live message (index entry put).
//   - move: delete the index entry and put one in another folder of the
//     same database.
//   - delete: delete the message, its attachments and its index entry.
//   - every transaction also puts the stream's seq key.
//
// # Key layout
//
// Every database in Workload.Databases (default "Mailbox1", "Public") has
// the tables below; numbers are zero-padded decimal so keys sort by stream,
// then message number.
//
//	table        key                        value
//	messages     sSSSS/MMMMMMMMMMMM         RFC 5322 / MIME message text
//	attachments  sSSSS/MMMMMMMMMMMM/KK      raw attachment bytes (KK = 0..)
//	folders      sSSSS/fFF                  folder definition "name=…;id=FF;stream=SSSS"
//	folders      sSSSS/fFF/MMMMMMMMMMMM     index entry, 24 bytes big-endian:
//	                                        msg u64, receive time u64 (unix),
//	                                        flags u32, folder u8, #attachments u8, 2 zero bytes
//
// Databases[0] additionally has
//
//	meta         params                     JSON Workload {"version","seed","streams","databases"}
//	meta         stream/SSSS                committed seq of stream SSSS, u64 big-endian
//
// A stream without a seq key has committed nothing (seq 0) and owns no keys.
//
// # Content model
//
// Generator produces message m of stream s from (Seed, s, m) only, so a
// message can be regenerated at any time (Verify does so instead of keeping
// values or hashes in memory: the model holds ~32 bytes per live message).
//
//   - Headers: 3–6 Exchange-style Received lines, Authentication-Results, a
//     DKIM-Signature with base64-looking bh= and b= values, From/To/CC
//     drawn from name and domain lists, Subject (RE: … for replies),
//     Thread-Topic/Thread-Index, Date, random Message-ID, References and
//     In-Reply-To for replies, X-MS-Exchange-* headers with GUIDs.
//   - Body: multipart/alternative with a text/plain part and an HTML
//     rendering (Word-style HTML head and paragraphs) of the same text. The
//     own text is a greeting, 1–5 paragraphs of sentences, a signature and
//     one of three corporate disclaimers (chosen by sender domain). Half of
//     the sentences are stock business phrases ("Please let me know if you
//     have any questions."), the others are words drawn with Zipf frequency
//     (s=1.05) from a 2000-word vocabulary (common English and business
//     words plus derived forms).
//   - Replies (75 %) quote 1–3 earlier messages of the same stream (each
//     within the previous 4 messages, so the repeat is within a 64 KiB
//     window), regenerating their text exactly and prefixing lines with "> "
//     per quote level; the HTML part repeats them in nested blockquotes.
//   - Attachments: 10 % of messages (a Beatty sequence per stream) carry a
//     primary attachment of random binary data with a Pareto(α=1.5) size
//     from 10.8 KB up to 4 MiB (Weyl-sequence quantiles, so a few hundred
//     consecutive attachments already follow the distribution). Small ones
//     (<= 64 KiB) are base64-inlined in a multipart/mixed body 15 % of the
//     time; the others are stored raw in the attachments table and
//     referenced by an X-Tapestream-Attachment part. 10 % of those messages
//     also carry 1–2 small inline images (2–18 KiB, base64).
//
// The mix is tuned so that a large corpus (Generator.WriteCorpus) compresses
// about 3x with `zstd -1` and about 2.6x with `lz4 -1` (measured over
// 256 MiB: 3.10–3.14 and 2.55–2.58; over 64 MiB samples 3.0–3.3 and
// 2.5–2.7 depending on the seed; see TestCompressionRatio). Roughly 20 % of
// the bytes are incompressible attachment data. Changing any of this changes the stored bytes and
// requires bumping Version.
package workload
