package memengine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/memengine"
)

// Append a batch to a shard log, read it back and seal the log.
func Example() {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	e := memengine.New(memengine.Config{Now: func() time.Time { return now }})
	defer func() {
		if err := e.Close(); err != nil {
			panic(err)
		}
	}()

	l, err := e.CreateLog(ctx, engine.LogID{Stream: "orders-1", Shard: 0})
	if err != nil {
		panic(err)
	}
	first, ms, err := l.Append(ctx, []engine.Record{
		{PartitionKey: "alice", Data: []byte("apple")},
		{PartitionKey: "bob", Data: []byte("banana")},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("appended at", first, "arrival", ms)

	entries, next, err := l.Read(ctx, engine.Position{}, 10, 1<<20)
	if err != nil {
		panic(err)
	}
	for _, en := range entries {
		fmt.Printf("%v %s=%s\n", en.Pos, en.PartitionKey, en.Data)
	}
	fmt.Println("next", next)

	end, _ := l.Seal(ctx)
	_, _, err = l.Append(ctx, []engine.Record{{PartitionKey: "carol"}})
	fmt.Println("sealed at", end, "then:", err)
	// Output:
	// appended at 1:0 arrival 1700000000000
	// 1:0 alice=apple
	// 1:1 bob=banana
	// next 2:0
	// sealed at 2:0 then: memengine: append to orders-1/0: engine: log sealed
}
