// Package server is shoal's Kinesis Data Streams endpoint: it speaks the
// Kinesis wire API (AWS JSON 1.1 and AWS CBOR 1.1 over HTTP/1.1 and cleartext
// HTTP/2, or TLS) so that the unmodified AWS SDKs and CLI work against it, and keeps
// its streams in a storage engine: by default every shard as a durable,
// segmented, append-only log on local disk.
//
// A minimal program:
//
//	srv, err := server.New(server.Config{DataDir: "./shoal-data"})
//	if err != nil { ... }
//	ln, _ := net.Listen("tcp", "127.0.0.1:4567")
//	go srv.Serve(ln)
//	defer srv.Shutdown(context.Background())
//
// and any Kinesis client with its endpoint set to http://127.0.0.1:4567.
//
// # Guarantees
//
// With the default file engine and Config.Fsync (FsyncAlways) a PutRecord or
// PutRecords entry is acknowledged only after the records are on disk
// (fdatasync); concurrent writers share each sync (group commit). An
// acknowledged record survives a crash, kill -9 or power loss; a record whose
// call failed may or may not be present, and is never duplicated by the
// server. Records of one shard are read back in the order their sequence
// numbers give, which is the order the server acknowledged them in;
// records with the same partition key (or explicit hash key) go to the same
// shard, so they keep their order.
//
// Sequence numbers are 39-digit decimals whose value encodes the record's
// shard and position (see internal/seqnum), so they compare as big integers
// and as strings alike and lead straight to the record.
//
// Disk full and I/O errors answer InternalFailure (HTTP 500) for the records
// concerned and leave the log as it was: nothing acknowledged before is lost
// and nothing half written remains.
//
// # Storage
//
// The API code talks to storage only through the interfaces of package
// engine: an Engine of shard logs (append a batch, read from a position
// within count and byte limits, seek by arrival time, trim horizon and end,
// a change signal for subscribers, seal) and a Catalog of stream records
// changed by compare-and-set. Config.Engine chooses it: nil means
// engine/fileengine in Config.DataDir (segmented checksummed logs with group
// commit and crash recovery; one small catalog file per stream; idle logs
// closed and reopened on demand, so open file descriptors stay bounded);
// engine/memengine keeps everything in memory (`shoal server --storage
// memory`). Sequence numbers and shard iterators carry the positions the
// engine hands out.
//
// Every control-plane change is durable before it is visible, or rolled
// back. CreateStream creates the logs, writes the stream's catalog record,
// then publishes the stream. A reshard (SplitShard, MergeShards, the whole of
// UpdateShardCount, an automatic split) creates the children's logs, fences
// the parents (no append in flight, the engine's seal), writes the one
// catalog record with parents closed and children open, and only then lets
// readers and writers see the children; if any step fails the parents are
// unsealed, the children's logs deleted, and the call fails as a whole with
// nothing changed. Other changes (tags, retention, consumers, modes) change
// memory, write the record and undo the change if the write fails. At start
// the server deletes every log no catalog record names, so a crash between
// steps never brings back a shard or its records.
//
// # Several servers on one engine
//
// With engine/natsengine (`shoal server --storage nats`) any number of
// servers share one catalog and one set of logs; none owns a stream or a
// shard, and each takes any call. Each server keeps its own view of the
// streams and follows the catalog (engine.CatalogWatcher): a stream, a
// reshard or a consumer made through one server is seen by the others
// within the watch's delivery time. A change made on a stale view loses the
// catalog's compare-and-set and answers ResourceInUseException (retryable;
// the view is refreshed at once). An append that lands in a log another
// server sealed for a reshard fails in the engine; the server reads the
// catalog and routes the records to the children. JetStream cannot unseal,
// so a reshard whose catalog write fails after the seal is finished on top
// of the current record rather than rolled back. Status periods (CREATING,
// UPDATING, DELETING, consumers' CREATING and DELETING) end through the
// server that began them or through the coordinator, the one server holding
// the engine's "coordinator" lease (engine.Leases), which also runs
// retention; a server that gains the lease finishes the periods a dead
// server left half way. A server on a shared catalog deletes no log at
// start, since another server may be creating it.
//
// Data-plane requests find streams in an immutable snapshot (replaced whole
// when a stream is created or forgotten) and take no process-wide lock; a
// control-plane call locks only its stream. The locks and their order are in
// LOCKS.md.
//
// # Shutdown
//
// Shutdown stops accepting connections, ends every SubscribeToShard event
// stream at once (cleanly, as if its lifetime were over), lets in-flight
// requests finish (bounded by its context), waits for background work (the
// retention loop, the auto-splitter, the status timers of the
// Config.*Delay settings), and syncs and closes every shard log and the
// engine it opened. The shoal binary calls it on SIGINT and
// SIGTERM.
//
// # Enhanced fan-out
//
// Consumers are registered, described, listed, deregistered and tagged as in
// Kinesis (at most 20 per stream, ARNs of the form
// arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<epoch
// seconds>), and kept in the stream metadata across restarts. DeleteStream
// refuses a stream with consumers unless EnforceConsumerDeletion is set.
// SubscribeToShard answers with an event stream (HTTP/1.1, h2c, or h2 over
// TLS when Config.TLSCertFile is set): an initial-response, then
// SubscribeToShardEvent events pushed as soon as appended records are
// durable, an empty event after Config.SubscriptionKeepAlive of silence, and
// a clean end after Config.SubscriptionLifetime. Every event's
// ContinuationSequenceNumber, used with AFTER_SEQUENCE_NUMBER (in
// SubscribeToShard or GetShardIterator), resumes exactly after what the
// event delivered, also when it delivered nothing. Each subscription reads
// the log with its own cursor, so a client that stops reading holds up no
// one else.
//
// # Resharding
//
// SplitShard, MergeShards and UpdateShardCount (UNIFORM_SCALING) serve
// PROVISIONED streams; on an ON_DEMAND stream they answer
// ValidationException, as AWS documents. UpdateShardCount enforces the
// documented default limits, each with LimitExceededException: no more than
// double or less than half the open shards; not above Config.StreamShardLimit
// (10,000) shards per stream, and a stream above it only scales to at most
// it; not above the account's Config.ShardLimit of open shards; and at most
// ten scalings per stream per rolling 24 hours (a call whose target equals
// the current count is not a scaling). The times of the scalings are kept in
// the stream metadata, so a restart does not reset the count.
//
// An ON_DEMAND stream starts with 4 shards and the server splits a shard
// whose incoming writes stay above Config.AutoSplitThreshold (default 1.0)
// of its capacity (1 MiB/s or 1,000 records/s) for a whole
// Config.AutoSplitWindow (default one minute, measured in ten buckets; every
// bucket must be above the threshold). It splits at the median of the hash
// keys recently written to the shard (a sample of the last 256 of every 4th
// record), or at the middle of the shard's range when the median cannot
// split it. After a round of splits a stream waits Config.AutoSplitCooldown
// (default: the window); its open shards never exceed
// Config.OnDemandMaxShards (default 200) or the account limit. The server
// never merges shards by itself, automatic splits do not put the stream in
// UPDATING and do not count towards UpdateShardCount's daily cap, and a
// stream switched to PROVISIONED by UpdateStreamMode stops splitting.
// Automatic splits are logged at info level ("hot shard split").
//
// # Caveats
//
// Requests are not authenticated: any or no SigV4 signature is accepted.
// A SubscribeToShard event over CBOR is unverified against the Java SDK. A
// closed shard's EndingSequenceNumber is the largest number the shard could
// hand out, not its last record's. AWS scales ON_DEMAND streams by its own
// undocumented rules; the policy above is shoal's.
package server
