package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/checkpoint/memstore"
)

// Example keeps one shard's lease in memory: a worker takes it, processes,
// checkpoints and releases it; another worker of the same application
// then finds the checkpoint.
func Example() {
	ctx := context.Background()
	table := memstore.NewTable()
	worker1, worker2 := table.Store(10*time.Second), table.Store(10*time.Second)
	defer func() { _ = worker1.Close(); _ = worker2.Close() }()

	l := checkpoint.Lease{Application: "orders-app", ShardID: "shardId-000000000000"}
	if _, err := worker1.CreateLease(ctx, l); err != nil {
		panic(err)
	}
	l, _ = worker1.GetLease(ctx, l.Application, l.ShardID)
	l, err := worker1.TakeLease(ctx, l, "worker-1")
	if err != nil {
		panic(err)
	}
	l, err = worker1.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588802"})
	if err != nil {
		panic(err)
	}
	if _, err := worker1.ReleaseLease(ctx, l); err != nil {
		panic(err)
	}

	seen, _ := worker2.GetLease(ctx, "orders-app", "shardId-000000000000")
	fmt.Println(seen.Owner == "", seen.Checkpoint.SequenceNumber)
	// Output: true 49590338271490256608559692538361571095921575989136588802
}
