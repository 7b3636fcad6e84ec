// Package deadletter keeps the records a consumer application gives up on
// in another Kinesis stream: [Handler] is a [consumer.DeadLetterHandler]
// that writes each record of a failed batch to a dead-letter stream through
// this repository's producer library, wrapped in an [Envelope] that says
// where it came from and why it failed. [Decode] reads one back.
//
//	dlq, err := producer.New(kinesisClient, producer.Config{StreamName: "orders-dlq"})
//	...
//	defer dlq.Close(context.Background()) // after the worker's Run returned
//	w, err := consumer.New(kinesisClient, store, newProcessor, consumer.Config{
//		ApplicationName: "orders-app", StreamName: "orders",
//		FailurePolicy: consumer.FailurePolicy{
//			Action: consumer.DeadLetter, MaxAttempts: 5, DeadLetter: deadletter.New(dlq),
//		},
//	})
//
// # Encoding
//
// Each user record of the batch becomes one user record of the dead-letter
// stream, put with the same partition key (so that the records of one key
// stay together and in order there too), whose data is a JSON object, the
// Envelope (field names in snake_case, "data" in standard base64 as
// encoding/json writes a []byte, times in RFC 3339 with nanoseconds):
//
//	{
//	  "version": 1,
//	  "application": "orders-app",
//	  "stream": "orders",                      // Config.StreamName; "stream_arn" too if set
//	  "shard_id": "shardId-000000000000",
//	  "sequence_number": "49654...",            // the Kinesis record's
//	  "sub_sequence_number": 2,                 // its index in the KPL aggregate; 0 if not aggregated
//	  "partition_key": "customer-7",
//	  "explicit_hash_key": "...",               // only if it had one (from an aggregate)
//	  "approximate_arrival_timestamp": "2026-12-08T10:00:00.123Z",
//	  "aggregated": true,
//	  "error": "charge customer-7: card declined",  // the last ProcessRecords error, as text
//	  "attempts": 5,                            // ProcessRecords calls that failed on the batch
//	  "failed_at": "2026-12-08T10:00:09.456Z",
//	  "data": "eyJvcmRlciI6NDJ9"                // the record's data
//	}
//
// Any language reads it with a JSON parser and a base64 decoder; in Go,
// [Decode] does both and checks the version. The producer aggregates (KPL
// format) unless its Config.DisableAggregation is set: read the dead-letter
// stream with the consumer package (which de-aggregates) or
// aggregation.Deaggregate, and hand each user record's data to Decode.
//
// # Guarantees
//
// DeadLetter returns nil only once every record of the batch is stored in
// the dead-letter stream (each Pending's result is a success); the worker
// checkpoints past the batch only then. If any record fails, it returns the
// errors and the worker calls it again with the whole batch after a
// back-off: records stored by an earlier call are stored again. So the
// dead-letter stream holds every given-up record at least once; tell
// duplicates apart by (stream, shard_id, sequence_number,
// sub_sequence_number).
//
// # Caveats
//
// Base64 makes the data a third larger, and the envelope adds a few hundred
// bytes: the dead-letter stream's records must be allowed to be that much
// larger than the source's (Kinesis takes records of up to 1 MiB, and
// producer.Config.MaxRecordBytes must allow them). A record whose envelope
// is too large fails every time (producer.ErrRecordTooLarge), so its shard
// stalls, with errors logged and counted, until the limit is raised.
// The Handler does not close the producer: close it after the worker's Run
// returned.
package deadletter
