package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

const (
	testApp      = "test-app"
	testStream   = "test-stream"
	testFailover = 2 * time.Second
)

// eventually polls cond until it returns nil or timeout passes.
var eventually = wait.Eventually

// env is one test's stream (on a real server) and lease table (on the real
// PostgreSQL).
type env struct {
	t      testing.TB
	srv    *servertest.Server
	client *kinesis.Client
	schema string
	pool   *pgxpool.Pool
	store  checkpoint.Store // the test's own view of the table
	ledger *ledger
	// storeFailover, if set, is the failover time of the Stores made
	// after it is set (default testFailover).
	storeFailover time.Duration
}

type envOptions struct {
	shards int32
	server server.Config
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.shards == 0 {
		o.shards = 1
	}
	o.server.Fsync = storage.FsyncNever
	if o.server.Logger == nil {
		o.server.Logger = zap.NewNop()
	}
	srv := servertest.Start(t, o.server)
	e := &env{t: t, srv: srv, client: srv.Client(), ledger: newLedger()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(o.shards)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	e.pool, e.schema = pgtest.New(t)
	e.store = e.newStore(e.pool)
	return e
}

// newStore returns a Store on pool (nil: a new pool of its own, as another
// worker process would have).
func (e *env) newStore(pool *pgxpool.Pool) checkpoint.Store {
	e.t.Helper()
	if pool == nil {
		cfg := pgtest.Config(e.t, e.schema)
		cfg.MaxConns = 8
		pool = pgtest.Pool(e.t, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failover := testFailover
	if e.storeFailover != 0 {
		failover = e.storeFailover
	}
	s, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: e.schema, FailoverTime: failover})
	if err != nil {
		e.t.Fatalf("new store: %v", err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// testConfig is the workers' configuration in tests: short failover and
// waits.
func testConfig(id string) Config {
	return Config{
		ApplicationName:      testApp,
		StreamName:           testStream,
		WorkerID:             id,
		InitialPosition:      TrimHorizon,
		FailoverTime:         testFailover,
		TakeInterval:         time.Second,
		ShardSyncInterval:    10 * time.Second,
		IdleTimeBetweenReads: 50 * time.Millisecond,
		TaskBackoff:          50 * time.Millisecond,
		MaxBackoff:           500 * time.Millisecond,
		ShutdownTimeout:      10 * time.Second,
	}
}

// running is a worker running in a goroutine.
type running struct {
	w      *Worker
	store  checkpoint.Store
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, after err is set
	err    error         // Run's result
}

// workerOptions changes a test worker.
type workerOptions struct {
	mod     func(*Config)    // changes testConfig's values
	factory ProcessorFactory // nil: a ledger processor that checkpoints every batch
	client  KinesisAPI       // nil: a client of the test server
	store   checkpoint.Store // nil: a Store on a pool of its own
}

// startWorker starts a worker with its own Store (and pool) and Kinesis
// client.
func (e *env) startWorker(id string, mod func(*Config), factory ProcessorFactory) *running {
	e.t.Helper()
	return e.startWorkerWith(id, workerOptions{mod: mod, factory: factory})
}

func (e *env) startWorkerWith(id string, o workerOptions) *running {
	e.t.Helper()
	cfg := testConfig(id)
	cfg.Logger = zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel)).Named(id)
	if o.mod != nil {
		o.mod(&cfg)
	}
	if o.factory == nil {
		o.factory = e.ledger.factory(id, procOptions{checkpointEvery: true})
	}
	switch {
	case o.client != nil:
	case cfg.Retrieval == FanOut:
		// No overall HTTP timeout: it would cut event streams.
		o.client = e.srv.StreamingClient()
	default:
		o.client = e.srv.Client()
	}
	store := o.store
	if store == nil {
		store = e.newStore(nil)
	}
	w, err := New(o.client, store, o.factory, cfg)
	if err != nil {
		e.t.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, store: store, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = w.Run(ctx)
		close(r.done)
	}()
	// Tests check Run's result where it matters; this only makes sure the
	// worker stops (stop fails the test if Run does not return).
	e.t.Cleanup(func() { _ = r.stop(e.t) })
	return r
}

// stop shuts the worker down gracefully and returns Run's error.
func (r *running) stop(t testing.TB) error {
	r.cancel()
	return r.wait(t, 30*time.Second)
}

// wait waits for Run to return and returns its error.
func (r *running) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("worker %s: Run did not return within %v", r.w.ID(), timeout)
		return nil
	}
}

// crash kills the worker without a shutdown.
func (r *running) crash(t testing.TB) {
	r.w.crash()
	if err := r.stop(t); !errors.Is(err, errCrashed) {
		t.Errorf("crashed worker's Run returned %v", err)
	}
}

// put puts plain records with the given keys and data.
func (e *env) put(keys, data []string) []types.PutRecordsResultEntry {
	e.t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := range keys {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(keys[i]), Data: []byte(data[i])})
	}
	return e.putEntries(entries)
}

func (e *env) putEntries(entries []types.PutRecordsRequestEntry) []types.PutRecordsResultEntry {
	e.t.Helper()
	var out []types.PutRecordsResultEntry
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < 500 && size+len(entries[n].Data) <= 4<<20 {
			size += len(entries[n].Data)
			n++
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := e.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries[:n]})
		cancel()
		if err != nil {
			e.t.Fatalf("put records: %v", err)
		}
		if aws.ToInt32(res.FailedRecordCount) != 0 {
			e.t.Fatalf("put records: %d failed", aws.ToInt32(res.FailedRecordCount))
		}
		out = append(out, res.Records...)
		entries = entries[n:]
	}
	return out
}

// aggregate builds one KPL aggregated record of the user records.
func aggregate(t testing.TB, recs []aggregation.UserRecord) types.PutRecordsRequestEntry {
	t.Helper()
	agg, err := aggregation.NewAggregator(aggregation.Config{AggregateSingle: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := agg.Add(r); err != nil {
			t.Fatalf("aggregate: %v", err)
		}
	}
	rec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	e := types.PutRecordsRequestEntry{PartitionKey: aws.String(rec.PartitionKey), Data: rec.Data}
	if rec.ExplicitHashKey != "" {
		e.ExplicitHashKey = aws.String(rec.ExplicitHashKey)
	}
	return e
}

// shardIDs lists the stream's shards.
func (e *env) shardIDs() []string {
	e.t.Helper()
	out, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, s := range out.Shards {
		ids = append(ids, aws.ToString(s.ShardId))
	}
	return ids
}

// lease reads a lease through the test's store.
func (e *env) lease(shard string) checkpoint.Lease {
	e.t.Helper()
	l, err := e.store.GetLease(context.Background(), testApp, shard)
	if err != nil {
		e.t.Fatalf("get lease %s: %v", shard, err)
	}
	return l
}

// longStore returns a Store on the test's pool whose leases last an hour:
// a thief that takes a lease through it keeps it for the rest of the test
// without renewing it.
func (e *env) longStore() checkpoint.Store {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := checkpoint.NewPGStore(ctx, e.pool, checkpoint.PGConfig{Schema: e.schema, FailoverTime: time.Hour})
	if err != nil {
		e.t.Fatalf("new store: %v", err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// ---- the ledger: what every processor saw ----

type delivery struct {
	proc  int // processor instance
	shard string
	pos   checkpoint.Checkpoint
	data  string
	at    time.Time
}

type procEvent struct {
	proc   int
	worker string
	shard  string
	kind   string // init, lost, ending (ShardEnded called), ended (and checkpointed), shutdown
	cp     checkpoint.Checkpoint
	at     time.Time
	to     string // shutdown: the worker the lease is handed over to, if any
}

// ledger records, from every processor of a test, what was delivered and
// when, to check the guarantees afterwards.
type ledger struct {
	mu         sync.Mutex // guards the following
	deliveries []delivery
	events     []procEvent
	count      map[string]int // data -> deliveries
	nextProc   int
}

func newLedger() *ledger { return &ledger{count: map[string]int{}} }

type procOptions struct {
	checkpointEvery bool // checkpoint at the end of every batch
	// onInit, if set, runs in Initialize.
	onInit func(in InitializeInput)
	// noShutdownCheckpoint skips the checkpoint in ShutdownRequested.
	noShutdownCheckpoint bool
	// onBatch, if set, runs after a batch is recorded (before the
	// checkpoint); an error fails the batch.
	onBatch func(ctx context.Context, p *ledgerProc, in ProcessRecordsInput) error
}

func (l *ledger) factory(worker string, o procOptions) ProcessorFactory {
	return func(shard string) Processor {
		l.mu.Lock()
		l.nextProc++
		id := l.nextProc
		l.mu.Unlock()
		return &ledgerProc{l: l, id: id, worker: worker, shard: shard, o: o}

	}
}

func (l *ledger) event(e procEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.at = time.Now()
	l.events = append(l.events, e)
}

// seen returns how many distinct data values were delivered.
func (l *ledger) seen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.count)
}

// missing returns the data values in want never delivered.
func (l *ledger) missing(want []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, d := range want {
		if l.count[d] == 0 {
			out = append(out, d)
		}
	}
	return out
}

func (l *ledger) snapshot() ([]delivery, []procEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.deliveries), slices.Clone(l.events)
}

// checkOrder checks that each processor instance saw strictly increasing
// positions: shard order, with no repeat within one lease tenure.
func (l *ledger) checkOrder(t testing.TB) {
	t.Helper()
	ds, _ := l.snapshot()
	last := map[int]checkpoint.Checkpoint{}
	for _, d := range ds {
		if p, ok := last[d.proc]; ok && d.pos.Compare(p) <= 0 {
			t.Errorf("processor %d of %s: %s delivered after %s", d.proc, d.shard, d.pos, p)
		}
		last[d.proc] = d.pos
	}
}

// ledgerProc is the test Processor: it records everything in the ledger.
type ledgerProc struct {
	l      *ledger
	id     int
	worker string
	shard  string
	o      procOptions
}

func (p *ledgerProc) Initialize(_ context.Context, in InitializeInput) error {
	if p.o.onInit != nil {
		p.o.onInit(in)
	}
	p.l.event(procEvent{proc: p.id, worker: p.worker, shard: p.shard, kind: "init", cp: in.Checkpoint})
	return nil
}

func (p *ledgerProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	now := time.Now()
	p.l.mu.Lock()
	for _, r := range in.Records {
		p.l.deliveries = append(p.l.deliveries, delivery{proc: p.id, shard: p.shard, pos: r.Position(), data: string(r.Data), at: now})
		p.l.count[string(r.Data)]++
	}
	p.l.mu.Unlock()
	if p.o.onBatch != nil {
		if err := p.o.onBatch(ctx, p, in); err != nil {
			return err
		}
	}
	if p.o.checkpointEvery {
		if err := in.Checkpointer.Checkpoint(ctx); err != nil && !errors.Is(err, checkpoint.ErrLeaseLost) && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

func (p *ledgerProc) LeaseLost(context.Context, LeaseLostInput) {
	p.l.event(procEvent{proc: p.id, worker: p.worker, shard: p.shard, kind: "lost"})
}

func (p *ledgerProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	p.l.event(procEvent{proc: p.id, worker: p.worker, shard: p.shard, kind: "ending"})
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.l.event(procEvent{proc: p.id, worker: p.worker, shard: p.shard, kind: "ended"})
	return nil
}

func (p *ledgerProc) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	var err error
	if !p.o.noShutdownCheckpoint {
		err = in.Checkpointer.Checkpoint(ctx)
	}
	p.l.event(procEvent{proc: p.id, worker: p.worker, shard: p.shard, kind: "shutdown", cp: in.Checkpointer.at, to: in.HandoffTo})
	return err
}

// ---- metrics for tests ----

type testMetrics struct {
	NopMetrics
	processed, dropped, aggregates, aggregatedUser, throttled, expired, getCalls, taken, stolen, lost atomic.Int64
	requested, handed, forced                                                                         atomic.Int64

	mu         sync.Mutex             // guards readStarts
	readStarts map[string][]time.Time // when each successful GetRecords call began, by shard
}

// readSince reports whether a GetRecords call on shard that began after t
// succeeded.
func (m *testMetrics) readSince(shard string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, at := range m.readStarts[shard] {
		if at.After(t) {
			return true
		}
	}
	return false
}

func (m *testMetrics) LeaseHandoff(_, outcome string) {
	switch outcome {
	case HandoffRequested:
		m.requested.Add(1)
	case HandoffHanded:
		m.handed.Add(1)
	case HandoffForced:
		m.forced.Add(1)
	}
}

func (m *testMetrics) RecordsProcessed(_ string, n int) { m.processed.Add(int64(n)) }
func (m *testMetrics) RecordsDropped(_ string, n int)   { m.dropped.Add(int64(n)) }
func (m *testMetrics) AggregatedRecords(_ string, r, u int) {
	m.aggregates.Add(int64(r))
	m.aggregatedUser.Add(int64(u))
}
func (m *testMetrics) GetRecords(shard string, d time.Duration, _ int, err error) {
	m.getCalls.Add(1)
	if err == nil {
		m.mu.Lock()
		if m.readStarts == nil {
			m.readStarts = map[string][]time.Time{}
		}
		m.readStarts[shard] = append(m.readStarts[shard], time.Now().Add(-d))
		m.mu.Unlock()
	}
	var tpe *types.ProvisionedThroughputExceededException
	var eie *types.ExpiredIteratorException
	switch {
	case errors.As(err, &tpe):
		m.throttled.Add(1)
	case errors.As(err, &eie):
		m.expired.Add(1)
	}
}
func (m *testMetrics) LeaseTaken(_ string, stolen bool) {
	m.taken.Add(1)
	if stolen {
		m.stolen.Add(1)
	}
}
func (m *testMetrics) LeaseLost(string) { m.lost.Add(1) }

// ---- goroutine leak check ----

// checkNoLeaks waits until no goroutine of this package's workers, or of
// the Stores' listeners, is left (the test's own goroutines excepted).
func checkNoLeaks(t testing.TB) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "shoal/consumer.(*") || strings.Contains(g, "shoal/checkpoint.(*listener)") ||
				strings.Contains(g, "shoal/consumer.newShardConsumer") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) > 0 {
			return fmt.Errorf("%d goroutines left:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		return nil
	})
}
