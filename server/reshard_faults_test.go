package server_test

// Reshards are all or nothing: when a step of one fails (a child's log
// cannot be created, a parent cannot be sealed, the catalog write fails),
// nothing of it is visible, every acknowledged record stays readable where
// it was acknowledged, no log of it is left behind, and the same reshard
// succeeds later with empty children, also across a restart.

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// reshardCase is one kind of reshard, run on a fresh stream.
type reshardCase struct {
	name     string
	initial  int32 // shards at creation; 0 means an ON_DEMAND stream (4 shards)
	children int   // logs the reshard creates (intermediate shards included)
	parents  int   // open shards it closes
	auto     bool  // an automatic split: no API call, no API error
	run      func(r *rig, stream string) error
}

var reshardCases = []reshardCase{
	{name: "SplitShard", initial: 2, children: 2, parents: 1, run: func(r *rig, stream string) error {
		s0 := sigOfList(r, stream, shardID(0))
		_, err := r.c.SplitShard(context.Background(), &kinesis.SplitShardInput{
			StreamName: aws.String(stream), ShardToSplit: aws.String(shardID(0)), NewStartingHashKey: aws.String(midKey(s0)),
		})
		return err
	}},
	{name: "MergeShards", initial: 2, children: 1, parents: 2, run: func(r *rig, stream string) error {
		_, err := r.c.MergeShards(context.Background(), &kinesis.MergeShardsInput{
			StreamName: aws.String(stream), ShardToMerge: aws.String(shardID(0)), AdjacentShardToMerge: aws.String(shardID(1)),
		})
		return err
	}},
	// 2 -> 3 splits both shards (4 pieces) and merges the middle two: 5
	// new shards, 2 of them intermediate (created and closed by the plan).
	{name: "UpdateShardCount2to3", initial: 2, children: 5, parents: 2, run: updateShardCount(3)},
	{name: "UpdateShardCount4to2", initial: 4, children: 2, parents: 4, run: updateShardCount(2)},
	{name: "AutoSplit", initial: 0, children: 4, parents: 2, auto: true, run: func(r *rig, stream string) error {
		if n := r.srv.AutoSplitNow(stream, shardID(0), shardID(1)); n != 2 {
			return fmt.Errorf("automatic split: %d shards split, want 2", n)
		}
		return nil
	}},
}

func updateShardCount(target int32) func(r *rig, stream string) error {
	return func(r *rig, stream string) error {
		_, err := r.c.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{
			StreamName: aws.String(stream), TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling,
		})
		return err
	}
}

func sigOfList(r *rig, stream, id string) shardSig {
	return sigOf(r.t, listShardSigs(r.t, r.c, stream), id)
}

// createCaseStream creates the stream a case reshards.
func createCaseStream(t testing.TB, r *rig, stream string, rc reshardCase) {
	t.Helper()
	in := &kinesis.CreateStreamInput{StreamName: aws.String(stream)}
	if rc.initial == 0 {
		in.StreamModeDetails = &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}
	} else {
		in.ShardCount = aws.Int32(rc.initial)
	}
	if _, err := r.c.CreateStream(context.Background(), in); err != nil {
		t.Fatalf("CreateStream %s: %v", stream, err)
	}
}

// faultPoint is a step of a reshard made to fail. hook returns the fault
// engine hook; act runs at the failing call and returns its error.
type faultPoint struct {
	name     string
	internal bool // the API call fails with InternalFailure
	hook     func(rc reshardCase, initial int, act func(faultCall) error) func(faultCall) error
}

var faultPoints = []faultPoint{
	// The last child's log: the others were created and must be removed.
	{name: "ChildCreateLogFails", internal: true, hook: func(rc reshardCase, _ int, act func(faultCall) error) func(faultCall) error {
		return nthMatching(rc.children, func(c faultCall) bool { return c.Op == opCreateLog }, act)
	}},
	// The last parent's seal: the others were sealed and must be unsealed.
	{name: "ParentSealFails", internal: true, hook: func(rc reshardCase, initial int, act func(faultCall) error) func(faultCall) error {
		return nthMatching(rc.parents, func(c faultCall) bool { return c.Op == opSeal && int(c.Log.Shard) < initial }, act)
	}},
	{name: "PutStreamFails", internal: true, hook: func(_ reshardCase, _ int, act func(faultCall) error) func(faultCall) error {
		return nthMatching(1, func(c faultCall) bool { return c.Op == opPutStream && c.grows() }, act)
	}},
}

func TestReshardFaultIsAllOrNothing(t *testing.T) {
	for _, rc := range reshardCases {
		for _, fp := range faultPoints {
			t.Run(rc.name+"/"+fp.name, func(t *testing.T) { testReshardFault(t, rc, fp) })
		}
	}
}

func testReshardFault(t *testing.T, rc reshardCase, fp faultPoint) {
	const stream = "faulty"
	r := startRig(t, "", server.Config{})
	createCaseStream(t, r, stream, rc)
	l := &ledger{tag: "rec"}
	l.mustPut(t, r.c, stream, 200)
	before := listShardSigs(t, r.c, stream)
	beforeOpen := openIDs(before)

	// Writers during the reshard: one loops until the call returned, and
	// the failing step itself starts one more (it lands once the reshard
	// has rolled back and the parents are open again).
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.put(ctx, r.c, stream, 20); err != nil {
				errs <- fmt.Errorf("writer during the reshard: %w", err)
				return
			}
		}
	}()
	act := func(c faultCall) error {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.put(ctx, r.c, stream, 10); err != nil {
				errs <- fmt.Errorf("write started at the failing %v: %w", c.Op, err)
			}
		}()
		return errInjected
	}
	r.fe.setHook(fp.hook(rc, len(before), act))
	err := rc.run(r, stream)
	r.fe.setHook(nil)
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if err == nil {
		t.Fatalf("the reshard succeeded although its %s step failed", fp.name)
	}
	if fp.internal && !rc.auto {
		wantCode(t, err, "InternalFailure")
	}

	// Nothing of it is visible or left behind, here and after a restart.
	verify := func(when string) {
		t.Helper()
		if got := listShardSigs(t, r.c, stream); !sameSigs(got, before) {
			t.Fatalf("%s: shards changed by a failed reshard:\n got %+v\nwant %+v", when, got, before)
		}
		for _, a := range l.mustPut(t, r.c, stream, 50) {
			if !beforeOpen[a.Shard] {
				t.Fatalf("%s: a record landed in %s, not one of the open shards %v", when, a.Shard, beforeOpen)
			}
		}
		checkAcked(t, r.c, stream, l.all())
		checkNoOrphanLogs(t, r.fe)
	}
	verify("after the failed reshard")
	r.restart()
	verify("after a restart")

	// The same reshard succeeds now, with empty children.
	if err := rc.run(r, stream); err != nil {
		t.Fatalf("the reshard after the failed one: %v", err)
	}
	after := listShardSigs(t, r.c, stream)
	children := newIDs(before, after)
	if len(children) != rc.children {
		t.Fatalf("the reshard made shards %v, want %d new shards", children, rc.children)
	}
	checkEmpty(t, r.c, stream, children)
	checkLineage(t, after)
	checkAcked(t, r.c, stream, l.all())
	checkNoOrphanLogs(t, r.fe)
	r.restart()
	if got := listShardSigs(t, r.c, stream); !sameSigs(got, after) {
		t.Fatalf("after a restart, shards\n got %+v\nwant %+v", got, after)
	}
	checkEmpty(t, r.c, stream, children)
	l.mustPut(t, r.c, stream, 50)
	checkAcked(t, r.c, stream, l.all())
	checkNoOrphanLogs(t, r.fe)
}

// CreateStream is durable before visible too: when a shard's log cannot be
// created or the catalog write fails, the stream does not exist, no log of
// it is left, and the name can be used again.
func TestCreateStreamFaultLeavesNothing(t *testing.T) {
	points := map[string]func(faultCall) error{
		"CreateLogFails": nthMatching(3, func(c faultCall) bool { return c.Op == opCreateLog }, inject),
		"PutStreamFails": nthMatching(1, func(c faultCall) bool { return c.Op == opPutStream && c.Meta.Name == "fresh" }, inject),
	}
	for name, hook := range points {
		t.Run(name, func(t *testing.T) {
			r := startRig(t, "", server.Config{})
			ctx := context.Background()
			r.fe.setHook(hook)
			_, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fresh"), ShardCount: aws.Int32(4)})
			r.fe.setHook(nil)
			wantCode(t, err, "InternalFailure")
			for i := range 2 {
				_, err := r.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("fresh")})
				wantCode(t, err, "ResourceNotFoundException")
				if ids, err := r.fe.Logs(ctx); err != nil || len(ids) != 0 {
					t.Fatalf("logs after a failed CreateStream: %v, %v", ids, err)
				}
				if i == 0 {
					r.restart()
				}
			}
			if _, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fresh"), ShardCount: aws.Int32(4)}); err != nil {
				t.Fatalf("CreateStream after the failed one: %v", err)
			}
			l := &ledger{tag: "f"}
			l.mustPut(t, r.c, "fresh", 40)
			checkAcked(t, r.c, "fresh", l.all())
			checkNoOrphanLogs(t, r.fe)
		})
	}
}
