package natsengine_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/natsengine"
)

// Open the engine on a NATS cluster, store a stream record, append a batch
// to one of its shard logs, read it back and seal the log. It needs NATS
// servers with JetStream (sync_interval: always, 2.12.3 or newer); the
// example only compiles, as it has no server to run against.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := natsengine.Open(ctx, natsengine.Config{
		URL:    "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222",
		Prefix: "SHOAL",
	})
	if err != nil {
		fmt.Println("NATS not ready:", err) // the caller retries
		return
	}
	defer func() { _ = e.Close() }()

	meta := engine.StreamMeta{Name: "orders", ID: "a1b2", Status: "ACTIVE",
		Shards: []engine.ShardMeta{{Index: 0, Start: "0", End: "340282366920938463463374607431768211455"}}}
	if _, err := e.Catalog().PutStream(ctx, meta, 0); err != nil {
		fmt.Println(err)
		return
	}
	// The labels end up in the JetStream stream's metadata.
	lctx := engine.WithLabels(ctx, engine.Labels{StreamName: "orders", ShardID: "shardId-000000000000"})
	l, err := e.CreateLog(lctx, engine.LogID{Stream: meta.ID, Shard: 0}) // JetStream stream SHOAL_a1b2_0
	if err != nil {
		fmt.Println(err)
		return
	}
	first, ms, err := l.Append(ctx, []engine.Record{
		{PartitionKey: "alice", Data: []byte("apple")},
		{PartitionKey: "bob", Data: []byte("banana")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("appended at", first, "arrival", ms)
	entries, next, err := l.Read(ctx, first, 10, 1<<20)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, en := range entries {
		fmt.Printf("%v %s=%s\n", en.Pos, en.PartitionKey, en.Data)
	}
	end, err := l.Seal(ctx)
	fmt.Println("next", next, "sealed at", end, err)
	if err := l.Unseal(ctx); errors.Is(err, engine.ErrIrreversible) {
		fmt.Println("a JetStream seal stays")
	}
}
