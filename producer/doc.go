// Package producer writes records to a Kinesis data stream in the
// background, as the Kinesis Producer Library (KPL) does, in pure Go on
// aws-sdk-go-v2: it predicts each record's shard, packs the records of a
// shard into KPL aggregated records, batches them into PutRecords calls,
// limits its rate per shard, retries failures with back-off until a
// deadline, and tells the caller, record by record, where each was stored.
//
// A minimal program:
//
//	client := kinesis.NewFromConfig(awsCfg)
//	p, err := producer.New(client, producer.Config{StreamName: "orders"})
//	if err != nil { ... }
//	defer p.Close(context.Background())
//	pending, err := p.Put(ctx, "customer-1", []byte("hello"))
//	if err != nil { ... } // bad input, closed producer, or ctx ended while the buffer was full
//	res, err := pending.Wait(ctx) // or Config.OnResult, or ignore it
//	fmt.Println(res.ShardID, res.SequenceNumber, res.SubSequenceNumber)
//
// Put returns at once (unless the buffer is full, see Back-pressure) with a
// Pending, whose result says where Kinesis stored the record or why it
// failed. PutSync waits for it; Config.OnResult receives every result on
// one goroutine. Records are consumed with the KCL, or with any reader that
// deaggregates (aggregation.Deaggregate) and, like the KCL, drops
// aggregated records that hold user records outside the shard's hash range.
//
// # How records flow
//
// The producer keeps a shard map, loaded with ListShards when it starts and
// refreshed when a record lands on a shard other than the predicted one,
// when the stream is not found, and every ShardMapRefreshInterval. Each
// open shard has a pipeline: one goroutine that owns the shard's
// aggregator, queue, token buckets and retry back-off. Put computes the
// record's hash key (MD5 of the partition key, or the explicit hash key)
// and appends the record to its shard's pipeline. The pipeline aggregates,
// seals an aggregate when it is full or its oldest record has waited
// MaxBufferedTime (or earlier, once 256 KiB are waiting and nothing is in
// flight), and hands batches to a pool of MaxConnections senders, which
// combine the batches of several shards into PutRecords calls of at most
// CollectionMaxCount records and CollectionMaxBytes bytes.
//
// # Guarantees
//
// Every record given to Put, PutRecord, TryPut or TryPutRecord without an
// error gets exactly one result, delivered to its Pending and to OnResult:
// when Kinesis stored it, when it failed with an error that retrying cannot
// fix, when RecordTTL ran out (ErrRecordExpired, wrapping the last error),
// or when Close gave up on it (ErrClosed). Nothing is dropped silently,
// not even by Close.
//
// A successful result means the record is stored in the shard it names,
// within that shard's hash key range. When an aggregate lands on a shard
// other than the predicted one (the shard map was stale), the producer waits
// for a fresh map; the user records the receiving shard owns are done, with
// that shard's sequence number and their index as sub-sequence number, and
// exactly the others are sent again, their results coming from that new
// attempt. A reader that drops the out-of-range user records of an
// aggregate, as this repository's consumer package does, so delivers each
// user record once. The Java KCL drops such an aggregate whole (see
// AggregatorUtil.deaggregate), which would lose the owned records: when KCL
// applications read the stream, set Config.ResendWholeAggregate, and every
// user record of such an aggregate is sent again.
//
// Delivery is at least once. A record can be stored twice when a call
// times out or loses its connection after Kinesis stored it, and a reader
// that does not apply the KCL's hash range filter also sees the user
// records of an aggregate that was sent again.
//
// # Ordering
//
// Records with the same partition key are stored in the order they were
// put, retries included: if the Put of record A returns before the Put of
// record B (same partition key) begins, and both are stored, A's extended
// sequence number (sequence number, then sub-sequence number) in its shard
// is smaller than B's, comparing first copies when there are duplicates.
// The producer ensures this by these rules, for each predicted shard:
//
//   - records enter the shard's pipeline in Put order, and aggregation and
//     batching keep that order;
//   - at most one PutRecords call containing the shard's records is in
//     flight at a time;
//   - within one call, the shard's part never contains two Kinesis records
//     that share a partition key, so that a partial failure (an entry
//     throttled while a later one of the same shard is stored) cannot store
//     a later record of a key before an earlier one;
//   - failed entries, and aggregates that landed on the wrong shard, are
//     put back in front of the shard's queue, and nothing later of the
//     shard is sent until they are sent again (after back-off);
//   - when the shard map changes, a shard that is no longer open hands its
//     unsent records, in order, to the new shards' pipelines, and a new
//     pipeline sends nothing until every old one whose hash range overlaps
//     its own has handed over.
//
// The guarantee does not extend to: records of different partition keys
// (even in one shard), records put concurrently (no happens-before between
// the Puts), records put by different producers, records that fail (a
// failed record leaves a gap, and later records of its key are still sent),
// and Config.RelaxedOrdering, which drops the third rule to fit more of a
// shard's records in one call (the KPL's behaviour). It relies on Kinesis
// giving later calls larger sequence numbers within a shard, not on the
// order of entries within a call, which Kinesis does not promise.
//
// # Back-pressure
//
// The records put and not yet resolved (including those whose OnResult
// has not returned) are bounded by MaxBufferedRecords and
// MaxBufferedBytes. Put waits for room until its ctx ends; TryPut and
// TryPutRecord fail at once with ErrBufferFull. BufferedRecords and
// BufferedBytes report the current load. The bound covers the records'
// data and keys as counted by Kinesis; the producer's own memory per record
// (its Pending, the aggregate, the request being encoded) comes on top.
//
// # Rate limiting and retries
//
// Each pipeline has two token buckets, for bytes and Kinesis records (an
// aggregate counts once), refilled at RateLimit percent of the shard write
// limits (1 MiB/s and 1,000 records/s) and holding one second's worth, so
// that the producer does not provoke throttling by itself. The limits are
// per producer: several producers writing to one stream share the shards'
// capacity and are throttled by Kinesis, which the producer then retries.
//
// A failed record is retried if its error is transient (see retryable in
// errors.go): throttling, internal failures, transport errors and HTTP 5xx,
// and a stream not found (it may be re-created). Validation and access
// errors fail at once. Retries of a shard wait an exponential back-off with
// jitter between MinBackoff and MaxBackoff; the SDK's own retries are
// turned off for PutRecords so that the producer alone decides. When a
// call fails as a whole with an error that retrying cannot fix, every
// record in it fails, including records that were fine: a record larger
// than the stream's maximum record size (see MaxRecordBytes) makes Kinesis
// reject its whole call.
//
// # Shutdown
//
// Flush sends everything at once and waits for the results of the records
// put before it. Close makes Put fail with ErrClosed, flushes, and stops
// every goroutine of the producer before it returns; if its ctx ends
// first, it cancels the calls in flight and resolves every remaining record
// with ErrClosed (a record whose call was cancelled may nevertheless have
// been stored). A producer must be closed to release its goroutines.
//
// # Caveats
//
//   - The producer keeps the data slice given to Put, without copying it,
//     until the record's result is delivered: do not modify it before.
//   - A shard's hash range is taken to be fixed for its shard id, as it is
//     in Kinesis. A stream deleted and re-created under the same name reuses
//     shard ids with other ranges: the producer notices when a call fails
//     with ResourceNotFoundException and then re-checks every aggregate
//     against a fresh map, but a deletion and re-creation that happen while
//     no call of the producer sees the stream missing can go unnoticed until
//     the next map refresh, and aggregates stored meanwhile may be dropped by
//     KCL readers. Close producers before re-creating their stream.
//   - Without aggregation, a record whose data starts with the aggregated
//     record magic (F3 89 9A C2) is sent as it is, and readers that
//     deaggregate will try to parse it, as with the KPL. With aggregation
//     on, such a record is always wrapped in an aggregate.
//   - A record whose call timed out and that then expired or was abandoned
//     by Close may have been stored even though its result is an error.
package producer
