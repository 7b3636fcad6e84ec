package fileengine_test

import (
	"context"
	"fmt"
	"os"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/fileengine"
)

// A stream record goes into the catalog, its shard's log gets a batch, and
// after a restart both are read back.
func Example() {
	dir, err := os.MkdirTemp("", "fileengine-example")
	if err != nil {
		panic(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx := context.Background()

	e, err := fileengine.Open(fileengine.Config{Dir: dir, Fsync: fileengine.FsyncAlways})
	if err != nil {
		panic(err)
	}
	meta := engine.StreamMeta{Name: "orders", ID: "a1", Status: "ACTIVE",
		Shards: []engine.ShardMeta{{Index: 0, Start: "0", End: "340282366920938463463374607431768211455"}}}
	id := engine.LogID{Stream: meta.ID, Shard: 0}
	l, err := e.CreateLog(ctx, id)
	if err != nil {
		panic(err)
	}
	version, err := e.Catalog().PutStream(ctx, meta, 0)
	if err != nil {
		panic(err)
	}
	first, _, err := l.Append(ctx, []engine.Record{
		{PartitionKey: "alpha", Data: []byte("hello")},
		{PartitionKey: "beta", Data: []byte("world")},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("stream version", version, "first record at", first)
	if err := e.Close(); err != nil {
		panic(err)
	}

	// Open reads the catalog; the log opens (and recovers) on first use.
	e, err = fileengine.Open(fileengine.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			panic(err)
		}
	}()
	streams, err := e.Catalog().Streams(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("streams:", len(streams), streams[0].Meta.Name, "open logs:", e.OpenLogs())
	l, err = e.OpenLog(ctx, id)
	if err != nil {
		panic(err)
	}
	entries, next, err := l.Read(ctx, engine.Position{}, 10, 1<<20)
	if err != nil {
		panic(err)
	}
	for _, en := range entries {
		fmt.Printf("%v %s=%s\n", en.Pos, en.PartitionKey, en.Data)
	}
	fmt.Println("next", next, "open logs:", e.OpenLogs())
	// Output:
	// stream version 1 first record at 0:0
	// streams: 1 orders open logs: 0
	// 0:0 alpha=hello
	// 0:1 beta=world
	// next 45:0 open logs: 1
}
