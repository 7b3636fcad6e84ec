package consumer

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisAPI is the part of *kinesis.Client the worker uses.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Errors of the consumer package. Store errors come as the checkpoint
// package's sentinels (checkpoint.ErrLeaseLost, ...), wrapped.
var (
	// ErrClosed: Run was called on a Worker that has already run.
	ErrClosed = errors.New("consumer: worker already ran")
	// ErrCheckpointAhead: a checkpoint names a record that was not
	// delivered yet.
	ErrCheckpointAhead = errors.New("consumer: checkpoint ahead of the records delivered")
	// ErrShardNotEnded: a checkpoint at SHARD_END was asked for outside
	// ShardEnded.
	ErrShardNotEnded = errors.New("consumer: shard has not ended")
	// errCrashed is what Run returns after the test hook crash.
	errCrashed = errors.New("consumer: worker crashed (test hook)")
)

// errKind is how a Kinesis error is handled.
type errKind int

const (
	// kindRetry: transient or unknown (a 5xx, a lost connection, an error
	// of the SDK's retryer such as an exhausted retry quota): back off and
	// try again. The KCL retries these forever too.
	kindRetry errKind = iota
	// kindThrottled: ProvisionedThroughputExceeded, KMS throttling or
	// LimitExceeded: back off and try again.
	kindThrottled
	// kindExpiredIterator: the iterator is older than 5 minutes: get a new
	// one from the last position read.
	kindExpiredIterator
	// kindNotFound: the shard or stream does not exist (any more).
	kindNotFound
	// kindInvalidArgument: the request was refused as malformed; for
	// GetShardIterator with a sequence number, one the shard does not hold.
	kindInvalidArgument
	// kindCanceled: the caller's ctx ended.
	kindCanceled
)

// classify is the single place that decides how a Kinesis error is handled.
func classify(ctx context.Context, err error) errKind {
	var (
		throughput *types.ProvisionedThroughputExceededException
		kmsThrottl *types.KMSThrottlingException
		limit      *types.LimitExceededException
		expired    *types.ExpiredIteratorException
		notFound   *types.ResourceNotFoundException
		invalid    *types.InvalidArgumentException
	)
	switch {
	case ctx.Err() != nil:
		// Whatever the error says, the caller is stopping.
		return kindCanceled
	case errors.As(err, &throughput), errors.As(err, &kmsThrottl), errors.As(err, &limit):
		return kindThrottled
	case errors.As(err, &expired):
		return kindExpiredIterator
	case errors.As(err, &notFound):
		return kindNotFound
	case errors.As(err, &invalid):
		return kindInvalidArgument
	}
	return kindRetry
}
