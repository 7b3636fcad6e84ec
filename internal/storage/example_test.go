package storage_test

import (
	"fmt"
	"os"

	"github.com/shoalstream/shoal/internal/storage"
)

func Example() {
	dir, err := os.MkdirTemp("", "shoal-example")
	if err != nil {
		panic(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	l, err := storage.Open(dir, storage.Options{Fsync: storage.FsyncAlways})
	if err != nil {
		panic(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			panic(err)
		}
	}()

	first, _, err := l.Append([]storage.Record{
		{PartitionKey: "alpha", Data: []byte("hello")},
		{PartitionKey: "beta", Data: []byte("world")},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("first record at", first)

	entries, next, err := l.Read(l.Oldest(), 10, 1<<20)
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		fmt.Printf("%v %s=%s\n", e.Pos, e.PartitionKey, e.Data)
	}
	fmt.Println("next read starts at", next, "== End:", next == l.End())
	// Output:
	// first record at 0:0
	// 0:0 alpha=hello
	// 0:1 beta=world
	// next read starts at 45:0 == End: true
}
