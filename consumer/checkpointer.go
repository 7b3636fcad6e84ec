package consumer

import (
	"context"
	"fmt"

	"github.com/shoalstream/shoal/checkpoint"
)

// Checkpointer records how far a shard has been processed, in the lease:
// after a restart or a change of owner, processing resumes just after the
// last checkpoint. Checkpoints are fenced by the lease: once the lease is
// lost, every call fails with an error matching checkpoint.ErrLeaseLost and
// the stored checkpoint stays as the new owner sees it.
//
// A Checkpointer is safe for concurrent use and stays usable after the call
// that handed it out returns, for as long as the worker holds the lease, so
// a processor may checkpoint from its own goroutine once records are
// durably handled elsewhere. ctx bounds each call (the Store retries
// transient database errors within it).
type Checkpointer struct {
	sc *shardConsumer
	// at is the position Checkpoint records: the last record of the batch
	// (ProcessRecords), the last record processed (ShutdownRequested), or
	// SHARD_END (ShardEnded); the zero value when there is none.
	at checkpoint.Checkpoint
}

// Checkpoint records the position this Checkpointer was made for: in
// ProcessRecords, the last record of the batch; in ShardEnded, SHARD_END
// (which lets the shard's children start); in ShutdownRequested, the last
// record of the last batch ProcessRecords returned nil for. Where there is
// no such record (an empty batch, nothing processed yet), or the lease's
// checkpoint is already there or further (the processor checkpointed on its
// own), it does nothing.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	if c.at == (checkpoint.Checkpoint{}) {
		return nil
	}
	if cur := c.sc.lease.copyLease().Checkpoint; !cur.IsInitial() && c.at.Compare(cur) <= 0 && !c.sc.lease.lost.Load() {
		return nil
	}
	return c.write(ctx, c.at, false)
}

// CheckpointAt records the record with the given sequence and sub-sequence
// numbers (0 for a record that was not aggregated) as processed. It must
// have been delivered already (else ErrCheckpointAhead), and must not be
// behind the lease's checkpoint (else an error matching
// checkpoint.ErrCheckpointBackwards). A checkpoint in the middle of an
// aggregate resumes exactly after that user record.
func (c *Checkpointer) CheckpointAt(ctx context.Context, sequenceNumber string, subSequenceNumber int64) error {
	return c.write(ctx, checkpoint.Checkpoint{SequenceNumber: sequenceNumber, SubSequenceNumber: subSequenceNumber}, false)
}

// CheckpointRecord records r as processed: CheckpointAt with r's numbers.
func (c *Checkpointer) CheckpointRecord(ctx context.Context, r Record) error {
	return c.write(ctx, r.Position(), false)
}

// Prepare records a pending checkpoint at the given record, the first
// phase of the KCL's two-phase checkpoint: it does not move the checkpoint,
// but the next owner's InitializeInput.PendingCheckpoint shows it, so that
// the processor can tell whether an external side effect done before the
// checkpoint completed. The next checkpoint clears it. The rules of
// CheckpointAt apply.
func (c *Checkpointer) Prepare(ctx context.Context, sequenceNumber string, subSequenceNumber int64) error {
	return c.write(ctx, checkpoint.Checkpoint{SequenceNumber: sequenceNumber, SubSequenceNumber: subSequenceNumber}, true)
}

func (c *Checkpointer) write(ctx context.Context, cp checkpoint.Checkpoint, prepare bool) error {
	sc := c.sc
	if err := cp.Validate(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", sc.shard, err)
	}
	switch {
	case cp.IsInitial():
		return fmt.Errorf("checkpoint %s: %s is not a record: %w", sc.shard, cp, checkpoint.ErrInvalid)
	case cp.IsShardEnd() && !sc.ended.Load():
		return fmt.Errorf("checkpoint %s: %w", sc.shard, ErrShardNotEnded)
	case !cp.IsShardEnd():
		if d := sc.deliveredPos(); d == (checkpoint.Checkpoint{}) || cp.Compare(d) > 0 {
			return fmt.Errorf("checkpoint %s at %s, last delivered %s: %w", sc.shard, cp, d, ErrCheckpointAhead)
		}
	}
	if prepare {
		return sc.lease.prepare(ctx, cp)
	}
	return sc.lease.checkpoint(ctx, cp)
}
