// Package tail is the "shoal tail" command's logic: it follows a Kinesis
// stream across reshards and prints every record once, in order within
// its shard, until it is stopped.
//
//	shoal tail --stream NAME [--from TRIM_HORIZON|LATEST|<RFC 3339 time>|<sequence number>]
//	           [--shard ID] [--deaggregate] [--format text|json|hex]
//	           [--endpoint URL] [--region R] [--profile P] [--poll-interval D]
//
// # Reading
//
// Run lists the stream's shards (ListShards) and reads each with
// GetShardIterator and GetRecords, one goroutine per shard being read. A
// shard is read only after each of its parents (ParentShardId and, for a
// merge, AdjacentParentShardId) has been read to its end, that is until
// GetRecords returned no NextShardIterator; that answer's ChildShards are
// followed next. A merged child waits for both parents. ListShards is
// called again every RelistInterval (10s) to find new shards, and at once
// when a child names a parent Run does not know yet; a parent that the
// stream no longer lists (past the retention period) is not waited for.
//
// Each shard gets at most one GetRecords call per CallInterval (200ms:
// Kinesis allows 5 per second and shard) and, once caught up
// (MillisBehindLatest 0), one per PollInterval (1s). A throttled call
// (ProvisionedThroughputExceededException and the SDK's other throttling
// errors) is retried after a backoff that starts at max(CallInterval,
// 100ms) and doubles up to MaxBackoff (10s), with jitter; so is a call
// that failed in a way the SDK deems retryable (a dropped connection, a
// 5xx answer), with a warning on Log. An expired shard iterator is
// replaced by one after the last record printed. Any other error ends Run.
//
// # Where reading starts (--from)
//
//   - LATEST (the default): shards open at the start are read from their
//     end, shards already closed are skipped, and shards created later
//     (children of a reshard) are read from their start: everything put
//     after the start is printed.
//   - TRIM_HORIZON: every shard from its oldest record, parents first.
//   - an RFC 3339 time: every shard, children included, from its first
//     record that arrived at or after that time (AT_TIMESTAMP).
//   - a sequence number: from that record (AT_SEQUENCE_NUMBER) in its
//     shard, then that shard's descendants from their start; no other
//     shard. The shard is --shard if given (Kinesis refuses a number of
//     another shard); otherwise Run finds it: among the shards whose
//     SequenceNumberRange holds the number, the one that GetShardIterator
//     accepts it on, trying the latest-starting range first. A number in
//     no listed shard is an error.
//
// With --shard ID, only that shard and its descendants are followed; a
// merged child of it and a shard outside the subtree waits only for the
// parent inside.
//
// # Output (--format)
//
// text is one line per record:
//
//	shardId-000000000001 49661...017 2025-03-04T05:06:07.089Z "user-42" {"n":1}
//
// the shard, the sequence number, the arrival time in UTC with
// milliseconds, the partition key as a quoted Go string, and the data as
// text: printable UTF-8 as it is, \\ \n \r \t, \xNN for other control
// bytes and invalid UTF-8, \uNNNN or \UNNNNNNNN for other non-printable
// characters. json is one object per line with shardId, sequenceNumber,
// approximateArrivalTimestamp, partitionKey and data (base64), and
// subSequenceNumber and explicitHashKey for user records that have them.
// hex is the text line without the data but with its length ("5 bytes"),
// then encoding/hex.Dump of the data.
//
// With --deaggregate, KPL aggregated records (see package aggregation) are
// printed as their user records, each with the aggregate's shard,
// sequence number and arrival time, its own partition key, explicit hash
// key and data, and its sub-sequence number: text appends it to the
// sequence number after a colon (49661...017:3). A record that is not an
// aggregate is printed as it is; one that looks like an aggregate but is
// corrupt too, with a warning. Records are not filtered by the shard's
// hash key range as the KCL does.
//
// # Stopping
//
// Run returns nil when its context is done (SIGINT or SIGTERM for the
// command, which then exits 0), once every call in flight has ended; a
// record whose answer arrived is printed whole or not at all. It never
// ends by itself otherwise, even when every followed shard is closed,
// except on an error.
//
// # Caveats
//
//   - Records are printed once as long as Run runs; a new Run starts again
//     from --from. An iterator that expires before any record of its shard
//     was printed (a call stalled for 5 minutes) is replaced by one at the
//     shard's start position again, which for LATEST skips what was put in
//     between.
//   - Lines of different shards interleave; only the order within a shard,
//     and parents before children, is kept.
package tail
