package consumer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/server"
)

// Fan-out retrieval: the same workers, leases and checks as with polling
// (worker_test.go, reshard_test.go), reading through SubscribeToShard on the
// real server, whose subscriptions end every 500ms so that re-subscription
// from the continuation runs many times per test.

func fanOutServer() server.Config {
	return server.Config{SubscriptionLifetime: 500 * time.Millisecond, SubscriptionKeepAlive: 200 * time.Millisecond}
}

// fanOutMod puts a worker in FanOut mode, counting its GetRecords calls
// in m.
func fanOutMod(m *testMetrics) func(*Config) {
	return func(c *Config) {
		c.Retrieval = FanOut
		c.Metrics = m
	}
}

// TestFanOutWorkersShareAndHandOff: two fan-out workers divide four shards
// and process every record, in order, with checkpoints, never calling
// GetRecords; one stops and its leases move to the other, which resumes
// each shard right after the last record processed; one stream consumer
// (named after the application) serves both.
func TestFanOutWorkersShareAndHandOff(t *testing.T) {
	e := newEnv(t, envOptions{shards: 4, server: fanOutServer()})
	p := e.startProducer(20, 20*time.Millisecond)
	m := &testMetrics{}
	a := e.startWorker("a", fanOutMod(m), nil)
	b := e.startWorker("b", fanOutMod(m), nil)
	eventually(t, 20*time.Second, func() error { return balanced([]*running{a, b}, 4, 2, 2) })
	// Several subscription lifetimes (500ms) before and after the handoff.
	atLeast := func(n int) {
		eventually(t, 30*time.Second, func() error {
			if got := len(p.all()); got < n {
				return fmt.Errorf("%d records put", got)
			}
			return nil
		})
	}
	atLeast(1500)
	waitAllProcessed(t, e, p, 20*time.Second)

	handed := a.w.HeldShards()
	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	eventually(t, 20*time.Second, func() error { return balanced([]*running{b}, 4, 4, 4) })
	atLeast(len(p.all()) + 1500)
	p.halt()
	waitAllProcessed(t, e, p, 20*time.Second)
	if err := b.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	e.ledger.checkOrder(t)

	tns := e.ledger.tenures()
	for _, s := range handed {
		ts := tns[s]
		if len(ts) < 2 {
			t.Fatalf("%s: %d tenures, want a's then b's", s, len(ts))
		}
		old, next := ts[len(ts)-2], ts[len(ts)-1]
		if old.worker != "a" || next.worker != "b" {
			t.Errorf("%s: handed from %s to %s", s, old.worker, next.worker)
		}
		last := old.last()
		if next.initCP != last {
			t.Errorf("%s: successor starts at %s, old owner's last record %s", s, next.initCP, last)
		}
		for _, d := range next.records {
			if d.pos.Compare(last) <= 0 {
				t.Errorf("%s: %s processed again", s, d.pos)
			}
		}
	}
	if n := m.getCalls.Load(); n != 0 {
		t.Errorf("%d GetRecords calls in fan-out mode", n)
	}
	leases, err := e.store.ListLeases(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.Owner != "" || l.Checkpoint.IsSentinel() {
			t.Errorf("lease %s: owner %q checkpoint %s after shutdown", l.ShardID, l.Owner, l.Checkpoint)
		}
	}
	streamARN := e.streamARN()
	cs, err := e.client.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Consumers) != 1 || aws.ToString(cs.Consumers[0].ConsumerName) != testApp {
		t.Errorf("stream consumers %v, want one named %s", cs.Consumers, testApp)
	}
	ds, _ := e.ledger.snapshot()
	t.Logf("%d records produced, %d deliveries", len(p.all()), len(ds))
	checkNoLeaks(t)
}

func (e *env) streamARN() string {
	e.t.Helper()
	out, err := e.client.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN)
}

func (e *env) waitActive() {
	e.t.Helper()
	eventually(e.t, 10*time.Second, func() error {
		out, err := e.client.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
		if err != nil {
			return err
		}
		if s := out.StreamDescriptionSummary.StreamStatus; s != types.StreamStatusActive {
			return fmt.Errorf("stream %s", s)
		}
		return nil
	})
}

func (e *env) openShards() []types.Shard {
	e.t.Helper()
	out, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
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

// TestFanOutReshardParentsFirst: under continuous puts, a split and then a
// merge of the children; two fan-out workers process every record, each
// child only after its parents' leases are at SHARD_END, each shard in
// order.
func TestFanOutReshardParentsFirst(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1, server: fanOutServer()})
	var mu sync.Mutex
	var violations []string
	onInit := func(in InitializeInput) {
		for _, p := range in.ParentShardIDs {
			l, err := e.store.GetLease(context.Background(), testApp, p)
			if err != nil || !l.Checkpoint.IsShardEnd() {
				mu.Lock()
				violations = append(violations, fmt.Sprintf("%s started with parent %s at %s (%v)", in.ShardID, p, l.Checkpoint, err))
				mu.Unlock()
			}
		}
	}
	m := &testMetrics{}
	mod := func(c *Config) {
		fanOutMod(m)(c)
		c.ShardSyncInterval = time.Second
	}
	var ws []*running
	for _, id := range []string{"a", "b"} {
		ws = append(ws, e.startWorkerWith(id, workerOptions{mod: mod, factory: e.ledger.factory(id, procOptions{checkpointEvery: true, onInit: onInit})}))
	}
	p := e.startProducer(20, 20*time.Millisecond)
	eventually(t, 20*time.Second, func() error {
		if e.ledger.seen() < 100 {
			return fmt.Errorf("%d records processed", e.ledger.seen())
		}
		return nil
	})
	parent := e.openShards()[0]
	if _, err := e.client.SplitShard(context.Background(), &kinesis.SplitShardInput{
		StreamName: aws.String(testStream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	e.waitActive()
	p.putSince(t, 100) // records on the children too
	kids := e.openShards()
	if len(kids) != 2 {
		t.Fatalf("%d open shards after the split", len(kids))
	}
	if _, err := e.client.MergeShards(context.Background(), &kinesis.MergeShardsInput{
		StreamName: aws.String(testStream), ShardToMerge: kids[0].ShardId, AdjacentShardToMerge: kids[1].ShardId,
	}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	e.waitActive()
	p.putSince(t, 100) // records on the merge child
	p.halt()
	waitAllProcessed(t, e, p, 30*time.Second)
	merged := e.openShards()[0]
	for _, r := range ws {
		if err := r.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	mu.Lock()
	for _, v := range violations {
		t.Error(v)
	}
	mu.Unlock()
	e.ledger.checkOrder(t)
	for _, s := range []types.Shard{parent, kids[0], kids[1]} {
		if l := e.lease(aws.ToString(s.ShardId)); !l.Checkpoint.IsShardEnd() {
			t.Errorf("%s: checkpoint %s, want SHARD_END", aws.ToString(s.ShardId), l.Checkpoint)
		}
	}
	if l := e.lease(aws.ToString(merged.ShardId)); l.Checkpoint.IsSentinel() {
		t.Errorf("merge child %s: checkpoint %s, want a record", aws.ToString(merged.ShardId), l.Checkpoint)
	}
	if n := m.getCalls.Load(); n != 0 {
		t.Errorf("%d GetRecords calls in fan-out mode", n)
	}
	ds, _ := e.ledger.snapshot()
	t.Logf("%d records produced, %d deliveries", len(p.all()), len(ds))
	checkNoLeaks(t)
}

// TestFanOutNeedsFanOutClient: New refuses FanOut with a client that cannot
// subscribe.
func TestFanOutNeedsFanOutClient(t *testing.T) {
	cfg := testConfig("w")
	cfg.Retrieval = FanOut
	_, err := New(pollOnly{}, nopStore{}, func(string) Processor { return nil }, cfg)
	if err == nil {
		t.Fatal("New accepted a polling-only client in FanOut mode")
	}
	cfg.Retrieval = Polling
	if _, err := New(pollOnly{}, nopStore{}, func(string) Processor { return nil }, cfg); err != nil {
		t.Errorf("New with Polling: %v", err)
	}
	if got := cfg.withDefaults(nil); got.ConsumerName != "" {
		t.Errorf("Polling: ConsumerName defaulted to %q", got.ConsumerName)
	}
	cfg.Retrieval = FanOut
	if got := cfg.withDefaults(nil); got.ConsumerName != testApp {
		t.Errorf("FanOut: ConsumerName defaulted to %q, want the application name", got.ConsumerName)
	}
}

// pollOnly is a KinesisAPI without the fan-out operations.
type pollOnly struct{ KinesisAPI }

// nopStore is a Store New accepts; the test never runs the worker.
type nopStore struct{ checkpoint.Store }
