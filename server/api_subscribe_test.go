package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// register registers an ACTIVE consumer (the test server's delays are zero)
// and returns its ARN.
func (e *env) register(stream, name string) string {
	e.t.Helper()
	out, err := e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn(stream)), ConsumerName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("RegisterStreamConsumer %s/%s: %v", stream, name, err)
	}
	return aws.ToString(out.Consumer.ConsumerARN)
}

// sub is a running subscription read by a test.
type sub struct {
	t      testing.TB
	out    *kinesis.SubscribeToShardOutput
	events <-chan types.SubscribeToShardEventStream
}

func (e *env) subscribe(c *kinesis.Client, consumerARN, shard string, pos *types.StartingPosition) *sub {
	e.t.Helper()
	out, err := c.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shard), StartingPosition: pos})
	if err != nil {
		e.t.Fatalf("SubscribeToShard %s %s: %v", consumerARN, shard, err)
	}
	s := &sub{t: e.t, out: out, events: out.GetStream().Events()}
	e.t.Cleanup(func() { _ = out.GetStream().Close() })
	return s
}

// next returns the next SubscribeToShardEvent, or nil when the stream ended
// (then err is the stream's error, nil for a clean end).
func (s *sub) next(timeout time.Duration) (ev *types.SubscribeToShardEvent, err error) {
	s.t.Helper()
	select {
	case x, ok := <-s.events:
		if !ok {
			return nil, s.out.GetStream().Err()
		}
		m, isEvent := x.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			s.t.Fatalf("unexpected event %T", x)
		}
		return &m.Value, nil
	case <-time.After(timeout):
		s.t.Fatalf("no event within %v", timeout)
	}
	return nil, nil
}

// collect reads events until n records arrived, and returns them with the
// last event.
func (s *sub) collect(n int, timeout time.Duration) ([]types.Record, *types.SubscribeToShardEvent) {
	s.t.Helper()
	var recs []types.Record
	var last *types.SubscribeToShardEvent
	deadline := time.Now().Add(timeout)
	for len(recs) < n {
		ev, err := s.next(time.Until(deadline))
		if ev == nil {
			s.t.Fatalf("stream ended after %d of %d records: %v", len(recs), n, err)
		}
		recs = append(recs, ev.Records...)
		last = ev
	}
	return recs, last
}

func startPos(typ types.ShardIteratorType) *types.StartingPosition {
	return &types.StartingPosition{Type: typ}
}

func TestSubscribeToShardHTTP1(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e.createStream("s", 1)
	c := e.register("s", "c1")
	var want []string
	for i := range 3 {
		want = append(want, *e.put("s", "pk", []byte(fmt.Sprint("before-", i))).SequenceNumber)
	}
	s := e.subscribe(e.c, c, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon))
	recs, last := s.collect(3, 30*time.Second)
	for i := range 3 {
		if got := aws.ToString(recs[i].SequenceNumber); got != want[i] || string(recs[i].Data) != fmt.Sprint("before-", i) || aws.ToString(recs[i].PartitionKey) != "pk" {
			t.Fatalf("record %d: seq %s data %q, want %s %q", i, got, recs[i].Data, want[i], fmt.Sprint("before-", i))
		}
		if recs[i].ApproximateArrivalTimestamp == nil || time.Since(*recs[i].ApproximateArrivalTimestamp) > time.Minute {
			t.Fatalf("record %d: arrival %v", i, recs[i].ApproximateArrivalTimestamp)
		}
	}
	if aws.ToString(last.ContinuationSequenceNumber) != want[2] {
		t.Fatalf("continuation %s, want the last record's %s", aws.ToString(last.ContinuationSequenceNumber), want[2])
	}
	// Pushed: a record put now arrives without the client asking.
	seq := *e.put("s", "pk", []byte("after")).SequenceNumber
	recs, _ = s.collect(1, 30*time.Second)
	if len(recs) != 1 || aws.ToString(recs[0].SequenceNumber) != seq || string(recs[0].Data) != "after" {
		t.Fatalf("pushed record: %+v, want %s", recs, seq)
	}
}
