package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
)

// deliver hands the user records of one read (a GetRecords result or a
// SubscribeToShard event) to the processor, again after a back-off while it
// fails (only the records after the lease's checkpoint), until it succeeds
// or the failure policy gives up on them.
func (sc *shardConsumer) deliver(recs []types.Record, behind int64) exitReason {
	batch, st, buf := unpack(nil, recs, sc.after, sc.rng, sc.subBuf)
	sc.subBuf = buf
	if len(recs) > 0 {
		// The iterator has moved past the checkpointed record.
		sc.after, sc.atSeq = checkpoint.Checkpoint{}, ""
	}
	if st.aggregates > 0 {
		sc.w.metrics.AggregatedRecords(sc.shard, st.aggregates, st.aggregatedUser)
	}
	if st.dropped > 0 {
		sc.w.metrics.RecordsDropped(sc.shard, st.dropped)
		sc.log.Debug("user records outside the shard's hash key range dropped", zap.Int("records", st.dropped))
	}
	if st.corrupt > 0 {
		sc.w.metrics.CorruptAggregates(sc.shard, st.corrupt)
		sc.log.Warn("corrupt KPL aggregates delivered as plain records", zap.Int("records", st.corrupt))
	}
	callEmpty := sc.w.cfg.CallProcessRecordsEvenForEmptyRecordList
	if len(batch) == 0 && !callEmpty {
		switch {
		case behind == 0:
			sc.progressed(progressIdle)
		case len(recs) > 0:
			sc.progressed(progressWaiting)
		default:
			sc.progressed(stillWaiting)
		}
		return exitNone
	}
	var retries backoff.BackOff // made at the first failure
	for attempts := 0; ; {
		if len(batch) == 0 && !callEmpty {
			return exitNone
		}
		if r := sc.confirmLease(); r != exitNone {
			return sc.unfinished(r, batch)
		}
		var last checkpoint.Checkpoint
		if len(batch) > 0 {
			last = batch[len(batch)-1].Position()
			sc.setDelivered(last)
		}
		if len(batch) > 0 || behind > 0 {
			sc.progressed(progressWaiting)
		}
		ctx, done := sc.callContext()
		started := time.Now()
		err := sc.proc.ProcessRecords(ctx, ProcessRecordsInput{
			ShardID: sc.shard, Records: batch, MillisBehindLatest: behind,
			Checkpointer: &Checkpointer{sc: sc, at: last},
		})
		done()
		sc.w.metrics.ProcessRecords(sc.shard, time.Since(started), err)
		if err == nil {
			if len(batch) > 0 {
				sc.processed = last
				sc.w.metrics.RecordsProcessed(sc.shard, len(batch))
				sc.w.metrics.DataBytesProcessed(sc.shard, dataBytes(batch))
			}
			if behind > 0 {
				sc.progressed(progressWaiting)
			} else {
				sc.progressed(progressIdle)
			}
			sc.b.Reset()
			return exitNone
		}
		// Waiting out the back-off is not a stall.
		sc.progressed(progressIdle)
		if r := sc.why(); r != exitNone {
			return sc.unfinished(r, batch)
		}
		attempts++
		batch = sc.unprocessed(batch)
		if len(batch) == 0 && !callEmpty {
			return exitNone // the processor checkpointed it all
		}
		if retries == nil {
			retries = sc.b
			if p := sc.w.cfg.FailurePolicy; p.Action != RetryForever {
				retries = backoff.WithMaxRetries(sc.b, uint64(p.MaxAttempts-1))
			}
		}
		wait := retries.NextBackOff()
		if wait == backoff.Stop {
			return sc.giveUp(batch, attempts, err)
		}
		sc.w.metrics.BatchFailure(sc.shard, FailureRetried, len(batch))
		sc.log.Warn("processor ProcessRecords failed; delivering the batch again", zap.Duration("retry_in", wait),
			zap.Int("attempt", attempts), zap.Error(err))
		if !sc.sleep(wait) {
			return sc.unfinished(sc.why(), batch)
		}
		batch = sc.unprocessed(batch)
	}
}

// unprocessed returns the records of batch after the lease's checkpoint.
func (sc *shardConsumer) unprocessed(batch []Record) []Record {
	cp := sc.lease.copyLease().Checkpoint
	i := 0
	for i < len(batch) && batch[i].Position().Compare(cp) <= 0 {
		i++
	}
	return batch[i:]
}

// unfinished returns r, deliver's result for a batch it has not finished:
// for a restart of the reader, it notes where to read again from.
func (sc *shardConsumer) unfinished(r exitReason, batch []Record) exitReason {
	if r == exitRestart {
		if rest := sc.unprocessed(batch); len(rest) > 0 {
			p := rest[0].Position()
			sc.resume = &p
		}
	}
	return r
}

// giveUp applies the failure policy's action to batch (the records not
// processed), on which attempts ProcessRecords calls failed, the last with
// err.
func (sc *shardConsumer) giveUp(batch []Record, attempts int, err error) exitReason {
	pol := sc.w.cfg.FailurePolicy
	fields := []zap.Field{zap.Stringer("action", pol.Action), zap.Int("attempts", attempts), zap.Int("records", len(batch)), zap.Error(err)}
	if len(batch) > 0 {
		fields = append(fields, zap.Stringer("first", batch[0].Position()), zap.Stringer("last", batch[len(batch)-1].Position()))
	}
	switch pol.Action {
	case StopWorker:
		berr := &BatchError{ShardID: sc.shard, Records: len(batch), Attempts: attempts, Err: err}
		if len(batch) > 0 {
			berr.First, berr.Last = batch[0].Position(), batch[len(batch)-1].Position()
		}
		sc.w.metrics.BatchFailure(sc.shard, FailureStopped, len(batch))
		sc.log.Error("processor ProcessRecords keeps failing; stopping the worker", fields...)
		sc.w.halt(berr)
		sc.stop()
		return sc.why()
	case DeadLetter:
		if len(batch) > 0 {
			if r := sc.deadLetter(batch, attempts, err); r != exitNone {
				return sc.unfinished(r, batch)
			}
		}
		sc.w.metrics.BatchFailure(sc.shard, FailureDeadLettered, len(batch))
		sc.log.Warn("processor ProcessRecords keeps failing; records handed to the dead-letter handler", fields...)
	default: // SkipBatch
		sc.w.metrics.BatchFailure(sc.shard, FailureSkipped, len(batch))
		sc.log.Error("processor ProcessRecords keeps failing; skipping the records", fields...)
	}
	if len(batch) == 0 {
		return exitNone
	}
	return sc.checkpointPast(batch[len(batch)-1].Position())
}

// deadLetter hands batch to the dead-letter handler, again after a back-off
// for as long as it fails.
func (sc *shardConsumer) deadLetter(batch []Record, attempts int, err error) exitReason {
	fb := FailedBatch{
		Application: sc.w.cfg.ApplicationName, StreamName: sc.w.cfg.StreamName, StreamARN: sc.w.cfg.StreamARN,
		ShardID: sc.shard, Records: batch, Err: err, Attempts: attempts,
	}
	for {
		dlErr := sc.w.cfg.FailurePolicy.DeadLetter.DeadLetter(sc.procCtx, fb)
		if dlErr == nil {
			sc.b.Reset()
			return exitNone
		}
		if r := sc.why(); r != exitNone {
			return r
		}
		wait := sc.b.NextBackOff()
		sc.w.metrics.BatchFailure(sc.shard, FailureDeadLetterFailed, len(batch))
		sc.log.Error("dead-letter handler failed; calling it again", zap.Duration("retry_in", wait),
			zap.Int("records", len(batch)), zap.Error(dlErr))
		if !sc.sleep(wait) {
			return sc.why()
		}
	}
}

// checkpointPast checkpoints cp, the last record of a batch the failure
// policy gave up on, again after a back-off while the Store fails (a lost
// lease, or a Store failure that fails the worker, stops the shard).
func (sc *shardConsumer) checkpointPast(cp checkpoint.Checkpoint) exitReason {
	for {
		err := sc.lease.checkpoint(sc.procCtx, cp)
		if err == nil || errors.Is(err, checkpoint.ErrCheckpointBackwards) {
			// (Backwards: the processor's own checkpoint got further.)
			sc.processed = cp
			sc.b.Reset()
			return exitNone
		}
		if r := sc.why(); r != exitNone {
			return r
		}
		wait := sc.b.NextBackOff()
		sc.log.Warn("checkpoint past a failed batch failed; trying again", zap.Duration("retry_in", wait), zap.Error(err))
		if !sc.sleep(wait) {
			if r := sc.why(); r != exitNone {
				return r
			}
		}
	}
}

// dataBytes is the size of the records' data (KCL: DataBytesProcessed).
func dataBytes(recs []Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	return n
}

// confirmLease makes sure the lease is still this worker's before a batch
// is handed to the processor. Renewals every FailoverTime/3 keep the lease's
// age (since its last confirmed write) well below FailoverTime; an age above
// two thirds of it means renewals stalled (the process was paused, or the
// Store was unreachable), and the lease may have expired and moved. Then
// the lease is renewed first: if it was lost the shard stops without
// delivering; if the Store cannot be reached the batch waits once the lease
// could have expired. This keeps a worker that wakes from a pause from
// processing batches of a shard another worker already owns (checkpoints
// are fenced regardless).
func (sc *shardConsumer) confirmLease() exitReason {
	limit := sc.w.cfg.FailoverTime
	for sc.lease.age() > limit*2/3 {
		ctx, cancel := context.WithTimeout(sc.procCtx, limit)
		err := sc.lease.renew(ctx)
		cancel()
		if err == nil {
			break
		}
		if r := sc.why(); r != exitNone {
			return r
		}
		if sc.lease.age() < limit {
			break
		}
		wait := sc.b.NextBackOff()
		sc.log.Warn("lease could not be confirmed; holding the batch", zap.Duration("retry_in", wait), zap.Error(err))
		if !sc.sleep(wait) {
			return sc.why()
		}
	}
	return exitNone
}
