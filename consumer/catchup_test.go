package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestCatchUpProcessesChildrenFirst: in catch-up mode (Config.CatchUp) the
// children of a split are processed while their parent is still busy with
// its records, on the real server (SplitShard) and database; the parent
// then ends as usual. (Without it, children wait for their parents:
// TestReshardChildrenAfterParents.)
func TestCatchUpProcessesChildrenFirst(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	parent := e.shardIDs()[0]
	parentData := putN(e, "p", 3)
	release := make(chan struct{})
	blocked := make(chan struct{})
	var once atomic.Bool
	w := e.startWorker("w", func(c *Config) { c.CatchUp = true }, e.ledger.factory("w", procOptions{checkpointEvery: true,
		onBatch: func(ctx context.Context, p *ledgerProc, _ ProcessRecordsInput) error {
			if p.shard != parent || !once.CompareAndSwap(false, true) {
				return nil
			}
			close(blocked)
			select { // the parent's first batch takes until the test says
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}))
	select {
	case <-blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the parent's first batch was not delivered")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(testStream), ShardToSplit: aws.String(parent),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"), // 2^127: halves
	}); err != nil {
		t.Fatalf("split: %v", err)
	}
	var children []string
	eventually(t, 30*time.Second, func() error {
		children = slices.DeleteFunc(e.shardIDs(), func(id string) bool { return id == parent })
		if len(children) != 2 {
			return fmt.Errorf("children %v", children)
		}
		return nil
	})
	w.w.requestSync() // creates the children's leases now, rather than at the next ShardSyncInterval
	var keys, childData []string
	for i := range 20 {
		keys = append(keys, fmt.Sprint("key-", i))
		childData = append(childData, fmt.Sprint("c", i))
	}
	e.put(keys, childData)
	eventually(t, 30*time.Second, func() error {
		if miss := e.ledger.missing(childData); len(miss) > 0 {
			return fmt.Errorf("children's records not processed: %v", miss)
		}
		return nil
	})
	// ... while the parent is still in its first batch.
	_, evs := e.ledger.snapshot()
	if slices.ContainsFunc(evs, func(ev procEvent) bool { return ev.shard == parent && ev.kind == "ending" }) {
		t.Fatal("the parent ended before the test released it")
	}
	if l := e.lease(parent); l.Checkpoint.IsShardEnd() {
		t.Fatalf("parent at %s", l.Checkpoint)
	}
	ds, _ := e.ledger.snapshot()
	for _, c := range children {
		if l := e.lease(c); !slices.Equal(l.ParentShardIDs, []string{parent}) {
			t.Errorf("child %s: parents %v", c, l.ParentShardIDs)
		}
		if !slices.ContainsFunc(ds, func(d delivery) bool { return d.shard == c }) {
			t.Errorf("child %s: nothing delivered", c)
		}
	}

	close(release)
	eventually(t, 30*time.Second, func() error {
		if miss := e.ledger.missing(parentData); len(miss) > 0 {
			return fmt.Errorf("parent's records not processed: %v", miss)
		}
		l, err := e.store.GetLease(context.Background(), testApp, parent)
		if err != nil || !l.Checkpoint.IsShardEnd() {
			return fmt.Errorf("parent at %s (%v)", l.Checkpoint, err)
		}
		return nil
	})
	if err := w.stop(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	e.ledger.checkOrder(t)
}
