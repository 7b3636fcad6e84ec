// Package storage is shoal's storage engine: a durable, segmented,
// append-only log holding one Kinesis shard's records.
//
// # Files
//
// A Log lives in one directory. Its data is a sequence of segment files, each
// named by the 20-digit zero-padded decimal logical offset of its first byte,
// for example 00000000000000000000.log and 00000000000067108880.log. Logical
// offsets count bytes across the whole shard log (segment base + position in
// the file) and stay below MaxOffset (2^56). When the active (last) segment
// would grow past Options.SegmentBytes, it is rolled: a batch never spans
// segments, and a batch larger than SegmentBytes gets a segment of its own.
// Files whose names are not segment names are ignored.
//
// # Batch format
//
// Each Append writes one batch; all integers are little-endian:
//
//	offset size field
//	     0    2 magic "SL" (0x53 0x4C)
//	     2    1 version (1)
//	     3    1 flags (0; anything else is rejected)
//	     4    4 length: u32, the whole batch including this header
//	     8    4 CRC-32C (Castagnoli) of bytes [12, length)
//	    12    2 record count: u16, 1..65535
//	    14    8 arrival time: i64 unix milliseconds, shared by all records
//	    22    . records, count times:
//	            uvarint partition key length, key bytes,
//	            uvarint data length, data bytes
//
// The records must exactly fill length. A record's Position is the logical
// offset of its batch's first byte plus its index in the batch; positions
// order by (Offset, Index). Arrival times never decrease within a log: each
// batch gets max(now, previous arrival).
//
// # Durability
//
// In FsyncAlways mode (the default) Append returns only after its batch is on
// stable storage (fdatasync). Concurrent appenders share syncs (group
// commit): each writes its batch with pwrite under the log mutex, then waits
// until the durable end covers it; if no sync is in flight it becomes the
// leader and calls fdatasync without holding the mutex, so appends continue
// and the next sync covers them all. Readers see only durable data. If a
// write fails, the partial batch is truncated away and the error returned.
// If fdatasync fails, every batch not yet durable is reported failed to its
// appender and truncated away; nothing is acknowledged that is not durable,
// and the log remains usable.
//
// In FsyncInterval mode Append returns after write(2) and readers see written
// data at once; the owner calls Sync periodically, so a crash loses at most
// the writes since the last Sync. FsyncNever is the same without the syncs
// that interval mode still does by itself (on segment roll and Close); data
// reaches the disk when the kernel writes it back.
//
// A segment roll (in FsyncAlways and FsyncInterval modes) syncs the old
// segment and fsyncs the directory after creating the new file, so the new
// file's name is durable before any record in it is acknowledged.
//
// # Recovery
//
// Open scans every segment in order with large sequential reads, validating
// each batch: magic, version, flags, length bounds, CRC-32C and record
// framing. At the first invalid or incomplete batch (a torn write, garbage or
// a zero-filled tail) the segment is truncated there, with a warning logged.
// Later segments are kept: logical offsets are stable, so a damaged older
// segment just leaves a gap that reads skip. Open rebuilds the in-memory
// sparse index (one entry per ~4 KiB of each segment, mapping offset to
// arrival time) used by Read to find batch boundaries and by SeekTime.
//
// # Concurrency
//
// All methods are safe for concurrent use. One mutex guards the log's
// in-memory state; it is held to encode and write a batch and briefly by
// readers to locate data, never during reads of file data or group-commit
// fdatasyncs. Segment files are reference counted, so TrimBefore and Close
// never pull a file out from under a reader.
package storage
