package checkpointtest

import (
	"errors"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Graceful hand-off (checkpoint.HandoffStore), for the Stores that have it.

// handoffStores returns n Stores on one table as HandoffStores, or skips
// the test when the Store has no hand-off.
func handoffStores(t *testing.T, newStore func(t *testing.T) checkpoint.Store, n int) []checkpoint.HandoffStore {
	t.Helper()
	out := make([]checkpoint.HandoffStore, n)
	for i := range out {
		h, ok := newStore(t).(checkpoint.HandoffStore)
		if !ok {
			t.Skip("the Store is no checkpoint.HandoffStore")
		}
		out[i] = h
	}
	return out
}

func testHandoff(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	ss := handoffStores(t, newStore, 2)
	owner, asker := ss[0], ss[1]
	ctx := testCtx(t)
	events, err := asker.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	const shard = "shardId-000000000000"
	l := mustHold(t, owner, shard, "w1")
	if l, err = owner.Checkpoint(ctx, l, seq("10")); err != nil {
		t.Fatal(err)
	}
	if l.HandoffTo != "" || l.HandoffPending() || !l.HandoffExpiresAt.IsZero() {
		t.Fatalf("a hand-off nobody asked for: %+v", l)
	}

	// Asked for, the lease records the request; its counter stays.
	seen := mustGet(t, asker, shard)
	asked, err := asker.RequestHandoff(ctx, seen, "w2")
	if err != nil {
		t.Fatal(err)
	}
	if asked.HandoffTo != "w2" || !asked.HandoffPending() || asked.HandoffExpired || !asked.HandoffExpiresAt.After(asked.UpdatedAt) ||
		asked.Owner != "w1" || asked.Counter != l.Counter || asked.Checkpoint != seq("10") {
		t.Fatalf("after the request: %+v (was %+v)", asked, l)
	}
	e := waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventHandoffRequested })
	if e.ShardID != shard || e.Owner != "w1" || e.HandoffTo != "w2" || e.Counter != l.Counter {
		t.Fatalf("hand-off event %+v", e)
	}
	// Another worker cannot ask while the request is pending; the owner
	// cannot ask for its own lease; the asker may ask again.
	_, err = asker.RequestHandoff(ctx, seen, "w3")
	wantErr(t, "second requester", err, checkpoint.ErrLeaseLost)
	_, err = asker.RequestHandoff(ctx, seen, "w1")
	wantErr(t, "the owner asking", err, checkpoint.ErrInvalid)
	stale := seen
	stale.Owner = "w9"
	_, err = asker.RequestHandoff(ctx, stale, "w2")
	wantErr(t, "asking a former owner", err, checkpoint.ErrLeaseLost)
	if _, err = asker.RequestHandoff(ctx, seen, "w2"); err != nil {
		t.Fatalf("asking again: %v", err)
	}

	// The owner's copy is still good: it renews and checkpoints, and the
	// request stays.
	if l, err = owner.RenewLease(ctx, l); err != nil {
		t.Fatalf("owner's renewal after the request: %v", err)
	}
	if l, err = owner.Checkpoint(ctx, l, seq("20")); err != nil {
		t.Fatalf("owner's checkpoint after the request: %v", err)
	}
	if l.HandoffTo != "w2" {
		t.Fatalf("the request went with the owner's checkpoint: %+v", l)
	}

	// The hand-off: w2 owns it, at w1's checkpoint, with an expiry.
	handed, err := owner.HandOffLease(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if handed.Owner != "w2" || handed.Counter != l.Counter+1 || handed.Checkpoint != seq("20") || handed.HandoffTo != "" ||
		handed.Expired || !handed.ExpiresAt.After(handed.UpdatedAt) || handed.OwnerSwitchesSinceCheckpoint != l.OwnerSwitchesSinceCheckpoint+1 {
		t.Fatalf("after the hand-off: %+v (was %+v)", handed, l)
	}
	waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool {
		return e.Type == checkpoint.EventTaken && e.Owner == "w2" && e.Counter == handed.Counter
	})
	_, err = owner.RenewLease(ctx, l)
	wantErr(t, "the old owner's renewal", err, checkpoint.ErrLeaseLost)
	_, err = owner.HandOffLease(ctx, l)
	wantErr(t, "a second hand-off", err, checkpoint.ErrLeaseLost)
	// The new owner takes it from the copy it reads.
	w2, err := asker.TakeLease(ctx, mustGet(t, asker, shard), "w2")
	if err != nil || w2.Owner != "w2" {
		t.Fatalf("new owner's take = %+v, %v", w2, err)
	}

	// Without a request, a hand-off is a release.
	released, err := asker.HandOffLease(ctx, w2)
	if err != nil || released.Owner != "" || !released.ExpiresAt.IsZero() || !released.Available() {
		t.Fatalf("hand-off without a request = %+v, %v", released, err)
	}
	waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool {
		return e.Type == checkpoint.EventReleased && e.Counter == released.Counter
	})
	// Nobody to ask: an unowned lease is taken, not asked for.
	_, err = asker.RequestHandoff(ctx, released, "w3")
	wantErr(t, "asking for an unowned copy", err, checkpoint.ErrInvalid)
}

// testHandoffLapse: a request the owner does not answer lapses after the
// failover time; then another worker may ask, and a take or a release ends
// the request.
func testHandoffLapse(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	ss := handoffStores(t, newStore, 2)
	owner, asker := ss[0], ss[1]
	ctx := testCtx(t)
	const a, b = "shardId-000000000000", "shardId-000000000001"
	la := mustHold(t, owner, a, "w1")
	if _, err := asker.RequestHandoff(ctx, mustGet(t, asker, a), "w2"); err != nil {
		t.Fatal(err)
	}
	// The owner renews (so the lease does not expire), the request lapses.
	eventually(t, 10*time.Second, func() error {
		var err error
		if la, err = owner.RenewLease(ctx, la); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, asker, a); !got.HandoffExpired || got.HandoffPending() || got.HandoffTo != "w2" {
			return errors.New("request not lapsed")
		}
		return nil
	})
	// Another worker may ask now.
	got, err := asker.RequestHandoff(ctx, mustGet(t, asker, a), "w3")
	if err != nil || got.HandoffTo != "w3" || !got.HandoffPending() {
		t.Fatalf("request after a lapse = %+v, %v", got, err)
	}
	// A take (the asker's, after the lapse, or anyone's) clears it.
	taken, err := asker.TakeLease(ctx, got, "w3")
	if err != nil || taken.HandoffTo != "" || taken.HandoffPending() || !taken.HandoffExpiresAt.IsZero() {
		t.Fatalf("take = %+v, %v", taken, err)
	}
	// So does a release.
	lb := mustHold(t, owner, b, "w1")
	if _, err := asker.RequestHandoff(ctx, mustGet(t, asker, b), "w2"); err != nil {
		t.Fatal(err)
	}
	if lb, err = owner.ReleaseLease(ctx, lb); err != nil || lb.HandoffTo != "" {
		t.Fatalf("release = %+v, %v", lb, err)
	}
	// An expired lease is taken, not asked for.
	lb, err = owner.TakeLease(ctx, lb, "w1")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if !mustGet(t, asker, b).Expired {
			return errors.New("not expired")
		}
		return nil
	})
	_, err = asker.RequestHandoff(ctx, mustGet(t, asker, b), "w2")
	wantErr(t, "asking for an expired lease", err, checkpoint.ErrLeaseLost)
}
