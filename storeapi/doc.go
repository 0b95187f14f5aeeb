// Package storeapi is the wire protocol of `tapestream store serve` and its
// clients: the frames and JSON bodies both sides speak, the errors as they
// cross the wire, the Remote source (a source.Source over the server's
// backup API), the data API client (a workload.Store) and the restore RPC.
// Package server implements the other side and imports this one; nothing
// else speaks the protocol.
//
// The protocol itself (routes, frames, sessions) is drawn in the package
// documentation of server.
package storeapi
