package integration

import (
	"context"
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
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/server"
)

// The acceptance test of resharding: a producer puts a keyed sequence while
// the stream goes 2 -> 4 -> 3 -> 2 shards, two consumer workers read it, and
// every acknowledged record must be processed, per key in order (first
// deliveries), and every child shard only after its parents were finished.

const (
	e2eStream = "reshard-e2e"
	e2eApp    = "reshard-e2e-app"
	e2eKeys   = 20
)

// e2eDelivery is one record as a processor received it.
type e2eDelivery struct {
	key     int
	counter int
	shard   string
	seq     string
	subseq  int64
	order   int64 // global delivery order
	worker  string
}

// e2eLedger records every delivery of every worker.
type e2eLedger struct {
	mu        sync.Mutex
	order     int64
	byKey     [e2eKeys][]e2eDelivery // in delivery order
	seen      [e2eKeys]map[int]int   // counter -> times delivered
	bogus     []string               // records whose data is not a record the test put
	shardMin  map[string]int64       // first delivery order of each shard
	shardMax  map[string]int64       // last delivery order of each shard
	shardEnds map[string]int         // ShardEnded calls that checkpointed
	ckptErrs  []string
	backwards []string // keys whose first-seen sequence went backwards
	maxFirst  [e2eKeys]int
}

func newE2ELedger() *e2eLedger {
	l := &e2eLedger{shardMin: map[string]int64{}, shardMax: map[string]int64{}, shardEnds: map[string]int{}}
	for k := range e2eKeys {
		l.seen[k] = map[int]int{}
		l.maxFirst[k] = -1
	}
	return l
}

func parseE2E(data []byte) (key, counter int, ok bool) {
	s := string(data)
	ks, cs, found := strings.Cut(s, ":")
	if !found || !strings.HasPrefix(ks, "k") {
		return 0, 0, false
	}
	k, err1 := strconv.Atoi(ks[1:])
	c, err2 := strconv.Atoi(cs)
	if err1 != nil || err2 != nil || k < 0 || k >= e2eKeys || c < 0 {
		return 0, 0, false
	}
	return k, c, true
}

func (l *e2eLedger) record(worker, shard string, recs []consumer.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		l.order++
		if _, ok := l.shardMin[shard]; !ok {
			l.shardMin[shard] = l.order
		}
		l.shardMax[shard] = l.order
		k, c, ok := parseE2E(r.Data)
		if !ok || r.PartitionKey != "k"+strconv.Itoa(k) {
			l.bogus = append(l.bogus, fmt.Sprintf("%q (pk %q) on %s seq %s/%d", r.Data, r.PartitionKey, shard, r.SequenceNumber, r.SubSequenceNumber))
			continue
		}
		d := e2eDelivery{key: k, counter: c, shard: shard, seq: r.SequenceNumber, subseq: r.SubSequenceNumber, order: l.order, worker: worker}
		l.byKey[k] = append(l.byKey[k], d)
		if l.seen[k][c] == 0 {
			if c < l.maxFirst[k] {
				l.backwards = append(l.backwards, fmt.Sprintf("k%d: counter %d first seen (shard %s seq %s/%d, worker %s) after counter %d was first seen", k, c, shard, r.SequenceNumber, r.SubSequenceNumber, worker, l.maxFirst[k]))
			} else {
				l.maxFirst[k] = c
			}
		}
		l.seen[k][c]++
	}
}

// e2eProcessor is a processor that records and checkpoints every batch.
type e2eProcessor struct {
	l      *e2eLedger
	worker string
	shard  string
}

func (p *e2eProcessor) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *e2eProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.l.record(p.worker, in.ShardID, in.Records)
	if len(in.Records) > 0 {
		if err := in.Checkpointer.Checkpoint(ctx); err != nil {
			p.l.mu.Lock()
			p.l.ckptErrs = append(p.l.ckptErrs, fmt.Sprintf("%s on %s: %v", p.worker, in.ShardID, err))
			p.l.mu.Unlock()
		}
	}
	return nil
}

func (p *e2eProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) {}

func (p *e2eProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.l.mu.Lock()
	p.l.shardEnds[in.ShardID]++
	p.l.mu.Unlock()
	return nil
}

func (p *e2eProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func TestReshardEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end resharding test skipped in -short mode")
	}
	srv := servertest.Start(t, server.Config{Fsync: server.FsyncNever, Logger: zap.NewNop()})
	runReshardE2E(t, srv.Endpoint, nil)
}

func TestReshardEndToEndServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end resharding test skipped in -short mode")
	}
	srv := servertest.StartRestartable(t, server.Config{Fsync: server.FsyncNever, Logger: zap.NewNop()})
	runReshardE2E(t, srv.Endpoint(), srv.Restart)
}

// runReshardE2E runs the scenario against the server at endpoint; restart,
// if not nil, restarts that server once, between the first and the second
// reshard.
func runReshardE2E(t *testing.T, endpoint string, restart func()) {
	start := time.Now()
	client := servertest.Client(endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(e2eStream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	waitActive(ctx, t, client, e2eStream)

	// Two workers, each with its own pool and Store.
	_, schema := pgtest.New(t)
	ledger := newE2ELedger()
	type runningWorker struct {
		cancel context.CancelFunc
		done   chan error
	}
	var workers []runningWorker
	for i := range 2 {
		id := fmt.Sprintf("w%d", i)
		pool := pgtest.Pool(t, pgtest.Config(t, schema))
		store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, FailoverTime: 2 * time.Second})
		if err != nil {
			t.Fatalf("new store: %v", err)
		}
		t.Cleanup(func() { _ = store.Close() })
		cfg := consumer.Config{
			ApplicationName:      e2eApp,
			StreamName:           e2eStream,
			WorkerID:             id,
			InitialPosition:      consumer.TrimHorizon,
			FailoverTime:         2 * time.Second,
			TakeInterval:         500 * time.Millisecond,
			ShardSyncInterval:    500 * time.Millisecond,
			IdleTimeBetweenReads: 20 * time.Millisecond,
			TaskBackoff:          50 * time.Millisecond,
			MaxBackoff:           500 * time.Millisecond,
			ShutdownTimeout:      10 * time.Second,
			Logger:               zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(id),
		}
		factory := func(shardID string) consumer.Processor {
			return &e2eProcessor{l: ledger, worker: id, shard: shardID}
		}
		w, err := consumer.New(servertest.Client(endpoint), store, factory, cfg)
		if err != nil {
			t.Fatalf("new worker: %v", err)
		}
		wctx, wcancel := context.WithCancel(context.Background())
		rw := runningWorker{cancel: wcancel, done: make(chan error, 1)}
		go func() { rw.done <- w.Run(wctx) }()
		workers = append(workers, rw)
	}
	stopWorkers := func() {
		for i, w := range workers {
			w.cancel()
			select {
			case err := <-w.done:
				if err != nil && ctx.Err() == nil {
					t.Errorf("worker %d: Run: %v", i, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("worker %d: Run did not return within 30s", i)
			}
		}
		workers = nil
	}
	defer stopWorkers()

	// The producer: one goroutine per key, each waiting for its previous
	// record's result before putting the next, at most one record per 20 ms
	// per key (at most 1000 records/s in all).
	prod, err := producer.New(servertest.Client(endpoint), producer.Config{StreamName: e2eStream, MaxBufferedTime: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("producer.New: %v", err)
	}
	var (
		putCount [e2eKeys]atomic.Int64 // counters 0..putCount-1 were given to Put
		ackMu    sync.Mutex
		acked    [e2eKeys]map[int]producer.Result
		failed   []string
	)
	for k := range e2eKeys {
		acked[k] = map[int]producer.Result{}
	}
	stopProducing := make(chan struct{})
	var prodWG sync.WaitGroup
	for k := range e2eKeys {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for c := 0; ; c++ {
				select {
				case <-stopProducing:
					return
				case <-tick.C:
				}
				pk := "k" + strconv.Itoa(k)
				putCount[k].Store(int64(c + 1))
				p, err := prod.Put(ctx, pk, []byte(pk+":"+strconv.Itoa(c)))
				if err != nil {
					ackMu.Lock()
					failed = append(failed, fmt.Sprintf("%s:%d Put: %v", pk, c, err))
					ackMu.Unlock()
					continue
				}
				res, err := p.Wait(ctx)
				ackMu.Lock()
				if err == nil && res.Err == nil {
					acked[k][c] = res
				} else {
					failed = append(failed, fmt.Sprintf("%s:%d: %v / %v", pk, c, err, res.Err))
				}
				ackMu.Unlock()
			}
		}()
	}

	// Reshard 2 -> 4 -> 3 -> 2, with traffic in between.
	time.Sleep(time.Second)
	for i, n := range []int32{4, 3, 2} {
		t0 := time.Now()
		if _, err := client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(e2eStream), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
			t.Fatalf("UpdateShardCount %d: %v", n, err)
		}
		waitActive(ctx, t, client, e2eStream)
		t.Logf("resharded to %d shards in %v (at %v)", n, time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		time.Sleep(time.Second)
		if i == 0 && restart != nil {
			t0 := time.Now()
			restart()
			t.Logf("server restarted in %v (at %v)", time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			time.Sleep(500 * time.Millisecond)
		}
	}
	close(stopProducing)
	prodWG.Wait()
	closeCtx, closeCancel := context.WithTimeout(ctx, 30*time.Second)
	if err := prod.Close(closeCtx); err != nil {
		t.Errorf("producer Close: %v", err)
	}
	closeCancel()
	producedAt := time.Since(start)

	ackMu.Lock()
	totalAcked, totalPut := 0, 0
	for k := range e2eKeys {
		totalAcked += len(acked[k])
		totalPut += int(putCount[k].Load())
	}
	failedCopy := slices.Clone(failed)
	ackMu.Unlock()
	t.Logf("producer: %d records put, %d acknowledged, %d failed, in %v", totalPut, totalAcked, len(failedCopy), producedAt.Round(time.Millisecond))
	for i, f := range failedCopy {
		if i >= 10 {
			t.Logf("... and %d more failures", len(failedCopy)-10)
			break
		}
		t.Logf("failed put: %s", f)
	}
	if totalAcked == 0 {
		t.Fatal("no record acknowledged")
	}

	// Wait until every acknowledged record was processed.
	missing := func() []string {
		ledger.mu.Lock()
		defer ledger.mu.Unlock()
		var out []string
		for k := range e2eKeys {
			for c := range acked[k] {
				if ledger.seen[k][c] == 0 {
					out = append(out, fmt.Sprintf("k%d:%d", k, c))
				}
			}
		}
		slices.Sort(out)
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := missing()
		if len(m) == 0 {
			break
		}
		if time.Now().After(deadline) {
			if len(m) > 20 {
				m = append(m[:20], fmt.Sprintf("... (%d in all)", len(m)))
			}
			for _, s := range m[:min(len(m), 5)] {
				var k, c int
				if _, err := fmt.Sscanf(s, "k%d:%d", &k, &c); err != nil {
					t.Logf("missing %s (%v)", s, err)
					continue
				}
				r := acked[k][c]
				t.Logf("missing %s: acknowledged on %s seq %s/%d", s, r.ShardID, r.SequenceNumber, r.SubSequenceNumber)
			}
			t.Fatalf("acknowledged records not processed within 60s: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	caughtUp := time.Since(start)

	// The final shard layout, for parent-before-child.
	var shards []types.Shard
	var next *string
	for {
		in := &kinesis.ListShardsInput{}
		if next == nil {
			in.StreamName = aws.String(e2eStream)
		} else {
			in.NextToken = next
		}
		out, err := client.ListShards(ctx, in)
		if err != nil {
			t.Fatalf("ListShards: %v", err)
		}
		shards = append(shards, out.Shards...)
		if next = out.NextToken; next == nil {
			break
		}
	}

	stopWorkers()

	ledger.mu.Lock()
	defer ledger.mu.Unlock()

	if len(ledger.bogus) > 0 {
		t.Errorf("%d records delivered that the test did not put, e.g. %v", len(ledger.bogus), ledger.bogus[:min(5, len(ledger.bogus))])
	}
	// No record that was never put: its counter must be below the number of
	// counters given to Put.
	neverPut := 0
	for k := range e2eKeys {
		for c := range ledger.seen[k] {
			if int64(c) >= putCount[k].Load() {
				neverPut++
				if neverPut <= 5 {
					t.Errorf("k%d:%d delivered but never put", k, c)
				}
			}
		}
	}
	for _, b := range ledger.backwards {
		t.Errorf("per-key order broken: %s", b)
	}
	// Duplicates and deliveries matching the acknowledged position.
	dups, deliveries, posMismatch, unackedSeen := 0, 0, 0, 0
	var dupKeys []string
	for k := range e2eKeys {
		kd := 0
		for c, n := range ledger.seen[k] {
			deliveries += n
			kd += n - 1
			if _, ok := acked[k][c]; !ok {
				unackedSeen++
			}
		}
		dups += kd
		if kd > 0 {
			dupKeys = append(dupKeys, fmt.Sprintf("k%d:%d", k, kd))
		}
		for c, res := range acked[k] {
			match := false
			for _, d := range ledger.byKey[k] {
				if d.counter == c && d.shard == res.ShardID && d.seq == res.SequenceNumber && d.subseq == res.SubSequenceNumber {
					match = true
					break
				}
			}
			if !match {
				posMismatch++
				if posMismatch <= 5 {
					var got []string
					for _, d := range ledger.byKey[k] {
						if d.counter == c {
							got = append(got, fmt.Sprintf("%s %s/%d", d.shard, d.seq, d.subseq))
						}
					}
					t.Logf("k%d:%d acknowledged at %s %s/%d but delivered at %v", k, c, res.ShardID, res.SequenceNumber, res.SubSequenceNumber, got)
				}
			}
		}
	}
	t.Logf("consumers: %d deliveries, %d duplicates (per key: %v), %d delivered records not acknowledged, %d acknowledged records never delivered at their acknowledged position, %d checkpoint errors",
		deliveries, dups, dupKeys, unackedSeen, posMismatch, len(ledger.ckptErrs))
	for _, e := range ledger.ckptErrs {
		t.Logf("checkpoint error: %s", e)
	}
	// How the duplicates came about: every delivery of the first few.
	shown := 0
	for k := range e2eKeys {
		for c, n := range ledger.seen[k] {
			if n < 2 || shown >= 6 {
				continue
			}
			shown++
			var ds []string
			for _, d := range ledger.byKey[k] {
				if d.counter == c {
					ds = append(ds, fmt.Sprintf("#%d %s %s %s/%d", d.order, d.worker, d.shard, d.seq, d.subseq))
				}
			}
			t.Logf("duplicate k%d:%d delivered %d times: %v", k, c, n, ds)
		}
	}

	// Parent before child.
	checked := 0
	for _, sh := range shards {
		child := aws.ToString(sh.ShardId)
		first, ok := ledger.shardMin[child]
		if !ok {
			continue
		}
		for _, parent := range []string{aws.ToString(sh.ParentShardId), aws.ToString(sh.AdjacentParentShardId)} {
			if parent == "" {
				continue
			}
			last, ok := ledger.shardMax[parent]
			if !ok {
				continue
			}
			checked++
			if first < last {
				t.Errorf("child %s: first record delivered (#%d) before the last record of parent %s (#%d)", child, first, parent, last)
			}
			if ledger.shardEnds[parent] == 0 {
				t.Errorf("child %s processed but parent %s never checkpointed SHARD_END", child, parent)
			}
		}
	}
	var closed []string
	for _, sh := range shards {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			closed = append(closed, aws.ToString(sh.ShardId))
		}
	}
	t.Logf("%d shards (%d closed), %d parent/child pairs checked; SHARD_END per shard: %v", len(shards), len(closed), checked, ledger.shardEnds)
	for _, c := range closed {
		if ledger.shardEnds[c] == 0 {
			t.Errorf("closed shard %s never ended (no SHARD_END checkpoint)", c)
		}
	}
	t.Logf("durations: produced for %v, caught up at %v, total %v", producedAt.Round(time.Millisecond), caughtUp.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// waitActive polls DescribeStreamSummary until stream is ACTIVE.
func waitActive(ctx context.Context, t *testing.T, client *kinesis.Client, stream string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // generous: a loaded machine, a server recovering logs
	for {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not ACTIVE within a minute (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
