package console

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/tokenbucket"
)

// What the data viewer and the live tail share: paced GetRecords calls
// retried on throttling, and records turned into the API's Record, KPL
// aggregates into their user records.

const (
	// readsPerSecond paces the console's GetRecords calls on one shard,
	// under Kinesis's 5 per second, leaving room for other readers.
	readsPerSecond = 4
	// maxPaced bounds the shards whose pacing is remembered; full buckets
	// (idle for a second) are forgotten first.
	maxPaced = 4096
	// throttleRetries bounds the retries of a throttled GetRecords.
	throttleRetries = 6
	// firstBackoff and maxBackoff bound the wait before such a retry.
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// pacer paces GetRecords per shard across every session and page: the
// server's limit is per shard, whoever reads. It runs on the wall clock
// (time.Now): its waits are real.
type pacer struct {
	mu      sync.Mutex // guards buckets
	buckets map[string]*tokenbucket.Bucket
}

func newPacer() *pacer { return &pacer{buckets: make(map[string]*tokenbucket.Bucket)} }

// wait returns once a GetRecords call on the shard named by key may go, or
// with ctx's error.
func (p *pacer) wait(ctx context.Context, key string) error {
	for {
		d := p.take(key, time.Now())
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// take takes a call's token from the shard's bucket and returns 0, or
// returns how long until there is one.
func (p *pacer) take(key string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buckets[key]
	if b == nil {
		if len(p.buckets) >= maxPaced {
			for k, o := range p.buckets {
				if o.Refill(now); o.Tokens() >= o.Rate() {
					delete(p.buckets, k)
				}
			}
		}
		nb := tokenbucket.New(readsPerSecond, now)
		b = &nb
		p.buckets[key] = b
	}
	b.Refill(now)
	if b.Enough(1) {
		b.Take(1)
		return 0
	}
	return b.Wait(1)
}

// once makes an SDK call a single attempt: the console retries what it
// retries itself.
func once(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// pacedGetRecords calls GetRecords, paced under key and retried with back-off
// while the shard is throttled (ProvisionedThroughputExceededException).
func (c *Console) pacedGetRecords(ctx context.Context, client *sdkClient, key string, iter string, limit int32) (*kinesis.GetRecordsOutput, error) {
	backoff := firstBackoff
	for attempt := 0; ; attempt++ {
		if err := c.pace.wait(ctx, key); err != nil {
			return nil, err
		}
		out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(limit)}, once)
		var pte *types.ProvisionedThroughputExceededException
		if err == nil || !errors.As(err, &pte) || attempt >= throttleRetries {
			return out, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// paceKey names a shard for the pacer.
func paceKey(account, stream, shard string) string { return account + "/" + stream + "/" + shard }

// recordJSON is API.md's Record. Data is base64 in JSON.
type recordJSON struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	Aggregated        bool   `json:"aggregated"`
	PartitionKey      string `json:"partitionKey"`
	ExplicitHashKey   string `json:"explicitHashKey,omitempty"`
	Arrival           string `json:"arrival"`
	Data              []byte `json:"data"`
}

// item is one user record read, with what ordering and cursors need.
type item struct {
	rec     recordJSON
	arrival int64 // ms
	last    bool  // the last user record of its Kinesis record
	match   bool  // passes the partition key filter
}

// userRecords appends the user records of a Kinesis record of shard to
// dst: a KPL aggregate's (aggregated, sub-sequence numbers 0..n-1), or the
// record itself. A record that looks like an aggregate but is corrupt is
// shown as it is. skip drops the first user records (a page that ended
// inside the aggregate showed them); key, when set, marks the user records
// of other partition keys as not matching.
func userRecords(dst []item, shard string, r types.Record, skip int64, key string) []item {
	seq := aws.ToString(r.SequenceNumber)
	var arrival time.Time
	if r.ApproximateArrivalTimestamp != nil {
		arrival = *r.ApproximateArrivalTimestamp
	}
	subs, err := aggregation.Deaggregate(aws.ToString(r.PartitionKey), r.Data)
	if err != nil {
		subs = []aggregation.SubRecord{{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data}}
	}
	for i, s := range subs {
		if int64(i) < skip {
			continue
		}
		dst = append(dst, item{
			rec: recordJSON{
				ShardID: shard, SequenceNumber: seq, SubSequenceNumber: s.SubSequenceNumber, Aggregated: s.Aggregated,
				PartitionKey: s.PartitionKey, ExplicitHashKey: s.ExplicitHashKey, Arrival: ts(arrival), Data: s.Data,
			},
			arrival: arrival.UnixMilli(),
			last:    i == len(subs)-1,
			match:   key == "" || s.PartitionKey == key,
		})
	}
	return dst
}
