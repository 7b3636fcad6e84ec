package server_test

import (
	"fmt"
	"math/big"
	"testing"
	"testing/synctest"
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

// subscribe subscribes with a client of its own: aws-sdk-go-v2 (service/
// kinesis v1.56.12, smithy-go v1.28.9) keeps one event-stream decoder per
// client, whose buffer concurrent event streams of one client share (a data
// race the race detector reports in smithy-go's eventstream.Codec).
func (e *env) subscribe(consumerARN, shard string, pos *types.StartingPosition) *sub {
	e.t.Helper()
	return e.subscribeWith(e.newClient(), consumerARN, shard, pos)
}

func (e *env) subscribeWith(c *kinesis.Client, consumerARN, shard string, pos *types.StartingPosition) *sub {
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
	s := e.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon))
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

func seqPos(typ types.ShardIteratorType, seq string) *types.StartingPosition {
	return &types.StartingPosition{Type: typ, SequenceNumber: aws.String(seq)}
}

func seqsOf(recs []types.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = aws.ToString(r.SequenceNumber)
	}
	return out
}

// In a synctest bubble (newBubbleEnv): the keep-alive comes after exactly
// its period of silence, and the clock moves only when the test sleeps.
func TestSubscribeToShardStartingPositions(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubscribeToShardStartingPositions)
}

func testSubscribeToShardStartingPositions(t *testing.T) {
	e := newBubbleEnv(t, server.Config{SubscriptionKeepAlive: 100 * time.Millisecond})
	e.createStream("s", 1)
	var seqs []string
	var arrivals []time.Time
	for i := range 5 {
		seqs = append(seqs, *e.put("s", "pk", []byte(fmt.Sprint(i))).SequenceNumber)
		time.Sleep(time.Millisecond) // the bubble's clock: distinct arrival milliseconds for AT_TIMESTAMP
	}
	for _, r := range e.readShard("s", shardID(0)) {
		arrivals = append(arrivals, *r.ApproximateArrivalTimestamp)
	}
	cases := []struct {
		name string
		pos  *types.StartingPosition
		want []string
	}{
		{"trim-horizon", startPos(types.ShardIteratorTypeTrimHorizon), seqs},
		{"at-seq", seqPos(types.ShardIteratorTypeAtSequenceNumber, seqs[2]), seqs[2:]},
		{"after-seq", seqPos(types.ShardIteratorTypeAfterSequenceNumber, seqs[2]), seqs[3:]},
		{"at-timestamp", &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(arrivals[3])}, seqs[3:]},
	}
	for _, tc := range cases {
		s := e.subscribe(e.register("s", tc.name), shardID(0), tc.pos)
		recs, _ := s.collect(len(tc.want), 30*time.Second)
		if fmt.Sprint(seqsOf(recs)) != fmt.Sprint(tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, seqsOf(recs), tc.want)
		}
		// Caught up: the next event is a keep-alive without records whose
		// continuation resumes after the last record.
		ev, err := s.next(30 * time.Second)
		if ev == nil || len(ev.Records) != 0 || ev.ContinuationSequenceNumber == nil || aws.ToInt64(ev.MillisBehindLatest) != 0 {
			t.Fatalf("%s: keep-alive %+v, %v", tc.name, ev, err)
		}
	}
	// LATEST sees only records put after it.
	s := e.subscribe(e.register("s", "latest"), shardID(0), startPos(types.ShardIteratorTypeLatest))
	ev, _ := s.next(30 * time.Second) // a keep-alive: nothing before
	if len(ev.Records) != 0 {
		t.Fatalf("LATEST delivered old records %v", seqsOf(ev.Records))
	}
	seq := *e.put("s", "pk", []byte("new")).SequenceNumber
	if recs, _ := s.collect(1, 30*time.Second); len(recs) != 1 || *recs[0].SequenceNumber != seq {
		t.Fatalf("LATEST: got %v, want [%s]", seqsOf(recs), seq)
	}
}

// An empty shard: the keep-alive's continuation, used with
// AFTER_SEQUENCE_NUMBER (by SubscribeToShard or GetShardIterator), starts
// at the first record put later. In a synctest bubble: the first event is
// the keep-alive, whose period is shorter than the lifetime, however slow
// the machine.
func TestSubscribeToShardEmptyShardContinuation(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubscribeToShardEmptyShardContinuation)
}

func testSubscribeToShardEmptyShardContinuation(t *testing.T) {
	e := newBubbleEnv(t, server.Config{SubscriptionKeepAlive: 50 * time.Millisecond, SubscriptionLifetime: 500 * time.Millisecond})
	e.createStream("s", 1)
	c := e.register("s", "c")
	subscribed := time.Now()
	s := e.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeLatest))
	ev, _ := s.next(30 * time.Second)
	if d := time.Since(subscribed); d != 50*time.Millisecond {
		t.Fatalf("first keep-alive after %v, want 50ms", d)
	}
	cont := aws.ToString(ev.ContinuationSequenceNumber)
	if cont == "" || len(ev.Records) != 0 {
		t.Fatalf("keep-alive %+v", ev)
	}
	for ev != nil { // until the lifetime ends the stream
		ev, _ = s.next(30 * time.Second)
	}
	if d := time.Since(subscribed); d != 500*time.Millisecond {
		t.Fatalf("the subscription ended after %v, want its lifetime of 500ms", d)
	}
	first := *e.put("s", "pk", []byte("a")).SequenceNumber
	second := *e.put("s", "pk", []byte("b")).SequenceNumber
	s = e.subscribe(c, shardID(0), seqPos(types.ShardIteratorTypeAfterSequenceNumber, cont))
	if recs, _ := s.collect(2, 30*time.Second); fmt.Sprint(seqsOf(recs)) != fmt.Sprint([]string{first, second}) {
		t.Fatalf("after the empty shard's continuation: %v, want [%s %s]", seqsOf(recs), first, second)
	}
	it := e.iterator("s", shardID(0), types.ShardIteratorTypeAfterSequenceNumber, &cont, nil)
	if recs := e.drain(it, 0); len(recs) != 2 || *recs[0].SequenceNumber != first {
		t.Fatalf("GetShardIterator after the continuation: %v", seqsOf(recs))
	}
}

func TestSubscribeToShardErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 2)
	c := e.register("s", "c")
	seq1 := *e.put("s", "x", []byte("x")).SequenceNumber
	call := func(consumer, shard string, pos *types.StartingPosition) error {
		out, err := e.nr.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumer), ShardId: aws.String(shard), StartingPosition: pos})
		if err == nil {
			_ = out.GetStream().Close()
		}
		return err
	}
	th := startPos(types.ShardIteratorTypeTrimHorizon)
	wantCode(t, call("not-an-arn", shardID(0), th), "ValidationException")
	wantErr[types.ResourceNotFoundException](t, call(arn("s")+"/consumer/nope:1", shardID(0), th))
	wantErr[types.ResourceNotFoundException](t, call(arn("gone")+"/consumer/c:1", shardID(0), th))
	wantErr[types.ResourceNotFoundException](t, call(c, shardID(7), th))
	wantCode(t, call(c, "bad shard!", th), "ValidationException")
	wantErr[types.InvalidArgumentException](t, call(c, shardID(0), startPos(types.ShardIteratorTypeAtSequenceNumber)))
	wantErr[types.InvalidArgumentException](t, call(c, shardID(0), startPos(types.ShardIteratorTypeAtTimestamp)))
	wantErr[types.InvalidArgumentException](t, call(c, shardID(0), seqPos(types.ShardIteratorTypeTrimHorizon, seq1)))
	wantErr[types.InvalidArgumentException](t, call(c, shardID(0), seqPos(types.ShardIteratorTypeAtSequenceNumber, "123")))
	// seq1 is in one of the two shards; in the other it is invalid.
	other := shardID(0)
	if e.readShard("s", shardID(0)) != nil {
		other = shardID(1)
	}
	wantErr[types.InvalidArgumentException](t, call(c, other, seqPos(types.ShardIteratorTypeAtSequenceNumber, seq1)))
	wantCode(t, call(c, shardID(0), startPos("SOMETIMES")), "ValidationException")
	// Missing members the SDK would refuse to send.
	wantRawError(t, rawCall(t, e.srv.Endpoint, "SubscribeToShard", map[string]any{"ConsumerARN": c, "ShardId": shardID(0)}), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "SubscribeToShard", map[string]any{"ShardId": shardID(0), "StartingPosition": map[string]any{"Type": "LATEST"}}), "ValidationException")
	// DryRun checks and does not subscribe.
	_, err := e.nr.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(c), ShardId: aws.String(shardID(0)), StartingPosition: th, DryRun: aws.Bool(true)})
	wantErr[types.DryRunOperationException](t, err)
}

// A second subscription for the same consumer and shard within 5 s of the
// first fails with ResourceInUseException; the first keeps delivering.
func TestSubscribeToShardInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e.createStream("s", 1)
	c := e.register("s", "c")
	s := e.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeLatest))
	fresh := e.newClient(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	_, err := fresh.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(c), ShardId: aws.String(shardID(0)), StartingPosition: startPos(types.ShardIteratorTypeLatest)})
	wantErr[types.ResourceInUseException](t, err)
	// Another consumer on the same shard is independent.
	s2 := e.subscribe(e.register("s", "other"), shardID(0), startPos(types.ShardIteratorTypeLatest))
	seq := *e.put("s", "pk", []byte("x")).SequenceNumber
	for _, x := range []*sub{s, s2} {
		if recs, _ := x.collect(1, 30*time.Second); *recs[0].SequenceNumber != seq {
			t.Fatalf("got %v, want %s", seqsOf(recs), seq)
		}
	}
}

// Deregistering the consumer, or deleting the stream, ends its
// subscriptions with ResourceNotFoundException.
func TestSubscribeToShardEndsWithConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e.createStream("s", 1)
	c1 := e.register("s", "c1")
	c2 := e.register("s", "c2")
	s1 := e.subscribe(c1, shardID(0), startPos(types.ShardIteratorTypeLatest))
	s2 := e.subscribe(c2, shardID(0), startPos(types.ShardIteratorTypeLatest))
	waitEnd := func(s *sub) error {
		t.Helper()
		for {
			ev, err := s.next(30 * time.Second)
			if ev == nil {
				return err
			}
		}
	}
	_, err := e.c.DeregisterStreamConsumer(e.ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(c1)})
	noErr(t, err, "DeregisterStreamConsumer")
	wantErr[types.ResourceNotFoundException](t, waitEnd(s1))
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(true)})
	noErr(t, err, "DeleteStream")
	wantErr[types.ResourceNotFoundException](t, waitEnd(s2))
}

// At the end of a closed shard the last event carries ChildShards and no
// continuation, and the stream ends cleanly.
func TestSubscribeToShardClosedShard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e.createStream("s", 1)
	c := e.register("s", "c")
	want := []string{*e.put("s", "a", []byte("a")).SequenceNumber}
	s := e.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon))
	want = append(want, *e.put("s", "b", []byte("b")).SequenceNumber)
	mid := new(big.Int).Rsh(maxHashKey, 1)
	_, err := e.c.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shardID(0)), NewStartingHashKey: aws.String(mid.String())})
	noErr(t, err, "SplitShard")
	var got []string
	var last *types.SubscribeToShardEvent
	for {
		ev, err := s.next(30 * time.Second)
		if ev == nil {
			noErr(t, err, "end of the closed shard's stream")
			break
		}
		got = append(got, seqsOf(ev.Records)...)
		last = ev
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if last.ContinuationSequenceNumber != nil || len(last.Records) != 0 || len(last.ChildShards) != 2 {
		t.Fatalf("last event %+v: want no continuation, no records, two children", last)
	}
	for i, k := range last.ChildShards {
		if *k.ShardId != shardID(i+1) || fmt.Sprint(k.ParentShards) != fmt.Sprint([]string{shardID(0)}) {
			t.Fatalf("child %d: %s parents %v", i, *k.ShardId, k.ParentShards)
		}
	}
}

// Five seconds after a subscription started, a new one for the same
// consumer and shard takes over, and the old one ends with
// ResourceInUseException. In a synctest bubble, to the nanosecond.
func TestSubscribeToShardTakeover(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubscribeToShardTakeover)
}

func testSubscribeToShardTakeover(t *testing.T) {
	e := newBubbleEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e.createStream("s", 1)
	c := e.register("s", "c")
	old := e.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeLatest))
	fresh := e.newClient(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	subscribe := func() (*kinesis.SubscribeToShardOutput, error) {
		return fresh.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(c), ShardId: aws.String(shardID(0)), StartingPosition: startPos(types.ShardIteratorTypeLatest)})
	}
	_, err := subscribe()
	wantErr[types.ResourceInUseException](t, err)
	time.Sleep(5*time.Second - time.Nanosecond)
	_, err = subscribe()
	wantErr[types.ResourceInUseException](t, err) // still within the first 5 s
	time.Sleep(time.Nanosecond)
	out, err := subscribe()
	noErr(t, err, "SubscribeToShard 5 s after the first")
	t.Cleanup(func() { _ = out.GetStream().Close() })
	for {
		ev, err := old.next(30 * time.Second)
		if ev == nil {
			wantErr[types.ResourceInUseException](t, err)
			break
		}
	}
	seq := *e.put("s", "pk", []byte("x")).SequenceNumber
	s := &sub{t: t, out: out, events: out.GetStream().Events()}
	if recs, _ := s.collect(1, 30*time.Second); *recs[0].SequenceNumber != seq {
		t.Fatalf("new subscription got %v, want %s", seqsOf(recs), seq)
	}
}

// TestSubscribeCallRate: with throughput enforced, a consumer may call
// SubscribeToShard for a shard once per second (LimitExceededException
// otherwise, before the in-use check); without it, there is no such limit.
// In a synctest bubble: the second is exact, and synctest.Wait lets the
// server finish with a subscription the client closed.
func TestSubscribeCallRate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubscribeCallRate)
}

func testSubscribeCallRate(t *testing.T) {
	e := newBubbleEnv(t, server.Config{EnforceThroughput: true})
	e.createStream("s", 2)
	carn := e.register("s", "c")
	trim := &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
	first := e.subscribe(carn, "shardId-000000000000", trim)
	_ = first.out.GetStream().Close()
	// e.nr does not retry: the SDK retries LimitExceededException as throttling.
	_, err := e.nr.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(carn), ShardId: aws.String("shardId-000000000000"), StartingPosition: trim})
	wantErr[types.LimitExceededException](t, err)
	// The limit is per shard: the other shard is free.
	e.subscribe(carn, "shardId-000000000001", trim)
	// Just before a second has passed the call is still refused; a second
	// after the first call it is allowed.
	time.Sleep(time.Second - time.Nanosecond)
	_, err = e.nr.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(carn), ShardId: aws.String("shardId-000000000000"), StartingPosition: trim})
	wantErr[types.LimitExceededException](t, err)
	time.Sleep(time.Nanosecond)
	out, err := e.nr.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(carn), ShardId: aws.String("shardId-000000000000"), StartingPosition: trim})
	noErr(t, err, "SubscribeToShard a second later")
	_ = out.GetStream().Close()

	free := newBubbleEnv(t, server.Config{})
	free.createStream("s", 1)
	fcarn := free.register("s", "c")
	s1 := free.subscribe(fcarn, "shardId-000000000000", trim)
	_ = s1.out.GetStream().Close()
	synctest.Wait() // the server has ended the closed subscription
	out, err = free.nr.SubscribeToShard(free.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(fcarn), ShardId: aws.String("shardId-000000000000"), StartingPosition: trim})
	noErr(t, err, "SubscribeToShard again at once without EnforceThroughput")
	_ = out.GetStream().Close()
}
