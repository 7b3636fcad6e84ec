// Package memengine is the in-memory engine.Engine: shard logs and the
// catalog live in the process's memory and nothing is durable. It serves
// tests and `shoal server --storage memory`, and passes engine/enginetest.
//
// # Positions and time
//
// A log's positions are Position{Offset: batch sequence number, Index:
// record in the batch}. Sequence numbers start at 1 and grow by one per
// Append; they are never reused, also after TrimBefore. End is
// Position{Offset: next sequence number}. Append copies the records' data
// (one buffer per batch), and Read copies it out again (one buffer per
// Read), so callers may reuse their buffers and keep what they read. A
// batch arrives at max(Config.Now(), the previous batch's arrival) in unix
// milliseconds.
//
// Read takes at most maxRecords records and, after the first, at most
// maxBytes bytes of partition keys and data, filling both limits as far as
// the next record allows; a limit <= 0 means none. SeekTime binary-searches
// the batches' arrival times. TrimBefore drops the oldest whole batches
// that arrived before its cutoff and returns how many it dropped. Sync does
// nothing, and Close of the engine drops everything.
//
// # Locks
//
// There are three kinds of lock, and no code holds two at once, so there
// is no lock order to keep:
//
//   - Engine.mu guards the engine's closed flag and its map of logs.
//     DeleteLog and Close take a log out of the map under it, then mark the
//     log dead under the log's own lock after releasing Engine.mu.
//   - Each log's mu (a sync.RWMutex) guards its batches, sequence numbers,
//     last arrival, sealed and dead flags and Changed channel. Append,
//     Seal, Unseal, TrimBefore, Changed and marking dead hold it
//     exclusively; Read, SeekTime, Info and Sync hold it shared. Append
//     copies the data before it takes the lock and only assigns the
//     position and arrival and adds the batch under it, so Seal, which
//     takes the lock exclusively, returns only after every Append in
//     flight, and every later Append sees the seal. Read copies the data
//     out under the shared lock.
//   - The catalog's mu guards its records, the account and the version
//     counter. Stored records are never changed in place (a put stores a
//     fresh deep copy), so Stream and Streams copy them after releasing the
//     lock. Versions come from one counter for all records, so a version
//     is never handed out twice.
//
// A handle's closed flag is atomic. Changed returns a channel that the
// next change closes; it is made only when somebody asks for it, so
// appends that nobody waits for do not allocate one.
package memengine
