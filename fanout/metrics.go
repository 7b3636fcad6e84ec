package fanout

import (
	"context"
	"errors"
	"time"

	"github.com/aws/smithy-go"
)

// Metrics receives the counters and timings of SubscribeShard and of a
// Subscriber. They call it from their goroutines concurrently (one per
// shard): implementations must be safe for concurrent use and fast. Embed
// NopMetrics to implement only some methods. The package depends on no
// metrics library; fanout/prommetrics adapts this interface to Prometheus.
//
// SubscribeShard reports the subscription methods (SubscribeToShard,
// SubscriptionEnded, Resubscribed, ShardShutdown, MillisBehindLatest); a
// Subscriber also
// reports what its Handler did (HandlerCall, RecordsProcessed,
// DataBytesProcessed, RecordsDropped). A caller of SubscribeShard owns its
// handler and measures it itself.
//
// Shard IDs label per-shard values; there are as many as the stream has
// shards. The names in parentheses are the KCL's (or Kinesis's CloudWatch)
// metrics each method corresponds to.
type Metrics interface {
	// SubscribeToShard observes each SubscribeToShard call: its latency
	// until the event stream started or the call failed, and code: "" if
	// the subscription started, else why not: the AWS error code
	// ("ResourceInUseException" within 5 seconds of the shard's last
	// subscription, "LimitExceededException", "ResourceNotFoundException",
	// ...), ReasonIdle, ReasonCanceled or ReasonTransport (CloudWatch: SubscribeToShard.Success, SubscribeToShard.RateExceeded).
	SubscribeToShard(shardID string, d time.Duration, code string)
	// SubscriptionEnded counts each subscription that started, once, when
	// it ends, with the reason: ReasonCompleted (Kinesis ended it; a
	// subscription lasts 5 minutes), ReasonShardEnded, or what ended it:
	// the AWS error code of an in-stream exception (such as
	// "ResourceInUseException" for another reader's takeover),
	// ReasonIdle, ReasonCanceled, ReasonHandlerError or ReasonTransport.
	SubscriptionEnded(shardID, reason string)
	// Resubscribed observes how long a shard went without a subscription:
	// from the end of one to the start of the next, back-offs and failed
	// calls included. The first subscription of a SubscribeShard call is
	// not a resubscription.
	Resubscribed(shardID string, d time.Duration)
	// ShardShutdown reports that SubscribeShard stopped reading the shard,
	// after its last call of any other method for it, with the reason:
	// ReasonShardEnded (the shard's last event was handled),
	// ReasonCanceled, ReasonHandlerError, or the AWS error code retrying
	// cannot fix ("ResourceNotFoundException", "InvalidArgumentException",
	// ...) (KCL: the ShutdownTask, by ShutdownReason).
	ShardShutdown(shardID, reason string)
	// MillisBehindLatest observes MillisBehindLatest of each event (KCL:
	// MillisBehindLatest; CloudWatch: SubscribeToShardEvent.MillisBehindLatest).
	MillisBehindLatest(shardID string, ms int64)
	// HandlerCall observes each call of a Subscriber's Handler: how long it
	// took and its error (nil on success; an error stops the Subscriber)
	// (KCL: RecordProcessor.processRecords.Time).
	HandlerCall(shardID string, d time.Duration, err error)
	// RecordsProcessed counts the records of the batches the Handler
	// returned nil for: user records with Config.Deaggregate, else Kinesis
	// records (KCL: RecordsProcessed).
	RecordsProcessed(shardID string, n int)
	// DataBytesProcessed counts the data bytes (Record.Data; partition
	// keys are not counted) of the records RecordsProcessed counts (KCL:
	// DataBytesProcessed).
	DataBytesProcessed(shardID string, n int)
	// RecordsDropped counts user records of KPL aggregates dropped with
	// Config.Deaggregate because their hash key lies outside the shard's
	// hash key range.
	RecordsDropped(shardID string, n int)
}

// Reasons and codes SubscribeToShard and SubscriptionEnded report besides
// the AWS error codes.
const (
	// ReasonCompleted: Kinesis ended the event stream cleanly.
	ReasonCompleted = "Completed"
	// ReasonShardEnded: the shard's last event was handled.
	ReasonShardEnded = "ShardEnded"
	// ReasonIdle: no event (or no response to the call) within
	// Options.IdleTimeout.
	ReasonIdle = "Idle"
	// ReasonCanceled: the ctx of SubscribeShard (or Run) ended.
	ReasonCanceled = "Canceled"
	// ReasonHandlerError: the handler returned an error.
	ReasonHandlerError = "HandlerError"
	// ReasonTransport: the connection failed without an AWS error code.
	ReasonTransport = "Transport"
)

// errorCode names err as Metrics.SubscribeToShard and
// Metrics.SubscriptionEnded report it: "" for nil; ReasonCanceled once ctx has ended; ReasonIdle,
// ReasonHandlerError; the AWS error code of an API error (a
// *types.ResourceInUseException gives "ResourceInUseException"); else
// ReasonTransport.
func errorCode(ctx context.Context, err error) string {
	var (
		he  *HandlerError
		api smithy.APIError
	)
	switch {
	case err == nil:
		return ""
	case ctx.Err() != nil, errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.Is(err, errIdle):
		return ReasonIdle
	case errors.As(err, &he):
		return ReasonHandlerError
	case errors.As(err, &api) && api.ErrorCode() != "":
		return api.ErrorCode()
	}
	return ReasonTransport
}

// NopMetrics is a Metrics that records nothing, to embed in partial
// implementations.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

// SubscribeToShard records nothing.
func (NopMetrics) SubscribeToShard(string, time.Duration, string) {}

// SubscriptionEnded records nothing.
func (NopMetrics) SubscriptionEnded(string, string) {}

// Resubscribed records nothing.
func (NopMetrics) Resubscribed(string, time.Duration) {}

// ShardShutdown records nothing.
func (NopMetrics) ShardShutdown(string, string) {}

// MillisBehindLatest records nothing.
func (NopMetrics) MillisBehindLatest(string, int64) {}

// HandlerCall records nothing.
func (NopMetrics) HandlerCall(string, time.Duration, error) {}

// RecordsProcessed records nothing.
func (NopMetrics) RecordsProcessed(string, int) {}

// DataBytesProcessed records nothing.
func (NopMetrics) DataBytesProcessed(string, int) {}

// RecordsDropped records nothing.
func (NopMetrics) RecordsDropped(string, int) {}
