package checkpointtest

import (
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Lease administration (checkpoint.Admin), for the Stores that have it.

// adminOf returns s as an Admin, or skips the test.
func adminOf(t *testing.T, s checkpoint.Store) checkpoint.Admin {
	t.Helper()
	a, ok := s.(checkpoint.Admin)
	if !ok {
		t.Skip("the Store is no checkpoint.Admin")
	}
	return a
}

func testResetLeases(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	worker, other := newStore(t), newStore(t)
	admin := adminOf(t, other)
	ctx := testCtx(t)
	events, err := other.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	const a, b, c = "shardId-000000000000", "shardId-000000000001", "shardId-000000000002"
	la := mustHold(t, worker, a, "w1")
	if la, err = worker.Checkpoint(ctx, la, seq("100")); err != nil {
		t.Fatal(err)
	}
	if la, err = worker.PrepareCheckpoint(ctx, la, seq("150")); err != nil {
		t.Fatal(err)
	}
	lb := mustHold(t, worker, b, "w2")
	if _, err = worker.Checkpoint(ctx, lb, seq("200")); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, worker, checkpoint.Lease{Application: app, ShardID: c})
	mustCreate(t, worker, checkpoint.Lease{Application: "other-app", ShardID: a})

	// Backwards, on one shard: unowned, at the new checkpoint, counter
	// moved, announced.
	got, err := admin.ResetLeases(ctx, app, []string{a}, seq("50"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ShardID != a || got[0].Owner != "" || got[0].Counter != la.Counter+1 || got[0].Checkpoint != seq("50") ||
		got[0].PendingCheckpoint != nil || got[0].OwnerSwitchesSinceCheckpoint != 0 || !got[0].Available() {
		t.Fatalf("after the reset: %+v (was %+v)", got, la)
	}
	e := waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventReset })
	if e.ShardID != a || e.Owner != "" || e.Counter != got[0].Counter {
		t.Fatalf("reset event %+v", e)
	}
	// The former owner can neither checkpoint (not even further), renew
	// nor release: nothing of its tenure lands after the reset.
	_, err = worker.Checkpoint(ctx, la, seq("300"))
	wantErr(t, "the former owner's checkpoint", err, checkpoint.ErrLeaseLost)
	_, err = worker.RenewLease(ctx, la)
	wantErr(t, "the former owner's renewal", err, checkpoint.ErrLeaseLost)
	_, err = worker.ReleaseLease(ctx, la)
	wantErr(t, "the former owner's release", err, checkpoint.ErrLeaseLost)
	// The next owner goes on from the reset checkpoint.
	next, err := worker.TakeLease(ctx, got[0], "w3")
	if err != nil {
		t.Fatal(err)
	}
	_, err = worker.Checkpoint(ctx, next, seq("49"))
	wantErr(t, "a checkpoint behind the reset", err, checkpoint.ErrCheckpointBackwards)
	if next, err = worker.Checkpoint(ctx, next, seq("60")); err != nil {
		t.Fatal(err)
	}

	// Every lease of the application, to a time: AT_TIMESTAMP with its
	// own timestamp, as the store keeps it.
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	got, err = admin.ResetLeases(ctx, app, nil, checkpoint.AtTime(at))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ShardID != a || got[1].ShardID != b || got[2].ShardID != c {
		t.Fatalf("reset all: %+v", got)
	}
	want := checkpoint.AtTime(at)
	for _, l := range append(got, mustGet(t, other, a), mustGet(t, other, c)) {
		if l.Checkpoint != want || l.Owner != "" || !l.Checkpoint.Timestamp.Equal(at.Truncate(time.Microsecond)) {
			t.Fatalf("%s after the reset to %v: %+v", l.ShardID, at, l.Checkpoint)
		}
	}
	if l, err := other.GetLease(ctx, "other-app", a); err != nil || l.Checkpoint.SequenceNumber != checkpoint.TrimHorizon {
		t.Fatalf("another application's lease: %+v, %v", l, err)
	}
	_, err = worker.Checkpoint(ctx, next, seq("70"))
	wantErr(t, "the owner's checkpoint after a second reset", err, checkpoint.ErrLeaseLost)
	// A checkpoint after an AT_TIMESTAMP reset drops the timestamp.
	lc, err := worker.TakeLease(ctx, mustGet(t, worker, c), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if lc, err = worker.Checkpoint(ctx, lc, seq("5")); err != nil || lc.Checkpoint != seq("5") {
		t.Fatalf("checkpoint after an AT_TIMESTAMP reset: %+v, %v", lc.Checkpoint, err)
	}
	// The initial positions without a time.
	if got, err = admin.ResetLeases(ctx, app, []string{b, c}, seq(checkpoint.Latest)); err != nil || len(got) != 2 || got[1].Checkpoint != seq(checkpoint.Latest) {
		t.Fatalf("reset to LATEST: %+v, %v", got, err)
	}

	before := mustGet(t, other, a)
	for name, tc := range map[string]struct {
		shards []string
		cp     checkpoint.Checkpoint
		want   error
	}{
		"SHARD_END":                     {[]string{a}, seq(checkpoint.ShardEnd), checkpoint.ErrInvalid},
		"sequence number for two":       {[]string{a, b}, seq("1"), checkpoint.ErrInvalid},
		"sequence number for all":       {nil, seq("1"), checkpoint.ErrInvalid},
		"timestamp with TRIM_HORIZON":   {[]string{a}, checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon, Timestamp: at}, checkpoint.ErrInvalid},
		"not a checkpoint":              {[]string{a}, seq("x"), checkpoint.ErrInvalid},
		"a shard without a lease":       {[]string{a, "shardId-000000000099"}, seq(checkpoint.TrimHorizon), checkpoint.ErrNotFound},
		"an application without leases": {nil, seq(checkpoint.TrimHorizon), checkpoint.ErrNotFound},
	} {
		appName := app
		if name == "an application without leases" {
			appName = "no-such-app"
		}
		_, err := admin.ResetLeases(ctx, appName, tc.shards, tc.cp)
		wantErr(t, name, err, tc.want)
	}
	if l := mustGet(t, other, a); l.Counter != before.Counter || l.Checkpoint != before.Checkpoint {
		t.Fatalf("a refused reset changed the lease: %+v, was %+v", l, before)
	}

	// A lease created at a time keeps it.
	mustCreate(t, worker, checkpoint.Lease{Application: app, ShardID: "shardId-000000000003", Checkpoint: checkpoint.AtTime(at)})
	if l := mustGet(t, other, "shardId-000000000003"); l.Checkpoint != want {
		t.Fatalf("created at %v: %+v", want, l.Checkpoint)
	}
}

func testForceRelease(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	worker, other := newStore(t), newStore(t)
	admin := adminOf(t, other)
	ctx := testCtx(t)
	events, err := other.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	const shard = "shardId-000000000000"
	l := mustHold(t, worker, shard, "w1")
	if l, err = worker.Checkpoint(ctx, l, seq("10")); err != nil {
		t.Fatal(err)
	}
	got, err := admin.ForceRelease(ctx, app, shard)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "" || got.Counter != l.Counter+1 || got.Checkpoint != seq("10") || !got.Available() {
		t.Fatalf("after a forced release: %+v (was %+v)", got, l)
	}
	waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool {
		return e.Type == checkpoint.EventReleased && e.ShardID == shard && e.Counter == got.Counter
	})
	_, err = worker.Checkpoint(ctx, l, seq("20"))
	wantErr(t, "the former owner's checkpoint", err, checkpoint.ErrLeaseLost)
	// Nobody owns it: unchanged.
	again, err := admin.ForceRelease(ctx, app, shard)
	if err != nil || again.Counter != got.Counter {
		t.Fatalf("forced release of an unowned lease: %+v, %v", again, err)
	}
	_, err = admin.ForceRelease(ctx, app, "shardId-000000000099")
	wantErr(t, "forced release of a missing lease", err, checkpoint.ErrNotFound)
	_, err = admin.ForceRelease(ctx, "", shard)
	wantErr(t, "forced release without an application", err, checkpoint.ErrInvalid)
}

func testDeleteApplication(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	worker, other := newStore(t), newStore(t)
	admin := adminOf(t, other)
	ctx := testCtx(t)
	events, err := other.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	l := mustHold(t, worker, "shardId-000000000000", "w1")
	mustCreate(t, worker, checkpoint.Lease{Application: app, ShardID: "shardId-000000000001"})
	mustCreate(t, worker, checkpoint.Lease{Application: "other-app", ShardID: "shardId-000000000000"})
	n, err := admin.DeleteApplication(ctx, app)
	if err != nil || n != 2 {
		t.Fatalf("DeleteApplication = %d, %v; want 2", n, err)
	}
	for range 2 {
		waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventDeleted })
	}
	if list, err := other.ListLeases(ctx, app); err != nil || len(list) != 0 {
		t.Fatalf("leases after the deletion: %+v, %v", list, err)
	}
	if list, err := other.ListLeases(ctx, "other-app"); err != nil || len(list) != 1 {
		t.Fatalf("another application's leases: %+v, %v", list, err)
	}
	_, err = worker.RenewLease(ctx, l)
	wantErr(t, "renewal of a deleted lease", err, checkpoint.ErrNotFound)
	if n, err := admin.DeleteApplication(ctx, app); err != nil || n != 0 {
		t.Fatalf("second DeleteApplication = %d, %v", n, err)
	}
	_, err = admin.DeleteApplication(ctx, "")
	wantErr(t, "DeleteApplication without a name", err, checkpoint.ErrInvalid)
}
