package fanout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/cenkalti/backoff/v4"
)

// SubscribeAPI is the part of *kinesis.Client that SubscribeShard uses.
type SubscribeAPI interface {
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

// ConsumerAPI is the part of *kinesis.Client that RegisterConsumer uses.
type ConsumerAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
}

// KinesisAPI is the part of *kinesis.Client a Subscriber uses.
type KinesisAPI interface {
	SubscribeAPI
	ConsumerAPI
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Errors of the fanout package.
var (
	// ErrClosed: Run was called on a Subscriber that has already run.
	ErrClosed = errors.New("fanout: subscriber already ran")
	// ErrConsumerDeleting: the consumer named is being deregistered, so it
	// cannot be reused and a new one of that name cannot be registered yet.
	ErrConsumerDeleting = errors.New("fanout: consumer is being deleted")
)

// HandlerError is the error a Handler returned, with the shard whose batch
// it was handling. SubscribeShard and Subscriber.Run return it (wrapped no
// further) when they stop because of it.
type HandlerError struct {
	ShardID string
	Err     error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("fanout: handler for %s: %v", e.ShardID, e.Err)
}

// Unwrap returns the Handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// Backoff configures the waits between attempts: a subscription that
// failed, a consumer that is not ACTIVE yet. The wait starts at Initial and
// doubles, with ±50% jitter, up to Max; a subscription that delivered an
// event resets it.
type Backoff struct {
	// Initial is the first wait. Zero means 200ms.
	Initial time.Duration
	// Max bounds the wait. Zero means 5s (or Initial, if larger).
	Max time.Duration
}

// Defaults, each with its reason.
const (
	defaultInitialBackoff = 200 * time.Millisecond // Kinesis allows one SubscribeToShard per second per consumer and shard
	defaultMaxBackoff     = 5 * time.Second        // the ResourceInUse window of a takeover
	// defaultIdleTimeout: Kinesis sends an event at least every ~5s, even
	// without records; a subscription silent for much longer is broken
	// (KCL issue #463: subscriptions stalling silently).
	defaultIdleTimeout = 30 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = defaultInitialBackoff
	}
	if b.Max <= 0 {
		b.Max = max(defaultMaxBackoff, b.Initial)
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

func (b Backoff) newBackOff() *backoff.ExponentialBackOff {
	b = b.withDefaults()
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = b.Initial
	eb.MaxInterval = b.Max
	eb.MaxElapsedTime = 0
	eb.Reset()
	return eb
}

// sleep waits d or until ctx ends; it returns ctx.Err() in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable is the single place that decides whether a failed subscription
// is tried again (after a back-off) or ends SubscribeShard.
func retryable(err error) bool {
	var (
		notFound *types.ResourceNotFoundException
		invalid  *types.InvalidArgumentException
		denied   *types.AccessDeniedException
		api      smithy.APIError
	)
	switch {
	case errors.As(err, &notFound):
		// The consumer or the shard does not exist: only the caller
		// knows whether to wait (a consumer being registered) or give up
		// (a shard past retention, a stream deleted).
		return false
	case errors.As(err, &invalid), errors.As(err, &denied):
		// The request itself is wrong (a sequence number the shard does
		// not hold, a bad ARN): sending it again cannot help.
		return false
	case errors.As(err, &api) && api.ErrorCode() == "ValidationException":
		return false
	}
	// ResourceInUse (a subscription to the shard less than 5s old: ours
	// after a break, or another reader's takeover), LimitExceeded,
	// InternalFailure, KMS throttling, connection resets, unexpected EOF,
	// an idle subscription: all transient.
	return true
}
