package consumer

import "context"

// BaseProcessor gives a Processor the usual behaviour of every method but
// ProcessRecords: embed it and write ProcessRecords only. Initialize does
// nothing; LeaseLost does nothing; ShardEnded checkpoints SHARD_END, so
// that the shard's children start; ShutdownRequested checkpoints the last
// record ProcessRecords handled without error, so that the next owner
// starts after it.
type BaseProcessor struct{}

// Initialize does nothing.
func (BaseProcessor) Initialize(context.Context, InitializeInput) error { return nil }

// LeaseLost does nothing.
func (BaseProcessor) LeaseLost(context.Context, LeaseLostInput) {}

// ShardEnded checkpoints SHARD_END.
func (BaseProcessor) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// ShutdownRequested checkpoints the last record handled.
func (BaseProcessor) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
