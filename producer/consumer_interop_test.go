package producer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/server"
)

// consumedRecord is one user record as a consumer Processor received it.
type consumedRecord struct {
	worker string
	readRecord
}

// consumeLog collects what the processors of every worker received, in the
// order each shard's processor received it.
type consumeLog struct {
	mu       sync.Mutex
	records  []consumedRecord
	distinct map[string]int // data -> deliveries
	cpErrs   []error
}

// logProcessor records every user record in the log and checkpoints each
// batch, and at shutdown.
type logProcessor struct {
	log    *consumeLog
	worker string
	shard  string
}

func (p *logProcessor) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *logProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.log.mu.Lock()
	for _, r := range in.Records {
		p.log.records = append(p.log.records, consumedRecord{worker: p.worker, readRecord: readRecord{
			ShardID: in.ShardID, SequenceNumber: r.SequenceNumber, SubSequence: r.SubSequenceNumber,
			PartitionKey: r.PartitionKey, Data: string(r.Data), Aggregated: r.Aggregated,
		}})
		p.log.distinct[string(r.Data)]++
	}
	p.log.mu.Unlock()
	if len(in.Records) == 0 {
		return nil
	}
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		p.log.mu.Lock()
		p.log.cpErrs = append(p.log.cpErrs, fmt.Errorf("%s checkpoint on %s: %w", p.worker, p.shard, err))
		p.log.mu.Unlock()
		return err
	}
	return nil
}

func (p *logProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) {}

func (p *logProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *logProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// consumerMetrics counts what a consumer Worker reports.
type consumerMetrics struct {
	consumer.NopMetrics
	dropped, processed, aggregates, aggregatedUser, leaseLost atomic.Int64
}

func (m *consumerMetrics) RecordsDropped(_ string, n int)   { m.dropped.Add(int64(n)) }
func (m *consumerMetrics) RecordsProcessed(_ string, n int) { m.processed.Add(int64(n)) }
func (m *consumerMetrics) AggregatedRecords(_ string, r, u int) {
	m.aggregates.Add(int64(r))
	m.aggregatedUser.Add(int64(u))
}
func (m *consumerMetrics) LeaseLost(string) { m.leaseLost.Add(1) }

// TestStaleMapDeliveredOnceToConsumer is the end-to-end check of
// wrong-shard handling against this repository's consumer library: a
// producer with a stale shard map builds aggregates for a shard the stream
// never had, so each lands on a real shard that owns only some of its user
// records. The consumer (like the KCL) drops the foreign user records of
// such an aggregate; the producer re-sends exactly those, so two consumer
// workers see every user record exactly once, with its data, where its
// result says, and in per-key order.
func TestStaleMapDeliveredOnceToConsumer(t *testing.T) {
	// PostgreSQL first: skip (or fail under CI=true) before doing any work.
	pool1, schema := pgtest.New(t)

	srv := startServer(t, server.Config{Logger: zap.NewNop()})
	const stream = "stale-interop"
	createStream(t, srv.Client(), stream, 4)

	// Produce through a stale map: one shard covering the whole key space,
	// with an id the stream never had. The aggregates sent before the first
	// PutRecords result refreshes the map land on real shards that own only
	// some of their user records; the rest are routed by the fresh map.
	const writers, perWriter, size = 4, 2500, 60
	const total = writers * perWriter
	keys := manyKeys(500)
	key := func(w, i int) string { return keys[(w*13+i)%len(keys)] }
	tr := newTracker(writers, perWriter)
	pm := newCountingMetrics()
	stale := []shardInfo{{id: "shardId-000000000099", start: hashkey.Key{}, end: hashkey.Max, open: true}}
	p := newTestProducer(t, srv.Client(), Config{
		StreamName: stream, AggregationMaxBytes: 16 << 10,
		OnResult: tr.onResult, Metrics: pm, Logger: testLogger(t),
	}, testHooks{initialMap: stale})
	putAll(t, p, writers, perWriter, size, key)
	flush(t, p, time.Minute)
	if n := tr.total.Load(); n != total {
		t.Fatalf("%d results after Flush, want %d", n, total)
	}
	retried, failed := pm.snapshot()
	if len(failed) > 0 {
		t.Fatalf("user records failed: %v", failed)
	}
	if retried["WrongShard"] == 0 {
		t.Fatalf("no wrong-shard retry (retries %v): the test does not test wrong-shard handling", retried)
	}

	// What the stream holds, read shard by shard with the consumer
	// package's per-record filter.
	want := readFiltered(t, srv.Client(), stream, false)

	// Consume with two workers of one application, each with its own pool,
	// Store and Kinesis client. Each may hold two leases and neither
	// steals, so the four shards are split without a lease changing hands
	// mid-stream (which would legitimately repeat records after the last
	// checkpoint, and hide a duplicate the producer caused).
	const failover = 10 * time.Second
	clog := &consumeLog{distinct: map[string]int{}}
	type running struct {
		id     string
		m      *consumerMetrics
		cancel context.CancelFunc
		done   chan error
	}
	var workers []*running
	// wait waits for a stopped worker's Run to return (once).
	wait := func(r *running) {
		if r.done == nil {
			return
		}
		select {
		case err := <-r.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: Run: %v", r.id, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: Run did not return within 30s of its ctx ending", r.id)
		}
		r.done = nil
	}
	for i, pool := range []func() *pgxpool.Pool{
		func() *pgxpool.Pool { return pool1 },
		func() *pgxpool.Pool { return pgtest.Pool(t, pgtest.Config(t, schema)) },
	} {
		id := fmt.Sprintf("worker-%d", i+1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		store, err := checkpoint.NewPGStore(ctx, pool(), checkpoint.PGConfig{Schema: schema, FailoverTime: failover})
		cancel()
		if err != nil {
			t.Fatalf("new store: %v", err)
		}
		t.Cleanup(func() { _ = store.Close() })
		m := &consumerMetrics{}
		w, err := consumer.New(srv.Client(), store, func(shard string) consumer.Processor {
			return &logProcessor{log: clog, worker: id, shard: shard}
		}, consumer.Config{
			ApplicationName: "stale-interop-app", StreamName: stream, WorkerID: id,
			InitialPosition: consumer.TrimHorizon, FailoverTime: failover,
			TakeInterval: 500 * time.Millisecond, MaxLeasesForWorker: 2, MaxLeasesToStealAtOneTime: -1,
			IdleTimeBetweenReads: 20 * time.Millisecond, TaskBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
			ShutdownTimeout: 10 * time.Second, Logger: testLogger(t).Named(id), Metrics: m,
		})
		if err != nil {
			t.Fatalf("new worker: %v", err)
		}
		runCtx, stop := context.WithCancel(context.Background())
		r := &running{id: id, m: m, cancel: stop, done: make(chan error, 1)}
		go func() { r.done <- w.Run(runCtx) }()
		workers = append(workers, r)
		// Registered after the store's Close, so it runs before it.
		t.Cleanup(func() { r.cancel(); wait(r) })
	}
	stopAll := func() {
		for _, r := range workers {
			r.cancel()
		}
		for _, r := range workers {
			wait(r)
		}
	}

	// Consumed means every record seen, and as many deliveries as a
	// per-record filter finds in the stream: a duplicate stored further on
	// in some shard would otherwise go unnoticed.
	eventually(t, 30*time.Second, func() error {
		clog.mu.Lock()
		defer clog.mu.Unlock()
		if n := len(clog.distinct); n < total || len(clog.records) < len(want.Records) {
			return fmt.Errorf("%d of %d distinct records consumed, %d of %d deliveries", n, total, len(clog.records), len(want.Records))
		}
		return nil
	})
	stopAll()

	clog.mu.Lock()
	defer clog.mu.Unlock()
	for _, err := range clog.cpErrs {
		t.Error(err)
	}
	var dropped, aggregates, lost int64
	for _, r := range workers {
		dropped += r.m.dropped.Load()
		aggregates += r.m.aggregates.Load()
		lost += r.m.leaseLost.Load()
	}
	got := readResult{Records: make([]readRecord, len(clog.records))}
	perWorker := map[string]map[string]bool{}
	for i, r := range clog.records {
		got.Records[i] = r.readRecord
		if perWorker[r.worker] == nil {
			perWorker[r.worker] = map[string]bool{}
		}
		perWorker[r.worker][r.ShardID] = true
	}
	dups := 0
	for _, n := range clog.distinct {
		dups += n - 1
	}
	t.Logf("producer: retries %v, %d PutRecords calls, %d Kinesis records; consumer: %d user records delivered (%d distinct) from %d aggregates, %d dropped out of range, %d leases lost; shards per worker %v",
		retried, pm.calls.Load(), pm.kinesisPut.Load(), len(clog.records), len(clog.distinct), aggregates, dropped, lost, perWorker)
	if len(got.Records) != len(want.Records) || dropped != int64(want.Dropped) {
		t.Errorf("consumer delivered %d user records and dropped %d; the stream holds %d in range and %d out of range",
			len(got.Records), dropped, len(want.Records), want.Dropped)
	}
	if dups != 0 {
		t.Errorf("%d duplicate deliveries", dups)
	}
	if lost != 0 {
		t.Errorf("%d leases lost: a lease changed hands mid-stream", lost)
	}
	// Each record exactly once with its key and data, where its Put result
	// said it was stored.
	checkDelivered(t, got, writers, perWriter, size, key)
	tr.check(t, got)
	if dropped == 0 {
		t.Errorf("the consumer dropped no out-of-range user record: no wrong-shard aggregate reached it")
	}

	// Per writer and key, the positions (sequence, sub-sequence) follow the
	// put order, all on one shard.
	type wk struct {
		w   int
		key string
	}
	type at struct {
		i   int
		rec readRecord
	}
	byKey := map[wk][]at{}
	for _, r := range got.Records {
		w, i, _ := parsePayload(r.Data) // checkDelivered vouched for every payload
		byKey[wk{w, r.PartitionKey}] = append(byKey[wk{w, r.PartitionKey}], at{i, r})
	}
	bad := 0
	for k, recs := range byKey {
		sort.Slice(recs, func(a, b int) bool { return recs[a].i < recs[b].i })
		for j := 1; j < len(recs); j++ {
			prev, cur := recs[j-1].rec, recs[j].rec
			pp := checkpoint.Checkpoint{SequenceNumber: prev.SequenceNumber, SubSequenceNumber: prev.SubSequence}
			cp := checkpoint.Checkpoint{SequenceNumber: cur.SequenceNumber, SubSequenceNumber: cur.SubSequence}
			if cur.ShardID != prev.ShardID || cp.Compare(pp) <= 0 {
				if bad < 5 {
					t.Errorf("key %s writer %d: record %d at %s %s, after record %d at %s %s", k.key, k.w,
						recs[j].i, cur.ShardID, cp, recs[j-1].i, prev.ShardID, pp)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d records out of put order within their writer and key", bad)
	}
	if n, first := checkKeyOrder(got); n > 0 {
		t.Errorf("%d records delivered out of per-key order; first: %s", n, first)
	}
}
