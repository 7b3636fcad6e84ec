package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/checkpoint/memstore"
)

// The timing of the lease protocol: how soon leases move after a crash, a
// graceful stop or a steal, and that renewals keep them where they are.
// These run whole workers in a synctest bubble, on the in-memory Kinesis of
// reshard_test.go and the in-memory Store of checkpoint/memstore (held to
// the same conformance suite as the PostgreSQL store): every renewal period,
// take interval, failover and back-off runs on the bubble's fake clock, so
// the bounds below are exact and hold on a machine of any speed, however
// loaded. The same behaviours on the real server and PostgreSQL, with their
// correctness checks (nothing lost, nothing repeated), are in worker_test.go
// and fanout_faults_test.go.

// rig is one bubble's stream, lease table and workers.
type rig struct {
	t      *testing.T
	kin    *fakeKinesis
	tab    *memstore.Table
	store  *memstore.Store // the test's own view of the table
	ledger *ledger

	mu     sync.Mutex // guards events
	events []checkpoint.Event
}

// newRig makes n open shards of 5 records each, and listens to the lease
// events for the test. Call it inside the bubble.
func newRig(t *testing.T, n int) *rig {
	r := &rig{t: t, kin: &fakeKinesis{}, tab: memstore.NewTable(), ledger: newLedger()}
	for i := range n {
		lo := strconv.Itoa(i * 100)
		r.kin.addShard(fmt.Sprintf("shardId-%012d", i), nil, lo, strconv.Itoa(i*100+99), false, 5, fmt.Sprintf("s%d-", i))
	}
	r.store = r.tab.Store(testFailover)
	t.Cleanup(func() { _ = r.store.Close() })
	events, err := r.store.Listen(t.Context(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range events {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

// start runs a worker with testConfig's values (changed by mod), its own
// Store on the table and a ledger processor that checkpoints every batch.
func (r *rig) start(id string, m Metrics, mod func(*Config)) *running {
	return r.startWith(id, r.kin, r.ledger.factory(id, procOptions{checkpointEvery: true}), func(c *Config) {
		c.Metrics = m
		if mod != nil {
			mod(c)
		}
	})
}

// startWith runs a worker with testConfig's values (changed by mod), its
// own Store on the table, client and factory.
func (r *rig) startWith(id string, client KinesisAPI, factory ProcessorFactory, mod func(*Config)) *running {
	cfg := testConfig(id)
	cfg.Logger = zaptest.NewLogger(r.t, zaptest.Level(zap.WarnLevel)).Named(id)
	if mod != nil {
		mod(&cfg)
	}
	store := r.tab.Store(testFailover)
	w, err := New(client, store, factory, cfg)
	if err != nil {
		r.t.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{w: w, store: store, cancel: cancel, done: make(chan struct{})}
	go func() {
		run.err = w.Run(ctx)
		close(run.done)
	}()
	r.t.Cleanup(func() {
		_ = run.stop(r.t)
		_ = store.Close()
	})
	return run
}

// expired returns the EventExpired events seen so far.
func (r *rig) expired() []checkpoint.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []checkpoint.Event
	for _, ev := range r.events {
		if ev.Type == checkpoint.EventExpired {
			out = append(out, ev)
		}
	}
	return out
}

// within advances the bubble's clock in small steps until cond holds, and
// fails the test if that takes longer than limit (fake time: the limit
// costs nothing to wait for).
func within(t *testing.T, limit time.Duration, cond func() error) {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("not within %v (fake time): %v", limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// initAt returns when (fake time) the last processor instance of worker on
// shard was initialized, and from which checkpoint.
func (l *ledger) initAt(worker, shard string) (time.Time, checkpoint.Checkpoint, bool) {
	_, evs := l.snapshot()
	var at time.Time
	var cp checkpoint.Checkpoint
	found := false
	for _, ev := range evs {
		if ev.kind == "init" && ev.worker == worker && ev.shard == shard {
			at, cp, found = ev.at, ev.cp, true
		}
	}
	return at, cp, found
}

// TestRenewalsKeepLeases: three workers share eight shards; once balanced,
// for 30 failover periods nothing moves. Renewals every FailoverTime/3 keep
// every lease from expiring, no worker takes, steals or loses a lease, and
// the balance holds at every step. (TestWorkersShareStream checks the
// balance once, on the real server and database, while records flow.)
func TestRenewalsKeepLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 8)
		var ms [3]testMetrics
		var ws []*running
		for i := range ms {
			ws = append(ws, r.start(fmt.Sprintf("w%d", i), &ms[i], nil))
		}
		within(t, time.Minute, func() error { return balanced(ws, 8, 2, 3) })
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 40 {
				return fmt.Errorf("%d of 40 records processed", n)
			}
			return nil
		})
		// (Balancing stole leases, so some were lost on the way.)
		var taken, lost [3]int64
		for i := range ms {
			taken[i], lost[i] = ms[i].taken.Load(), ms[i].lost.Load()
		}
		held := make([][]string, len(ws))
		for i, w := range ws {
			held[i] = w.w.HeldShards()
		}
		expiredBefore := len(r.expired())

		const steps = 30 * 7
		for step := range steps {
			time.Sleep(testFailover / 7)
			for i, w := range ws {
				if got := w.w.HeldShards(); fmt.Sprint(got) != fmt.Sprint(held[i]) {
					t.Fatalf("after %v: %s holds %v, held %v when balanced", time.Duration(step+1)*testFailover/7, w.w.ID(), got, held[i])
				}
			}
		}
		for i := range ms {
			if n := ms[i].taken.Load() - taken[i]; n != 0 {
				t.Errorf("w%d took %d leases after the balance", i, n)
			}
			if n := ms[i].lost.Load() - lost[i]; n != 0 {
				t.Errorf("w%d lost %d leases after the balance", i, n)
			}
		}
		if exp := r.expired(); len(exp) != expiredBefore {
			t.Errorf("leases expired while their owners ran: %v", exp[expiredBefore:])
		}
		// Still owned, unexpired, by the workers that hold them.
		leases, err := r.store.ListLeases(t.Context(), testApp)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leases {
			if l.Owner == "" || l.Expired {
				t.Errorf("lease %s: owner %q, expired %v", l.ShardID, l.Owner, l.Expired)
			}
		}
		for _, w := range ws {
			if err := w.stop(t); err != nil {
				t.Errorf("%s: Run: %v", w.w.ID(), err)
			}
		}
	})
}

// TestCrashTakeoverTiming: the leases of a worker that dies are taken over
// once they expire, and no sooner: after more than FailoverTime minus one
// renewal period (its last renewal came at most that long before the crash),
// and within FailoverTime + TakeInterval (Config.FailoverTime's promise;
// here at the expiry itself, since the Store announces it). This is the
// bound TestCrashFailover and TestFanOutCrashFailover used to check on the
// wall clock.
func TestCrashTakeoverTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 8)
		var ws []*running
		for i := range 3 {
			ws = append(ws, r.start(fmt.Sprintf("w%d", i), nil, nil))
		}
		within(t, time.Minute, func() error { return balanced(ws, 8, 2, 3) })
		// Somewhere between two renewals.
		time.Sleep(5*testFailover + 123*time.Millisecond)
		victim := ws[0]
		lost := victim.w.HeldShards()
		crashAt := time.Now()
		victim.crash(t)
		within(t, time.Minute, func() error { return balanced(ws[1:], 8, 4, 4) })

		cfg := victim.w.Config()
		renewal := cfg.FailoverTime / 3
		lo, hi := cfg.FailoverTime-renewal, cfg.FailoverTime+cfg.TakeInterval
		for _, s := range lost {
			var took time.Duration
			found := false
			for _, w := range ws[1:] {
				if at, _, ok := r.ledger.initAt(w.w.ID(), s); ok && at.After(crashAt) {
					took, found = at.Sub(crashAt), true
				}
			}
			if !found {
				t.Fatalf("%s: no successor after the crash", s)
			}
			if took <= lo || took > hi {
				t.Errorf("%s taken over %v after the crash, want in (%v, %v] (failover %v, take interval %v)", s, took, lo, hi, cfg.FailoverTime, cfg.TakeInterval)
			} else {
				t.Logf("%s taken over %v after the crash", s, took)
			}
		}
		// Only the crashed worker's leases expired (the announcements the
		// survivors acted on; a lease that expired in the same instant may
		// be taken in the round another's announcement started, before its
		// own is made).
		exp := r.expired()
		if len(exp) == 0 || len(exp) > len(lost) {
			t.Errorf("%d expiries %v, want 1 to %d (the crashed worker's leases)", len(exp), exp, len(lost))
		}
		for _, ev := range exp {
			if ev.Owner != victim.w.ID() {
				t.Errorf("lease %s of %s expired", ev.ShardID, ev.Owner)
			}
		}
		for _, w := range ws[1:] {
			if err := w.stop(t); err != nil {
				t.Errorf("%s: Run: %v", w.w.ID(), err)
			}
		}
	})
}

// TestGracefulHandoffTiming: a worker that stops releases its leases, and
// the other takes them at once: no timer has to fire anywhere (the fake
// clock does not move between the stop and the takeover), and the successor
// never runs a take round on its own (its TakeInterval is an hour), so the
// release events alone move the leases. Each shard resumes right after the
// last record processed. (TestGracefulHandoff checks the same handoff on
// the real server and database.)
func TestGracefulHandoffTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 4)
		a := r.start("a", nil, nil)
		b := r.start("b", nil, func(c *Config) { c.TakeInterval = time.Hour })
		within(t, time.Minute, func() error { return balanced([]*running{a, b}, 4, 2, 2) })
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 20 {
				return fmt.Errorf("%d of 20 records processed", n)
			}
			return nil
		})
		time.Sleep(3*testFailover + 77*time.Millisecond)

		handed := a.w.HeldShards()
		stopAt := time.Now()
		if err := a.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		synctest.Wait() // b has done all it will do without a timer
		if d := time.Since(stopAt); d != 0 {
			t.Errorf("the handoff took %v of fake time: something waited for a timer", d)
		}
		if err := balanced([]*running{b}, 4, 4, 4); err != nil {
			t.Fatalf("without a timer firing: %v", err)
		}
		for _, s := range handed {
			at, cp, ok := r.ledger.initAt("b", s)
			if !ok || !at.Equal(stopAt) {
				t.Errorf("%s: b initialized it at %v (found %v), want at the stop, %v", s, at, ok, stopAt)
			}
			if l, err := r.store.GetLease(t.Context(), testApp, s); err != nil || l.Owner != "b" || cp != l.Checkpoint || cp.IsSentinel() {
				t.Errorf("%s: b started at %s; lease %+v, %v; want b's, at a's last checkpoint", s, cp, l, err)
			}
		}
		if err := b.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestStealNoticedAtOnce: when another worker takes a lease (a steal), the
// old owner hears it from the Store's event and stops at once (LeaseLost at
// the instant of the take, no renewal or take round needed), and processes
// nothing more of the shard, however long the new owner keeps it.
// (TestStolenLeaseCallsLeaseLost and TestFanOutStealCancelsSubscription
// check the same on the real server and database.)
func TestStealNoticedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 1)
		m := &testMetrics{}
		a := r.start("a", m, nil)
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 5 {
				return fmt.Errorf("%d of 5 records processed", n)
			}
			return nil
		})
		time.Sleep(testFailover/2 + 13*time.Millisecond)
		shard := a.w.HeldShards()[0]
		// The thief's Store gives it an hour before its lease expires.
		thief := r.tab.Store(time.Hour)
		defer func() { _ = thief.Close() }()
		l, err := r.store.GetLease(t.Context(), testApp, shard)
		if err != nil {
			t.Fatal(err)
		}
		stealAt := time.Now()
		if _, err := thief.TakeLease(t.Context(), l, "thief"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, evs := r.ledger.snapshot()
		var lostAt time.Time
		for _, ev := range evs {
			if ev.kind == "lost" && ev.worker == "a" {
				lostAt = ev.at
			}
		}
		if !lostAt.Equal(stealAt) {
			t.Fatalf("LeaseLost at %v, the steal at %v: want at once", lostAt, stealAt)
		}
		if held := a.w.HeldShards(); len(held) != 0 {
			t.Errorf("a still holds %v", held)
		}
		// More records, and many renewal periods and take intervals: a
		// neither processes them nor takes the lease back.
		r.kin.mu.Lock()
		s := r.kin.shard(shard)
		for i := range 5 {
			s.records = append(s.records, types.Record{SequenceNumber: aws.String(strconv.Itoa(5000 + i)), PartitionKey: aws.String("k"),
				Data: fmt.Appendf(nil, "late-%d", i), ApproximateArrivalTimestamp: aws.Time(time.Unix(1000, 0))})
		}
		r.kin.mu.Unlock()
		time.Sleep(20 * testFailover)
		if n := r.ledger.seen(); n != 5 {
			t.Errorf("%d records processed, want the 5 before the steal", n)
		}
		if got, err := r.store.GetLease(t.Context(), testApp, shard); err != nil || got.Owner != "thief" {
			t.Errorf("lease %+v, %v; want the thief's", got, err)
		}
		if n := m.lost.Load(); n != 1 {
			t.Errorf("%d leases lost, want 1", n)
		}
		if err := a.stop(t); err != nil && !errors.Is(err, checkpoint.ErrLeaseLost) {
			t.Errorf("Run: %v", err)
		}
	})
}
