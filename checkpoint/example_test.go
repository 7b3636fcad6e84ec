package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shoalstream/shoal/checkpoint"
)

// Example_usage shows one worker's life with a lease: create it, take it,
// checkpoint as records are processed, notice when it is lost, release it on
// shutdown. It needs a database, so it is compiled but not run.
func Example_usage() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: "kinesis", Table: "leases"})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = store.Close() }() // always nil

	const app, shard = "orders-app", "shardId-000000000000"
	if _, err := store.CreateLease(ctx, checkpoint.Lease{
		Application: app, ShardID: shard,
		Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon},
	}); err != nil {
		log.Fatal(err)
	}

	// Hear at once about leases that are released or expire.
	events, err := store.Listen(ctx, app)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for e := range events {
			fmt.Println(e.Type, e.ShardID)
		}
	}()

	lease, err := store.GetLease(ctx, app, shard)
	if err != nil {
		log.Fatal(err)
	}
	if !lease.Available() {
		return // someone holds it
	}
	lease, err = store.TakeLease(ctx, lease, "worker-1")
	if err != nil {
		log.Fatal(err) // ErrLeaseLost: another worker was faster
	}

	// ... process records, then checkpoint the last one; every call returns
	// the lease to use next (its counter has moved).
	lease, err = store.Checkpoint(ctx, lease, checkpoint.Checkpoint{
		SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
	})
	switch {
	case errors.Is(err, checkpoint.ErrLeaseLost):
		return // stop processing the shard: another worker has it now
	case err != nil:
		log.Fatal(err)
	}

	// Renew every FailoverTime/3; release on shutdown so that another
	// worker takes over at once.
	if lease, err = store.RenewLease(ctx, lease); err != nil {
		log.Fatal(err)
	}
	if _, err := store.ReleaseLease(ctx, lease); err != nil {
		log.Fatal(err)
	}
}
