package checkpointtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Expiry, change events (LISTEN/NOTIFY) and Close.

func testExpiry(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	// The lease a take returns was judged in the same statement: not
	// expired, and expiring after it was written.
	l := mustHold(t, s, "shardId-000000000000", "w1")
	if l.Expired || l.Available() || !l.ExpiresAt.After(l.UpdatedAt) {
		t.Fatalf("lease expired right after the take: %+v", l)
	}
	// Not renewed, it expires, by the store's clock.
	eventually(t, 10*time.Second, func() error {
		got := mustGet(t, s, l.ShardID)
		if !got.Expired || !got.Available() || got.Owner != "w1" {
			return fmt.Errorf("lease not expired: %+v", got)
		}
		return nil
	})
	// The owner may still renew an expired lease nobody took: the fence is
	// the counter, not the clock.
	l, err := s.RenewLease(ctx, l)
	if err != nil {
		t.Fatalf("renew an expired lease: %v", err)
	}
	if l.Expired {
		t.Fatalf("renewed lease expired: %+v", l)
	}
	// And whoever takes an expired lease holds it afresh.
	eventually(t, 10*time.Second, func() error {
		if got := mustGet(t, s, l.ShardID); !got.Expired {
			return errors.New("lease not expired again")
		}
		return nil
	})
	taken, err := s.TakeLease(ctx, mustGet(t, s, l.ShardID), "w2")
	if err != nil || taken.Expired || taken.Owner != "w2" {
		t.Fatalf("take an expired lease = %+v, %v", taken, err)
	}
}

// waitEvent reads events until one matches, failing after timeout.
func waitEvent(t *testing.T, ch <-chan checkpoint.Event, timeout time.Duration, match func(checkpoint.Event) bool) checkpoint.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed")
			}
			if match(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no matching event within %v", timeout)
		}
	}
}

func testListenEvents(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	listening, acting := newStore(t), newStore(t)
	ctx := testCtx(t)
	events, err := listening.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	const shard = "shardId-000000000000"
	is := func(typ checkpoint.EventType, owner string) func(checkpoint.Event) bool {
		return func(e checkpoint.Event) bool {
			return e.Type == typ && e.ShardID == shard && e.Owner == owner && e.Application == app
		}
	}
	// Another application's events are not delivered.
	mustCreate(t, acting, checkpoint.Lease{Application: "other-app", ShardID: shard})
	mustCreate(t, acting, checkpoint.Lease{Application: app, ShardID: shard})
	e := waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventCreated })
	if e.Application != app || e.ShardID != shard || e.Counter != 0 {
		t.Fatalf("created event %+v", e)
	}

	l, err := acting.TakeLease(ctx, mustGet(t, acting, shard), "w1")
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 5*time.Second, is(checkpoint.EventTaken, "w1"))

	// A release reaches the other worker at once, not at its next poll.
	start := time.Now()
	if l, err = acting.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	e = waitEvent(t, events, 5*time.Second, is(checkpoint.EventReleased, ""))
	if d := time.Since(start); d > time.Second {
		t.Fatalf("release event after %v, want < 1s", d)
	}
	if e.Counter != l.Counter {
		t.Fatalf("released event counter %d, lease counter %d", e.Counter, l.Counter)
	}

	// An unrenewed lease's expiry is announced, once.
	if l, err = acting.TakeLease(ctx, l, "w2"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 5*time.Second, is(checkpoint.EventTaken, "w2"))
	e = waitEvent(t, events, 10*time.Second, is(checkpoint.EventExpired, "w2"))
	if e.Counter != l.Counter {
		t.Fatalf("expired event counter %d, lease counter %d", e.Counter, l.Counter)
	}
	if got := mustGet(t, acting, shard); !got.Expired {
		t.Fatalf("expired event for a lease that is not expired: %+v", got)
	}

	if l, err = acting.Checkpoint(ctx, l, seq(checkpoint.ShardEnd)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool {
		if e.Type == checkpoint.EventExpired && e.Counter == l.Counter-1 {
			t.Fatalf("expiry announced twice: %+v", e)
		}
		return is(checkpoint.EventShardEnded, "w2")(e)
	})
	if err := acting.DeleteLease(ctx, app, shard); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventDeleted && e.ShardID == shard })
}

func testClose(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: "shardId-000000000000"})
	cctx, cancel := context.WithCancel(ctx)
	byCtx, err := s.Listen(cctx, app)
	if err != nil {
		t.Fatal(err)
	}
	byClose, err := s.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	drained := func(ch <-chan checkpoint.Event, what string) {
		t.Helper()
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-timer.C:
				t.Fatalf("%s: event channel not closed", what)
			}
		}
	}
	cancel()
	drained(byCtx, "listener whose ctx ended")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	drained(byClose, "listener of a closed store")
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = s.GetLease(ctx, app, "shardId-000000000000")
	wantErr(t, "GetLease after Close", err, checkpoint.ErrClosed)
	_, err = s.Listen(ctx, app)
	wantErr(t, "Listen after Close", err, checkpoint.ErrClosed)
}
