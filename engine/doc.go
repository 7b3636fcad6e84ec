// Package engine is the storage seam of the shoal server: the interfaces
// every storage engine implements, in the spirit of hashicorp/raft's
// LogStore and nats-server's StreamStore.
//
// An Engine holds shard logs and a Catalog. A Log is one shard's ordered,
// append-only records: Append returns positions, Read reads from a position
// within count and byte limits, SeekTime finds the first record at or after
// a time, Info reports the trim horizon and end, Changed wakes readers after
// an append, and Seal fences the log when a reshard closes its shard. The
// Catalog keeps one record per stream (settings, shards with their lineage,
// consumers) and an account record, each changed only by compare-and-set on
// its version.
//
// The server's API code talks only to these interfaces. Sequence numbers and
// shard iterators carry the positions an engine hands out, never a file
// layout. The engines shipped with shoal are:
//
//   - engine/fileengine: segmented, checksummed logs on local disk with group
//     commit and crash recovery; the catalog is one small file per stream.
//     The default.
//   - engine/memengine: everything in memory, nothing durable; for tests and
//     `shoal server --storage memory`.
//   - engine/natsengine: replicated JetStream streams and a KV bucket on a
//     NATS cluster that any number of shoal servers share
//     (`shoal server --storage nats`).
//
// engine/enginetest is the conformance suite: every engine must pass it.
//
// # How the server uses an engine
//
// A control-plane change is durable before it is visible: to split a shard
// the server creates the children's logs, seals the parent, stores the new
// stream record with PutStream, and only then lets readers and writers see
// the children. If PutStream fails it unseals the parent and deletes the
// children's logs, and the call fails as a whole. When it starts, the server
// deletes every log (from Engine.Logs) that no stream record names.
//
// An engine whose catalog other servers share implements CatalogWatcher:
// the server then follows the others' changes, answers a change that lost
// the compare-and-set with ResourceInUseException, never deletes logs its
// own view does not name, and, where Unseal fails with ErrIrreversible,
// finishes a reshard whose catalog write failed after the seal instead of
// rolling it back.
package engine
