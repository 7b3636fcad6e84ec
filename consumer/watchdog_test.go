package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// The shard watchdog (Config.StallTimeout). Its timing runs in synctest
// bubbles, on the in-memory Kinesis and Store of lease_timing_test.go, so
// that "fires after StallTimeout" and "never fires on an idle shard" are
// exact on fake time; TestWatchdogRealServer checks the restart on the real
// server and database.

// stallingKinesis is the in-memory Kinesis with a count of the shard
// iterators asked for, and optionally a GetRecords call that hangs: the
// calls before it report the shard behind, call number hangCall blocks
// until its ctx ends.
type stallingKinesis struct {
	*fakeKinesis
	hangCall  int32 // 0: none
	calls     atomic.Int32
	iterators atomic.Int32
	hungAt    atomic.Int64 // when the hanging call began (UnixNano)
}

func (k *stallingKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, o ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	k.iterators.Add(1)
	return k.fakeKinesis.GetShardIterator(ctx, in, o...)
}

func (k *stallingKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, o ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	n := k.calls.Add(1)
	if n == k.hangCall {
		k.hungAt.Store(time.Now().UnixNano())
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out, err := k.fakeKinesis.GetRecords(ctx, in, o...)
	if err == nil && n < k.hangCall {
		out.MillisBehindLatest = aws.Int64(1000)
	}
	return out, err
}

const testStall = 5 * time.Second

// TestWatchdogRestartsBlockedProcessor: a ProcessRecords call that blocks
// is found after StallTimeout (within one watchdog period more), logged and
// counted, its ctx cancelled; while it still blocks the watchdog fires
// again every StallTimeout; once it returns, the reader is restarted (a
// new shard iterator) and the batch it failed is delivered again, and
// processing goes on. The failure policy counts nothing: the call was cut
// short by the watchdog, not a failure of the processor.
func TestWatchdogRestartsBlockedProcessor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 1)
		kin := &stallingKinesis{fakeKinesis: r.kin}
		release := make(chan struct{})
		var (
			mu        sync.Mutex
			calls     int
			blockedAt time.Time
			ctxErr    error
		)
		factory := r.ledger.factory("w", procOptions{checkpointEvery: true, onBatch: func(ctx context.Context, _ *ledgerProc, _ ProcessRecordsInput) error {
			mu.Lock()
			calls++
			first := calls == 1
			if first {
				blockedAt = time.Now()
			}
			mu.Unlock()
			if !first {
				return nil
			}
			<-release // deaf to ctx: the worker has to wait for it
			mu.Lock()
			ctxErr = ctx.Err()
			mu.Unlock()
			return ctx.Err()
		}})
		m := &failureMetrics{}
		w := r.startWith("w", kin, factory, func(c *Config) { c.Metrics = m; c.StallTimeout = testStall })
		within(t, time.Minute, func() error {
			mu.Lock()
			defer mu.Unlock()
			if blockedAt.IsZero() {
				return errors.New("no batch yet")
			}
			return nil
		})
		mu.Lock()
		start := blockedAt
		mu.Unlock()

		time.Sleep(testStall + testStall/2)
		synctest.Wait()
		stalls := m.stallTimes()
		if len(stalls) != 1 {
			t.Fatalf("%d stalls %v after %v blocked, want 1", len(stalls), stalls, time.Since(start))
		}
		if d := stalls[0].Sub(start); d < testStall || d > testStall+testStall/4 {
			t.Errorf("fired %v after the call began, want in [%v, %v]", d, testStall, testStall+testStall/4)
		}
		// Still blocked: it fires again a StallTimeout later.
		time.Sleep(testStall)
		synctest.Wait()
		if stalls = m.stallTimes(); len(stalls) != 2 || stalls[1].Sub(stalls[0]) != testStall {
			t.Fatalf("stalls at %v, want two, %v apart", stalls, testStall)
		}
		if n := kin.iterators.Load(); n != 1 {
			t.Errorf("%d shard iterators while the call blocks, want 1", n)
		}

		close(release)
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 5 {
				return fmt.Errorf("%d of 5 records processed", n)
			}
			l, err := r.store.GetLease(t.Context(), testApp, "shardId-000000000000")
			if err != nil || l.Checkpoint.SequenceNumber != "1004" {
				return fmt.Errorf("checkpoint %s (%v), want the last record's", l.Checkpoint, err)
			}
			return nil
		})
		mu.Lock()
		if !errors.Is(ctxErr, context.Canceled) {
			t.Errorf("the blocked call's ctx: %v, want canceled by the watchdog", ctxErr)
		}
		mu.Unlock()
		if n := kin.iterators.Load(); n != 2 {
			t.Errorf("%d shard iterators, want 2 (the restart's)", n)
		}
		// The interrupted batch (3 records: the fake's batches) again, the
		// others once.
		for i := range 5 {
			want := 1
			if i < 3 {
				want = 2
			}
			if n := r.ledger.timesDelivered(fmt.Sprintf("s0-%d", i)); n != want {
				t.Errorf("s0-%d delivered %d times, want %d", i, n, want)
			}
		}
		if calls, _ := m.counts(); len(calls) != 0 {
			t.Errorf("failure policy outcomes %v, want none", calls)
		}
		if err := w.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
		if n := len(m.stallTimes()); n != 2 {
			t.Errorf("%d stalls in the end, want 2", n)
		}
	})
}

// TestWatchdogIdleShardNeverFires: shards that were processed to their end,
// and one that never had a record, are idle: twenty StallTimeouts of fake
// time pass without the watchdog firing, and without a new iterator.
func TestWatchdogIdleShardNeverFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 2)
		r.kin.addShard("shardId-000000000002", nil, "200", "299", false, 0, "x")
		kin := &stallingKinesis{fakeKinesis: r.kin}
		m := &failureMetrics{}
		w := r.startWith("w", kin, r.ledger.factory("w", procOptions{checkpointEvery: true}), func(c *Config) {
			c.Metrics = m
			c.StallTimeout = testStall
		})
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 10 {
				return fmt.Errorf("%d of 10 records processed", n)
			}
			if held := w.w.HeldShards(); len(held) != 3 {
				return fmt.Errorf("holds %v", held)
			}
			return nil
		})
		iters := kin.iterators.Load()
		time.Sleep(20 * testStall)
		synctest.Wait()
		if s := m.stallTimes(); len(s) != 0 {
			t.Errorf("the watchdog fired on idle shards at %v", s)
		}
		if n := kin.iterators.Load(); n != iters {
			t.Errorf("%d shard iterators, was %d: a reader restarted", n, iters)
		}
		if err := w.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestWatchdogRestartsHungRead: a GetRecords call that hangs while the
// shard is behind is cut short after StallTimeout, and the reader goes on
// with a new iterator after the last record read: nothing is delivered
// twice.
func TestWatchdogRestartsHungRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 1)
		kin := &stallingKinesis{fakeKinesis: r.kin, hangCall: 2}
		m := &failureMetrics{}
		w := r.startWith("w", kin, r.ledger.factory("w", procOptions{checkpointEvery: true}), func(c *Config) {
			c.Metrics = m
			c.StallTimeout = testStall
		})
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 3 {
				return fmt.Errorf("%d of the first 3 records processed", n)
			}
			return nil
		})
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 5 {
				return fmt.Errorf("%d of 5 records processed", n)
			}
			return nil
		})
		stalls := m.stallTimes()
		if len(stalls) != 1 {
			t.Fatalf("%d stalls, want 1", len(stalls))
		}
		if d := stalls[0].Sub(time.Unix(0, kin.hungAt.Load())); d < testStall || d > testStall+testStall/4 {
			t.Errorf("fired %v after the read began, want in [%v, %v]", d, testStall, testStall+testStall/4)
		}
		if n := kin.iterators.Load(); n != 2 {
			t.Errorf("%d shard iterators, want 2", n)
		}
		for i := range 5 {
			if n := r.ledger.timesDelivered(fmt.Sprintf("s0-%d", i)); n != 1 {
				t.Errorf("s0-%d delivered %d times, want once", i, n)
			}
		}
		if err := w.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestWatchdogRealServer: on the real server and database, with both
// retrievals, a processor that blocks until its ctx ends is interrupted by
// the watchdog, the reader restarts (a new shard iterator, or
// subscription), and every record is processed.
func TestWatchdogRealServer(t *testing.T) {
	for _, mode := range []Retrieval{Polling, FanOut} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{shards: 1})
			want := putN(e, "r", 5)
			var calls atomic.Int32
			m := &failureMetrics{}
			w := e.startWorker("w", func(c *Config) {
				c.Metrics = m
				c.StallTimeout = time.Second
				c.Retrieval = mode
			}, e.ledger.factory("w", procOptions{checkpointEvery: true, onBatch: func(ctx context.Context, _ *ledgerProc, _ ProcessRecordsInput) error {
				if calls.Add(1) == 1 {
					<-ctx.Done() // stuck until the watchdog gives up on the call
					return ctx.Err()
				}
				return nil
			}}))
			eventually(t, 30*time.Second, func() error {
				if miss := e.ledger.missing(want); len(miss) > 0 || len(m.stallTimes()) == 0 {
					return fmt.Errorf("not processed: %v; %d stalls", miss, len(m.stallTimes()))
				}
				l, err := e.store.GetLease(context.Background(), testApp, e.shardIDs()[0])
				if err != nil || l.Checkpoint.IsSentinel() {
					return fmt.Errorf("checkpoint %s (%v)", l.Checkpoint, err)
				}
				return nil
			})
			if err := w.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if n := e.ledger.timesDelivered(want[0]); n < 2 {
				t.Errorf("%s delivered %d times, want again after the restart", want[0], n)
			}
			if c, _ := m.counts(); len(c) != 0 {
				t.Errorf("failure policy outcomes %v, want none", c)
			}
			checkNoLeaks(t)
		})
	}
}
