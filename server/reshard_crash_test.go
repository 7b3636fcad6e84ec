package server_test

// A crash between the steps of a reshard: the fault engine copies the data
// directory while the server is inside the step (what a crash at that
// instant leaves on disk: the file engine in FsyncAlways mode has every
// acknowledged record on disk, and replaces catalog files atomically), and
// a fresh engine and server are started on the copy.

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/dirtest"
	"github.com/shoalstream/shoal/server"
)

// crashStep is where the copy is taken; post says whether the reshard is
// durable there (the catalog record was written).
type crashStep struct {
	name  string
	post  bool
	match func(rc reshardCase, initial int) (nth int, match func(faultCall) bool)
}

var crashSteps = []crashStep{
	{name: "AfterChildCreateLog", match: func(rc reshardCase, _ int) (int, func(faultCall) bool) {
		return rc.children, func(c faultCall) bool { return c.Op == opCreatedLog } // every child's log exists
	}},
	{name: "AfterParentSeal", match: func(rc reshardCase, initial int) (int, func(faultCall) bool) {
		return rc.parents, func(c faultCall) bool { return c.Op == opSealed && int(c.Log.Shard) < initial }
	}},
	{name: "BeforePutStream", match: func(reshardCase, int) (int, func(faultCall) bool) {
		return 1, func(c faultCall) bool { return c.Op == opPutStream && c.grows() }
	}},
	{name: "AfterPutStream", post: true, match: func(reshardCase, int) (int, func(faultCall) bool) {
		return 1, func(c faultCall) bool { return c.Op == opPutStreamDone && c.grows() }
	}},
}

func TestReshardCrashBetweenSteps(t *testing.T) {
	for _, rc := range reshardCases {
		for _, cs := range crashSteps {
			t.Run(rc.name+"/"+cs.name, func(t *testing.T) { testReshardCrash(t, rc, cs) })
		}
	}
}

func testReshardCrash(t *testing.T, rc reshardCase, cs crashStep) {
	const stream = "crashy"
	r := startRig(t, "", server.Config{})
	createCaseStream(t, r, stream, rc)
	l := &ledger{tag: "rec"}
	l.mustPut(t, r.c, stream, 300)
	before := listShardSigs(t, r.c, stream)

	snap := filepath.Join(t.TempDir(), "crash")
	var (
		mu       sync.Mutex
		taken    bool
		copyErr  error
		ackedNow []ack
	)
	nth, match := cs.match(rc, len(before))
	r.fe.setHook(nthMatching(nth, match, func(faultCall) error {
		// The server is blocked in this call while the copy is taken.
		mu.Lock()
		defer mu.Unlock()
		taken = true
		ackedNow = l.all()
		copyErr = dirtest.Copy(r.dir, snap)
		return nil
	}))
	if err := rc.run(r, stream); err != nil {
		t.Fatalf("reshard: %v", err)
	}
	r.fe.setHook(nil)
	mu.Lock()
	if !taken || copyErr != nil {
		t.Fatalf("snapshot at %s: taken %v, error %v", cs.name, taken, copyErr)
	}
	mu.Unlock()
	after := listShardSigs(t, r.c, stream)
	r.stop()

	// The server that starts on what the crash left.
	c := startRig(t, snap, server.Config{})
	got := listShardSigs(t, c.c, stream)
	isPre, isPost := sameSigs(got, before), sameSigs(got, after)
	switch {
	case !isPre && !isPost:
		t.Fatalf("after a crash %s, shards are neither the old nor the new set:\n got %+v\n old %+v\n new %+v", cs.name, got, before, after)
	case cs.post && !isPost:
		t.Fatalf("after a crash %s (the catalog was written), want the new shards, got the old ones", cs.name)
	case !cs.post && !isPre:
		t.Fatalf("after a crash %s (the catalog was not written), want the old shards, got the new ones", cs.name)
	}
	checkLineage(t, got)
	checkAcked(t, c.c, stream, ackedNow)
	checkNoOrphanLogs(t, c.fe)

	// The stream takes writes in its open shards (a parent sealed in the
	// engine but open in the catalog must be open again).
	open := openIDs(got)
	l2 := &ledger{tag: "new"}
	for _, a := range l2.mustPut(t, c.c, stream, 50) {
		if !open[a.Shard] {
			t.Fatalf("a record landed in %s, not one of the open shards %v", a.Shard, open)
		}
	}
	checkAcked(t, c.c, stream, append(ackedNow, l2.all()...))

	// A later split makes children without records.
	var first shardSig
	for _, s := range got {
		if s.open() {
			first = s
			break
		}
	}
	if err := splitOne(c, stream, rc.initial == 0, first); err != nil {
		t.Fatalf("split %s after the crash: %v", first.ID, err)
	}
	later := listShardSigs(t, c.c, stream)
	children := newIDs(got, later)
	if len(children) != 2 {
		t.Fatalf("split made shards %v, want 2", children)
	}
	checkEmpty(t, c.c, stream, children)
	checkLineage(t, later)
	checkNoOrphanLogs(t, c.fe)
	c.restart()
	checkEmpty(t, c.c, stream, children)
	checkAcked(t, c.c, stream, append(ackedNow, l2.all()...))
}

// splitOne splits an open shard in halves: with SplitShard, or on an
// ON_DEMAND stream (which refuses SplitShard) with an automatic split.
func splitOne(r *rig, stream string, onDemand bool, s shardSig) error {
	if onDemand {
		if n := r.srv.AutoSplitNow(stream, s.ID); n != 1 {
			return fmt.Errorf("automatic split split %d shards, want 1", n)
		}
		return nil
	}
	_, err := r.c.SplitShard(context.Background(), &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(s.ID), NewStartingHashKey: aws.String(midKey(s)),
	})
	return err
}
