package consumer

import "time"

// Metrics receives the worker's counters and timings. The worker calls it
// from its goroutines concurrently (one per shard, plus the coordinator):
// implementations must be safe for concurrent use and fast. Embed
// NopMetrics to implement only some methods. The core depends on no metrics
// library; adapt this interface to one in your own package.
//
// Shard IDs label per-shard values; there are as many as the stream has
// shards.
type Metrics interface {
	// RecordsProcessed counts user records ProcessRecords handled without
	// error (KCL: RecordsProcessed).
	RecordsProcessed(shardID string, n int)
	// MillisBehindLatest observes MillisBehindLatest of each GetRecords
	// result or SubscribeToShard event (KCL: MillisBehindLatest).
	MillisBehindLatest(shardID string, ms int64)
	// GetRecords observes each GetRecords call (Polling retrieval only;
	// FanOut makes none): its latency, the Kinesis
	// records it returned, and its error (nil on success). Throttling comes
	// as a *types.ProvisionedThroughputExceededException (KCL:
	// GetRecords.Time, GetRecords.Success).
	GetRecords(shardID string, d time.Duration, records int, err error)
	// LeasesHeld reports how many leases the worker holds, after each
	// change (KCL: CurrentLeases).
	LeasesHeld(n int)
	// LeaseTaken counts a lease this worker took; stolen reports that
	// another worker held it (KCL: TakenLeases, StolenLeases).
	LeaseTaken(shardID string, stolen bool)
	// LeaseLost counts a lease this worker lost to another worker (or to a
	// deletion) while it held it (KCL: LostLeases).
	LeaseLost(shardID string)
	// Checkpoint observes each checkpoint write: its latency and its error
	// (nil on success) (KCL: the Checkpoint operation's Time and Success).
	Checkpoint(shardID string, d time.Duration, err error)
	// RecordsDropped counts user records of KPL aggregates dropped because
	// their hash key lies outside the shard's hash key range.
	RecordsDropped(shardID string, n int)
	// AggregatedRecords counts KPL aggregated Kinesis records read and the
	// user records they held.
	AggregatedRecords(shardID string, records, userRecords int)
	// CorruptAggregates counts Kinesis records that start like a KPL
	// aggregate but fail its checks (MD5, protobuf); each is delivered as
	// one plain record, as the KCL does.
	CorruptAggregates(shardID string, n int)
}

// NopMetrics is a Metrics that records nothing, to embed in partial
// implementations.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) RecordsProcessed(string, int)                 {}
func (NopMetrics) MillisBehindLatest(string, int64)             {}
func (NopMetrics) GetRecords(string, time.Duration, int, error) {}
func (NopMetrics) LeasesHeld(int)                               {}
func (NopMetrics) LeaseTaken(string, bool)                      {}
func (NopMetrics) LeaseLost(string)                             {}
func (NopMetrics) Checkpoint(string, time.Duration, error)      {}
func (NopMetrics) RecordsDropped(string, int)                   {}
func (NopMetrics) AggregatedRecords(string, int, int)           {}
func (NopMetrics) CorruptAggregates(string, int)                {}
