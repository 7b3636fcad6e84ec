package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/server"
)

// producer puts keyed sequential records until stopped: mostly plain
// PutRecords, and every few batches a KPL aggregate whose user records share
// one partition key (so that all of them belong to the aggregate's shard).
type producer struct {
	e      *env
	mu     sync.Mutex // guards sent
	sent   []string   // data of every record put, in order
	stop   chan struct{}
	done   chan struct{}
	n      int
	paused atomic.Bool
}

func (e *env) startProducer(batch int, every time.Duration) *producer {
	p := &producer{e: e, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for round := 0; ; round++ {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			if p.paused.Load() {
				continue
			}
			p.putBatch(round, batch)
		}
	}()
	e.t.Cleanup(p.halt)
	return p
}

func (p *producer) putBatch(round, batch int) {
	var entries []types.PutRecordsRequestEntry
	var data []string
	for i := 0; i < batch; i++ {
		d := fmt.Sprintf("r%07d", p.n)
		p.n++
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("key-%d", p.n%97)), Data: []byte(d)})
		data = append(data, d)
	}
	if round%3 == 0 {
		pk := fmt.Sprintf("agg-%d", round)
		var urs []aggregation.UserRecord
		for i := 0; i < 7; i++ {
			d := fmt.Sprintf("a%07d", p.n)
			p.n++
			urs = append(urs, aggregation.UserRecord{PartitionKey: pk, Data: []byte(d)})
			data = append(data, d)
		}
		entries = append(entries, aggregate(p.e.t, urs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.e.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries})
	if err != nil || aws.ToInt32(res.FailedRecordCount) != 0 {
		p.e.t.Errorf("producer: put records: %v", err)
		return
	}
	p.mu.Lock()
	p.sent = append(p.sent, data...)
	p.mu.Unlock()
}

func (p *producer) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// putSince waits until the producer has put n more records than it had
// when called: once a reshard is ACTIVE, they all go to the new shards.
func (p *producer) putSince(t testing.TB, n int) {
	t.Helper()
	from := len(p.all())
	eventually(t, 20*time.Second, func() error {
		if got := len(p.all()) - from; got < n {
			return fmt.Errorf("%d of %d records put", got, n)
		}
		return nil
	})
}

func (p *producer) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// waitAllProcessed waits until every record the producer sent was
// delivered at least once.
func waitAllProcessed(t testing.TB, e *env, p *producer, timeout time.Duration) {
	t.Helper()
	want := p.all()
	eventually(t, timeout, func() error {
		if m := e.ledger.missing(want); len(m) > 0 {
			return fmt.Errorf("%d of %d records not processed, e.g. %v", len(m), len(want), m[:min(5, len(m))])
		}
		return nil
	})
}

// balanced reports whether each worker holds between lo and hi leases and
// all n are held.
func balanced(ws []*running, n, lo, hi int) error {
	total := 0
	var counts []int
	for _, r := range ws {
		c := len(r.w.HeldShards())
		counts = append(counts, c)
		total += c
		if c < lo || c > hi {
			return fmt.Errorf("leases per worker %v", counts)
		}
	}
	if total != n {
		return fmt.Errorf("leases per worker %v, %d held of %d", counts, total, n)
	}
	return nil
}

// TestWorkersShareStream: three workers, each with its own pool and
// Kinesis client, consume an 8-shard stream while records are produced.
func TestWorkersShareStream(t *testing.T) {
	e := newEnv(t, envOptions{shards: 8})
	p := e.startProducer(40, 20*time.Millisecond)
	start := time.Now()
	var ws []*running
	for i := range 3 {
		ws = append(ws, e.startWorker(fmt.Sprintf("w%d", i), nil, nil))
	}
	eventually(t, 20*time.Second, func() error { return balanced(ws, 8, 2, 3) })
	t.Logf("balanced (2 or 3 leases each) %v after start", time.Since(start).Round(time.Millisecond))
	eventually(t, 30*time.Second, func() error {
		if n := len(p.all()); n < 3000 {
			return fmt.Errorf("%d records put", n)
		}
		return nil
	})
	if err := balanced(ws, 8, 2, 3); err != nil {
		t.Errorf("balance did not hold: %v", err)
	}
	waitAllProcessed(t, e, p, 20*time.Second)
	p.halt()
	waitAllProcessed(t, e, p, 20*time.Second)
	for _, r := range ws {
		if err := r.stop(t); err != nil {
			t.Errorf("worker %s: Run: %v", r.w.ID(), err)
		}
	}
	e.ledger.checkOrder(t)
	ds, _ := e.ledger.snapshot()
	t.Logf("%d records produced, %d deliveries (%d duplicates)", len(p.all()), len(ds), len(ds)-e.ledger.seen())
	// After a graceful stop every lease is free and checkpointed.
	leases, err := e.store.ListLeases(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 8 {
		t.Fatalf("%d leases", len(leases))
	}
	for _, l := range leases {
		if l.Owner != "" || l.Checkpoint.IsSentinel() {
			t.Errorf("lease %s: owner %q checkpoint %s after shutdown", l.ShardID, l.Owner, l.Checkpoint)
		}
	}
	checkNoLeaks(t)
}

// readShard reads a whole shard from TRIM_HORIZON, as user records.
func (e *env) readShard(shard string) []Record {
	e.t.Helper()
	ctx := context.Background()
	it, err := e.client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(testStream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []Record
	iter := it.ShardIterator
	for {
		res, err := e.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			e.t.Fatal(err)
		}
		out, _, _ = unpack(out, res.Records, checkpoint.Checkpoint{}, hashkey.Range{}, nil)
		if len(res.Records) == 0 || res.NextShardIterator == nil {
			return out
		}
		iter = res.NextShardIterator
	}
}

// firstAfter returns the first record of recs after cp.
func firstAfter(recs []Record, cp checkpoint.Checkpoint) (Record, bool) {
	for _, r := range recs {
		if cp.IsSentinel() || r.Position().Compare(cp) > 0 {
			return r, true
		}
	}
	return Record{}, false
}

// tenure is one processor instance's time with a shard, from the ledger.
type tenure struct {
	proc    int
	worker  string
	initAt  time.Time
	initCP  checkpoint.Checkpoint
	first   *delivery
	records []delivery
}

// last returns the position of the last record the tenure processed, or,
// if it processed none (it took the shard after its last record), the
// checkpoint it started from.
func (tn *tenure) last() checkpoint.Checkpoint {
	if n := len(tn.records); n > 0 {
		return tn.records[n-1].pos
	}
	return tn.initCP
}

// tenures returns, per shard, the processor instances in the order they
// started.
func (l *ledger) tenures() map[string][]*tenure {
	ds, evs := l.snapshot()
	out := map[string][]*tenure{}
	byProc := map[int]*tenure{}
	for _, ev := range evs {
		if ev.kind == "init" {
			tn := &tenure{proc: ev.proc, worker: ev.worker, initAt: ev.at, initCP: ev.cp}
			byProc[ev.proc] = tn
			out[ev.shard] = append(out[ev.shard], tn)
		}
	}
	for i := range ds {
		tn := byProc[ds[i].proc]
		if tn.first == nil {
			tn.first = &ds[i]
		}
		tn.records = append(tn.records, ds[i])
	}
	return out
}

// TestCrashFailover: a worker that dies without shutting down loses its
// leases after the failover time, and the others resume its shards from the
// last checkpoint without losing a record. (The timing of the takeover:
// TestCrashTakeoverTiming.)
func TestCrashFailover(t *testing.T) {
	e := newEnv(t, envOptions{shards: 8})
	p := e.startProducer(20, 20*time.Millisecond)
	var ws []*running
	for i := range 3 {
		ws = append(ws, e.startWorker(fmt.Sprintf("w%d", i), nil, nil))
	}
	eventually(t, 20*time.Second, func() error { return balanced(ws, 8, 2, 3) })
	waitAllProcessed(t, e, p, 20*time.Second)

	victim := ws[0]
	lost := victim.w.HeldShards()
	crashAt := time.Now()
	victim.crash(t)
	// Checkpoints as the dead worker left them (a write in flight at the
	// crash may still land: processes die with requests on the wire too).
	left := map[string]checkpoint.Checkpoint{}
	for _, s := range lost {
		left[s] = e.lease(s).Checkpoint
	}
	eventually(t, 20*time.Second, func() error { return balanced(ws[1:], 8, 4, 4) })
	p.halt()
	waitAllProcessed(t, e, p, 20*time.Second)

	// How soon the leases move (after they expire, within FailoverTime +
	// TakeInterval) is TestCrashTakeoverTiming's to check, on a fake clock:
	// on the wall clock of a loaded machine any bound is a guess. Here the
	// time is only reported.
	cfg := victim.w.Config()
	tns := e.ledger.tenures()
	var worst time.Duration
	for _, s := range lost {
		var prev, next *tenure
		for _, tn := range tns[s] {
			if tn.worker == victim.w.ID() {
				prev = tn
			}
			if tn.initAt.After(crashAt) && next == nil {
				next = tn
			}
		}
		if next == nil || next.first == nil || prev == nil {
			t.Fatalf("%s: no successor delivered records", s)
		}
		worst = max(worst, next.initAt.Sub(crashAt))
		// The successor starts from the last checkpoint, which covers only
		// records the dead worker processed...
		lastDone := prev.last()
		if next.initCP.Compare(left[s]) < 0 || next.initCP.Compare(lastDone) > 0 {
			t.Errorf("%s: successor started at %s; checkpoint at the crash %s, last record processed %s", s, next.initCP, left[s], lastDone)
		}
		// ...with the very next record: nothing after it is lost.
		want, ok := firstAfter(e.readShard(s), next.initCP)
		if ok && next.first.pos != want.Position() {
			t.Errorf("%s: successor's first record %s, want %s (first after checkpoint %s)", s, next.first.pos, want.Position(), next.initCP)
		}
	}
	t.Logf("crashed worker's %d shards resumed within %v of the crash (failover %v, take interval %v)", len(lost), worst.Round(time.Millisecond), cfg.FailoverTime, cfg.TakeInterval)
	e.ledger.checkOrder(t)
	for _, r := range ws[1:] {
		if err := r.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	checkNoLeaks(t)
}

// TestGracefulHandoff: a worker that shuts down checkpoints in
// ShutdownRequested and releases its leases; the other worker takes them
// at once (on the release events) and repeats nothing.
func TestGracefulHandoff(t *testing.T) {
	e := newEnv(t, envOptions{shards: 4})
	p := e.startProducer(20, 20*time.Millisecond)
	a := e.startWorker("a", nil, nil)
	// b never runs a take round on a timer of its own (only on lease
	// events, and after it asks for a lease): if it takes a's leases, the
	// releases made it, at once rather than at its next round.
	b := e.startWorker("b", func(c *Config) { c.TakeInterval = time.Hour }, nil)
	eventually(t, 20*time.Second, func() error { return balanced([]*running{a, b}, 4, 2, 2) })
	waitAllProcessed(t, e, p, 20*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := e.store.Listen(ctx, testApp)
	if err != nil {
		t.Fatal(err)
	}
	handed := a.w.HeldShards()
	stopAt := time.Now()
	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	released := map[string]time.Time{}
	eventually(t, 5*time.Second, func() error {
		for {
			select {
			case ev := <-events:
				if ev.Type == checkpoint.EventReleased {
					released[ev.ShardID] = time.Now()
				}
				continue
			default:
			}
			break
		}
		if len(released) < len(handed) {
			return fmt.Errorf("released %v of %v", released, handed)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error { return balanced([]*running{b}, 4, 4, 4) })
	p.halt()
	waitAllProcessed(t, e, p, 20*time.Second)

	tns := e.ledger.tenures()
	var worst time.Duration
	for _, s := range handed {
		ts := tns[s]
		if len(ts) < 2 {
			t.Fatalf("%s: %d tenures", s, len(ts))
		}
		old, next := ts[len(ts)-2], ts[len(ts)-1]
		if old.worker != "a" || next.worker != "b" {
			t.Fatalf("%s: handed from %s to %s", s, old.worker, next.worker)
		}
		// Reported only: that no timer is involved is shown above (b's
		// TakeInterval) and, on a fake clock, by TestGracefulHandoffTiming.
		worst = max(worst, next.initAt.Sub(released[s]))
		// No reprocessing: the successor starts right after the last
		// record the old owner processed.
		last := old.last() // where the old owner's tenure ended
		if next.initCP != last {
			t.Errorf("%s: successor starts at %s, old owner's last record %s", s, next.initCP, last)
		}
		for _, d := range next.records {
			if d.pos.Compare(last) <= 0 {
				t.Errorf("%s: %s processed again", s, d.pos)
			}
		}
	}
	t.Logf("graceful stop took %v; successor took over within %v of each release", time.Since(stopAt).Round(time.Millisecond), worst.Round(time.Millisecond))
	e.ledger.checkOrder(t)
	cancel()
	for range events {
	}
	if err := b.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	checkNoLeaks(t)
}

// TestResumeInsideAggregate: a checkpoint in the middle of an aggregate
// resumes exactly after the checkpointed user record.
func TestResumeInsideAggregate(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	var urs []aggregation.UserRecord
	for i := range 10 {
		urs = append(urs, aggregation.UserRecord{PartitionKey: "k", Data: []byte(fmt.Sprintf("a%d", i))})
	}
	res := e.putEntries([]types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("p0")},
		aggregate(t, urs),
		{PartitionKey: aws.String("k"), Data: []byte("p1")},
	})
	aggSeq := aws.ToString(res[1].SequenceNumber)
	shard := aws.ToString(res[1].ShardId)

	// The first worker checkpoints a4, the fifth user record, and nothing
	// after it, not even when it shuts down.
	checkpointed := make(chan error, 1)
	first := e.startWorker("first", nil, e.ledger.factory("first", procOptions{noShutdownCheckpoint: true,
		onBatch: func(ctx context.Context, p *ledgerProc, in ProcessRecordsInput) error {
			for _, r := range in.Records {
				if string(r.Data) == "a4" {
					checkpointed <- in.Checkpointer.CheckpointRecord(ctx, r)
				}
			}
			return nil
		}}))
	select {
	case err := <-checkpointed:
		if err != nil {
			t.Fatalf("checkpoint at a4: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a4 never delivered")
	}
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	if got, want := e.lease(shard).Checkpoint, (checkpoint.Checkpoint{SequenceNumber: aggSeq, SubSequenceNumber: 4}); got != want {
		t.Fatalf("checkpoint %s, want %s", got, want)
	}

	second := newLedger()
	w := e.startWorker("second", nil, second.factory("second", procOptions{checkpointEvery: true}))
	eventually(t, 20*time.Second, func() error {
		if second.seen() < 6 {
			return fmt.Errorf("%d records", second.seen())
		}
		return nil
	})
	ds, evs := second.snapshot()
	var got []string
	for _, d := range ds {
		got = append(got, d.data+"@"+strings.TrimPrefix(d.pos.String(), aggSeq))
	}
	if want := "[a5@/5 a6@/6 a7@/7 a8@/8 a9@/9"; !strings.HasPrefix(fmt.Sprint(got), want) || len(got) != 6 {
		t.Fatalf("second worker got %v, want %s and p1]", got, want)
	}
	if evs[0].cp != (checkpoint.Checkpoint{SequenceNumber: aggSeq, SubSequenceNumber: 4}) {
		t.Errorf("Initialize at %s", evs[0].cp)
	}
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestOutOfRangeUserRecordsDropped: user records of an aggregate whose
// hash keys belong to another shard are dropped and counted.
func TestOutOfRangeUserRecordsDropped(t *testing.T) {
	e := newEnv(t, envOptions{shards: 2})
	out, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
	r0, r1 := out.Shards[0].HashKeyRange, out.Shards[1].HashKeyRange
	in, other := aws.ToString(r0.StartingHashKey), aws.ToString(r1.StartingHashKey)
	end0, _ := hashkey.Parse(aws.ToString(r0.EndingHashKey))
	e.putEntries([]types.PutRecordsRequestEntry{aggregate(t, []aggregation.UserRecord{
		{PartitionKey: "a", ExplicitHashKey: in, Data: []byte("in-0")}, // the first decides the shard
		{PartitionKey: "b", ExplicitHashKey: other, Data: []byte("out-1")},
		{PartitionKey: "c", ExplicitHashKey: end0.String(), Data: []byte("in-2")},
		{PartitionKey: "d", ExplicitHashKey: aws.ToString(r1.EndingHashKey), Data: []byte("out-3")},
		{PartitionKey: "e", ExplicitHashKey: in, Data: []byte("in-4")},
	})})
	m := &testMetrics{}
	w := e.startWorker("w", func(c *Config) { c.Metrics = m }, nil)
	eventually(t, 20*time.Second, func() error {
		if m.aggregates.Load() < 1 {
			return errors.New("aggregate not read yet")
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ds, _ := e.ledger.snapshot()
	var got []string
	for _, d := range ds {
		got = append(got, d.data)
	}
	if fmt.Sprint(got) != "[in-0 in-2 in-4]" {
		t.Errorf("delivered %v", got)
	}
	if m.dropped.Load() != 2 || m.aggregatedUser.Load() != 5 {
		t.Errorf("dropped %d of %d", m.dropped.Load(), m.aggregatedUser.Load())
	}
}

// TestThrottlingBackoff: reads throttled by the server
// (ProvisionedThroughputExceeded, 5 calls/s per shard) back off instead of
// hammering it, and every record still arrives.
func TestThrottlingBackoff(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1, server: server.Config{EnforceThroughput: true}})
	m := &testMetrics{}
	// No SDK retries: the worker's own back-off must handle throttling.
	client := e.srv.Client(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	w := e.startWorkerWith("w", workerOptions{client: client, mod: func(c *Config) {
		c.Metrics = m
		c.IdleTimeBetweenReads = time.Millisecond // far more than 5 calls/s
		c.MaxRecords = 50
		c.TaskBackoff = 100 * time.Millisecond
		c.MaxBackoff = time.Second
	}})
	var want []string
	for batch := range 3 {
		var keys, data []string
		for i := range 300 {
			keys = append(keys, fmt.Sprint("k", i))
			data = append(data, fmt.Sprintf("b%d-%d", batch, i))
		}
		e.put(keys, data)
		want = append(want, data...)
	}
	eventually(t, 30*time.Second, func() error {
		if miss := e.ledger.missing(want); len(miss) > 0 {
			return fmt.Errorf("%d missing", len(miss))
		}
		return nil
	})
	// Measure the call rate over a window with throttling going on.
	calls0, thr0, t0 := m.getCalls.Load(), m.throttled.Load(), time.Now()
	eventually(t, 10*time.Second, func() error {
		if m.throttled.Load()-thr0 < 5 || time.Since(t0) < time.Second {
			return fmt.Errorf("%d throttled so far", m.throttled.Load()-thr0)
		}
		return nil
	})
	rate := float64(m.getCalls.Load()-calls0) / time.Since(t0).Seconds()
	t.Logf("GetRecords: %.1f calls/s with back-off (limit 5/s, idle 1ms); %d throttled in total", rate, m.throttled.Load())
	if rate > 25 {
		t.Errorf("%.1f GetRecords calls/s: no back-off", rate)
	}
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ds, _ := e.ledger.snapshot()
	if len(ds) != len(want) {
		t.Errorf("%d deliveries for %d records", len(ds), len(want))
	}
	e.ledger.checkOrder(t)
}

// TestIteratorExpiryRecovery: after a shard iterator expires (the server's
// clock jumps 6 minutes), the worker gets a new one after the last record
// read, and neither loses nor repeats records.
func TestIteratorExpiryRecovery(t *testing.T) {
	var skew atomic.Int64
	e := newEnv(t, envOptions{shards: 1, server: server.Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}})
	m := &testMetrics{}
	w := e.startWorker("w", func(c *Config) { c.Metrics = m }, nil)
	var want []string
	put := func(n int, prefix string) {
		var keys, data []string
		for i := range n {
			keys = append(keys, fmt.Sprint("k", i))
			data = append(data, fmt.Sprintf("%s%d", prefix, i))
		}
		e.put(keys, data)
		want = append(want, data...)
		eventually(t, 20*time.Second, func() error {
			if miss := e.ledger.missing(want); len(miss) > 0 {
				return fmt.Errorf("%d missing", len(miss))
			}
			return nil
		})
	}
	put(20, "before-")
	skew.Store(int64(6 * time.Minute))
	eventually(t, 10*time.Second, func() error {
		if m.expired.Load() == 0 {
			return errors.New("no ExpiredIteratorException yet")
		}
		return nil
	})
	put(20, "after-")
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ds, _ := e.ledger.snapshot()
	if len(ds) != len(want) {
		t.Errorf("%d deliveries for %d records", len(ds), len(want))
	}
	e.ledger.checkOrder(t)
}

// TestStolenLeaseCallsLeaseLost: when another worker steals a lease, the
// old owner's processing context ends, its checkpoint is rejected, and its
// processor gets LeaseLost.
func TestStolenLeaseCallsLeaseLost(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	blocked := make(chan ProcessRecordsInput, 1)
	cpErr := make(chan error, 1)
	a := e.startWorker("a", nil, e.ledger.factory("a", procOptions{onBatch: func(ctx context.Context, p *ledgerProc, in ProcessRecordsInput) error {
		blocked <- in
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Second):
		}
		cpErr <- in.Checkpointer.Checkpoint(context.Background())
		return nil
	}}))
	e.put([]string{"k"}, []string{"x"})
	var shard string
	select {
	case in := <-blocked:
		shard = in.ShardID
	case <-time.After(20 * time.Second):
		t.Fatal("no batch")
	}
	before := e.lease(shard)
	// The thief's lease lasts an hour: a cannot take it back when it
	// expires, however long the checks below take.
	stolen, err := e.longStore().TakeLease(context.Background(), before, "thief")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cpErr:
		if !errors.Is(err, checkpoint.ErrLeaseLost) {
			t.Fatalf("old owner's checkpoint: %v, want ErrLeaseLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old owner never noticed")
	}
	eventually(t, 10*time.Second, func() error {
		_, evs := e.ledger.snapshot()
		for _, ev := range evs {
			if ev.kind == "lost" && ev.worker == "a" {
				return nil
			}
		}
		return errors.New("no LeaseLost")
	})
	after := e.lease(shard)
	if after.Owner != "thief" || after.Counter != stolen.Counter || after.Checkpoint != before.Checkpoint {
		t.Errorf("lease after the steal: owner %q counter %d checkpoint %s", after.Owner, after.Counter, after.Checkpoint)
	}
	if len(a.w.HeldShards()) != 0 {
		t.Errorf("old owner still holds %v", a.w.HeldShards())
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	checkNoLeaks(t)
}

// TestStoreFailureStopsWorker: a Store that fails for good (here: closed
// under the worker) stops Run with the error, after LeaseLost.
func TestStoreFailureStopsWorker(t *testing.T) {
	e := newEnv(t, envOptions{shards: 2})
	r := e.startWorker("w", nil, nil)
	eventually(t, 20*time.Second, func() error { return balanced([]*running{r}, 2, 2, 2) })
	// Both processors initialized: a shard aborted before its processor
	// started gets no LeaseLost (it had nothing to tell).
	eventually(t, 20*time.Second, func() error {
		_, evs := e.ledger.snapshot()
		inits := map[string]bool{}
		for _, ev := range evs {
			if ev.kind == "init" {
				inits[ev.shard] = true
			}
		}
		if len(inits) != 2 {
			return fmt.Errorf("%d of 2 processors initialized", len(inits))
		}
		return nil
	})
	_ = r.store.Close()
	if err := r.wait(t, 20*time.Second); !errors.Is(err, checkpoint.ErrClosed) {
		t.Fatalf("Run returned %v, want ErrClosed", err)
	}
	_, evs := e.ledger.snapshot()
	lost := 0
	for _, ev := range evs {
		if ev.kind == "lost" {
			lost++
		}
	}
	if lost != 2 {
		t.Errorf("%d LeaseLost calls, want 2", lost)
	}
	checkNoLeaks(t)
}

func TestRunTwice(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	r := e.startWorker("w", nil, nil)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := r.w.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Run: %v", err)
	}
}

// TestDatabaseBlip: the database drops every connection (a failover, a
// restart); the Store retries and its listener reconnects, and the worker
// carries on without losing a lease or a record.
func TestDatabaseBlip(t *testing.T) {
	e := newEnv(t, envOptions{shards: 2})
	m := &testMetrics{}
	r := e.startWorker("w", func(c *Config) { c.Metrics = m }, nil)
	eventually(t, 20*time.Second, func() error { return balanced([]*running{r}, 2, 2, 2) })
	want := putN(e, "before", 20)
	waitFor := func(want []string) {
		eventually(t, 20*time.Second, func() error {
			if miss := e.ledger.missing(want); len(miss) > 0 {
				return fmt.Errorf("%d missing", len(miss))
			}
			return nil
		})
	}
	waitFor(want)
	if n := pgtest.Terminate(t, e.schema); n == 0 {
		t.Fatal("no connection terminated")
	}
	want = append(want, putN(e, "after", 20)...)
	waitFor(want)
	select {
	case <-r.done:
		t.Fatalf("Run returned: %v", r.err)
	default:
	}
	if m.lost.Load() != 0 {
		t.Errorf("%d leases lost", m.lost.Load())
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkNoLeaks(t)
}
