package consumer

import (
	"context"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Record is one user record: a Kinesis record, or one of the user records
// of a KPL aggregated Kinesis record, which the worker unpacks.
type Record struct {
	// SequenceNumber is the Kinesis record's sequence number; the user
	// records of one aggregate share it.
	SequenceNumber string
	// SubSequenceNumber is the user record's index within its aggregate,
	// from 0; 0 for a record that was not aggregated. With SequenceNumber
	// it names the record exactly, which is what checkpoints store.
	SubSequenceNumber int64
	// PartitionKey is the user record's partition key.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key from its
	// aggregate, or "" (Kinesis does not return the explicit hash key of a
	// record that was not aggregated).
	ExplicitHashKey string
	// Data is the user record's payload. It belongs to the processor.
	Data []byte
	// ApproximateArrivalTimestamp is when Kinesis stored the Kinesis
	// record.
	ApproximateArrivalTimestamp time.Time
	// Aggregated reports whether the record came out of a KPL aggregate.
	Aggregated bool
}

// Position returns the checkpoint that names r: its sequence and
// sub-sequence numbers.
func (r Record) Position() checkpoint.Checkpoint {
	return checkpoint.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
}

// Processor processes the records of one shard, as the KCL's
// ShardRecordProcessor: the worker makes one with the ProcessorFactory for
// each lease it takes, and calls it from one goroutine, one method at a
// time, in this order:
//
//	Initialize, then ProcessRecords any number of times, then one of
//	  ShardEnded        the shard is closed and every record was delivered
//	  ShutdownRequested the worker is shutting down gracefully, or hands the lease over
//	  LeaseLost         another worker took the lease, an operator released or
//	                    reset it, or the worker failed
//
// A Processor whose lease is lost or whose worker crashes may be left in
// the middle of a call: the ctx it was given ends, and no further method is
// called but LeaseLost (not called after a crash). Different shards'
// processors run concurrently.
//
// The ctx given to each method ends when the lease is lost (or the worker
// fails); it does not end when the worker shuts down gracefully, so that the
// batch in hand can finish. The ctx of a ProcessRecords call also ends when
// the shard watchdog (Config.StallTimeout) finds the call stalled.
type Processor interface {
	// Initialize is called once before any record is delivered, with the
	// position processing starts from. An error is logged and Initialize is
	// called again after a back-off (Config.TaskBackoff).
	Initialize(ctx context.Context, in InitializeInput) error
	// ProcessRecords handles one batch of records, in shard order. To
	// record progress, call in.Checkpointer (not necessarily on every
	// batch, and also later, from another goroutine, while the lease is
	// held). An error means the batch was not handled: after a back-off
	// the worker delivers again the records of the batch that are after
	// the shard's last checkpoint, for as long as Config.FailurePolicy
	// says (by default forever: records are never skipped unless the
	// policy says so).
	ProcessRecords(ctx context.Context, in ProcessRecordsInput) error
	// LeaseLost tells the processor that it no longer holds the lease
	// (taken by another worker, released or reset by an operator, or the
	// worker failed): its checkpoints fail from now on, and another worker
	// (or this one, with a new Processor) will deliver the records after
	// the lease's checkpoint again. It cannot checkpoint.
	LeaseLost(ctx context.Context, in LeaseLostInput)
	// ShardEnded is called when every record of a closed shard (split or
	// merged) has been delivered. It must call in.Checkpointer.Checkpoint,
	// which records SHARD_END: the shard's children are not processed
	// until it does. If it returns without having done so, or returns an
	// error, it is called again after a back-off.
	ShardEnded(ctx context.Context, in ShardEndedInput) error
	// ShutdownRequested is called when the worker shuts down gracefully,
	// or hands the lease over to another worker that asked for it (a
	// rebalance, see Config.NoGracefulHandoff), after the last
	// ProcessRecords call returned. It may checkpoint (its Checkpointer's
	// Checkpoint records the last record of the last batch ProcessRecords
	// handled without error), which saves the successor from processing
	// those records again; then the worker releases the lease, or hands it
	// over, and another worker takes it at once. An error is logged.
	ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error
}

// ProcessorFactory returns a new Processor for a lease the worker took. It
// is called from the worker's coordinating goroutine and must not block.
type ProcessorFactory func(shardID string) Processor

// InitializeInput is what Initialize gets.
type InitializeInput struct {
	// ShardID is the shard the processor is for.
	ShardID string
	// Checkpoint is the shard's checkpoint: the last record processed by
	// any worker, or the initial position (TRIM_HORIZON, LATEST or
	// AT_TIMESTAMP, with its Timestamp if the lease was reset to a time)
	// if none was (or the lease was reset to one). Records from just after
	// it are delivered.
	Checkpoint checkpoint.Checkpoint
	// PendingCheckpoint is a checkpoint a previous owner prepared but did
	// not commit (Checkpointer.Prepare), or nil.
	PendingCheckpoint *checkpoint.Checkpoint
	// StartingHashKey and EndingHashKey are the shard's hash key range, in
	// decimal, or "" if unknown.
	StartingHashKey, EndingHashKey string
	// ParentShardIDs are the shard's parents, if it came from a split or
	// merge.
	ParentShardIDs []string
}

// ProcessRecordsInput is what ProcessRecords gets.
type ProcessRecordsInput struct {
	// ShardID is the shard the records are from.
	ShardID string
	// Records are the user records, in shard order: KPL aggregates are
	// unpacked, and user records outside the shard's hash key range are
	// dropped (see the package documentation). It may be empty only with
	// Config.CallProcessRecordsEvenForEmptyRecordList.
	Records []Record
	// MillisBehindLatest is how far the last record is behind the newest
	// record of the shard, as GetRecords reported it: 0 when caught up.
	MillisBehindLatest int64
	// Checkpointer records progress. Its Checkpoint method records the
	// last record of Records.
	Checkpointer *Checkpointer
}

// LeaseLostInput is what LeaseLost gets.
type LeaseLostInput struct {
	// ShardID is the shard whose lease was lost.
	ShardID string
}

// ShardEndedInput is what ShardEnded gets.
type ShardEndedInput struct {
	// ShardID is the shard that ended.
	ShardID string
	// ChildShardIDs are its children, as far as they are known.
	ChildShardIDs []string
	// Checkpointer's Checkpoint records SHARD_END, as the processor must.
	Checkpointer *Checkpointer
}

// ShutdownRequestedInput is what ShutdownRequested gets.
type ShutdownRequestedInput struct {
	// ShardID is the shard whose lease is being released.
	ShardID string
	// Checkpointer's Checkpoint records the last record handled by a
	// ProcessRecords call that returned without error.
	Checkpointer *Checkpointer
	// HandoffTo is the worker the lease is handed over to after this call
	// (a rebalance), or "" when the worker shuts down.
	HandoffTo string
}
