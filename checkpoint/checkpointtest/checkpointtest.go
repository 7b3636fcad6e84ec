// Package checkpointtest is the conformance suite every checkpoint.Store
// implementation passes.
package checkpointtest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// RunStoreTests runs the conformance suite against the Stores newStore
// returns.
//
// Every call of newStore returns a new Store, as another worker would have
// (with its own connections). The Stores returned for one *testing.T share
// one lease table; Stores of different tests do not. Their failover time
// must be short, at most 1 second (300ms suits): the expiry tests wait for
// it. newStore closes its Stores when the test ends. Subtests run in
// parallel.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T) checkpoint.Store)
	}{
		{"CreateIdempotent", testCreateIdempotent},
		{"InvalidArguments", testInvalidArguments},
		{"TakeRenewRelease", testTakeRenewRelease},
		{"Fencing", testFencing},
		{"CheckpointOrder", testCheckpointOrder},
		{"PendingCheckpoint", testPendingCheckpoint},
		{"ShardEnd", testShardEnd},
		{"ChildLeases", testChildLeases},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"ListenEvents", testListenEvents},
		{"Close", testClose},
		{"ConcurrentInvariants", testConcurrentInvariants},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

const app = "orders-app"

// testCtx bounds one test's calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually calls fn until it returns nil, failing the test with fn's last
// error after timeout.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustCreate(t *testing.T, s checkpoint.Store, l checkpoint.Lease) {
	t.Helper()
	if _, err := s.CreateLease(testCtx(t), l); err != nil {
		t.Fatalf("CreateLease %s: %v", l.ShardID, err)
	}
}

func mustGet(t *testing.T, s checkpoint.Store, shardID string) checkpoint.Lease {
	t.Helper()
	l, err := s.GetLease(testCtx(t), app, shardID)
	if err != nil {
		t.Fatalf("GetLease %s: %v", shardID, err)
	}
	return l
}

// mustHold creates the lease if needed and takes it for owner.
func mustHold(t *testing.T, s checkpoint.Store, shardID, owner string) checkpoint.Lease {
	t.Helper()
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: shardID})
	l, err := s.TakeLease(testCtx(t), mustGet(t, s, shardID), owner)
	if err != nil {
		t.Fatalf("TakeLease %s: %v", shardID, err)
	}
	return l
}

func seq(n string) checkpoint.Checkpoint { return checkpoint.Checkpoint{SequenceNumber: n} }

func seqSub(n string, sub int64) checkpoint.Checkpoint {
	return checkpoint.Checkpoint{SequenceNumber: n, SubSequenceNumber: sub}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func testCreateIdempotent(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	in := checkpoint.Lease{
		Application: app, ShardID: "shardId-000000000001",
		Checkpoint:      checkpoint.Checkpoint{SequenceNumber: checkpoint.Latest},
		ParentShardIDs:  []string{"shardId-000000000000"},
		StartingHashKey: "0", EndingHashKey: "170141183460469231731687303715884105727",
		Owner: "ignored", Counter: 42,
	}
	created, err := s.CreateLease(ctx, in)
	if err != nil || !created {
		t.Fatalf("first CreateLease = %v, %v; want true, nil", created, err)
	}
	first := mustGet(t, s, in.ShardID)

	again := in
	again.Checkpoint = seq("123")
	created, err = s.CreateLease(ctx, again)
	if err != nil || created {
		t.Fatalf("second CreateLease = %v, %v; want false, nil", created, err)
	}
	got := mustGet(t, s, in.ShardID)
	if got.Owner != "" || got.Counter != 0 || got.Checkpoint != in.Checkpoint ||
		!slices.Equal(got.ParentShardIDs, in.ParentShardIDs) || len(got.ChildShardIDs) != 0 ||
		got.StartingHashKey != in.StartingHashKey || got.EndingHashKey != in.EndingHashKey ||
		got.PendingCheckpoint != nil || got.OwnerSwitchesSinceCheckpoint != 0 ||
		!got.ExpiresAt.IsZero() || got.Expired || !got.Available() || got.CreatedAt.IsZero() {
		t.Fatalf("lease after create = %+v", got)
	}
	if !got.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("second CreateLease changed the lease: %+v then %+v", first, got)
	}

	// The zero Checkpoint means TRIM_HORIZON; leases list in shard order;
	// other applications' leases stay apart.
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: "shardId-000000000000"})
	mustCreate(t, s, checkpoint.Lease{Application: "other-app", ShardID: "shardId-000000000000"})
	list, err := s.ListLeases(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ShardID != "shardId-000000000000" || list[1].ShardID != in.ShardID {
		t.Fatalf("ListLeases = %+v", list)
	}
	if list[0].Checkpoint.SequenceNumber != checkpoint.TrimHorizon {
		t.Fatalf("default checkpoint = %v, want TRIM_HORIZON", list[0].Checkpoint)
	}
	if list, err := s.ListLeases(ctx, "no-such-app"); err != nil || len(list) != 0 {
		t.Fatalf("ListLeases of an unknown app = %v, %v", list, err)
	}
	_, err = s.GetLease(ctx, app, "shardId-000000000009")
	wantErr(t, "GetLease of a missing lease", err, checkpoint.ErrNotFound)
}

func testInvalidArguments(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	l := mustHold(t, s, "shardId-000000000000", "w1")
	for name, err := range map[string]error{
		"create without shard": func() error {
			_, err := s.CreateLease(ctx, checkpoint.Lease{Application: app})
			return err
		}(),
		"create without application": func() error {
			_, err := s.CreateLease(ctx, checkpoint.Lease{ShardID: "x"})
			return err
		}(),
		"create with a bad checkpoint": func() error {
			_, err := s.CreateLease(ctx, checkpoint.Lease{Application: app, ShardID: "x", Checkpoint: seq("12a")})
			return err
		}(),
		"take with empty owner": func() error { _, err := s.TakeLease(ctx, l, ""); return err }(),
		"renew an unowned copy": func() error {
			c := l
			c.Owner = ""
			_, err := s.RenewLease(ctx, c)
			return err
		}(),
		"checkpoint a sentinel initial position": func() error {
			_, err := s.Checkpoint(ctx, l, seq(checkpoint.TrimHorizon))
			return err
		}(),
		"checkpoint a non-number":          func() error { _, err := s.Checkpoint(ctx, l, seq("abc")); return err }(),
		"checkpoint a leading zero":        func() error { _, err := s.Checkpoint(ctx, l, seq("0123")); return err }(),
		"checkpoint 130 digits":            func() error { _, err := s.Checkpoint(ctx, l, seq("1"+strings.Repeat("0", 129))); return err }(),
		"checkpoint negative sub-seq":      func() error { _, err := s.Checkpoint(ctx, l, seqSub("1", -1)); return err }(),
		"checkpoint SHARD_END with subseq": func() error { _, err := s.Checkpoint(ctx, l, seqSub(checkpoint.ShardEnd, 1)); return err }(),
		"get without application":          func() error { _, err := s.GetLease(ctx, "", "x"); return err }(),
		"list without application":         func() error { _, err := s.ListLeases(ctx, ""); return err }(),
		"listen without application":       func() error { _, err := s.Listen(ctx, ""); return err }(),
	} {
		if !errors.Is(err, checkpoint.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	// Nothing of that changed the lease.
	if got := mustGet(t, s, l.ShardID); got.Counter != l.Counter || got.Checkpoint != l.Checkpoint {
		t.Fatalf("lease changed by invalid calls: %+v, was %+v", got, l)
	}
}

func testTakeRenewRelease(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	const shard = "shardId-000000000000"
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: shard})
	l0 := mustGet(t, s, shard)

	l1, err := s.TakeLease(ctx, l0, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if l1.Owner != "w1" || l1.Counter != 1 || l1.OwnerSwitchesSinceCheckpoint != 1 || l1.ExpiresAt.IsZero() || l1.Expired || l1.Available() {
		t.Fatalf("after take: %+v", l1)
	}
	if !l1.ExpiresAt.After(l1.UpdatedAt) {
		t.Fatalf("ExpiresAt %v not after UpdatedAt %v", l1.ExpiresAt, l1.UpdatedAt)
	}
	l2, err := s.RenewLease(ctx, l1)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Owner != "w1" || l2.Counter != 2 || l2.ExpiresAt.Before(l1.ExpiresAt) {
		t.Fatalf("after renew: %+v (was %+v)", l2, l1)
	}
	// Taking one's own lease again is allowed and is no owner switch.
	l3, err := s.TakeLease(ctx, l2, "w1")
	if err != nil || l3.Counter != 3 || l3.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("retake = %+v, %v", l3, err)
	}
	l4, err := s.ReleaseLease(ctx, l3)
	if err != nil {
		t.Fatal(err)
	}
	if l4.Owner != "" || l4.Counter != 4 || !l4.ExpiresAt.IsZero() || !l4.Available() {
		t.Fatalf("after release: %+v", l4)
	}
	// A released lease cannot be renewed with the old copy...
	_, err = s.RenewLease(ctx, l3)
	wantErr(t, "renew after release", err, checkpoint.ErrLeaseLost)
	// ...and is free for anyone: an owner switch.
	l5, err := s.TakeLease(ctx, l4, "w2")
	if err != nil || l5.Owner != "w2" || l5.Counter != 5 || l5.OwnerSwitchesSinceCheckpoint != 2 {
		t.Fatalf("take after release = %+v, %v", l5, err)
	}
	l6, err := s.Checkpoint(ctx, l5, seq("7"))
	if err != nil || l6.OwnerSwitchesSinceCheckpoint != 0 || l6.Counter != 6 {
		t.Fatalf("checkpoint = %+v, %v", l6, err)
	}
	if got := mustGet(t, s, shard); got.Counter != 6 || got.Owner != "w2" || got.Checkpoint != seq("7") {
		t.Fatalf("stored lease %+v", got)
	}
}

func testFencing(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s1, s2 := newStore(t), newStore(t)
	ctx := testCtx(t)
	const shard = "shardId-000000000000"
	w1 := mustHold(t, s1, shard, "w1")
	w1, err := s1.Checkpoint(ctx, w1, seq("100"))
	if err != nil {
		t.Fatal(err)
	}

	// Worker 2 steals the lease from the copy it read.
	seen, err := s2.GetLease(ctx, app, shard)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s2.TakeLease(ctx, seen, "w2")
	if err != nil {
		t.Fatal(err)
	}
	if w2.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("steal: owner switches %d, want 1", w2.OwnerSwitchesSinceCheckpoint)
	}
	// A second taker with the same, now stale, copy loses the race.
	_, err = s1.TakeLease(ctx, seen, "w3")
	wantErr(t, "take with a stale counter", err, checkpoint.ErrLeaseLost)

	// Worker 1 has lost it: no renewal, no checkpoint, no release.
	_, err = s1.RenewLease(ctx, w1)
	wantErr(t, "stale renew", err, checkpoint.ErrLeaseLost)
	_, err = s1.Checkpoint(ctx, w1, seq("200"))
	wantErr(t, "stale checkpoint", err, checkpoint.ErrLeaseLost)
	_, err = s1.PrepareCheckpoint(ctx, w1, seq("200"))
	wantErr(t, "stale prepare", err, checkpoint.ErrLeaseLost)
	_, err = s1.ReleaseLease(ctx, w1)
	wantErr(t, "stale release", err, checkpoint.ErrLeaseLost)
	// Even a stale copy whose counter is made up to match fails on owner.
	forged := w1
	forged.Counter = w2.Counter
	_, err = s1.Checkpoint(ctx, forged, seq("200"))
	wantErr(t, "checkpoint by a non-owner with the current counter", err, checkpoint.ErrLeaseLost)

	got := mustGet(t, s2, shard)
	if got.Owner != "w2" || got.Counter != w2.Counter || got.Checkpoint != seq("100") || got.PendingCheckpoint != nil {
		t.Fatalf("lease after stale writes: %+v", got)
	}
	if _, err := s2.Checkpoint(ctx, w2, seq("150")); err != nil {
		t.Fatalf("new owner's checkpoint: %v", err)
	}
}

func testCheckpointOrder(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	l := mustHold(t, s, "shardId-000000000000", "w1")
	big1 := "49" + strings.Repeat("7", 127) // 129 digits
	steps := []struct {
		cp   checkpoint.Checkpoint
		want error
	}{
		{seq("100"), nil},
		{seq("99"), checkpoint.ErrCheckpointBackwards},
		{seq("20"), checkpoint.ErrCheckpointBackwards}, // "20" > "100" as strings, not as numbers
		{seqSub("100", 5), nil},
		{seqSub("100", 3), checkpoint.ErrCheckpointBackwards},
		{seqSub("100", 5), nil}, // the same checkpoint again
		{seq("1000"), nil},
		{seq(big1), nil},
		{seq("49" + strings.Repeat("7", 126) + "6"), checkpoint.ErrCheckpointBackwards},
		{seq("5" + strings.Repeat("0", 128)), nil},
		{seq("0"), checkpoint.ErrCheckpointBackwards},
	}
	for i, st := range steps {
		next, err := s.Checkpoint(ctx, l, st.cp)
		if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("step %d: Checkpoint(%v) error %v, want %v", i, st.cp, err, st.want)
		}
		if err == nil {
			if next.Counter != l.Counter+1 || next.Checkpoint != st.cp {
				t.Fatalf("step %d: lease %+v after checkpoint %v from counter %d", i, next, st.cp, l.Counter)
			}
			l = next
			continue
		}
		// A rejected checkpoint leaves the lease as it was, and held.
		if got := mustGet(t, s, l.ShardID); got.Counter != l.Counter || got.Checkpoint != l.Checkpoint {
			t.Fatalf("step %d: rejected checkpoint changed the lease: %+v", i, got)
		}
	}
	if _, err := s.RenewLease(ctx, l); err != nil {
		t.Fatalf("renew after rejected checkpoints: %v", err)
	}
}

func testPendingCheckpoint(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	l := mustHold(t, s, "shardId-000000000000", "w1")
	l, err := s.Checkpoint(ctx, l, seq("10"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.PrepareCheckpoint(ctx, l, seq("9"))
	wantErr(t, "prepare behind the checkpoint", err, checkpoint.ErrCheckpointBackwards)
	l, err = s.PrepareCheckpoint(ctx, l, seqSub("20", 2))
	if err != nil {
		t.Fatal(err)
	}
	if l.PendingCheckpoint == nil || *l.PendingCheckpoint != seqSub("20", 2) || l.Checkpoint != seq("10") {
		t.Fatalf("after prepare: %+v", l)
	}
	if got := mustGet(t, s, l.ShardID); got.PendingCheckpoint == nil || *got.PendingCheckpoint != seqSub("20", 2) {
		t.Fatalf("stored pending checkpoint %v", got.PendingCheckpoint)
	}
	l, err = s.Checkpoint(ctx, l, seqSub("20", 2))
	if err != nil {
		t.Fatal(err)
	}
	if l.PendingCheckpoint != nil || l.Checkpoint != seqSub("20", 2) {
		t.Fatalf("after checkpoint: %+v", l)
	}
}

func testShardEnd(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	// From an initial position straight to SHARD_END (an empty closed shard).
	a := mustHold(t, s, "shardId-000000000000", "w1")
	a, err := s.Checkpoint(ctx, a, seq(checkpoint.ShardEnd))
	if err != nil || !a.Checkpoint.IsShardEnd() {
		t.Fatalf("checkpoint SHARD_END from TRIM_HORIZON = %+v, %v", a, err)
	}

	b := mustHold(t, s, "shardId-000000000001", "w1")
	if b, err = s.Checkpoint(ctx, b, seq("500")); err != nil {
		t.Fatal(err)
	}
	if b, err = s.Checkpoint(ctx, b, seq(checkpoint.ShardEnd)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Checkpoint(ctx, b, seq("600"))
	wantErr(t, "sequence number after SHARD_END", err, checkpoint.ErrCheckpointBackwards)
	if _, err = s.Checkpoint(ctx, b, seq(checkpoint.ShardEnd)); err != nil {
		t.Fatalf("SHARD_END again: %v", err)
	}
	if got := mustGet(t, s, b.ShardID); !got.Checkpoint.IsShardEnd() {
		t.Fatalf("checkpoint %v", got.Checkpoint)
	}
}

func testChildLeases(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	const p1, p2, c1, c2, c3 = "shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003", "shardId-000000000004"
	l1 := mustHold(t, s, p1, "w1")
	l1, err := s.Checkpoint(ctx, l1, seq(checkpoint.ShardEnd))
	if err != nil {
		t.Fatal(err)
	}
	split := []checkpoint.Lease{
		{ShardID: c1, StartingHashKey: "0", EndingHashKey: "99"},
		{ShardID: c2, StartingHashKey: "100", EndingHashKey: "199"},
	}
	for range 2 { // idempotent
		if err := s.CreateChildLeases(ctx, app, p1, split); err != nil {
			t.Fatal(err)
		}
	}
	parent := mustGet(t, s, p1)
	if !slices.Equal(parent.ChildShardIDs, []string{c1, c2}) {
		t.Fatalf("parent's children %v", parent.ChildShardIDs)
	}
	// Recording children does not move the counter: the owner's copy is
	// still good.
	if _, err := s.RenewLease(ctx, l1); err != nil {
		t.Fatalf("owner's renew after children were recorded: %v", err)
	}
	for _, c := range split {
		got := mustGet(t, s, c.ShardID)
		if got.Owner != "" || got.Counter != 0 || got.Checkpoint != seq(checkpoint.TrimHorizon) ||
			!slices.Equal(got.ParentShardIDs, []string{p1}) || got.StartingHashKey != c.StartingHashKey {
			t.Fatalf("child %+v", got)
		}
	}

	// A merge: both parents create the same child; the first creation wins
	// and both parents record it.
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: p2})
	merged := []checkpoint.Lease{{ShardID: c3, ParentShardIDs: []string{c1, c2}}}
	if err := s.CreateChildLeases(ctx, app, c1, merged); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateChildLeases(ctx, app, c2, []checkpoint.Lease{{ShardID: c3, ParentShardIDs: []string{c2}}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, c3); !slices.Equal(got.ParentShardIDs, []string{c1, c2}) {
		t.Fatalf("merged child's parents %v", got.ParentShardIDs)
	}
	for _, p := range []string{c1, c2} {
		if got := mustGet(t, s, p); !slices.Equal(got.ChildShardIDs, []string{c3}) {
			t.Fatalf("%s's children %v", p, got.ChildShardIDs)
		}
	}

	// No parent lease: nothing is created.
	err = s.CreateChildLeases(ctx, app, "shardId-000000000099", []checkpoint.Lease{{ShardID: "shardId-000000000100"}})
	wantErr(t, "children of a missing parent", err, checkpoint.ErrNotFound)
	_, err = s.GetLease(ctx, app, "shardId-000000000100")
	wantErr(t, "child of a missing parent", err, checkpoint.ErrNotFound)
}

func testDelete(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	l := mustHold(t, s, "shardId-000000000000", "w1")
	if err := s.DeleteLease(ctx, app, l.ShardID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete again", s.DeleteLease(ctx, app, l.ShardID), checkpoint.ErrNotFound)
	_, err := s.RenewLease(ctx, l)
	wantErr(t, "renew a deleted lease", err, checkpoint.ErrNotFound)
	// Re-created, it starts over, and the old copy's owner is not its owner.
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: l.ShardID})
	_, err = s.Checkpoint(ctx, l, seq("1"))
	wantErr(t, "checkpoint a re-created lease with an old copy", err, checkpoint.ErrLeaseLost)
}

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

// testConcurrentInvariants lets 8 workers, each with its own Store, race for
// 3 seconds to take, renew, checkpoint and release the same 4 leases with
// random moves, some of them deliberately with stale copies, and then checks
// the history the successful calls returned:
//   - every change moved a lease's counter by exactly one, and no counter
//     value was produced twice (so no two workers ever owned a lease at the
//     same counter), with no gap (so every change is accounted for);
//   - renewals, checkpoints and releases succeeded only for the worker that
//     owned the lease at the counter they presented;
//   - checkpoints, in commit (counter) order, never moved backwards, and a
//     rejected one was indeed behind;
//   - every checkpoint presented with a superseded counter was rejected with
//     ErrLeaseLost.
func testConcurrentInvariants(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	const (
		workers  = 8
		shards   = 4
		duration = 3 * time.Second
	)
	ctx := testCtx(t)
	stores := make([]checkpoint.Store, workers)
	for i := range stores {
		stores[i] = newStore(t)
	}
	shardIDs := make([]string, shards)
	for i := range shardIDs {
		shardIDs[i] = fmt.Sprintf("shardId-%012d", i)
		mustCreate(t, stores[0], checkpoint.Lease{Application: app, ShardID: shardIDs[i]})
	}

	type op struct {
		kind     string // take, renew, checkpoint, release
		owner    string
		expected int64 // counter presented
		result   int64 // counter returned
		cp       checkpoint.Checkpoint
	}
	var (
		mu                                    sync.Mutex
		history                               = map[string][]op{}
		staleTried, backwards, lostTaken, ops int
	)
	record := func(shard string, o op) {
		mu.Lock()
		defer mu.Unlock()
		history[shard] = append(history[shard], o)
	}
	base := new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil) // 39-digit sequence numbers
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s, me := stores[w], fmt.Sprintf("worker-%d", w)
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			held := map[string]checkpoint.Lease{}  // my latest copy of each lease I hold
			stale := map[string]checkpoint.Lease{} // an older copy, superseded
			hold := func(shard string, l checkpoint.Lease) {
				if old, ok := held[shard]; ok {
					stale[shard] = old
				}
				held[shard] = l
			}
			for time.Now().Before(deadline) && !t.Failed() {
				shard := shardIDs[rng.IntN(shards)]
				l, holding := held[shard]
				if !holding {
					seen, err := s.GetLease(ctx, app, shard)
					if err != nil {
						t.Errorf("%s: get: %v", me, err)
						return
					}
					got, err := s.TakeLease(ctx, seen, me)
					switch {
					case err == nil:
						record(shard, op{kind: "take", owner: me, expected: seen.Counter, result: got.Counter})
						hold(shard, got)
					case errors.Is(err, checkpoint.ErrLeaseLost):
						mu.Lock()
						lostTaken++
						mu.Unlock()
					default:
						t.Errorf("%s: take: %v", me, err)
						return
					}
					continue
				}
				var (
					got  checkpoint.Lease
					err  error
					kind string
					cp   checkpoint.Checkpoint
				)
				switch r := rng.IntN(100); {
				case r < 15:
					old, ok := stale[shard]
					if !ok {
						continue
					}
					// A checkpoint with a superseded copy: always refused.
					_, err := s.Checkpoint(ctx, old, seq(new(big.Int).Add(base, big.NewInt(1<<40)).String()))
					mu.Lock()
					staleTried++
					mu.Unlock()
					if !errors.Is(err, checkpoint.ErrLeaseLost) {
						t.Errorf("%s: checkpoint with stale counter %d (held %d): error %v, want ErrLeaseLost", me, old.Counter, l.Counter, err)
					}
					continue
				case r < 50:
					kind = "renew"
					got, err = s.RenewLease(ctx, l)
				case r < 95:
					kind = "checkpoint"
					cur := base
					if !l.Checkpoint.IsSentinel() {
						cur, _ = new(big.Int).SetString(l.Checkpoint.SequenceNumber, 10)
					}
					// Mostly forward, sometimes back.
					next := new(big.Int).Add(cur, big.NewInt(int64(rng.IntN(20)-4)))
					cp = seqSub(next.String(), int64(rng.IntN(3)))
					got, err = s.Checkpoint(ctx, l, cp)
				default:
					kind = "release"
					got, err = s.ReleaseLease(ctx, l)
				}
				switch {
				case err == nil:
					record(shard, op{kind: kind, owner: me, expected: l.Counter, result: got.Counter, cp: got.Checkpoint})
					if kind == "release" {
						stale[shard] = l
						delete(held, shard)
					} else {
						hold(shard, got)
					}
				case errors.Is(err, checkpoint.ErrLeaseLost):
					stale[shard] = l
					delete(held, shard)
				case errors.Is(err, checkpoint.ErrCheckpointBackwards) && kind == "checkpoint":
					// The fence held, so the stored checkpoint is my copy's.
					if cp.Compare(l.Checkpoint) >= 0 {
						t.Errorf("%s: checkpoint %v rejected as backwards from %v", me, cp, l.Checkpoint)
					}
					mu.Lock()
					backwards++
					mu.Unlock()
				default:
					t.Errorf("%s: %s: %v", me, kind, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for _, shard := range shardIDs {
		hist := history[shard]
		sort.Slice(hist, func(i, j int) bool { return hist[i].result < hist[j].result })
		ops += len(hist)
		final := mustGet(t, stores[0], shard)
		if int64(len(hist)) != final.Counter {
			t.Errorf("%s: %d successful changes recorded, final counter %d", shard, len(hist), final.Counter)
		}
		owner := "" // the owner after the change that produced each counter
		last := checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}
		for i, o := range hist {
			if o.result != int64(i+1) {
				t.Fatalf("%s: counters %d and %d: two successful changes produced one counter, or one is missing", shard, hist[max(i-1, 0)].result, o.result)
			}
			if o.expected != o.result-1 {
				t.Fatalf("%s: %s by %s presented counter %d and got %d", shard, o.kind, o.owner, o.expected, o.result)
			}
			if o.kind != "take" && owner != o.owner {
				t.Fatalf("%s: %s by %s at counter %d succeeded, but the lease was %q's there", shard, o.kind, o.owner, o.expected, owner)
			}
			switch o.kind {
			case "take":
				owner = o.owner
			case "release":
				owner = ""
			case "checkpoint":
				if o.cp.Compare(last) < 0 {
					t.Fatalf("%s: checkpoint moved back from %v to %v at counter %d", shard, last, o.cp, o.result)
				}
				last = o.cp
			}
		}
		if final.Owner != owner || final.Checkpoint != last {
			t.Errorf("%s: final lease %s at %v, history says %s at %v", shard, final.Owner, final.Checkpoint, owner, last)
		}
	}
	t.Logf("%d successful changes, %d takes lost to another worker, %d checkpoints rejected as backwards, %d stale checkpoints refused",
		ops, lostTaken, backwards, staleTried)
	if ops < 100 || staleTried == 0 || backwards == 0 || lostTaken == 0 {
		t.Errorf("too little contention to mean anything")
	}
}
