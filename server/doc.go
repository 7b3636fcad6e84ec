// Package server is shoal's Kinesis Data Streams endpoint: it speaks the
// Kinesis wire API (AWS JSON 1.1 and AWS CBOR 1.1 over HTTP/1.1 and cleartext
// HTTP/2, or TLS) so that the unmodified AWS SDKs and CLI work against it, and keeps
// every shard as a durable, segmented, append-only log on local disk.
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
// With the default Config.Fsync (storage.FsyncAlways) a PutRecord or
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
// # Shutdown
//
// Shutdown stops accepting connections, ends every SubscribeToShard event
// stream at once (cleanly, as if its lifetime were over), lets in-flight
// requests finish (bounded by its context), stops background work, and syncs
// and closes every shard log. The shoal binary calls it on SIGINT and
// SIGTERM.
//
// # Enhanced fan-out
//
// Consumers are registered, described, listed and deregistered as in
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
// # Caveats
//
// Requests are not authenticated: any or no SigV4 signature is accepted.
// Consumers cannot be tagged yet (TagResource takes stream ARNs only), and
// a SubscribeToShard event over CBOR is unverified against the Java SDK.
// Resharding (SplitShard, MergeShards, UpdateShardCount) is served for
// PROVISIONED streams; a closed shard's EndingSequenceNumber is the largest
// number the shard could hand out, not its last record's.
package server
