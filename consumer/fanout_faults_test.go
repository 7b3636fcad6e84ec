package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/checkpoint"
	kpl "github.com/shoalstream/shoal/producer"
)

// Fan-out retrieval under faults: a worker that dies, a lease stolen, KPL
// aggregates written by the producer library. The server keeps its default
// 5-minute subscriptions here, so that what ends a subscription is the
// fault, not its expiry.

// TestFanOutCrashFailover: a fan-out worker that dies without shutting down
// (its processor checkpoints only every third batch) loses its leases after
// the failover time; the other worker resumes each shard from the last
// checkpoint. Every record is processed at least once; the only records
// processed twice are the crashed worker's records after its last
// checkpoint, processed again by its successor.
func TestFanOutCrashFailover(t *testing.T) {
	e := newEnv(t, envOptions{shards: 4})
	p := e.startProducer(20, 20*time.Millisecond)
	m := &testMetrics{}
	var batches sync.Map // processor -> batches seen
	sparse := e.ledger.factory("a", procOptions{onBatch: func(ctx context.Context, lp *ledgerProc, in ProcessRecordsInput) error {
		v, _ := batches.LoadOrStore(lp.id, new(int))
		n := v.(*int) // only this processor's goroutine touches it
		*n++
		if *n%3 != 0 {
			return nil
		}
		if err := in.Checkpointer.Checkpoint(ctx); err != nil && !errors.Is(err, checkpoint.ErrLeaseLost) && ctx.Err() == nil {
			return err
		}
		return nil
	}})
	a := e.startWorker("a", fanOutMod(m), sparse)
	b := e.startWorker("b", fanOutMod(m), nil)
	ws := []*running{a, b}
	eventually(t, 20*time.Second, func() error { return balanced(ws, 4, 2, 2) })
	waitAllProcessed(t, e, p, 20*time.Second)

	lost := a.w.HeldShards()
	crashAt := time.Now()
	a.crash(t)
	left := map[string]checkpoint.Checkpoint{}
	for _, s := range lost {
		left[s] = e.lease(s).Checkpoint
	}
	eventually(t, 20*time.Second, func() error { return balanced(ws[1:], 4, 4, 4) })
	p.halt()
	waitAllProcessed(t, e, p, 20*time.Second)
	if err := b.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}

	// How soon the leases move is TestCrashTakeoverTiming's to check, on a
	// fake clock (it does not depend on the retrieval mode); here the time
	// is only reported.
	tns := e.ledger.tenures()
	ds, _ := e.ledger.snapshot()
	// Deliveries of each record, in order.
	seen := map[checkpoint.Checkpoint][]delivery{}
	for _, d := range ds {
		seen[d.pos] = append(seen[d.pos], d)
	}
	// The records a successor may process again: those its predecessor
	// processed after the checkpoint the successor started from (the
	// crashed worker's, and any of a steal while the workers balanced).
	wantDup := map[checkpoint.Checkpoint]bool{}
	crashDups := 0
	for s, ts := range tns {
		for i := 1; i < len(ts); i++ {
			for _, d := range ts[i-1].records {
				if d.pos.Compare(ts[i].initCP) > 0 {
					wantDup[d.pos] = true
					if ts[i-1].worker == "a" && ts[i].initAt.After(crashAt) && slices.Contains(lost, s) {
						crashDups++
					}
				}
			}
		}
	}
	var worst time.Duration
	for _, s := range lost {
		var prev, next *tenure
		for _, tn := range tns[s] {
			if tn.worker == "a" {
				prev = tn
			}
			if tn.initAt.After(crashAt) && next == nil {
				next = tn
			}
		}
		if prev == nil || next == nil || next.first == nil {
			t.Fatalf("%s: no successor delivered records", s)
		}
		if next.worker != "b" {
			t.Errorf("%s: successor %s, want b", s, next.worker)
		}
		worst = max(worst, next.initAt.Sub(crashAt))
		// From the last checkpoint (a write in flight at the crash may
		// still have landed after the test read it)...
		if next.initCP.Compare(left[s]) < 0 || next.initCP.Compare(prev.last()) > 0 {
			t.Errorf("%s: successor started at %s; checkpoint at the crash %s, last record processed %s", s, next.initCP, left[s], prev.last())
		}
		// ...with the very next record.
		want, ok := firstAfter(e.readShard(s), next.initCP)
		if ok && next.first.pos != want.Position() {
			t.Errorf("%s: successor's first record %s, want %s (first after checkpoint %s)", s, next.first.pos, want.Position(), next.initCP)
		}
	}
	dups := 0
	for pos, dd := range seen {
		if len(dd) == 1 {
			continue
		}
		dups += len(dd) - 1
		if !wantDup[pos] {
			t.Errorf("%s %s delivered %d times, not a record a predecessor processed after its successor's checkpoint", dd[0].shard, pos, len(dd))
		}
	}
	for pos := range wantDup {
		if len(seen[pos]) < 2 {
			t.Errorf("%s processed after the successor's checkpoint but not processed again", pos)
		}
	}
	if crashDups == 0 {
		t.Log("no record processed twice after the crash: the crash came right after a checkpoint")
	}
	if n := m.getCalls.Load(); n != 0 {
		t.Errorf("%d GetRecords calls in fan-out mode", n)
	}
	t.Logf("%d records, %d deliveries, %d processed twice (%d of them the crashed worker's, after the takeover); its shards resumed within %v of the crash",
		len(p.all()), len(ds), dups, crashDups, worst.Round(time.Millisecond))
	e.ledger.checkOrder(t)
	checkNoLeaks(t)
}

// cutProc processes one shard up to a target record: it checkpoints at
// the target, ignores every later record (as if its process died right
// after), and takes no checkpoint at shutdown.
type cutProc struct {
	target checkpoint.Checkpoint
	mu     sync.Mutex
	got    []Record
	done   chan error // the target's checkpoint result
}

func (p *cutProc) Initialize(context.Context, InitializeInput) error { return nil }

func (p *cutProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range in.Records {
		if n := len(p.got); n > 0 && p.got[n-1].Position() == p.target {
			return nil // past the target: "not processed"
		}
		p.got = append(p.got, r)
		if r.Position() == p.target {
			p.done <- in.Checkpointer.CheckpointRecord(ctx, r)
		}
	}
	return nil
}

func (p *cutProc) LeaseLost(context.Context, LeaseLostInput) {}
func (p *cutProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *cutProc) ShutdownRequested(context.Context, ShutdownRequestedInput) error { return nil }

// TestFanOutAggregatedExactlyOnce: user records that the producer library
// aggregates, read in fan-out mode, each at the position the producer
// reported (sequence and sub-sequence number); a worker that checkpoints in
// the middle of an aggregate and stops, and a second one that resumes there:
// together they process every user record exactly once.
func TestFanOutAggregatedExactlyOnce(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	prod, err := kpl.New(e.srv.Client(), kpl.Config{StreamName: testStream, MaxBufferedTime: 50 * time.Millisecond, AggregationMaxCount: 25})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var pendings []*kpl.Pending
	for i := range n {
		pd, err := prod.Put(t.Context(), fmt.Sprintf("pk-%d", i%50), fmt.Appendf(nil, "u%05d", i))
		if err != nil {
			t.Fatal(err)
		}
		pendings = append(pendings, pd)
	}
	if err := prod.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	where := map[string]checkpoint.Checkpoint{} // data -> position the producer reported
	var order []checkpoint.Checkpoint
	for _, pd := range pendings {
		res, err := pd.Wait(t.Context())
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		cp := checkpoint.Checkpoint{SequenceNumber: res.SequenceNumber, SubSequenceNumber: res.SubSequenceNumber}
		where[string(res.Record.Data)] = cp
		order = append(order, cp)
	}
	// The target: a user record in the middle of an aggregate, about half
	// way through.
	var target checkpoint.Checkpoint
	for i := n / 2; i < n-1; i++ {
		if order[i].SubSequenceNumber > 0 && order[i+1].SequenceNumber == order[i].SequenceNumber {
			target = order[i]
			break
		}
	}
	if target == (checkpoint.Checkpoint{}) {
		t.Fatal("the producer built no aggregate of more than one user record")
	}

	m := &testMetrics{}
	first := &cutProc{target: target, done: make(chan error, 1)}
	w1 := e.startWorker("first", fanOutMod(m), func(string) Processor { return first })
	select {
	case err := <-first.done:
		if err != nil {
			t.Fatalf("checkpoint at %s: %v", target, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never delivered", target)
	}
	if err := w1.stop(t); err != nil {
		t.Fatal(err)
	}
	shard := e.shardIDs()[0]
	if got := e.lease(shard).Checkpoint; got != target {
		t.Fatalf("checkpoint %s after the first worker, want %s", got, target)
	}

	w2 := e.startWorker("second", fanOutMod(m), nil)
	eventually(t, 20*time.Second, func() error {
		if got := e.ledger.seen() + len(first.got); got < n {
			return fmt.Errorf("%d of %d user records processed", got, n)
		}
		return nil
	})
	if err := w2.stop(t); err != nil {
		t.Fatal(err)
	}

	count := map[string]int{}
	check := func(who string, data string, pos checkpoint.Checkpoint) {
		count[data]++
		if want, ok := where[data]; !ok || pos != want {
			t.Errorf("%s: %s at %s, the producer put it at %s", who, data, pos, want)
		}
	}
	for _, r := range first.got {
		check("first", string(r.Data), r.Position())
	}
	ds, evs := e.ledger.snapshot()
	for _, d := range ds {
		check("second", d.data, d.pos)
	}
	for i := range n {
		if c := count[fmt.Sprintf("u%05d", i)]; c != 1 {
			t.Errorf("u%05d processed %d times", i, c)
		}
	}
	if len(ds) == 0 || ds[0].pos != (checkpoint.Checkpoint{SequenceNumber: target.SequenceNumber, SubSequenceNumber: target.SubSequenceNumber + 1}) {
		t.Errorf("second worker's first record %v, want the one after %s in the same aggregate", ds[:min(1, len(ds))], target)
	}
	if len(evs) == 0 || evs[0].cp != target {
		t.Errorf("second worker initialized at %v, want %s", evs, target)
	}
	if m.aggregates.Load() == 0 || m.getCalls.Load() != 0 {
		t.Errorf("%d aggregates de-aggregated, %d GetRecords calls; want > 0 and 0", m.aggregates.Load(), m.getCalls.Load())
	}
	e.ledger.checkOrder(t)
	t.Logf("%d user records in %d aggregates; resumed after %s", n, m.aggregates.Load(), target)
	checkNoLeaks(t)
}

// eventStreamGoroutines counts the SDK's SubscribeToShard event stream
// goroutines: each open subscription has them until it is closed.
func eventStreamGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "kinesis.(*subscribeToShardEventStreamReader)") {
			n++
		}
	}
	return n
}

// TestFanOutStealCancelsSubscription: when another worker steals a lease
// in fan-out mode, the old owner gets LeaseLost promptly (from the Store's
// event of the steal, before any renewal or take round), closes its
// subscription (the server accepts a new one for the same consumer and
// shard at once, without ResourceInUseException), and processes nothing
// more of that shard afterwards, although records keep coming.
func TestFanOutStealCancelsSubscription(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	p := e.startProducer(10, 20*time.Millisecond)
	m := &testMetrics{}
	// a renews every 20 minutes and runs no take round of its own: within
	// this test only the Store's event of the steal can tell it. Its lease
	// lasts as long, so that a slow run cannot let it expire either.
	e.storeFailover = time.Hour
	a := e.startWorker("a", func(c *Config) {
		fanOutMod(m)(c)
		c.FailoverTime = time.Hour
		c.TakeInterval = time.Hour
	}, nil)
	eventually(t, 20*time.Second, func() error {
		if e.ledger.seen() < 50 {
			return fmt.Errorf("%d records processed", e.ledger.seen())
		}
		return nil
	})
	shard := e.shardIDs()[0]
	if eventStreamGoroutines() == 0 {
		t.Fatal("no subscription open while the worker reads")
	}
	// The owner's checkpoints move the lease counter on, so a copy may be
	// stale by the time the take runs: like a real thief, try again with a
	// fresh copy.
	// The thief's lease lasts an hour (e.storeFailover), so it keeps it
	// without renewing and a cannot take it back.
	thief := e.newStore(e.pool)
	stealAt := time.Now()
	for attempt := 0; ; attempt++ {
		_, err := thief.TakeLease(context.Background(), e.lease(shard), "thief")
		if err == nil {
			break
		}
		if !errors.Is(err, checkpoint.ErrLeaseLost) || attempt == 100 {
			t.Fatal(err)
		}
		stealAt = time.Now()
	}
	// Promptly: a's renewals and take rounds are an hour apart (the
	// timeout only bounds a failing run), so the steal's event told it.
	var lostAt time.Time
	eventually(t, 30*time.Second, func() error {
		_, evs := e.ledger.snapshot()
		for _, ev := range evs {
			if ev.kind == "lost" && ev.worker == "a" && ev.shard == shard {
				lostAt = ev.at
				return nil
			}
		}
		return errors.New("no LeaseLost")
	})
	eventually(t, 10*time.Second, func() error {
		if n := eventStreamGoroutines(); n > 0 {
			return fmt.Errorf("%d event stream goroutines after LeaseLost", n)
		}
		return nil
	})
	// The server has let go of the old subscription too: a new one for the
	// same consumer and shard is accepted at once.
	cs, err := e.client.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: aws.String(e.streamARN())})
	if err != nil || len(cs.Consumers) != 1 {
		t.Fatalf("stream consumers %v, %v", cs, err)
	}
	var probe *kinesis.SubscribeToShardOutput
	probe, err = e.srv.StreamingClient().SubscribeToShard(t.Context(), &kinesis.SubscribeToShardInput{
		ConsumerARN: cs.Consumers[0].ConsumerARN, ShardId: aws.String(shard),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest},
	})
	if err != nil {
		t.Errorf("SubscribeToShard after the old owner's LeaseLost: %v", err)
	} else {
		_ = probe.GetStream().Close()
	}
	// Records keep coming for a while; the old owner must not process any.
	before := len(p.all())
	eventually(t, 10*time.Second, func() error {
		if got := len(p.all()); got < before+200 {
			return fmt.Errorf("%d records put since", got-before)
		}
		return nil
	})
	p.halt()
	ds, _ := e.ledger.snapshot()
	late := 0
	for _, d := range ds {
		if d.shard == shard && !d.at.Before(lostAt) {
			late++
		}
	}
	if late > 0 {
		t.Errorf("the old owner processed %d records of %s after LeaseLost", late, shard)
	}
	if len(a.w.HeldShards()) != 0 {
		t.Errorf("old owner still holds %v", a.w.HeldShards())
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	t.Logf("LeaseLost %v after the steal", lostAt.Sub(stealAt).Round(time.Millisecond))
	checkNoLeaks(t)
}
