package fanout

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// StreamARN returns the ARN of the stream named name (DescribeStreamSummary).
func StreamARN(ctx context.Context, client ConsumerAPI, name string) (string, error) {
	out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("fanout: describe stream %s: %w", name, err)
	}
	if out.StreamDescriptionSummary == nil || aws.ToString(out.StreamDescriptionSummary.StreamARN) == "" {
		return "", fmt.Errorf("fanout: describe stream %s: no StreamARN in the reply", name)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN), nil
}

// RegisterConsumer returns the ARN of the stream's consumer named name once
// it is ACTIVE: it registers the consumer (RegisterStreamConsumer), or
// reuses it if one of that name exists (ResourceInUseException), then polls
// DescribeStreamConsumer, with the back-off b, until the consumer is ACTIVE
// or ctx ends. A consumer being deleted gives ErrConsumerDeleting.
// Throttling (LimitExceededException: Kinesis allows 5 registrations per
// second per stream and 5 consumers CREATING at once) is retried.
func RegisterConsumer(ctx context.Context, client ConsumerAPI, streamARN, name string, b Backoff, log *zap.Logger) (string, error) {
	if log == nil {
		log = zap.NewNop()
	}
	bo := b.newBackOff()
	var arn string
	for arn == "" {
		out, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
			StreamARN: aws.String(streamARN), ConsumerName: aws.String(name),
		})
		var (
			inUse *types.ResourceInUseException
			limit *types.LimitExceededException
		)
		switch {
		case err == nil:
			arn = aws.ToString(out.Consumer.ConsumerARN)
			log.Info("stream consumer registered", zap.String("consumer_arn", arn))
			if out.Consumer.ConsumerStatus == types.ConsumerStatusActive {
				return arn, nil
			}
		case errors.As(err, &inUse):
			// It exists already: reuse it.
			log.Debug("stream consumer exists; reusing it", zap.String("consumer_name", name))
			d, err := describeConsumer(ctx, client, streamARN, name, bo)
			if err != nil {
				return "", err
			}
			arn = aws.ToString(d.ConsumerARN)
			switch d.ConsumerStatus {
			case types.ConsumerStatusActive:
				return arn, nil
			case types.ConsumerStatusDeleting:
				return "", fmt.Errorf("%w: %s", ErrConsumerDeleting, arn)
			}
		case errors.As(err, &limit) && ctx.Err() == nil:
			if err := sleep(ctx, bo.NextBackOff()); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("fanout: register consumer %s: %w", name, err)
		}
	}
	bo.Reset()
	for {
		if err := sleep(ctx, bo.NextBackOff()); err != nil {
			return "", fmt.Errorf("fanout: wait for consumer %s to be ACTIVE: %w", arn, err)
		}
		d, err := describeConsumer(ctx, client, streamARN, name, bo)
		if err != nil {
			return "", err
		}
		switch d.ConsumerStatus {
		case types.ConsumerStatusActive:
			return aws.ToString(d.ConsumerARN), nil
		case types.ConsumerStatusDeleting:
			return "", fmt.Errorf("%w: %s", ErrConsumerDeleting, arn)
		}
		log.Debug("waiting for the stream consumer to be ACTIVE", zap.String("status", string(d.ConsumerStatus)))
	}
}

// describeConsumer describes the consumer, retrying throttling.
func describeConsumer(ctx context.Context, client ConsumerAPI, streamARN, name string, bo *backoff.ExponentialBackOff) (*types.ConsumerDescription, error) {
	for {
		out, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{
			StreamARN: aws.String(streamARN), ConsumerName: aws.String(name),
		})
		var limit *types.LimitExceededException
		switch {
		case err == nil && out.ConsumerDescription != nil:
			return out.ConsumerDescription, nil
		case err == nil:
			return nil, fmt.Errorf("fanout: describe consumer %s: empty reply", name)
		case errors.As(err, &limit) && ctx.Err() == nil:
			if err := sleep(ctx, bo.NextBackOff()); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("fanout: describe consumer %s: %w", name, err)
		}
	}
}
