package tail

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
)

// flushBytes is the output a reader collects before it writes, within one
// GetRecords answer.
const flushBytes = 1 << 20

// minBackoff is the least first wait after a throttled or failed call.
const minBackoff = 100 * time.Millisecond

// once makes a call without the SDK's own retries: the reader retries
// throttled and failed calls itself, with its backoff, without end.
func once(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// reader reads one shard from its start to its end.
type reader struct {
	t     *tailer
	id    string
	start startSpec
	last  string // sequence number of the last record printed
	fails int    // consecutive throttled or failed calls

	buf  []byte
	subs []aggregation.SubRecord
}

// run reads the shard to its end and returns the children GetRecords
// reported there. It returns an error when ctx is done or a call fails for
// good.
func (r *reader) run(ctx context.Context) ([]types.ChildShard, error) {
	it, err := r.iterator(ctx)
	if err != nil {
		return nil, err
	}
	cfg := &r.t.cfg
	var wait time.Duration
	for {
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		began := time.Now()
		out, err := cfg.Client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(cfg.Limit)}, once)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if _, ok := errors.AsType[*types.ExpiredIteratorException](err); ok {
				r.t.warnf("%s: shard iterator expired; getting a new one", r.id)
				if it, err = r.iterator(ctx); err != nil {
					return nil, err
				}
				wait = 0
				continue
			}
			if wait, err = r.failed("GetRecords", err); err != nil {
				return nil, err
			}
			continue
		}
		r.fails = 0
		if err := r.print(out.Records); err != nil {
			return nil, err
		}
		if out.NextShardIterator == nil {
			return out.ChildShards, nil // the end of a closed shard
		}
		it = out.NextShardIterator
		wait = cfg.CallInterval
		if behind := out.MillisBehindLatest; behind == nil || *behind == 0 {
			wait = max(wait, cfg.PollInterval)
		}
		wait -= time.Since(began)
	}
}

// iterator gets the shard iterator to read from: after the last record
// printed, or at the shard's start.
func (r *reader) iterator(ctx context.Context) (*string, error) {
	in := &kinesis.GetShardIteratorInput{ShardId: aws.String(r.id), ShardIteratorType: r.start.typ}
	switch {
	case r.last != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(r.last)
	case r.start.typ == types.ShardIteratorTypeAtSequenceNumber:
		in.StartingSequenceNumber = aws.String(r.start.seq)
	case r.start.typ == types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(r.start.ts)
	}
	r.t.setStream(&in.StreamName, &in.StreamARN)
	for {
		out, err := r.t.cfg.Client.GetShardIterator(ctx, in, once)
		if err == nil {
			r.fails = 0
			return out.ShardIterator, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait, err := r.failed("GetShardIterator", err)
		if err != nil {
			return nil, err
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

var (
	throttles  = retry.IsErrorThrottles(retry.DefaultThrottles)
	retryables = retry.IsErrorRetryables(retry.DefaultRetryables)
)

// failed returns how long to wait before calling again after a call failed
// with err, or err itself if it is not worth retrying: neither a throttle
// (ProvisionedThroughputExceededException, LimitExceededException,
// KMSThrottlingException...) nor an error the SDK would retry (a dropped
// connection, a 5xx answer). Retried errors other than throttles are
// logged.
func (r *reader) failed(op string, err error) (time.Duration, error) {
	_, kms := errors.AsType[*types.KMSThrottlingException](err)
	throttled := kms || throttles.IsErrorThrottle(err) == aws.TrueTernary
	if !throttled && retryables.IsErrorRetryable(err) != aws.TrueTernary {
		return 0, fmt.Errorf("tail: %s on %s: %w", op, r.id, err)
	}
	d := r.t.backoff(r.fails)
	r.fails++
	if !throttled {
		r.t.warnf("%s on %s: %v (retrying in %v)", op, r.id, err, d.Round(time.Millisecond))
	}
	return d, nil
}

// backoff returns the wait after the (fails+1)th consecutive failure:
// max(CallInterval, 100ms) doubled fails times, at most MaxBackoff, with
// the upper half jittered.
func (t *tailer) backoff(fails int) time.Duration {
	d := max(t.cfg.CallInterval, minBackoff)
	for i := 0; i < fails && d < t.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, t.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1) //nolint:gosec // G404: jitter, not a secret
}

// print writes records in the configured format, deaggregated if asked.
func (r *reader) print(records []types.Record) error {
	if len(records) == 0 {
		return nil
	}
	cfg := &r.t.cfg
	buf := r.buf[:0]
	for _, kr := range records {
		rec := Record{
			ShardID:        r.id,
			SequenceNumber: aws.ToString(kr.SequenceNumber),
			ArrivalTime:    aws.ToTime(kr.ApproximateArrivalTimestamp),
			PartitionKey:   aws.ToString(kr.PartitionKey),
			Data:           kr.Data,
		}
		if !cfg.Deaggregate {
			buf = cfg.Format.Append(buf, rec)
		} else {
			subs, err := aggregation.AppendDeaggregate(r.subs[:0], rec.PartitionKey, rec.Data)
			if err != nil && !errors.Is(err, aggregation.ErrNotAggregated) {
				r.t.warnf("%s %s: printed as it is: %v", r.id, rec.SequenceNumber, err)
			}
			for _, s := range subs {
				u := rec
				if s.Aggregated {
					u.Aggregated = true
					u.SubSequenceNumber = s.SubSequenceNumber
					u.PartitionKey = s.PartitionKey
					u.ExplicitHashKey = s.ExplicitHashKey
					u.Data = s.Data
				}
				buf = cfg.Format.Append(buf, u)
			}
			clear(subs) // drop the references to this answer's data
			r.subs = subs[:0]
		}
		if len(buf) >= flushBytes {
			if err := r.t.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	r.last = aws.ToString(records[len(records)-1].SequenceNumber)
	if len(buf) > 0 {
		if err := r.t.write(buf); err != nil {
			return err
		}
	}
	if cap(buf) <= 4*flushBytes { // keep a buffer of ordinary size for the next answer
		r.buf = buf[:0]
	} else {
		r.buf = nil
	}
	return nil
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
