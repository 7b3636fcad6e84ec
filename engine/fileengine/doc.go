// Package fileengine is shoal's default storage engine (an engine.Engine):
// shard logs are the segmented, checksummed logs of internal/storage, one
// directory per shard, and the catalog is one small JSON file per stream.
//
// # Layout
//
// Under Config.Dir:
//
//	streams/<stream id>/shardId-%012d/   one shard log (LogID{stream id, index}):
//	    00000000000000000000.log ...     its segment files (see internal/storage)
//	catalog/streams/<hex(name)>.json     {"version":N,"stream":<engine.StreamMeta>}
//	catalog/account.json                 {"version":N,"account":<engine.AccountMeta>}
//
// Stream names are hex-encoded because they may be "." or "..". A name
// longer than 125 bytes, whose hex would pass the 255-byte limit of a file
// name, is stored as h-<hex(sha256(name))>.json instead; the name itself is
// always inside the file. Every catalog write writes a temporary file in the
// same directory, fsyncs it, renames it over the record and fsyncs the
// directory; a delete removes the file and fsyncs the directory. The shard
// log layout is the one servers used before the engine seam, so existing
// data directories keep working.
//
// # Laziness and the open-file bound
//
// After a clean Close (which leaves the file clean-shutdown in Dir), Open
// reads the catalog (one small file per stream) but opens no shard log, so
// its time grows with the number of streams, not of logs. After an unclean
// end (a crash, kill -9, power loss; or the first start on a data directory)
// Open first recovers every log, cutting torn tails, before it returns: a
// slower start, only after a crash. A log is opened, with
// its crash recovery scan, on its first use through any handle; OpenLog
// itself touches nothing on disk. At most Config.MaxOpenLogs storage logs are
// open at once (each holds a descriptor per segment): opening one more first
// closes the least recently used logs not in use. The bound is exceeded only
// while more logs than that are in use at the same instant. A janitor closes
// logs unused for Config.IdleTimeout. A closed log reopens transparently on
// its next use; the seal flag, a pending trim and the Changed channel live
// outside the storage log and survive. Entries returned by Read are copies
// (storage.Log.Read copies records out of its scratch buffers), so closing a
// log never invalidates them.
//
// TrimBefore on a log that is not open does not open it: it remembers the
// cutoff (the latest wins), returns 0, and the trim happens when the log is
// next opened. A retention pass over many idle logs thus opens none of them.
//
// Seal is an in-memory flag: after a restart every log is unsealed (the
// server keeps closed shards in its catalog and fences them itself).
//
// # Durability
//
// Config.Fsync selects the storage mode. In FsyncAlways mode Append returns
// once its batch is on stable storage, concurrent appenders sharing
// fdatasyncs. In FsyncInterval mode a goroutine syncs every open log each
// Config.FsyncInterval, and closing a log syncs it. In FsyncNever mode
// nothing is synced but by Log.Sync and Engine.Close, which reach only the
// logs open at the time: a log closed for idleness is left to the kernel's
// write-back. A catalog change is durable when it returns.
//
// # Migration
//
// Servers before the engine seam kept all metadata in Dir/meta.json. When
// Open finds that file it writes every stream in it as a catalog record of
// version 1 and the secret and commitment settings as the account record of
// version 1, removes stream records meta.json does not name, fsyncs, and
// only then removes meta.json. A migration interrupted by a crash runs again
// from the start on the next Open.
//
// # Locks
//
// Engine.mu guards the map of log states (and their counts of DeleteLog
// calls in progress) and the set of open logs; it is held briefly and never
// while waiting for another lock. Engine.dirMu orders creating shard
// directories against removing empty stream directories. Each log state has
// sealMu (appenders hold it for reading across their seal check and Append;
// Seal and Unseal for writing), mu (guards the storage log and the pending
// trim; held while opening or closing the storage log and briefly by every
// operation to count itself a user) and notifyMu (guards the Changed
// channel). The order is sealMu, mu, Engine.dirMu, Engine.mu; notifyMu is
// taken alone. Eviction, which runs while the opener holds its own mu, only
// TryLocks other logs' mu, so no goroutine ever waits for a second log's mu.
// In the catalog, each stream name's entry has a mutex held by a writer
// across its compare-and-set and file write, then the catalog mutex briefly
// to publish; readers take only the catalog mutex, so reads and writes of
// other names never wait for an fsync.
package fileengine
