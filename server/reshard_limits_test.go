package server_test

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

func (e *env) updateShardCount(name string, n int32) (*kinesis.UpdateShardCountOutput, error) {
	return e.nr.UpdateShardCount(e.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(name), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
}

// TestUpdateShardCountBounds checks each documented bound of UpdateShardCount.
func TestUpdateShardCountBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{StreamShardLimit: 3, ShardLimit: 12})
	e.createStream("two", 2)
	e.createStream("five", 5)

	// No more than double, no less than half of the open shards.
	_, err := e.updateShardCount("two", 5)
	wantErr[types.LimitExceededException](t, err)
	_, err = e.updateShardCount("five", 2)
	wantErr[types.LimitExceededException](t, err)
	// Not above the per-stream limit (3 here) when scaling up...
	_, err = e.updateShardCount("two", 4)
	wantErr[types.LimitExceededException](t, err)
	// ...and a stream above it only scales down to below or at it.
	_, err = e.updateShardCount("five", 4)
	wantErr[types.LimitExceededException](t, err)
	_, err = e.updateShardCount("five", 3)
	noErr(t, err, "UpdateShardCount five -> 3")
	out, err := e.updateShardCount("two", 3)
	noErr(t, err, "UpdateShardCount two -> 3")
	if *out.CurrentShardCount != 2 || *out.TargetShardCount != 3 {
		t.Fatalf("output %+v", out)
	}
	if n := len(openShards(e.shards("two"))); n != 3 {
		t.Fatalf("%d open shards, want 3", n)
	}
	if n := len(openShards(e.shards("five"))); n != 3 {
		t.Fatalf("five has %d open shards, want 3", n)
	}
	// The account limit counts every stream's open shards.
	e2 := newEnv(t, server.Config{ShardLimit: 13})
	e2.createStream("a", 6)
	e2.createStream("b", 6)
	_, err = e2.updateShardCount("a", 8)
	wantErr[types.LimitExceededException](t, err)
	_, err = e2.updateShardCount("a", 7)
	noErr(t, err, "UpdateShardCount to the account limit")
	if n := len(openShards(e2.shards("b"))); n != 6 {
		t.Fatalf("b has %d open shards", n)
	}
}

// TestUpdateShardCountDailyCap checks the rolling 24-hour cap of ten
// scalings per stream, across a restart.
func TestUpdateShardCountDailyCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	cfg := server.Config{DataDir: dir, Now: clock.Now}
	e := newEnv(t, cfg)
	e.createStream("s", 1)
	e.createStream("other", 1)
	t0 := clock.Now()
	target := func(i int) int32 { return int32(2 - i%2) } // 2, 1, 2, 1, ...
	for i := range 10 {
		_, err := e.updateShardCount("s", target(i))
		noErr(t, err, fmt.Sprint("scaling ", i))
		clock.Advance(time.Minute)
	}
	// A call that changes nothing is not a scaling.
	_, err := e.updateShardCount("s", 1)
	noErr(t, err, "UpdateShardCount to the current count")
	_, err = e.updateShardCount("s", 2)
	wantErr[types.LimitExceededException](t, err)
	// The cap is per stream.
	_, err = e.updateShardCount("other", 2)
	noErr(t, err, "UpdateShardCount of another stream")

	// 24 h after the first scaling, one more is allowed.
	clock.Advance(t0.Add(24*time.Hour + time.Second).Sub(clock.Now()))
	_, err = e.updateShardCount("s", 2)
	noErr(t, err, "scaling after the first one left the window")
	_, err = e.updateShardCount("s", 1)
	wantErr[types.LimitExceededException](t, err)

	// A restart does not forget the scalings.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noErr(t, e.srv.Shutdown(ctx), "Shutdown")
	e = newEnv(t, cfg)
	_, err = e.updateShardCount("s", 1)
	wantErr[types.LimitExceededException](t, err)
	clock.Advance(time.Minute)
	_, err = e.updateShardCount("s", 1)
	noErr(t, err, "scaling after the second one left the window")
	if n := len(openShards(e.shards("s"))); n != 1 {
		t.Fatalf("%d open shards, want 1", n)
	}
}

// TestShardFiltersAroundReshards checks the ShardFilter types at the
// boundaries a split and a merge create, on an injected clock.
func TestShardFiltersAroundReshards(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 2) // shards 0, 1
	clock.Advance(time.Hour)
	split := clock.Now()
	noErr(t, e.split("s", shardID(0), "5"), "SplitShard") // 0 -> 2, 3
	clock.Advance(time.Hour)
	merge := clock.Now()
	noErr(t, e.merge("s", shardID(3), shardID(1)), "MergeShards") // 3 + 1 -> 4
	clock.Advance(time.Hour)

	list := func(f types.ShardFilter) string {
		t.Helper()
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &f})
		noErr(t, err, "ListShards")
		return shardIDs(out.Shards)
	}
	ms := func(tm time.Time, d time.Duration) *time.Time { x := tm.Add(d); return &x }
	for _, c := range []struct {
		f    types.ShardFilter
		want string
	}{
		{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(0))}, "1,2,3,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(2))}, "3,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, "2,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, "0,1,2,3,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, "0,1,2,3,4"},
		// Just before the split: the initial shards.
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ms(split, -time.Millisecond)}, "0,1"},
		// At the split: its children replace the parent.
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ms(split, 0)}, "1,2,3"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ms(merge, -time.Millisecond)}, "1,2,3"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ms(merge, 0)}, "2,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: ms(split, -time.Millisecond)}, "0,1,2,3,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: ms(split, 0)}, "1,2,3,4"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: ms(merge, 0)}, "2,4"},
	} {
		if got := list(c.f); got != c.want {
			t.Errorf("ShardFilter %s %v %v: %s, want %s", c.f.Type, aws.ToString(c.f.ShardId), c.f.Timestamp, got, c.want)
		}
	}

	// A day later the shards closed at the split and the merge were closed
	// before the trim horizon: AT_TRIM_HORIZON leaves them out.
	clock.Advance(24*time.Hour - 90*time.Minute) // now split + 24.5 h: the trim horizon is split + 30 min
	if got := list(types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}); got != "1,2,3,4" {
		t.Errorf("AT_TRIM_HORIZON after the split left the retention period: %s, want 1,2,3,4", got)
	}
	clock.Advance(2 * time.Hour)
	if got := list(types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}); got != "2,4" {
		t.Errorf("AT_TRIM_HORIZON after the merge left the retention period: %s, want 2,4", got)
	}
}

// TestReshardErrorsUpdatingAndMissing covers the resharding errors that
// TestSplitShardErrors does not: every resharding call on an UPDATING
// stream (ResourceInUse) and on a missing stream (ResourceNotFound), by
// name and by ARN, and a hash key above 2^128-1. In a synctest bubble
// (newBubbleEnv): the stream stays UPDATING for exactly UpdateDelay,
// however long the calls take.
func TestReshardErrorsUpdatingAndMissing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testReshardErrorsUpdatingAndMissing)
}

func testReshardErrorsUpdatingAndMissing(t *testing.T) {
	const delay = 500 * time.Millisecond
	e := newBubbleEnv(t, server.Config{UpdateDelay: delay})
	e.createStream("s", 2)
	wantErr[types.InvalidArgumentException](t, e.split("s", shardID(0), "340282366920938463463374607431768211456"))
	noErr(t, e.split("s", shardID(0), "5"), "SplitShard")
	if st := e.summary("s").StreamStatus; st != types.StreamStatusUpdating {
		t.Fatalf("status %s after SplitShard, want UPDATING", st)
	}
	wantErr[types.ResourceInUseException](t, e.merge("s", shardID(3), shardID(1)))
	_, err := e.updateShardCount("s", 4)
	wantErr[types.ResourceInUseException](t, err)
	_, err = e.nr.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamARN: aws.String(arn("s")), ShardToSplit: aws.String(shardID(1)), NewStartingHashKey: aws.String(new(big.Int).Add(bigOf(half), big.NewInt(1)).String())})
	wantErr[types.ResourceInUseException](t, err)

	wantErr[types.ResourceNotFoundException](t, e.merge("nope", shardID(0), shardID(1)))
	_, err = e.updateShardCount("nope", 2)
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.nr.MergeShards(e.ctx, &kinesis.MergeShardsInput{StreamARN: aws.String(arn("nope")), ShardToMerge: aws.String(shardID(0)), AdjacentShardToMerge: aws.String(shardID(1))})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.nr.UpdateShardCount(e.ctx, &kinesis.UpdateShardCountInput{StreamARN: aws.String(arn("nope")), TargetShardCount: aws.Int32(2), ScalingType: types.ScalingTypeUniformScaling})
	wantErr[types.ResourceNotFoundException](t, err)
	// Back to ACTIVE, the calls refused above work.
	time.Sleep(delay)
	synctest.Wait() // the status timer has saved the change
	if st := e.summary("s").StreamStatus; st != types.StreamStatusActive {
		t.Fatalf("status %s after UpdateDelay, want ACTIVE", st)
	}
	noErr(t, e.merge("s", shardID(3), shardID(1)), "MergeShards once ACTIVE")
}
