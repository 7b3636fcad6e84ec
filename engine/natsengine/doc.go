// Package natsengine is the NATS JetStream engine.Engine: shard logs are
// replicated JetStream streams and the catalog is a KV bucket, so that any
// number of stateless shoal servers can share one NATS cluster. It passes
// engine/enginetest with Harness.IrreversibleSeal set, and implements
// engine.CatalogWatcher so that a server follows the catalog changes of the
// others.
//
// # Mapping
//
// With Config.Prefix P (default "SHOAL") and p its lower case:
//
//	log LogID{S, n}  JetStream stream P_S_n, subject p.d.S.n: file storage,
//	                 Config.Replicas replicas, AllowDirect, Discard Old,
//	                 DenyDelete, no MaxAge (the server trims with TrimBefore),
//	                 a 2-minute duplicate window; metadata shoal.log = "S/n",
//	                 shoal.prefix, shoal.create (a nonce) and, from
//	                 engine.WithLabels, shoal.kinesis.stream and
//	                 shoal.kinesis.shard, so that `nats stream ls` maps to
//	                 Kinesis
//	change notices   core NATS on p.n.S.n ("a <seq>", "s <end>", "d")
//	catalog          KV bucket P_META (stream KV_P_META, one revision kept):
//	                 key "account" and "stream.<hex(name)>" (names hold '.',
//	                 a KV token separator), JSON values
//
// S, the stream's incarnation id, may hold only [A-Za-z0-9_-]. An Append is
// one message whose payload is the checksummed batch encoding of
// internal/storage (CRC-32C, record count, arrival time, records): the CRC
// travels end to end, and a batch failing it on read is engine.ErrCorrupt.
// A position is Position{Offset: the JetStream sequence, Index: the record
// in the batch}; End is Position{LastSeq+1, 0}.
//
// # Appends
//
// A batch arrives at max(Config.Now(), the newest arrival this process has
// stamped or read in the log) in unix milliseconds (on first use of a log
// the newest batch's arrival is read once). An appender holds the log's
// publish mutex while it stamps the time and writes the message, so one
// process's batches are stored in arrival order. Arrival times never
// decrease within a log written by one process at a time; two processes
// whose clocks disagree, or a publish retried after its first send was
// lost while later ones landed, can store a batch with an earlier arrival
// after a later one. SeekTime and TrimBefore then treat the log as sorted
// (approximate, as Kinesis calls arrival times).
//
// Every Append carries a fresh Nats-Msg-Id and Nats-Expected-Stream. On a
// timeout, no responders (a leader election) or a broken connection it
// sends the same message again, with backoff, for up to four
// RequestTimeouts or until ctx ends: JetStream stores it at most once within
// the duplicate window, and the duplicate's ack carries the original
// sequence, so the outcome becomes known. If it does not, Append fails (it
// never reports success without an ack; the batch may or may not be
// stored, as with Kinesis). Error 10109 is engine.ErrSealed; if an earlier
// send's outcome was unknown when the seal refused a resend, Append looks
// for its Nats-Msg-Id in the sealed stream first. A batch larger than the
// connection's max_payload (less header room) fails with
// engine.ErrInvalidBatch before anything is sent. After the ack Append
// publishes a notice so that other processes' readers wake.
//
// # Reads
//
// Read uses batched Direct Get (JetStream's $JS.API.DIRECT.GET with seq,
// batch, max_bytes and next_by_subj), which the nearest replica answers.
// A follower may lag the leader by the last few acknowledged messages, so
// when the replica runs out before the highest sequence this process knows
// to be stored (its own acks, notices, the leader's stream info), Read gets
// the rest from the leader with the STREAM.MSG.GET API: a process always
// reads its own writes and whatever woke its readers. Read skips records
// before from.Index in the first batch, takes at most maxRecords records
// and, after the first, maxBytes bytes of keys and data (a limit <= 0 is
// none), and never returns records below the lowest sequence this process
// knows retained (a follower may not have applied a purge yet). Info,
// SeekTime and TrimBefore read the leader's stream info and batches through
// the leader. SeekTime checks the oldest batch first (the common case) and
// otherwise binary-searches sequences; TrimBefore purges up to the first
// batch that arrived at or after its cutoff, never the newest batch, and
// reports how many messages went. A sealed stream refuses purges:
// TrimBefore removes nothing from it (the server deletes an expired sealed
// log whole).
//
// # Seal
//
// Seal updates the stream's config to Sealed, which JetStream makes
// irreversible: Unseal fails with engine.ErrIrreversible and changes
// nothing. If the update fails (a lost reply may still have been applied,
// and resending the old config is then refused with 10052) Seal reads the
// stream's actual config before it tries again. Publishes the leader
// accepted just before the seal can still commit after the update returns,
// so Seal then waits until the stream has settled: two stream infos from the
// leader 50 ms apart with the same last sequence and leader, and every
// online replica current (after the retry budget, lagging replicas are no
// longer waited for). It returns End = LastSeq+1, and is idempotent.
//
// # Changed
//
// A log's Changed channel closes at the next append, seal or deletion this
// process sees: its own, another process's notice of a sequence beyond the
// highest it knows, or the poll. The poll (every Config.PollInterval, only
// for logs somebody waits on) asks the leader for the stream's last
// sequence, seal and existence, so a lost notice delays a waiter by one
// interval. The engine has one wildcard subscription for all notices.
//
// A log is deleted for this process when it deletes it, when another
// process's deletion notice arrives, or when JetStream has answered "stream
// not found" for it for 30 seconds without a success in between; a shorter
// run of such answers (a cluster restarting answers so for streams it has
// not recovered yet) fails operations with an ordinary error, not
// engine.ErrClosed, so that the server does not report the stream deleted.
//
// # Catalog
//
// Versions are KV revisions (stream sequences): they never repeat. Reads
// go through the bucket stream's leader (STREAM.MSG.GET; the engine creates
// the bucket's stream with AllowDirect off), so a read after a write sees
// it. Streams walks the stream keys in sequence order, one request per
// record. A write publishes with Nats-Expected-Last-Subject-Sequence (the
// compare-and-set: expect 0 creates, over a delete marker if need be) and a
// Nats-Msg-Id; on ambiguous failures it reads the key back and sends again
// with the same id (an earlier send that was stored answers as a
// duplicate), so an error means nothing changed. Only when JetStream
// cannot be reached until ctx ends, the engine closes or the duplicate
// window passes does a write fail with an error that does not say (it
// wraps "outcome unknown"). DeleteStream writes a delete marker.
// Limitation: PutStream with expect equal to the revision of a delete
// marker (which no call returns) is taken as a match. WatchCatalog follows
// the bucket with a KV watch (an ordered consumer) of stream keys.
//
// # Required NATS server configuration
//
//   - nats-server 2.12.3 or newer (Open refuses older servers; it can check
//     only the server it connects to, and logs an error when a reconnect
//     lands on an older one).
//   - sync_interval: always on every server, so that an acknowledged
//     append is on disk on a quorum. A client cannot check this setting
//     (only the servers' monitoring endpoints report it); Sync is a no-op.
//   - max_payload of at least 8MB, so that a 5 MiB PutRecords batch fits
//     in one message (Open logs a warning below 8MB).
//   - Three servers and Replicas 3 (the default): one server may fail.
//
// # Limits
//
//   - A follower nearest to a reader serves its Direct Gets; while it lags
//     (after a restart it serves once 90% caught up), the part of the tail
//     this process knows of comes from the leader one message per request.
//     A reader in another process that has not heard of the newest batches
//     may not see them yet (it never skips any: the next read gets them).
//   - Every Engine of a prefix receives every change notice of the prefix;
//     the poll asks for one stream info per waited-on log per interval;
//     Streams makes one request per record.
//   - Arrival times are monotonic per log only as far as one process stamps
//     them (see Appends).
//   - Only the connected server's version is checked, and sync_interval
//     cannot be checked at all.
//
// # Locks
//
//   - Engine.mu guards the map of logs, the closed flag's changes and the
//     reconnect channel; it is held briefly and never while taking another
//     lock.
//   - Engine.replyMu guards the map of reply subjects of publishes and
//     Direct Gets in flight; taken alone.
//   - A log's pubMu is held by an appender across stamping the arrival time
//     and writing the message to the connection (not while waiting for the
//     ack); it is taken before the log's mu.
//   - A log's mu guards what the process knows of the log (highest and
//     lowest known sequences, arrival times, sealed and dead flags, the
//     Changed channel); held briefly, never while calling NATS.
//
// Every goroutine the engine starts (the poller, one per catalog watch) is
// stopped by Close, which then drains the connection.
package natsengine
