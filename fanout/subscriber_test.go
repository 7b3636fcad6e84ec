package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// TestMain fails the package if any goroutine outlives the tests (the
// Subscriber's and SubscribeShard's, and the SDK event stream readers they
// own). The HTTP client's idle connections end when the test servers shut
// down, which goleak waits for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testStream = "fanout-test"

type env struct {
	t      *testing.T
	srv    *servertest.Server
	client *kinesis.Client
	arn    string
}

func newEnv(t *testing.T, shards int32, cfg server.Config) *env {
	t.Helper()
	cfg.Fsync = storage.FsyncNever
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	srv := servertest.Start(t, cfg)
	e := &env{t: t, srv: srv, client: srv.StreamingClient()} // no overall HTTP timeout: it would cut event streams
	ctx := t.Context()
	if _, err := e.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	wait.Eventually(t, 10*time.Second, func() error {
		out, err := e.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
		if err != nil {
			return err
		}
		if out.StreamDescriptionSummary.StreamStatus != types.StreamStatusActive {
			return fmt.Errorf("stream %s", out.StreamDescriptionSummary.StreamStatus)
		}
		e.arn = aws.ToString(out.StreamDescriptionSummary.StreamARN)
		return nil
	})
	return e
}

// put writes records "<prefix>-<i>" for i in [from, to) with partition key
// i, in PutRecords calls of up to 100.
func (e *env) put(prefix string, from, to int) {
	e.t.Helper()
	for i := from; i < to; {
		var entries []types.PutRecordsRequestEntry
		for ; i < to && len(entries) < 100; i++ {
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf("%s-%d", prefix, i)), PartitionKey: aws.String(strconv.Itoa(i))})
		}
		for len(entries) > 0 {
			out, err := e.client.PutRecords(e.t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries})
			if err != nil {
				e.t.Errorf("PutRecords: %v", err)
				return
			}
			var retry []types.PutRecordsRequestEntry
			for j, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, entries[j])
				}
			}
			entries = retry
		}
	}
}

// collector records what a Handler receives, per shard.
type collector struct {
	mu      sync.Mutex
	byShard map[string][]fanout.Record
	data    map[string]int // payload -> times delivered
	ends    map[string][]string
	order   []string // shard IDs in the order their first batch came
	errs    []error
}

func newCollector() *collector {
	return &collector{byShard: map[string][]fanout.Record{}, data: map[string]int{}, ends: map[string][]string{}}
}

func (c *collector) handle(_ context.Context, b fanout.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byShard[b.ShardID]; !ok {
		c.order = append(c.order, b.ShardID)
		c.byShard[b.ShardID] = nil
	}
	prev := c.byShard[b.ShardID]
	for _, r := range b.Records {
		if n := len(prev); n > 0 {
			p := prev[n-1]
			if cmpSeq(r.SequenceNumber, p.SequenceNumber) < 0 || r.SequenceNumber == p.SequenceNumber && r.SubSequenceNumber <= p.SubSequenceNumber {
				c.errs = append(c.errs, fmt.Errorf("%s: %s/%d after %s/%d", b.ShardID, r.SequenceNumber, r.SubSequenceNumber, p.SequenceNumber, p.SubSequenceNumber))
			}
		}
		prev = append(prev, r)
		c.data[string(r.Data)]++
	}
	c.byShard[b.ShardID] = prev
	if b.ShardEnded() {
		var kids []string
		for _, k := range b.ChildShards {
			kids = append(kids, aws.ToString(k.ShardId))
		}
		c.ends[b.ShardID] = kids
	}
	return nil
}

func cmpSeq(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check fails unless every "<prefix>-<i>", i < n, was delivered exactly
// once, and every shard's records came in order.
func (c *collector) check(t *testing.T, prefix string, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		t.Error(err)
	}
	missing, dups := 0, 0
	for i := range n {
		switch c.data[fmt.Sprintf("%s-%d", prefix, i)] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	if missing > 0 || dups > 0 {
		t.Errorf("%d of %d records missing, %d delivered more than once", missing, n, dups)
	}
}

func (c *collector) count(prefix string, n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := 0
	for i := range n {
		if c.data[fmt.Sprintf("%s-%d", prefix, i)] > 0 {
			got++
		}
	}
	return got
}

// waitFor waits up to d until every "<prefix>-<i>", i < n, was delivered.
func (c *collector) waitFor(t *testing.T, d time.Duration, prefix string, n int) {
	t.Helper()
	wait.Eventually(t, d, func() error {
		if got := c.count(prefix, n); got < n {
			return fmt.Errorf("%d of %d %q records delivered", got, n, prefix)
		}
		return nil
	})
}

// runSubscriber runs s in a goroutine; the returned func cancels it and
// returns Run's result.
func runSubscriber(t *testing.T, s *fanout.Subscriber) (stop func() error, done <-chan struct{}) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan struct{})
	var err error
	go func() {
		defer close(ch)
		err = s.Run(ctx)
	}()
	stop = func() error {
		cancel()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of its ctx ending")
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop, ch
}

func fastOptions(t *testing.T) fanout.Options {
	return fanout.Options{
		Backoff: fanout.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond},
		Logger:  zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
}

// TestExactlyOnceAcrossExpiries: with subscriptions that the server ends
// every 400ms, records put continuously are all delivered once, in order,
// while the subscriber re-subscribes at least 10 times.
func TestExactlyOnceAcrossExpiries(t *testing.T) {
	e := newEnv(t, 2, server.Config{SubscriptionLifetime: 400 * time.Millisecond, SubscriptionKeepAlive: 100 * time.Millisecond})
	c := newCollector()
	var subscribes atomic.Int64
	opts := fastOptions(t)
	opts.OnSubscribe = func(string, fanout.Position) { subscribes.Add(1) }
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "exactly-once", StartingPosition: fanout.TrimHorizon(),
		Handler: c.handle, Options: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	// Puts go on, 100 records every 100ms, until at least 3000 records are
	// put and the subscriber has subscribed 10 times (the server ends each
	// subscription after 400ms): records are in flight across many
	// expiries however fast or slow the machine is.
	const minRecords, minSubscribes = 3000, 10
	n := 0
	for n < minRecords || subscribes.Load() < minSubscribes {
		e.put("r", n, n+100)
		n += 100
		if n > 100*minRecords {
			t.Fatalf("%d records put, %d subscriptions: the server does not end them", n, subscribes.Load())
		}
		time.Sleep(100 * time.Millisecond) // pacing, not synchronisation
	}
	c.waitFor(t, 30*time.Second, "r", n)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.check(t, "r", n)
	if got := subscribes.Load(); got < minSubscribes {
		t.Errorf("%d subscriptions, want >= %d (the server ends each after 400ms)", got, minSubscribes)
	}
	if s.ConsumerARN() == "" {
		t.Error("ConsumerARN empty after Run")
	}
}

// reshard waits for the stream to be ACTIVE after a split or merge.
func (e *env) waitActive() {
	e.t.Helper()
	wait.Eventually(e.t, 10*time.Second, func() error {
		out, err := e.client.DescribeStreamSummary(e.t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
		if err != nil {
			return err
		}
		if out.StreamDescriptionSummary.StreamStatus != types.StreamStatusActive {
			return fmt.Errorf("stream %s", out.StreamDescriptionSummary.StreamStatus)
		}
		return nil
	})
}

func (e *env) openShards() []types.Shard {
	e.t.Helper()
	out, err := e.client.ListShards(e.t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		e.t.Fatal(err)
	}
	var open []types.Shard
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	return open
}

// TestFollowsChildShards: a subscriber from LATEST on one shard follows
// the split's two children, then their merge child, each after its
// parents' last records; every record is delivered once.
func TestFollowsChildShards(t *testing.T) {
	e := newEnv(t, 1, server.Config{SubscriptionKeepAlive: 100 * time.Millisecond})
	c := newCollector()
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "follower", Handler: c.handle, Options: fastOptions(t),
		DeliverEmptyBatches: true, // so that the first batch shows the subscription is live
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	// LATEST: wait until the subscription is live before putting.
	wait.Eventually(t, 20*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.order) == 0 {
			return errors.New("no batch yet")
		}
		return nil
	})
	e.put("a", 0, 200)
	parent := e.openShards()[0]
	mid := "170141183460469231731687303715884105728" // 2^127
	if _, err := e.client.SplitShard(t.Context(), &kinesis.SplitShardInput{
		StreamName: aws.String(testStream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	e.waitActive()
	e.put("b", 0, 200)
	kids := e.openShards()
	if len(kids) != 2 {
		t.Fatalf("%d open shards after the split, want 2", len(kids))
	}
	if _, err := e.client.MergeShards(t.Context(), &kinesis.MergeShardsInput{
		StreamName: aws.String(testStream), ShardToMerge: kids[0].ShardId, AdjacentShardToMerge: kids[1].ShardId,
	}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	e.waitActive()
	e.put("c", 0, 200)
	merged := e.openShards()
	wait.Eventually(t, 30*time.Second, func() error {
		if got := c.count("a", 200) + c.count("b", 200) + c.count("c", 200); got < 600 {
			return fmt.Errorf("%d of 600 records delivered", got)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.check(t, "a", 200)
	c.check(t, "b", 200)
	c.check(t, "c", 200)

	c.mu.Lock()
	defer c.mu.Unlock()
	p, k0, k1, m := aws.ToString(parent.ShardId), aws.ToString(kids[0].ShardId), aws.ToString(kids[1].ShardId), aws.ToString(merged[0].ShardId)
	if got := c.ends[p]; !slices.Contains(got, k0) || !slices.Contains(got, k1) {
		t.Errorf("parent %s ended with children %v, want %s and %s", p, got, k0, k1)
	}
	// Parents before children: each shard's first batch came after its
	// parents had ended, so it appears later in c.order.
	idx := func(id string) int { return slices.Index(c.order, id) }
	if !(idx(p) < idx(k0) && idx(p) < idx(k1) && idx(k0) < idx(m) && idx(k1) < idx(m)) {
		t.Errorf("shards started in the order %v; want %s, then %s and %s, then %s", c.order, p, k0, k1, m)
	}
	// Each "b" record is in one of the children, each "c" in the merge child.
	for _, r := range c.byShard[m] {
		if string(r.Data[0]) != "c" {
			t.Errorf("merge child has record %q", r.Data)
			break
		}
	}
}

// TestConsumerReuse: two subscribers with the same consumer name share one
// registered consumer, and a second registration returns the same ARN.
func TestConsumerReuse(t *testing.T) {
	e := newEnv(t, 1, server.Config{ConsumerCreateDelay: 300 * time.Millisecond})
	ctx := t.Context()
	arn1, err := fanout.RegisterConsumer(ctx, e.client, e.arn, "shared", fanout.Backoff{Initial: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("first RegisterConsumer: %v", err)
	}
	d, err := e.client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn1)})
	if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("after RegisterConsumer: %v, %v; want ACTIVE", d, err)
	}
	arn2, err := fanout.RegisterConsumer(ctx, e.client, e.arn, "shared", fanout.Backoff{Initial: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("second RegisterConsumer: %v", err)
	}
	if arn1 != arn2 {
		t.Errorf("second registration returned %s, want the first's %s", arn2, arn1)
	}
	list, err := e.client.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Consumers) != 1 {
		t.Errorf("%d consumers registered, want 1", len(list.Consumers))
	}

	// A Subscriber naming the consumer uses it too.
	e.put("x", 0, 10)
	c := newCollector()
	s, err := fanout.New(e.client, fanout.Config{StreamARN: e.arn, ConsumerName: "shared", StartingPosition: fanout.TrimHorizon(), Handler: c.handle, Options: fastOptions(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	c.waitFor(t, 20*time.Second, "x", 10)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s.ConsumerARN() != arn1 {
		t.Errorf("subscriber used %s, want %s", s.ConsumerARN(), arn1)
	}
}

// TestCloseDuringActiveSubscriptions: cancelling Run while every shard has
// a subscription, and one handler is blocked, returns nil promptly and
// leaves no goroutine behind (TestMain's goleak).
func TestCloseDuringActiveSubscriptions(t *testing.T) {
	e := newEnv(t, 4, server.Config{})
	e.put("x", 0, 400)
	var subscribed atomic.Int64
	opts := fastOptions(t)
	opts.OnSubscribe = func(string, fanout.Position) { subscribed.Add(1) }
	blocked := make(chan struct{})
	var once sync.Once
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "closer", StartingPosition: fanout.TrimHorizon(), Options: opts,
		Handler: func(ctx context.Context, b fanout.Batch) error {
			once.Do(func() { close(blocked) })
			<-ctx.Done() // a slow handler that honours ctx
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	wait.Eventually(t, 20*time.Second, func() error {
		if subscribed.Load() < 4 {
			return fmt.Errorf("%d subscriptions", subscribed.Load())
		}
		return nil
	})
	<-blocked
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, fanout.ErrClosed) {
		t.Errorf("second Run: %v, want ErrClosed", err)
	}
}

// TestHandlerErrorStopsRun: a Handler error ends Run with a *HandlerError.
func TestHandlerErrorStopsRun(t *testing.T) {
	e := newEnv(t, 2, server.Config{})
	e.put("x", 0, 10)
	boom := errors.New("boom")
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "failing", StartingPosition: fanout.TrimHorizon(), Options: fastOptions(t),
		Handler: func(context.Context, fanout.Batch) error { return boom },
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := runSubscriber(t, s)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop on a Handler error")
	}
	err = stop()
	var he *fanout.HandlerError
	if !errors.As(err, &he) || !errors.Is(err, boom) || !strings.HasPrefix(he.ShardID, "shardId-") {
		t.Errorf("Run: %v, want a *HandlerError wrapping boom with the shard", err)
	}
}

// TestDeaggregate: KPL aggregates are delivered as their user records.
func TestDeaggregate(t *testing.T) {
	e := newEnv(t, 1, server.Config{})
	agg, err := aggregation.NewAggregator(aggregation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := agg.Add(aggregation.UserRecord{PartitionKey: "k" + strconv.Itoa(i), Data: []byte(fmt.Sprintf("u-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(testStream), PartitionKey: aws.String(rec.PartitionKey), Data: rec.Data}); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "deagg", StartingPosition: fanout.TrimHorizon(), Deaggregate: true,
		Handler: c.handle, Options: fastOptions(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	c.waitFor(t, 20*time.Second, "u", 5)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	c.check(t, "u", 5)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, recs := range c.byShard {
		for i, r := range recs {
			if !r.Aggregated || r.SubSequenceNumber != int64(i) {
				t.Errorf("record %d: Aggregated %v SubSequenceNumber %d", i, r.Aggregated, r.SubSequenceNumber)
			}
		}
	}
}

// TestNewRejectsBadConfig: every problem is reported.
func TestNewRejectsBadConfig(t *testing.T) {
	_, err := fanout.New(nil, fanout.Config{StartingPosition: fanout.Position{Type: types.ShardIteratorTypeAtSequenceNumber}, ShardIDs: []string{}})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"nil client", "StreamARN or StreamName", "ConsumerName or ConsumerARN", "Handler", "SequenceNumber", "ShardIDs is empty"} {
		if !containsStr(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }

// TestResumeFromContinuation: a second Subscriber started with
// ShardPositions after the first one's last ContinuationSequenceNumbers
// delivers exactly the records the first did not.
func TestResumeFromContinuation(t *testing.T) {
	e := newEnv(t, 2, server.Config{SubscriptionKeepAlive: 100 * time.Millisecond})
	e.put("r", 0, 300)
	c1 := newCollector()
	var mu sync.Mutex
	conts := map[string]string{}
	s1, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "resume", StartingPosition: fanout.TrimHorizon(), Options: fastOptions(t),
		Handler: func(ctx context.Context, b fanout.Batch) error {
			if err := c1.handle(ctx, b); err != nil {
				return err
			}
			mu.Lock()
			conts[b.ShardID] = b.ContinuationSequenceNumber
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s1)
	wait.Eventually(t, 20*time.Second, func() error {
		if got := c1.count("r", 300); got < 300 {
			return fmt.Errorf("%d of 300", got)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.put("r", 300, 600)
	positions := map[string]fanout.Position{}
	mu.Lock()
	for shard, cont := range conts {
		positions[shard] = fanout.AfterSequenceNumber(cont)
	}
	mu.Unlock()
	if len(positions) != 2 {
		t.Fatalf("continuations for %d shards, want 2", len(positions))
	}
	c2 := newCollector()
	s2, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "resume", StartingPosition: fanout.TrimHorizon(), ShardPositions: positions,
		Handler: c2.handle, Options: fastOptions(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop2, _ := runSubscriber(t, s2)
	wait.Eventually(t, 20*time.Second, func() error {
		if got := c2.count("r", 600); got < 300 {
			return fmt.Errorf("%d of the 300 new records", got)
		}
		return nil
	})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if got := c2.count("r", 300); got != 0 {
		t.Errorf("the resumed subscriber delivered %d records the first had processed", got)
	}
	c1.check(t, "r", 300)
	c2.mu.Lock()
	for i := 300; i < 600; i++ {
		if n := c2.data[fmt.Sprintf("r-%d", i)]; n != 1 {
			t.Errorf("r-%d delivered %d times after the resume", i, n)
		}
	}
	c2.mu.Unlock()
}

// TestMergeChildNotFollowedWithoutBothParents: a Subscriber reading only
// one parent of a merge ends with it and does not read the child.
func TestMergeChildNotFollowedWithoutBothParents(t *testing.T) {
	e := newEnv(t, 2, server.Config{})
	e.put("r", 0, 50)
	open := e.openShards()
	s0, s1 := aws.ToString(open[0].ShardId), aws.ToString(open[1].ShardId)
	if _, err := e.client.MergeShards(t.Context(), &kinesis.MergeShardsInput{
		StreamName: aws.String(testStream), ShardToMerge: open[0].ShardId, AdjacentShardToMerge: open[1].ShardId,
	}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	e.waitActive()
	e.put("after", 0, 20)
	c := newCollector()
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "half", ShardIDs: []string{s0}, StartingPosition: fanout.TrimHorizon(),
		Handler: c.handle, Options: fastOptions(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, done := runSubscriber(t, s)
	select {
	case <-done: // every shard it reads has ended
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its only shard ended")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fmt.Sprint(c.order) != fmt.Sprint([]string{s0}) {
		t.Errorf("shards read %v, want only %s (not %s nor the merge child)", c.order, s0, s1)
	}
	if len(c.ends[s0]) != 1 {
		t.Errorf("%s ended with children %v, want the merge child", s0, c.ends[s0])
	}
	if got := c.data["after-0"]; got != 0 {
		t.Error("a record of the merge child was delivered")
	}
}
