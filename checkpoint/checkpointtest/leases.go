package checkpointtest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/checkpoint"
)

// Lease life: creation, arguments, take/renew/release, fencing, checkpoints, children, deletion.

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
