// Package bench is shoal's load tool, in the spirit of Kafka's
// kafka-producer-perf-test: "shoal bench put" and "shoal bench get" drive any
// Kinesis Data Streams endpoint (shoal, kinesalite, AWS itself) through
// aws-sdk-go-v2 and report what it sustained; "shoal bench produce" does the
// same through shoal's own producer (package producer); "shoal bench
// fanout" measures enhanced fan-out delivery.
//
// # What it measures
//
// put runs -clients goroutines, each with its own SDK client and its own HTTP
// connections (nothing is shared, as with separate producer processes), that
// call PutRecords with -batch records (or PutRecord, with -mode record) as
// fast as the server answers. Each record carries -size random bytes and a
// partition key drawn at random from -keys distinct keys, so that records
// spread over all shards. The stream is created with -shards shards if it is
// missing (-create=false skips that), and the tool waits until it is ACTIVE.
//
// get reads a stream back: each shard from TRIM_HORIZON with GetRecords of
// up to -limit records, until the shard has caught up (an empty page with
// MillisBehindLatest 0, or the end of a closed shard) or the run ends.
// -prefill N first writes N records so that there is something to read.
// Shards are split between the readers (default one reader per shard); when
// there are more readers than shards, several readers each read the same
// shard in full, like independent consumer applications, and every copy
// counts.
//
// A run lasts -duration after a -warmup (put: 1s, get: 0), or makes exactly
// -requests measured calls. Calls that start during the warmup are made but
// only reported on a "warmup:" line; every figure below covers the calls that
// started after it.
//
// # Reading the output
//
//	put: 1234567 records in 10.00s = 123456.7 records/s, 12.35 MB/s (payload), 2469 PutRecords calls (246.9/s)
//	latency per call: p50 1.23ms p90 2.10ms p99 4.00ms p99.9 9.80ms max 15.00ms (mean 1.40ms)
//	errors: 0 failed records (PutRecords FailedRecordCount), 0 failed calls, 3 SDK retries
//
// The time is that of the measured phase, from its start to the end of its
// last call. Records and MB/s count only records the server accepted (get:
// returned), and MB/s counts their Data bytes only (1 MB = 1e6 bytes), not
// keys nor the JSON and base64 overhead on the wire. Calls are API calls as
// the application sees them: one call may hide SDK retries. Latency is that
// of every measured call (including its retries and backoff), exact
// nearest-rank percentiles over all of them.
//
// "failed records" are PutRecords entries that the server rejected
// (FailedRecordCount, e.g. ProvisionedThroughputExceededException); they are
// not resent. "failed calls" are calls that still failed after the SDK's
// retries (the first error is printed). "SDK retries" counts the extra
// attempts the SDK's standard retryer made (-retries per call at most). For
// get, "shard cursors caught up" tells how many (reader, shard) passes
// reached the end of their shard before the run ended: fewer than all means
// the figure is a read rate under a backlog, not a full drain.
//
// -json adds the same result as one JSON object on one line, for scripts.
//
// # produce
//
// produce measures the producer rather than the server: -writers goroutines
// call Producer.Put with records of -size random bytes and partition keys
// taken in turn from -keys distinct keys, until -records records were put
// (or for -duration), then Flush. The producer batches them per shard,
// packs them into KPL aggregates (-no-aggregation sends them one by one),
// limits its rate per shard (-rate-limit percent of the shard limits, 100
// by default; -no-rate-limit or a negative value turns it off, which suits
// shoal, which does not throttle by default) and retries failures.
//
//	produce: 3000000 records in 2.69s = 1113862.8 records/s, 111.39 MB/s (payload), 438 PutRecords calls (162.6/s, 1.0 Kinesis records and 6849.3 user records each, mean 16.81ms)
//	latency put→result (1 in 64 records): p50 71.83ms p90 165.08ms p99 214.80ms p99.9 232.89ms max 238.19ms (mean 85.98ms)
//	cpu: 1419 ns per user record (this process, user+system: 4.26s, 1.58 cores)
//	errors: 0 failed records, 0 failed PutRecords calls, 0 retried Kinesis records, 0 failed puts
//
// The time covers the puts and the flush, including the producer's first
// ListShards. Records count user records the producer reported stored
// (their results succeeded). The put→result latency is measured on 1 in 64
// records, from the call to Put to the record's result: it includes the
// wait for room in the producer's buffer (Put blocks while
// MaxBufferedRecords records are pending, the usual state of a saturating
// run) and the batching wait (at most MaxBufferedTime, 100ms by default,
// for a record whose aggregate does not fill up sooner). The CPU
// is this whole process's (getrusage: user plus system time, the SDK's and
// net/http's included) divided by the records put; run the server
// elsewhere, or in another process, for it to be the producer's cost. The
// errors line counts user records that failed, PutRecords calls that failed
// as a whole, Kinesis records the producer sent again (by error code), and
// Put calls that were refused.
//
// # fanout
//
// fanout puts -rate records/s (one PutRecords call every 10ms) for
// -duration while -consumers registered stream consumers each read every
// shard: with -mode subscriber one fanout.Subscriber each, with -mode
// consumer one consumer.Worker each (its own application, FanOut retrieval,
// leases in PostgreSQL at -database-url, a checkpoint after every batch
// unless -no-checkpoint). Every record carries its put time and index, so
// the report gives the put->receive latency of every first delivery and,
// per consumer, the records delivered, missing and duplicated:
//
//	sent 40000 records
//	consumer 0: delivered 40000, missing 0, duplicates 0
//	...
//	put->receive latency over 200000 deliveries: p50 2.00ms  p90 4.15ms  p99 9.60ms  max 60.10ms
//
// The latency starts just before the PutRecords call, so it includes the
// put (and the server's fsync) as well as the push to the readers.
//
// # Connections
//
// Every client gets an http.Client from NewHTTPClient, whose transport hides
// the request body's WriteTo method from net/http. That avoids rare
// "deserialization failed ... use of closed network connection" failures of
// aws-sdk-go-v2 against fast servers (aws-sdk-go-v2 issues #1825 and #2737),
// which would otherwise show up as failed calls or retries that are the
// client's fault and not the server's.
package bench
