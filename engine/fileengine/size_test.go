package fileengine_test

import (
	"context"
	"testing"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/fileengine"
)

// LogSize counts a log's segment files and their bytes: nothing for a log
// without data, more after appends, a segment more after a roll.
func TestLogSize(t *testing.T) {
	ctx := context.Background()
	e, err := fileengine.Open(fileengine.Config{Dir: t.TempDir(), SegmentBytes: 4096, Fsync: fileengine.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	id := engine.LogID{Stream: "0123456789abcdef", Shard: 0}
	if b, n, err := e.LogSize(ctx, id); err != nil || b != 0 || n != 0 {
		t.Fatalf("LogSize of a missing log = %d, %d, %v", b, n, err)
	}
	l, err := e.CreateLog(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	data := make([]byte, 1000)
	for range 10 {
		if _, _, err := l.Append(ctx, []engine.Record{{PartitionKey: "k", Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	b, n, err := e.LogSize(ctx, id)
	if err != nil || b < 10_000 || n < 2 {
		t.Fatalf("LogSize after 10 KB in 4 KiB segments = %d bytes, %d segments, %v", b, n, err)
	}
}
