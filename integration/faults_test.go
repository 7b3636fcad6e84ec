package integration

// Resilience under injected faults (server.Config.Faults): the producer,
// the consumer (KCL-style worker) and the fan-out subscriber run against a
// server that throttles and fails a seeded share of their calls, and must
// still deliver every record at least once, in per-key order.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/server"
)

const (
	faultKeys   = 6  // partition keys k0..k5
	faultPerKey = 40 // records per key, data "k<key>:<counter>"
)

// keyLedger is what a reader received: per key, each counter's first
// sighting must come after every smaller counter's (at-least-once delivery
// may repeat records, never reorder a key's first sightings).
type keyLedger struct {
	mu        sync.Mutex
	seen      [faultKeys]map[int]int
	next      [faultKeys]int // the counter every first sighting must not be below
	backwards []string
	bad       []string
}

func newKeyLedger() *keyLedger {
	l := &keyLedger{}
	for k := range l.seen {
		l.seen[k] = map[int]int{}
	}
	return l
}

func (l *keyLedger) add(data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key, counter, ok := strings.Cut(string(data), ":")
	k, err1 := strconv.Atoi(strings.TrimPrefix(key, "k"))
	c, err2 := strconv.Atoi(counter)
	if !ok || err1 != nil || err2 != nil || k < 0 || k >= faultKeys {
		l.bad = append(l.bad, string(data))
		return
	}
	if l.seen[k][c] == 0 {
		if c < l.next[k] {
			l.backwards = append(l.backwards, fmt.Sprintf("k%d: %d first seen after %d", k, c, l.next[k]-1))
		}
		l.next[k] = max(l.next[k], c+1)
	}
	l.seen[k][c]++
}

// complete reports what is missing, nil once every record arrived.
func (l *keyLedger) complete() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for k := range faultKeys {
		for c := range faultPerKey {
			if l.seen[k][c] == 0 {
				missing++
			}
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d records not delivered yet", missing, faultKeys*faultPerKey)
	}
	return nil
}

func (l *keyLedger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.backwards) > 0 {
		t.Errorf("per-key order broken: %v", l.backwards)
	}
	if len(l.bad) > 0 {
		t.Errorf("unexpected records: %q", l.bad)
	}
}

// faultServer starts a server and creates stream name with shards shards
// before any fault is set.
func faultServer(t *testing.T, name string, shards int32) (*servertest.Server, *kinesis.Client) {
	t.Helper()
	srv := servertest.Start(t, server.Config{Fsync: server.FsyncNever, Logger: zap.NewNop()})
	c := srv.Client()
	if _, err := c.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func setFaults(t *testing.T, srv *servertest.Server, js string) {
	t.Helper()
	fc, err := server.ParseFaults([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetFaults(fc); err != nil {
		t.Fatal(err)
	}
}

// injected is the faults the server injected, by kind.
func injected(srv *servertest.Server) map[string]uint64 {
	n := map[string]uint64{}
	for _, r := range srv.Faults().Rules {
		n[r.Kind] += r.Injected
	}
	return n
}

// putKeys puts every key's records in order with PutRecord, one goroutine
// per key, from counter from to to-1 (no faults apply to it: the rules
// are set for other operations).
func putKeys(t *testing.T, c *kinesis.Client, stream string, from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, faultKeys)
	for k := range faultKeys {
		wg.Go(func() {
			for i := from; i < to; i++ {
				pk := "k" + strconv.Itoa(k)
				if _, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(pk), Data: fmt.Appendf(nil, "%s:%d", pk, i)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("PutRecord: %v", err)
	}
}

// TestFaultsProducer: the producer stores every record, in per-key order,
// while PutRecords throttles part of its calls' records and fails others
// with InternalFailure.
func TestFaultsProducer(t *testing.T) {
	t.Parallel()
	const name = "fault-producer"
	srv, c := faultServer(t, name, 3)
	setFaults(t, srv, `{"seed":42,"rules":[
		{"operation":"PutRecords","stream":"fault-producer","kind":"throttle","probability":0.3,"fraction":0.5},
		{"operation":"PutRecords","stream":"fault-producer","kind":"internal","probability":0.15}]}`)
	prod, err := producer.New(srv.Client(), producer.Config{StreamName: name, MaxBufferedTime: 5 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, DisableAggregation: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var pending []*producer.Pending
	for i := range faultPerKey {
		for k := range faultKeys {
			pk := "k" + strconv.Itoa(k)
			p, err := prod.Put(ctx, pk, fmt.Appendf(nil, "%s:%d", pk, i))
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, p)
		}
	}
	for _, p := range pending {
		res, err := p.Wait(ctx)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("a record failed: %v", err)
		}
	}
	if err := prod.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n := injected(srv)
	if n[server.FaultInternal] == 0 || n[server.FaultThrottle] == 0 {
		t.Errorf("faults injected %v, want internal and throttle faults", n)
	}
	setFaults(t, srv, `{"rules":[]}`)
	l := newKeyLedger()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards.Shards {
		recs, err := faultReadShard(ctx, c, name, aws.ToString(sh.ShardId))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			l.add(r.Data)
		}
	}
	if err := l.complete(); err != nil {
		t.Fatal(err)
	}
	l.check(t)
	t.Logf("faults injected: %v", n)
}

// faultReadShard reads a shard from its start until a read returns nothing.
func faultReadShard(ctx context.Context, c *kinesis.Client, stream, shard string) ([]types.Record, error) {
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return nil, err
	}
	var recs []types.Record
	for next := it.ShardIterator; next != nil; {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
		if err != nil {
			return nil, err
		}
		if len(out.Records) == 0 {
			break
		}
		recs = append(recs, out.Records...)
		next = out.NextShardIterator
	}
	return recs, nil
}

// TestFaultsConsumer: a consumer worker processes every record, in per-key
// order, while GetRecords and GetShardIterator fail with InternalFailure,
// ProvisionedThroughputExceededException and ExpiredIteratorException.
func TestFaultsConsumer(t *testing.T) {
	t.Parallel()
	const name = "fault-consumer"
	_, schema := pgtest.New(t)
	srv, c := faultServer(t, name, 2)
	putKeys(t, c, name, 0, faultPerKey)
	setFaults(t, srv, `{"seed":7,"rules":[
		{"operation":"GetRecords","stream":"fault-consumer","kind":"internal","probability":0.15},
		{"operation":"GetRecords","stream":"fault-consumer","kind":"throttle","probability":0.15},
		{"operation":"GetRecords","stream":"fault-consumer","kind":"expired-iterator","probability":0.1},
		{"operation":"GetShardIterator","stream":"fault-consumer","kind":"internal","probability":0.2}]}`)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	store, err := checkpoint.NewPGStore(ctx, pgtest.Pool(t, pgtest.Config(t, schema)), checkpoint.PGConfig{Schema: schema, FailoverTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	l := newKeyLedger()
	w, err := consumer.New(srv.Client(), store, func(string) consumer.Processor { return &faultProcessor{l: l} }, consumer.Config{
		ApplicationName: "fault-app", StreamName: name, WorkerID: "w0", InitialPosition: consumer.TrimHorizon,
		FailoverTime: 2 * time.Second, TakeInterval: 200 * time.Millisecond, ShardSyncInterval: 500 * time.Millisecond,
		IdleTimeBetweenReads: 10 * time.Millisecond, TaskBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		MaxRecords: 7, ShutdownTimeout: 10 * time.Second,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	wait.Eventually(t, 25*time.Second, l.complete)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	l.check(t)
	n := injected(srv)
	if n[server.FaultInternal] == 0 || n[server.FaultThrottle] == 0 {
		t.Errorf("faults injected %v, want internal and throttle faults", n)
	}
	t.Logf("faults injected: %v", n)
}

// faultProcessor records every record and checkpoints each batch.
type faultProcessor struct {
	consumer.BaseProcessor
	l *keyLedger
}

func (p *faultProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	for _, r := range in.Records {
		p.l.add(r.Data)
	}
	if len(in.Records) > 0 {
		_ = in.Checkpointer.Checkpoint(ctx) // a failed checkpoint means records again, which at-least-once allows
	}
	return nil
}

// TestFaultsFanout: the fan-out subscriber receives every record, in
// per-key order, while SubscribeToShard fails with InternalFailure and
// ProvisionedThroughputExceededException and its event streams are cut.
func TestFaultsFanout(t *testing.T) {
	t.Parallel()
	const name = "fault-fanout"
	srv, c := faultServer(t, name, 2)
	putKeys(t, c, name, 0, faultPerKey/2)
	setFaults(t, srv, `{"seed":11,"rules":[
		{"operation":"SubscribeToShard","stream":"fault-fanout","kind":"internal","probability":0.2},
		{"operation":"SubscribeToShard","stream":"fault-fanout","kind":"throttle","probability":0.2},
		{"stream":"fault-fanout","kind":"cut-subscription","probability":0.7,"afterEvents":1}]}`)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l := newKeyLedger()
	sub, err := fanout.New(servertest.StreamingClient(srv.Endpoint), fanout.Config{
		StreamName: name, ConsumerName: "fault-efo", StartingPosition: fanout.TrimHorizon(),
		Handler: func(_ context.Context, b fanout.Batch) error {
			for _, r := range b.Records {
				l.add(r.Data)
			}
			return nil
		},
		Options: fanout.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
			Backoff: fanout.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(sctx) }()
	putKeys(t, c, name, faultPerKey/2, faultPerKey) // while subscribed: events of few records, cut often
	wait.Eventually(t, 25*time.Second, l.complete)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	l.check(t)
	n := injected(srv)
	if n[server.FaultCutSubscription] == 0 {
		t.Errorf("faults injected %v, want cut subscriptions", n)
	}
	t.Logf("faults injected: %v", n)
}
