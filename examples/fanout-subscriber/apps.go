package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/fanout"
)

// The two applications. Each reads the stream through its own registered
// stream consumer, so Kinesis pushes each its own copy of every record, at
// the pace that application's handler sets: a slow one falls behind (its
// MillisBehindLatest grows) without holding the other back.

// newAudit returns application 1: a fanout.Subscriber, with no leases and
// no checkpoints, that reads every shard of the stream from start on and
// counts (and prints) every record with its MillisBehindLatest and
// latency. delay is added per record, to make it slow on purpose.
func newAudit(client *kinesis.Client, cfg config, stats *appStats, start time.Time, delay time.Duration, logger *zap.Logger) (*fanout.Subscriber, error) {
	return fanout.New(client, fanout.Config{
		StreamName:   cfg.Stream,
		ConsumerName: cfg.AuditName,
		// The run's records only (on a stream that has others): from a
		// little before the run started.
		StartingPosition: fanout.AtTimestamp(start),
		Deaggregate:      true, // the producer packs records into KPL aggregates
		Handler: func(ctx context.Context, b fanout.Batch) error {
			for _, r := range b.Records {
				stats.add(b.ShardID, r.PartitionKey, r.Data, r.ApproximateArrivalTimestamp, b.MillisBehindLatest)
				_ = pause(ctx, delay) // once ctx ended, the rest is counted without delay
			}
			return nil
		},
		Options: fanout.Options{Logger: logger},
	})
}

// newMetrics returns application 2: a consumer.Worker in FanOut retrieval
// mode (leases and checkpoints in PostgreSQL) that aggregates the values per
// partition key. Its consumer name is its application name.
func newMetrics(client *kinesis.Client, store checkpoint.Store, cfg config, stats *appStats, agg *aggregator, start time.Time, delay time.Duration, hold <-chan struct{}, logger *zap.Logger) (*consumer.Worker, error) {
	return consumer.New(client, store, func(string) consumer.Processor {
		return &metricsProcessor{stats: stats, agg: agg, delay: delay, hold: hold}
	}, consumer.Config{
		ApplicationName:  cfg.MetricsApp,
		StreamName:       cfg.Stream,
		Retrieval:        consumer.FanOut,
		InitialPosition:  consumer.AtTimestamp,
		InitialTimestamp: start,
		ShutdownTimeout:  10 * time.Second,
		Logger:           logger,
	})
}

// metricsProcessor is the metrics application's record processor, one per
// shard; they share the stats and the aggregator.
type metricsProcessor struct {
	consumer.BaseProcessor // checkpoints at SHARD_END and on shutdown
	stats                  *appStats
	agg                    *aggregator
	delay                  time.Duration
	hold                   <-chan struct{} // nil, or closed when the processor may start
}

// ProcessRecords aggregates the batch and checkpoints after its last
// record. Delivery is at-least-once (a record after the last checkpoint is
// delivered again after a failover): the aggregate counts the first copy of
// each record only, which this program can tell by the record's number; an
// application of your own would need such a key of its own, or an
// aggregate that tolerates repeats.
func (p *metricsProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	if p.hold != nil {
		select {
		case <-p.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, r := range in.Records {
		pl, first, ok := p.stats.add(in.ShardID, r.PartitionKey, r.Data, r.ApproximateArrivalTimestamp, in.MillisBehindLatest)
		if ok && first {
			p.agg.add(r.PartitionKey, pl.Value)
		}
		_ = pause(ctx, p.delay) // once ctx ended, the rest is processed without delay
	}
	return in.Checkpointer.Checkpoint(ctx)
}

// pause waits d (nothing if d is 0) or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
