package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/checkpoint"
)

// Graceful hand-off on rebalance: the timing and the protocol on the fake
// clock (the in-memory Kinesis and checkpoint/memstore), then scaling a
// fleet out on the real server and PostgreSQL.

// addRecords appends n records to a fake shard, with data prefix0... and
// sequence numbers after its last.
func (r *rig) addRecords(shard string, n int, prefix string) {
	r.kin.mu.Lock()
	defer r.kin.mu.Unlock()
	s := r.kin.shard(shard)
	last, _ := strconv.Atoi(aws.ToString(s.records[len(s.records)-1].SequenceNumber))
	for i := range n {
		s.records = append(s.records, types.Record{SequenceNumber: aws.String(strconv.Itoa(last + 1 + i)), PartitionKey: aws.String("k"),
			Data: fmt.Appendf(nil, "%s%d", prefix, i), ApproximateArrivalTimestamp: aws.Time(time.Unix(1000, 0))})
	}
}

// holdGate holds the ProcessRecords calls of the processors it is given
// to, while it is shut, until it opens or the call's ctx ends.
type holdGate struct {
	mu      sync.Mutex // guards the following
	shut    bool
	open    chan struct{}
	holding map[string]bool // shards whose call is held now
}

func newHoldGate() *holdGate { return &holdGate{open: make(chan struct{}), holding: map[string]bool{}} }

func (g *holdGate) onBatch(ctx context.Context, p *ledgerProc, _ ProcessRecordsInput) error {
	g.mu.Lock()
	if !g.shut {
		g.mu.Unlock()
		return nil
	}
	g.holding[p.shard] = true
	open := g.open
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.holding, p.shard)
		g.mu.Unlock()
	}()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *holdGate) close() {
	g.mu.Lock()
	g.shut = true
	g.mu.Unlock()
}

func (g *holdGate) release() {
	g.mu.Lock()
	g.shut = false
	close(g.open)
	g.mu.Unlock()
}

func (g *holdGate) held() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for s := range g.holding {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// askedFor returns the lease that carries a hand-off request for to.
func (r *rig) askedFor(to string) (checkpoint.Lease, error) {
	leases, err := r.store.ListLeases(r.t.Context(), testApp)
	if err != nil {
		return checkpoint.Lease{}, err
	}
	var found []checkpoint.Lease
	for _, l := range leases {
		if l.HandoffTo == to {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return checkpoint.Lease{}, fmt.Errorf("%d leases asked for by %s: %+v", len(found), to, found)
	}
	return found[0], nil
}

// startHeld starts worker a on a rig of two shards, lets it process their
// records, then has both its processors hold a batch of new records in
// ProcessRecords; it returns a, its metrics and the gate.
func startHeld(t *testing.T, r *rig) (*running, *testMetrics, *holdGate) {
	t.Helper()
	g := newHoldGate()
	m := &testMetrics{}
	a := r.startWith("a", r.kin, r.ledger.factory("a", procOptions{checkpointEvery: true, onBatch: g.onBatch}), func(c *Config) { c.Metrics = m })
	within(t, time.Minute, func() error {
		if n := r.ledger.seen(); n != 10 {
			return fmt.Errorf("%d of 10 records processed", n)
		}
		return nil
	})
	g.close()
	for _, s := range a.w.HeldShards() {
		r.addRecords(s, 3, s+"-late-")
	}
	within(t, time.Minute, func() error {
		if h := g.held(); len(h) != 2 {
			return fmt.Errorf("processors holding a batch: %v", h)
		}
		return nil
	})
	return a, m, g
}

// TestHandoffFinishesBatch: a worker that joins asks for a lease rather
// than stealing it; the owner, busy with a batch, keeps the lease (however
// long the asker waits, within the failover time) until the batch is done
// and checkpointed, then hands it over, and the new owner starts right
// after that batch: no record is delivered twice, nobody loses a lease, and
// no timer has to fire between the end of the batch and the new owner's
// start.
func TestHandoffFinishesBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 2)
		a, ma, g := startHeld(t, r)
		mb := &testMetrics{}
		b := r.start("b", mb, nil)
		synctest.Wait()
		asked, err := r.askedFor("b")
		if err != nil {
			t.Fatal(err)
		}
		if asked.Owner != "a" || !asked.HandoffPending() {
			t.Fatalf("lease asked for: %+v", asked)
		}
		// The owner keeps it while its batch is in hand, past several
		// renewal periods and take rounds.
		time.Sleep(testFailover * 2 / 3)
		if held := a.w.HeldShards(); len(held) != 2 || len(b.w.HeldShards()) != 0 {
			t.Fatalf("before the batch ends: a holds %v, b %v", held, b.w.HeldShards())
		}
		if l, err := r.store.GetLease(t.Context(), testApp, asked.ShardID); err != nil || l.Owner != "a" {
			t.Fatalf("before the batch ends: %+v, %v", l, err)
		}

		releaseAt := time.Now()
		g.release()
		synctest.Wait()
		if d := time.Since(releaseAt); d != 0 {
			t.Errorf("the hand-off took %v of fake time: something waited for a timer", d)
		}
		if got := b.w.HeldShards(); !slices.Equal(got, []string{asked.ShardID}) {
			t.Fatalf("b holds %v, want %s", got, asked.ShardID)
		}
		if got := a.w.HeldShards(); len(got) != 1 || got[0] == asked.ShardID {
			t.Fatalf("a holds %v", got)
		}
		ds, evs := r.ledger.snapshot()
		var last checkpoint.Checkpoint // a's last record of the shard
		for _, d := range ds {
			if d.shard == asked.ShardID {
				last = d.pos
			}
		}
		if _, cp, ok := r.ledger.initAt("b", asked.ShardID); !ok || cp != last {
			t.Errorf("b started %s at %s (%v), want at a's last record %s", asked.ShardID, cp, ok, last)
		}
		var shutdown []procEvent
		for _, ev := range evs {
			if ev.kind == "shutdown" || ev.kind == "lost" {
				shutdown = append(shutdown, ev)
			}
		}
		if len(shutdown) != 1 || shutdown[0].kind != "shutdown" || shutdown[0].shard != asked.ShardID || shutdown[0].to != "b" {
			t.Errorf("a's processors ended with %+v, want one ShutdownRequested handing %s to b", shutdown, asked.ShardID)
		}
		checkOnce(t, r.ledger)
		// More records: b processes them, once.
		r.addRecords(asked.ShardID, 4, "after-")
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 20 {
				return fmt.Errorf("%d of 20 records processed", n)
			}
			return nil
		})
		checkOnce(t, r.ledger)
		for what, n := range map[string]int64{
			"a handed": ma.handed.Load() - 1, "b asked": mb.requested.Load() - 1, "a lost": ma.lost.Load(),
			"b stole": mb.stolen.Load(), "b forced": mb.forced.Load(),
		} {
			if n != 0 {
				t.Errorf("%s: %+d", what, n)
			}
		}
		for _, w := range []*running{a, b} {
			if err := w.stop(t); err != nil {
				t.Errorf("%s: Run: %v", w.w.ID(), err)
			}
		}
	})
}

// checkOnce fails the test for every record delivered more than once.
func checkOnce(t *testing.T, l *ledger) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for d, n := range l.count {
		if n != 1 {
			t.Errorf("%s delivered %d times", d, n)
		}
	}
}

// TestHandoffLapseSteals: an owner that does not hand a lease over within
// the failover time (its batch never ends) has it stolen when the request
// lapses, and no sooner: crash-like behaviour, with the old owner's call
// cancelled and LeaseLost, as before graceful hand-off.
func TestHandoffLapseSteals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 2)
		a, ma, g := startHeld(t, r)
		mb := &testMetrics{}
		askedAt := time.Now()
		b := r.start("b", mb, nil)
		synctest.Wait()
		asked, err := r.askedFor("b")
		if err != nil {
			t.Fatal(err)
		}
		within(t, time.Minute, func() error { return balanced([]*running{a, b}, 2, 1, 1) })
		at, _, ok := r.ledger.initAt("b", asked.ShardID)
		if !ok {
			t.Fatalf("b did not start %s", asked.ShardID)
		}
		cfg := b.w.Config()
		if took := at.Sub(askedAt); took < cfg.FailoverTime || took > cfg.FailoverTime*11/10 {
			t.Errorf("lease stolen %v after the request, want when the request lapses, after the failover time %v", took, cfg.FailoverTime)
		}
		if mb.requested.Load() != 1 || mb.forced.Load() != 1 || mb.stolen.Load() != 1 || ma.lost.Load() != 1 || ma.handed.Load() != 0 {
			t.Errorf("requested %d forced %d stolen %d lost %d handed %d, want 1 1 1 1 0",
				mb.requested.Load(), mb.forced.Load(), mb.stolen.Load(), ma.lost.Load(), ma.handed.Load())
		}
		g.release()
		if err := b.stop(t); err != nil {
			t.Errorf("b: Run: %v", err)
		}
		if err := a.stop(t); err != nil && !errors.Is(err, checkpoint.ErrLeaseLost) {
			t.Errorf("a: Run: %v", err)
		}
	})
}

// TestNoGracefulHandoffSteals: with Config.NoGracefulHandoff a joining
// worker steals at once, as the KCL 2.x does.
func TestNoGracefulHandoffSteals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 2)
		ma, mb := &testMetrics{}, &testMetrics{}
		a := r.start("a", ma, nil)
		within(t, time.Minute, func() error { return balanced([]*running{a}, 2, 2, 2) })
		b := r.start("b", mb, func(c *Config) { c.NoGracefulHandoff = true })
		synctest.Wait()
		if err := balanced([]*running{a, b}, 2, 1, 1); err != nil {
			t.Fatal(err)
		}
		if mb.stolen.Load() != 1 || mb.requested.Load() != 0 || ma.lost.Load() != 1 {
			t.Errorf("stolen %d requested %d lost %d, want 1 0 1", mb.stolen.Load(), mb.requested.Load(), ma.lost.Load())
		}
		for _, w := range []*running{a, b} {
			if err := w.stop(t); err != nil {
				t.Errorf("%s: Run: %v", w.w.ID(), err)
			}
		}
	})
}

// TestScaleOutNoDuplicates: one worker consumes an 8-shard stream under a
// steady load; a second joins, then two more. The leases spread to two per
// worker by hand-offs, not steals, and every record is processed exactly
// once. On the real server and PostgreSQL.
func TestScaleOutNoDuplicates(t *testing.T) {
	e := newEnv(t, envOptions{shards: 8})
	// A failover time long enough that no renewal on a loaded machine
	// misses it (an expired lease would be failed over, with duplicates):
	// the test is about rebalancing.
	const failover = 6 * time.Second
	e.storeFailover = failover
	mod := func(m *testMetrics) func(*Config) {
		return func(c *Config) {
			c.FailoverTime, c.TakeInterval, c.MaxLeasesToStealAtOneTime, c.Metrics = failover, 2*failover, 2, m
		}
	}
	p := e.startProducer(20, 20*time.Millisecond)
	ms := make([]*testMetrics, 4)
	for i := range ms {
		ms[i] = &testMetrics{}
	}
	ws := []*running{e.startWorker("w0", mod(ms[0]), nil)}
	eventually(t, 30*time.Second, func() error { return balanced(ws, 8, 8, 8) })
	p.putSince(t, 500)
	// One worker joins, then two more at once.
	start := time.Now()
	ws = append(ws, e.startWorker("w1", mod(ms[1]), nil))
	eventually(t, 60*time.Second, func() error { return balanced(ws, 8, 4, 4) })
	t.Logf("from 1 to 2 workers, balanced in %v", time.Since(start).Round(time.Millisecond))
	p.putSince(t, 500)
	start = time.Now()
	ws = append(ws, e.startWorker("w2", mod(ms[2]), nil), e.startWorker("w3", mod(ms[3]), nil))
	eventually(t, 60*time.Second, func() error { return balanced(ws, 8, 2, 2) })
	t.Logf("from 2 to 4 workers, balanced in %v", time.Since(start).Round(time.Millisecond))
	p.putSince(t, 500)
	p.halt()
	waitAllProcessed(t, e, p, 60*time.Second)

	checkOnce(t, e.ledger)
	e.ledger.checkOrder(t)
	var requested, handed, stolen, lost, forced int64
	for _, m := range ms {
		requested += m.requested.Load()
		handed += m.handed.Load()
		stolen += m.stolen.Load()
		lost += m.lost.Load()
		forced += m.forced.Load()
	}
	t.Logf("%d records; %d hand-offs asked for, %d made", len(p.all()), requested, handed)
	if handed < 6 || stolen != 0 || lost != 0 || forced != 0 {
		t.Errorf("%d hand-offs (at least 6 leases moved), %d steals, %d leases lost, %d forced: want only hand-offs", handed, stolen, lost, forced)
	}
	for _, w := range ws {
		if err := w.stop(t); err != nil {
			t.Errorf("%s: Run: %v", w.w.ID(), err)
		}
	}
	checkNoLeaks(t)
}
