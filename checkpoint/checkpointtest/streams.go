package checkpointtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Multi-stream applications: the stream is part of a lease's key.

// Two identities of one stream name (deleted and re-created), and another
// stream.
var (
	streamOld   = checkpoint.StreamIdentity("arn:aws:kinesis:us-east-1:000000000000:stream/orders", time.UnixMilli(1_700_000_000_000))
	streamNew   = checkpoint.StreamIdentity("arn:aws:kinesis:us-east-1:000000000000:stream/orders", time.UnixMilli(1_700_000_500_000))
	streamOther = checkpoint.StreamIdentity("arn:aws:kinesis:us-east-1:000000000000:stream/payments", time.UnixMilli(1_700_000_000_000))
)

// testStreams: leases of one shard ID in several streams of one
// application (the empty stream among them) are separate leases in every
// operation: created, read, listed, taken, checkpointed, deleted, reset,
// force-released and announced each on its own.
func testStreams(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	s := newStore(t)
	ctx := testCtx(t)
	const shard = "shardId-000000000000"
	streams := []string{"", streamOld, streamNew, streamOther}
	events, err := s.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range streams {
		created, err := s.CreateLease(ctx, checkpoint.Lease{Application: app, Stream: st, ShardID: shard, Checkpoint: seq("1" + string(rune('0'+i)))})
		if err != nil || !created {
			t.Fatalf("CreateLease in stream %q = %v, %v", st, created, err)
		}
		e := waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventCreated && e.Stream == st })
		if e.ShardID != shard || e.Key() != checkpoint.LeaseKey(st, shard) {
			t.Errorf("created event %+v", e)
		}
	}
	// Ordered by stream (the empty one first), then shard ID.
	all, err := s.ListLeases(ctx, app)
	if err != nil || len(all) != len(streams) {
		t.Fatalf("ListLeases = %+v, %v", all, err)
	}
	want := slices.Clone(streams)
	slices.Sort(want)
	for i, l := range all {
		if l.Stream != want[i] || l.ShardID != shard {
			t.Errorf("lease %d: stream %q shard %s, want %q", i, l.Stream, l.ShardID, want[i])
		}
	}
	// Read by key; the bare shard ID is the empty stream's.
	for i, st := range streams {
		l := mustGet(t, s, checkpoint.LeaseKey(st, shard))
		if l.Stream != st || l.ShardID != shard || l.Checkpoint != seq("1"+string(rune('0'+i))) {
			t.Errorf("GetLease(%q) = %+v", checkpoint.LeaseKey(st, shard), l)
		}
		if l.Key() != checkpoint.LeaseKey(st, shard) {
			t.Errorf("Key() = %q", l.Key())
		}
	}
	// Taking and checkpointing one stream's lease leaves the others.
	held, err := s.TakeLease(ctx, mustGet(t, s, checkpoint.LeaseKey(streamNew, shard)), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if held, err = s.Checkpoint(ctx, held, seq("99")); err != nil || held.Stream != streamNew {
		t.Fatalf("Checkpoint = %+v, %v", held, err)
	}
	for i, st := range []string{"", streamOld, streamOther} {
		l := mustGet(t, s, checkpoint.LeaseKey(st, shard))
		if l.Owner != "" || l.Counter != 0 || l.Checkpoint.SequenceNumber == "99" {
			t.Errorf("%d: lease of stream %q changed with another stream's: %+v", i, st, l)
		}
	}
	if _, err := s.RenewLease(ctx, held); err != nil {
		t.Fatal(err)
	}
	// Children belong to their parent's stream.
	if _, err := s.CreateLease(ctx, checkpoint.Lease{Application: app, Stream: streamOther, ShardID: "shardId-000000000009"}); err != nil {
		t.Fatal(err)
	}
	parent := checkpoint.LeaseKey(streamOther, "shardId-000000000009")
	if err := s.CreateChildLeases(ctx, app, parent, []checkpoint.Lease{{ShardID: "shardId-000000000010"}}); err != nil {
		t.Fatal(err)
	}
	child := mustGet(t, s, checkpoint.LeaseKey(streamOther, "shardId-000000000010"))
	if child.Stream != streamOther || !slices.Equal(child.ParentShardIDs, []string{"shardId-000000000009"}) {
		t.Errorf("child %+v", child)
	}
	if _, err := s.GetLease(ctx, app, "shardId-000000000010"); !errIs(err, checkpoint.ErrNotFound) {
		t.Errorf("child found in the empty stream: %v", err)
	}
	err = s.CreateChildLeases(ctx, app, parent, []checkpoint.Lease{{Stream: streamOld, ShardID: "shardId-000000000011"}})
	wantErr(t, "a child in another stream", err, checkpoint.ErrInvalid)
	// A shard ID with the key separator cannot be stored.
	_, err = s.CreateLease(ctx, checkpoint.Lease{Application: app, ShardID: "a:b"})
	wantErr(t, "a shard ID with a colon", err, checkpoint.ErrInvalid)

	// Deleting one stream's lease leaves the others, and the event names it.
	if err := s.DeleteLease(ctx, app, checkpoint.LeaseKey(streamOld, shard)); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventDeleted })
	if e.Stream != streamOld || e.ShardID != shard {
		t.Errorf("deleted event %+v", e)
	}
	if _, err := s.GetLease(ctx, app, checkpoint.LeaseKey(streamOld, shard)); !errIs(err, checkpoint.ErrNotFound) {
		t.Errorf("deleted lease: %v", err)
	}
	mustGet(t, s, shard)
	mustGet(t, s, checkpoint.LeaseKey(streamNew, shard))

	// Administration by key.
	adm, ok := s.(checkpoint.Admin)
	if !ok {
		return
	}
	reset, err := adm.ResetLeases(ctx, app, []string{checkpoint.LeaseKey(streamOther, shard), shard}, checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon})
	if err != nil || len(reset) != 2 || reset[0].Stream != "" || reset[1].Stream != streamOther {
		t.Fatalf("ResetLeases = %+v, %v", reset, err)
	}
	if l := mustGet(t, s, checkpoint.LeaseKey(streamNew, shard)); l.Checkpoint != seq("99") || l.Owner != "w1" {
		t.Errorf("a reset of other streams changed %+v", l)
	}
	released, err := adm.ForceRelease(ctx, app, checkpoint.LeaseKey(streamNew, shard))
	if err != nil || released.Owner != "" || released.Stream != streamNew {
		t.Fatalf("ForceRelease = %+v, %v", released, err)
	}
	e = waitEvent(t, events, 5*time.Second, func(e checkpoint.Event) bool { return e.Type == checkpoint.EventReleased })
	if e.Stream != streamNew {
		t.Errorf("released event %+v", e)
	}
}

func errIs(err, want error) bool { return errors.Is(err, want) }
