// Package server serves an open store over HTTP: the backup API (so that
// `tapestream backup --server URL` streams from a store another process
// keeps serving, as an Exchange backup application talks to STORE.EXE over
// RPC), a small data API (the mail workload runs remotely through it), and
// health and metrics endpoints. storeapi.Remote is its client.
//
// # Protocol
//
// net/http: HTTP/1.1, or HTTP/2 over TLS (ALPN; the server speaks both).
// storeapi.Remote uses HTTP/1.1 unless asked for HTTP/2: measured over
// loopback TLS with zstd on 2 cores, HTTP/1.1 streamed 82-84 MiB/s and Go's
// HTTP/2 57-59 MiB/s (16 KiB frames through one writer goroutine and flow
// control), and a backup reads one file at a time anyway. Control calls
// are JSON; a file is streamed as a sequence of binary frames in one
// response, so a backup costs one round trip per file, not per chunk:
//
//	GET  /healthz                          "ok" (no authentication)
//	GET  /metrics                          Prometheus text format
//	GET  /v1/groups                        []engine.GroupInfo (Prepare)
//	GET  /v1/groups/{g}                    storeapi.GroupStatus (size, checkpoint, log generation, commit pressure)
//	GET  /v1/groups/{g}/pressure           engine.Pressure (commit latency and queue; polled by paced backups)
//	GET  /v1/groups/{g}/logs               engine.LogReport (what keeps each log generation, what a backup now truncates)
//	POST /v1/groups/{g}/databases/{db}/mount|dismount
//	                                       engine.GroupInfo after Group.Mount/Dismount (kept in group.json;
//	                                       -505 during a backup, 409 "busy" during a restore of the group)
//	POST /v1/groups/{g}/backup             storeapi.BeginRequest → storeapi.BeginResponse (BackupSetup)
//	GET  /v1/sessions/{id}/files           storeapi.FilesResponse (database and streaming files)
//	GET  /v1/sessions/{id}/files/{name}    frame stream (OpenFile + Read… + Close)
//	POST /v1/sessions/{id}/logs            storeapi.FilesResponse (forced rollover, log list)
//	POST /v1/groups/{g}/truncate           TruncateRequest → TruncateResponse (a later truncation
//	                                       after a verified set: engine.Group.TruncateAfter)
//	POST /v1/sessions/{id}/end             storeapi.EndRequest (InstanceEnd + End; success=false aborts)
//	POST /v1/sessions/{id}/abort           AbortRequest
//	POST /v1/sessions/{id}/keepalive       resets the idle timer
//	GET  /v1/sessions/{id}/hold            held open for the session's life: a client whose
//	                                       connection closes has its session aborted at once
//	POST /v1/groups/{g}/get|scan|commit    data API (storeapi.GetRequest, storeapi.ScanRequest, storeapi.CommitRequest)
//	POST /v1/restore                       storeapi.RestoreRequest → storeapi.RestoreResponse (see below)
//
// A frame is a type byte, a 4-byte big-endian length and the payload:
// 'S' (JSON storeapi.FileStart: file, fixed size, header snapshot), then one 'D' per
// 64 KiB chunk as the engine read and verified it, then 'Z' (8-byte total)
// or 'E' (JSON error: the session failed mid-file, e.g. -1018, or the
// server is shutting down). The server reads the next chunks ahead while
// one is on the wire; TCP flow control is the backpressure. The client
// verifies every database page's checksum again after the network, and
// the pipeline verifies the logs record by record.
//
// Every failure is a JSON body {"error": {"kind", "code", "group",
// "message", "page"}}: kind "ese" carries the ESE code (-505 when the group
// is busy, with status 409) and the client rebuilds an *engine.ESEError, so
// errors.Is(err, engine.ErrBackupInProgress) and the CLI's exit codes work
// as in process; kind "page" rebuilds a *page.PageError.
//
// # Security
//
//   - The CLI listens on 127.0.0.1:7420 by default.
//   - With Config.Token every request but /healthz must carry
//     "Authorization: Bearer TOKEN" (compared in constant time). Without a
//     token everything but /healthz is refused, unless Config.NoAuth is set
//     (`store serve --insecure-no-auth`, meant for loopback tests); the CLI
//     refuses to start with neither.
//   - TLS (with HTTP/2) and optional client certificates (the CLI's
//     --client-ca requires and verifies them).
//   - A session id is a 128-bit random secret bound to the identity that
//     opened it (TLS client certificate, else the bearer token, else the
//     peer address); another identity gets 403. A session aborts (checkpoint
//     unfrozen, nothing truncated, headers untouched) when its client goes
//     away during a file stream, or when no call or keepalive arrives for
//     SessionIdleTimeout (default 60 s; clients send keepalives every third
//     of it).
//   - Bodies are bounded (1 MiB control, 96 MiB commit) and decoded
//     strictly; group, database and table names, keys and file names are
//     validated; a file name only selects one of the session's own files, so
//     no request path ever reaches the file system.
//   - Several sessions on different groups run in parallel; a second
//     session on a busy group gets -505 at once.
//
// Restore: with Config.RestoreDir (`store serve --restore-dir DIR`), POST
// /v1/restore restores sets already on the server host (paths relative to
// DIR, resolved through os.Root so nothing outside it is reachable) into a
// new recovery storage group: staged and recovered by restore.RunChain in
// a private directory under the store root, moved into place, mounted and
// served (data API, backups) until shutdown. With Replace it restores into
// a live group: sets of the group's log stream replace the databases they
// hold while the group runs on (restore.GroupOptions.Live: they are
// dismounted, recovered through the group's logs to the point of failure,
// mounted again; the others keep taking mail); sets of another stream
// replace the whole group (detached, restored, attached again). Restores of
// different groups run at the same time, one per group (409 "busy"); a
// refused rollback is 409 "rollback".
//
// Shutdown refuses new requests (503), aborts every session (a client in
// the middle of a file gets an 'E' frame of kind "shutdown") and waits for
// in-flight requests; the caller then closes the engine cleanly.
package server
