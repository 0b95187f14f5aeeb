// Package engine is the embedded ESE-style transactional storage engine
// tapestream backs up: storage groups (ESE instances) of page-based
// databases with one write-ahead log stream each, crash recovery, and the
// online streaming backup API as Exchange's STORE.EXE exposes it.
//
// # A store on disk
//
//	STORE/                      the store root (engine.Server), up to 16 groups
//	├── LOCK                    exclusive: one process has the whole store open
//	│                           (its pid inside); shared: commands on single groups
//	├── SG1.lock                the one command working on group SG1 (lock.go)
//	└── SG1/                    a storage group (engine.Group)
//	    ├── group.json          identity: name, instance id 0-15 (log prefix E0n),
//	    │                       signature of its log stream, databases and their
//	    │                       ids, which of them are dismounted (mount.go)
//	    ├── E00.chk             checkpoint: oldest log position recovery needs
//	    ├── E00.log             the current log generation
//	    ├── E0000000001.log …   closed generations (package wal draws them)
//	    ├── Mailbox1.edb        a database: 4 KiB pages (package page draws one);
//	    │                       pages 0-1 hold two copies of its header (DBHeader)
//	    └── Mailbox1.stm        its optional streaming file, same page format
//
// # Writes, checkpoint, recovery
//
// A transaction (Group.Update, Tx) is logged before any page changes
// reach a database file: its page operations and a commit record go to the
// log, and Commit returns once the log is durable (concurrent committers
// share an fsync). Dirty pages stay in the buffer cache and are written by
// the flusher; the checkpoint advances to the oldest log position a dirty
// page still needs. OpenGroup replays the log from the checkpoint (redo is
// idempotent: a record applies only to the page version it followed, by
// dbtime; splits, merges and new pages are logged as whole page images).
//
// # Backup API (backup.go, session.go, truncate.go)
//
//	Prepare → BackupSetup(type) → per database file OpenFile/Read/Close
//	        → GetLogAndPatchFiles (forced rollover) → per log OpenFile/Read/Close
//	        → GetTruncateLogFiles/TruncateLog (full, incremental) → InstanceEnd → End
//
// One backup session per group at a time (-505 for a second). A full or
// copy backup freezes the checkpoint, so that the logs in the set rebuild
// whatever page versions the copy read; pages are read in 64 KiB chunks
// and each is verified (package verify) with retries before it is handed
// out. The backup types, and what each copies and truncates, are package
// ese's; the truncation rule (which logs a full or incremental deletes) is
// stated once, in truncate.go. Every error of the API carries its ESE code
// (errors.go).
//
// # Restore
//
// A restore (package restore) lays database files and logs down in a
// staging directory; MarkRestored records the set's log range in each
// header (Patch Current Full Backup), and OpenGroup with RestoreLogDirs
// runs hard recovery through them, then through the group's own later
// logs when they continue the sequence. A restore of some databases of a
// group recovers them in a restore environment (a staging directory whose
// group.json lists them alone, the others absent) through the set's logs
// and the group's own, and replaces their files in the group directory
// (dbswitch.go) while the group keeps the others; the restored files record
// where they join the group's log (DBHeader.Attach), and recovery never
// applies an earlier record to them.
package engine
