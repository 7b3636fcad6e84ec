package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/fanout"
)

// FanOutAPI is what a Worker in FanOut mode needs of its client beyond
// KinesisAPI: *kinesis.Client has it all. New checks that the client given
// implements it when Config.Retrieval is FanOut.
type FanOutAPI interface {
	KinesisAPI
	fanout.SubscribeAPI
	fanout.ConsumerAPI
}

var _ FanOutAPI = (*kinesis.Client)(nil)

// fanOut reads each leased shard through one SubscribeToShard subscription
// at a time (fanout.SubscribeShard: it re-subscribes from the last
// ContinuationSequenceNumber when a subscription expires or breaks).
//
// Ownership: the subscription runs under the shard's readCtx, which ends
// as soon as the worker learns the lease is lost (a renewal that fails, or
// the Store's event that another worker took it), on a graceful stop, and
// when the watchdog restarts the reader;
// the subscription's connection is closed before read returns, and the
// shard's goroutine returns (releasing nothing it no longer holds) after
// that. The window in which two workers both read the shard is therefore
// from another worker's take to this worker hearing of it: for a steal the
// Store's event (milliseconds); for a lease that expired because this
// worker stalled, up to one renewal period (FailoverTime/3). Records this
// worker delivers in that window cannot be checkpointed (the Store fences
// checkpoints by owner and lease counter), so the new owner processes them
// again: at-least-once, as with polling. Kinesis itself hands the
// subscription over: a SubscribeToShard for the same consumer and shard
// more than 5 seconds after the last one ends the older connection
// (earlier, the new one gets ResourceInUseException and backs off).
type fanOut struct {
	client      FanOutAPI
	consumerARN string
}

// errStopShard ends a subscription whose shard goroutine must stop; the
// reason is kept by read.
var errStopShard = errors.New("consumer: shard stopping")

func (f *fanOut) read(sc *shardConsumer) exitReason {
	for {
		if r := sc.why(); r != exitNone {
			return r
		}
		pos := sc.fanOutPosition()
		stop := exitNone
		children, err := fanout.SubscribeShard(sc.readCtx, f.client, fanout.ShardSubscription{
			ConsumerARN: f.consumerARN, ShardID: sc.shard, Position: pos,
			Options: fanout.Options{
				Backoff: fanout.Backoff{Initial: sc.w.cfg.TaskBackoff, Max: sc.w.cfg.MaxBackoff},
				Logger:  sc.w.log, // SubscribeShard adds the shard ID
			},
			Handler: func(_ context.Context, ev fanout.Event) error {
				sc.w.metrics.MillisBehindLatest(sc.shard, ev.MillisBehindLatest)
				if len(ev.Records) > 0 {
					sc.lastSeq = aws.ToString(ev.Records[len(ev.Records)-1].SequenceNumber)
				}
				if ev.ContinuationSequenceNumber != "" {
					sc.contSeq = ev.ContinuationSequenceNumber
				}
				if r := sc.deliver(ev.Records, ev.MillisBehindLatest); r != exitNone {
					stop = r
					return errStopShard
				}
				return nil
			},
		})
		if stop != exitNone {
			return stop
		}
		if err == nil {
			return sc.endShard(children)
		}
		kind := classify(sc.readCtx, err)
		switch kind {
		case kindCanceled:
			continue
		case kindNotFound:
			// The shard, or the consumer, does not exist.
			if sc.shardGone() {
				return sc.endShard(nil)
			}
		case kindInvalidArgument:
			sc.log.Error("cannot subscribe from the checkpoint; the shard does not hold it (was the stream re-created?)",
				zap.Stringer("position", pos), zap.Error(err))
		}
		wait := sc.b.NextBackOff()
		sc.log.Warn("SubscribeToShard failed; backing off", zap.Duration("retry_in", wait), zap.Error(err))
		sc.sleep(wait)
	}
}

// fanOutPosition is where the next subscription starts: after the last
// event's continuation, else after the last record read, else at the
// lease's checkpoint (AT_SEQUENCE_NUMBER: deliver skips the user records up
// to it), else at the record a restart of the reader resumes from, else at
// the lease's initial position.
func (sc *shardConsumer) fanOutPosition() fanout.Position {
	switch {
	case sc.contSeq != "":
		return fanout.AfterSequenceNumber(sc.contSeq)
	case sc.lastSeq != "":
		return fanout.AfterSequenceNumber(sc.lastSeq)
	case sc.after != (checkpoint.Checkpoint{}):
		return fanout.AtSequenceNumber(sc.after.SequenceNumber)
	case sc.atSeq != "":
		return fanout.AtSequenceNumber(sc.atSeq)
	}
	switch sc.start.SequenceNumber {
	case checkpoint.TrimHorizon:
		return fanout.TrimHorizon()
	case checkpoint.AtTimestamp:
		return fanout.AtTimestamp(sc.startTime())
	}
	return fanout.Position{Type: types.ShardIteratorTypeLatest}
}

// setupFanOut finds the stream's ARN if only its name is configured, and
// registers (or reuses) the consumer, waiting until it is ACTIVE.
func (w *Worker) setupFanOut(ctx context.Context, f *fanOut) error {
	if f.consumerARN != "" {
		return nil
	}
	streamARN := w.cfg.StreamARN
	if streamARN == "" {
		var err error
		if streamARN, err = fanout.StreamARN(ctx, f.client, w.cfg.StreamName); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
	}
	arn, err := fanout.RegisterConsumer(ctx, f.client, streamARN, w.cfg.ConsumerName,
		fanout.Backoff{Initial: w.cfg.TaskBackoff, Max: w.cfg.MaxBackoff}, w.log)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	f.consumerARN = arn
	w.log.Info("reading through enhanced fan-out", zap.String("consumer_arn", arn))
	return nil
}
