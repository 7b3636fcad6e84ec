package consumer

import (
	"context"
	"fmt"

	"github.com/shoalstream/shoal/checkpoint"
)

// FailureAction is what the worker does with a batch whose ProcessRecords
// calls keep failing, once FailurePolicy.MaxAttempts of them have failed.
type FailureAction int

const (
	// RetryForever delivers the batch again, after a back-off, until
	// ProcessRecords accepts it; the shard makes no progress meanwhile
	// (every failure is logged and counted). It is the zero value: nothing
	// is ever skipped unless the application says so. The KCL, by
	// contrast, logs the exception and goes on with the next batch.
	RetryForever FailureAction = iota
	// StopWorker stops the worker: Run shuts down gracefully (every
	// shard's current call finishes, its processor gets ShutdownRequested
	// and its lease is released; the failing shard's checkpoint stays
	// before the batch) and returns a *BatchError wrapping the last error.
	// Another worker of the application that takes the shard meets the
	// same batch.
	StopWorker
	// SkipBatch checkpoints the batch's last record and goes on with the
	// records after it: the batch's records after the shard's checkpoint
	// are not processed.
	SkipBatch
	// DeadLetter hands the batch's records after the shard's checkpoint to
	// FailurePolicy.DeadLetter, then checkpoints past them as SkipBatch
	// does.
	DeadLetter
)

// String returns the action's name.
func (a FailureAction) String() string {
	switch a {
	case RetryForever:
		return "retry-forever"
	case StopWorker:
		return "stop-worker"
	case SkipBatch:
		return "skip-batch"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("FailureAction(%d)", int(a))
}

// defaultMaxAttempts is FailurePolicy.MaxAttempts's default: with the
// default back-off (500ms doubling), the last attempt comes about 7.5s
// after the first.
const defaultMaxAttempts = 5

// FailurePolicy says what happens when ProcessRecords returns an error. The
// batch is delivered again after a back-off (Config.TaskBackoff, doubling
// with jitter up to Config.MaxBackoff), each time with only the records
// after the shard's checkpoint (the processor may have checkpointed part of
// it), until ProcessRecords returns nil or MaxAttempts calls have failed;
// then Action applies. The zero value retries forever.
//
// Only ProcessRecords errors count: a call cut short because the lease was
// lost or the worker stops is not a failure, and Initialize and ShardEnded
// are retried forever as before. A batch all of whose records the
// processor checkpointed before failing is done. Every outcome is counted
// (Metrics.BatchFailure).
type FailurePolicy struct {
	// Action is what happens once MaxAttempts calls failed. Zero means
	// RetryForever.
	Action FailureAction
	// MaxAttempts is how many ProcessRecords calls a batch gets before
	// Action applies: 1 applies it after the first failure. Zero means 5.
	// Ignored with RetryForever.
	MaxAttempts int
	// DeadLetter receives the records Action DeadLetter gives up on.
	// Required with DeadLetter, ignored otherwise. consumer/deadletter
	// has one that writes them to another Kinesis stream.
	DeadLetter DeadLetterHandler
}

// DeadLetterHandler keeps the records that the failure policy gives up on
// (FailurePolicy.DeadLetter), as a dead-letter queue does.
type DeadLetterHandler interface {
	// DeadLetter stores the batch's records durably, or returns an error.
	// It is called from the shard's goroutine, so at most once at a time
	// per shard, and concurrently for different shards. The worker
	// checkpoints past the records only after it returns nil; after an
	// error it is called again with the same batch after a back-off, for
	// as long as the lease is held, and the shard makes no progress
	// meanwhile (each failure is logged at error level and counted). So a
	// record may be stored twice (a call that failed after storing part of
	// the batch, a worker that died before its checkpoint), never lost.
	// ctx ends when the lease is lost or the worker fails.
	DeadLetter(ctx context.Context, b FailedBatch) error
}

// FailedBatch is a batch the failure policy gave up on.
type FailedBatch struct {
	// Application is Config.ApplicationName.
	Application string
	// StreamName and StreamARN name the stream the records come from, as
	// configured (Config.StreamName and Config.StreamARN; either may be
	// "").
	StreamName, StreamARN string
	// ShardID is the shard the records come from.
	ShardID string
	// Records are the batch's records after the shard's checkpoint, in
	// shard order; never empty.
	Records []Record
	// Err is the error the last ProcessRecords call returned.
	Err error
	// Attempts is how many ProcessRecords calls failed on the batch.
	Attempts int
}

// BatchError is the error Run returns when the failure policy's action
// StopWorker stopped the worker. errors.Is and errors.As see through it to
// the processor's error.
type BatchError struct {
	// ShardID is the shard of the batch.
	ShardID string
	// First and Last name the first and last records of the batch that
	// were not processed (those after the shard's checkpoint).
	First, Last checkpoint.Checkpoint
	// Records is how many records that is.
	Records int
	// Attempts is how many ProcessRecords calls failed on the batch.
	Attempts int
	// Err is the error the last call returned.
	Err error
}

// Error describes the batch and the processor's error.
func (e *BatchError) Error() string {
	if e.Records == 0 {
		return fmt.Sprintf("consumer: shard %s: ProcessRecords failed %d times on an empty batch: %v", e.ShardID, e.Attempts, e.Err)
	}
	return fmt.Sprintf("consumer: shard %s: ProcessRecords failed %d times on %d records (%s to %s): %v",
		e.ShardID, e.Attempts, e.Records, e.First, e.Last, e.Err)
}

// Unwrap returns the processor's error.
func (e *BatchError) Unwrap() error { return e.Err }

// The outcomes Metrics.BatchFailure reports.
const (
	// FailureRetried: the batch is delivered again after a back-off.
	FailureRetried = "retried"
	// FailureStopped: the worker stops (StopWorker).
	FailureStopped = "stopped"
	// FailureSkipped: the records were checkpointed past unprocessed
	// (SkipBatch).
	FailureSkipped = "skipped"
	// FailureDeadLettered: the records were handed to the dead-letter
	// handler, which stored them, and checkpointed past (DeadLetter).
	FailureDeadLettered = "dead_lettered"
	// FailureDeadLetterFailed: the dead-letter handler returned an error;
	// it is called again after a back-off.
	FailureDeadLetterFailed = "dead_letter_failed"
)

// halt stops the worker gracefully, Run returning err (the first one
// wins): the failure policy's StopWorker.
func (w *Worker) halt(err error) {
	w.haltOnce.Do(func() {
		w.haltErr = err
		close(w.halted)
	})
}
