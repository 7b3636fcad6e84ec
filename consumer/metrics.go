package consumer

import "time"

// Metrics receives the worker's counters and timings. The worker calls it
// from its goroutines concurrently (one per shard, plus the coordinator):
// implementations must be safe for concurrent use and fast. Embed
// NopMetrics to implement only some methods (methods added later then
// record nothing rather than breaking the build). The core depends on no
// metrics library; consumer/prommetrics adapts this interface to
// Prometheus.
//
// Shard IDs label per-shard values; there are as many as the stream has
// shards.
type Metrics interface {
	// RecordsProcessed counts user records ProcessRecords handled without
	// error (KCL: RecordsProcessed).
	RecordsProcessed(shardID string, n int)
	// DataBytesProcessed counts the data bytes (Record.Data; partition
	// keys are not counted) of the user records RecordsProcessed counts
	// (KCL: DataBytesProcessed).
	DataBytesProcessed(shardID string, n int)
	// ProcessRecords observes each call of a Processor's ProcessRecords:
	// how long it took and its error (nil on success). A failed batch is
	// delivered again, and observed again, unless the failure policy gives
	// up on it (see BatchFailure) (KCL: ProcessTask's
	// RecordProcessor.processRecords.Time, Success).
	ProcessRecords(shardID string, d time.Duration, err error)
	// MillisBehindLatest observes MillisBehindLatest of each GetRecords
	// result or SubscribeToShard event (KCL: MillisBehindLatest).
	MillisBehindLatest(shardID string, ms int64)
	// GetRecords observes each GetRecords call (Polling retrieval only;
	// FanOut makes none): its latency, the Kinesis
	// records it returned, and its error (nil on success). Throttling comes
	// as a *types.ProvisionedThroughputExceededException, an expired
	// iterator as a *types.ExpiredIteratorException (KCL:
	// KinesisDataFetcher.getRecords.Time, .Success; ExpiredIterator).
	GetRecords(shardID string, d time.Duration, records int, err error)
	// LeasesHeld reports how many leases the worker holds, after each
	// change (KCL: CurrentLeases).
	LeasesHeld(n int)
	// LeaseBalance reports, after each lease-taking round, the
	// application's leases to be processed now (not ended, parents done
	// unless Config.CatchUp)
	// and the workers sharing them as this worker counts them: the owners
	// of leases that have not expired, and itself (KCL: TotalLeases,
	// NumWorkers).
	LeaseBalance(leases, workers int)
	// LeaseTaken counts a lease this worker took; stolen reports that
	// another worker held it (KCL: TakenLeases, StolenLeases).
	LeaseTaken(shardID string, stolen bool)
	// LeaseLost counts a lease this worker lost to another worker (or to a
	// deletion) while it held it (KCL: LostLeases).
	LeaseLost(shardID string)
	// RenewLease observes each lease renewal the worker sends to the
	// Store: its latency and its error (nil on success; one matching
	// checkpoint.ErrLeaseLost or checkpoint.ErrNotFound if the lease was
	// lost) (KCL: RenewLease.Time, .Success).
	RenewLease(shardID string, d time.Duration, err error)
	// ShardShutdown reports that the worker stopped processing a shard it
	// held: its goroutine is returning, after its last call of any other
	// method for that shard. reason is one of ShutdownShardEnd,
	// ShutdownRequested and ShutdownLeaseLost (KCL: the ShutdownTask, by
	// ShutdownReason).
	ShardShutdown(shardID, reason string)
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
	// BatchFailure reports what the failure policy (Config.FailurePolicy)
	// did after a ProcessRecords call failed, or after the dead-letter
	// handler failed: outcome is one of FailureRetried, FailureStopped,
	// FailureSkipped, FailureDeadLettered and FailureDeadLetterFailed, and
	// records is the number of user records concerned (those after the
	// shard's checkpoint). A call cut short by a lost lease or a stopping
	// worker reports nothing.
	BatchFailure(shardID, outcome string, records int)
	// ShardStalled counts each time the shard watchdog (Config.StallTimeout)
	// found the shard without progress while records waited, and restarted
	// its reader.
	ShardStalled(shardID string)
	// LeaseHandoff reports a step of a graceful hand-off of a lease moved
	// for balance (see Config.NoGracefulHandoff): outcome is
	// HandoffRequested (this worker asked the owner for the lease),
	// HandoffHanded (this worker handed a lease over to the worker that
	// asked for it) or HandoffForced (the owner did not hand it over in
	// time, and this worker took it: a steal).
	LeaseHandoff(shardID, outcome string)
}

// The outcomes LeaseHandoff reports.
const (
	// HandoffRequested: this worker asked the owner of the lease to hand
	// it over.
	HandoffRequested = "requested"
	// HandoffHanded: this worker finished its batch, let its processor
	// checkpoint, and handed the lease over to the worker that asked.
	HandoffHanded = "handed"
	// HandoffForced: the owner did not hand the lease over within the
	// Store's failover time; this worker took it anyway.
	HandoffForced = "forced"
)

// The reasons ShardShutdown reports, named as the KCL's ShutdownReason.
const (
	// ShutdownShardEnd: the shard ended and SHARD_END was checkpointed (or
	// the lease was taken already at SHARD_END).
	ShutdownShardEnd = "SHARD_END"
	// ShutdownRequested: the worker shut down gracefully and released the
	// lease (Processor.ShutdownRequested).
	ShutdownRequested = "REQUESTED"
	// ShutdownLeaseLost: the lease was lost, or the worker failed
	// (Processor.LeaseLost).
	ShutdownLeaseLost = "LEASE_LOST"
)

// NopMetrics is a Metrics that records nothing, to embed in partial
// implementations.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

// RecordsProcessed records nothing.
func (NopMetrics) RecordsProcessed(string, int) {}

// DataBytesProcessed records nothing.
func (NopMetrics) DataBytesProcessed(string, int) {}

// ProcessRecords records nothing.
func (NopMetrics) ProcessRecords(string, time.Duration, error) {}

// MillisBehindLatest records nothing.
func (NopMetrics) MillisBehindLatest(string, int64) {}

// GetRecords records nothing.
func (NopMetrics) GetRecords(string, time.Duration, int, error) {}

// LeasesHeld records nothing.
func (NopMetrics) LeasesHeld(int) {}

// LeaseBalance records nothing.
func (NopMetrics) LeaseBalance(int, int) {}

// LeaseTaken records nothing.
func (NopMetrics) LeaseTaken(string, bool) {}

// LeaseLost records nothing.
func (NopMetrics) LeaseLost(string) {}

// RenewLease records nothing.
func (NopMetrics) RenewLease(string, time.Duration, error) {}

// ShardShutdown records nothing.
func (NopMetrics) ShardShutdown(string, string) {}

// Checkpoint records nothing.
func (NopMetrics) Checkpoint(string, time.Duration, error) {}

// RecordsDropped records nothing.
func (NopMetrics) RecordsDropped(string, int) {}

// AggregatedRecords records nothing.
func (NopMetrics) AggregatedRecords(string, int, int) {}

// CorruptAggregates records nothing.
func (NopMetrics) CorruptAggregates(string, int) {}

// BatchFailure records nothing.
func (NopMetrics) BatchFailure(string, string, int) {}

// ShardStalled records nothing.
func (NopMetrics) ShardStalled(string) {}

// LeaseHandoff records nothing.
func (NopMetrics) LeaseHandoff(string, string) {}
