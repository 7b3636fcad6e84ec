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

// TrimToSize drops a log's oldest segments down to its budget, never the
// active one; reads, SeekTime and Info start at the new oldest record.
func TestTrimToSize(t *testing.T) {
	ctx := context.Background()
	e, err := fileengine.Open(fileengine.Config{Dir: t.TempDir(), SegmentBytes: 4096, Fsync: fileengine.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	var _ engine.SizeTrimmer = e
	id := engine.LogID{Stream: "0123456789abcdef", Shard: 0}
	if n, err := e.TrimToSize(ctx, id, 1); err != nil || n != 0 {
		t.Fatalf("TrimToSize of a missing log = %d, %v", n, err)
	}
	l, err := e.CreateLog(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	var firsts []engine.Position
	for i := range 40 {
		data := make([]byte, 1000)
		data[0] = byte(i)
		p, _, err := l.Append(ctx, []engine.Record{{PartitionKey: "k", Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, p)
	}
	before, segs, err := e.LogSize(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.TrimToSize(ctx, id, before); err != nil || n != 0 {
		t.Fatalf("TrimToSize within budget = %d, %v", n, err)
	}
	if n, err := e.TrimToSize(ctx, id, 0); err != nil || n != 0 {
		t.Fatalf("TrimToSize(0) = %d, %v", n, err)
	}
	const budget = 10_000
	n, err := e.TrimToSize(ctx, id, budget)
	if err != nil || n == 0 {
		t.Fatalf("TrimToSize = %d, %v", n, err)
	}
	after, left, err := e.LogSize(ctx, id)
	if err != nil || after > budget || left != segs-n {
		t.Fatalf("after TrimToSize(%d): %d bytes in %d segments (was %d in %d, %d removed), %v", budget, after, left, before, segs, n, err)
	}
	info, err := l.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !firsts[0].Less(info.Oldest) {
		t.Fatalf("Oldest %v did not move", info.Oldest)
	}
	if p, err := l.SeekTime(ctx, 0); err != nil || p != info.Oldest {
		t.Fatalf("SeekTime(0) = %v, %v; Oldest %v", p, err, info.Oldest)
	}
	es, _, err := l.Read(ctx, engine.Position{}, 100, 0)
	if err != nil || len(es) == 0 || es[0].Pos != info.Oldest {
		t.Fatalf("read from 0: %d entries, %v; Oldest %v", len(es), err, info.Oldest)
	}
	k := 0
	for firsts[k] != info.Oldest {
		k++
	}
	if len(es) != len(firsts)-k {
		t.Fatalf("read %d records, want the newest %d", len(es), len(firsts)-k)
	}
	for i, en := range es {
		if en.Pos != firsts[k+i] || len(en.Data) != 1000 || en.Data[0] != byte(k+i) {
			t.Fatalf("record %d: %v, %d bytes, first byte %d", i, en.Pos, len(en.Data), en.Data[0])
		}
	}
	// A tiny budget keeps the active segment.
	if _, err := e.TrimToSize(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if _, left, err := e.LogSize(ctx, id); err != nil || left != 1 {
		t.Fatalf("after TrimToSize(1): %d segments, %v", left, err)
	}
	if es, _, err := l.Read(ctx, engine.Position{}, 100, 0); err != nil || len(es) == 0 || es[len(es)-1].Pos != firsts[len(firsts)-1] {
		t.Fatalf("the newest record is gone: %d entries, %v", len(es), err)
	}
	if err := e.DeleteLog(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, err := e.TrimToSize(ctx, id, 1); err != nil || n != 0 {
		t.Fatalf("TrimToSize of a deleted log = %d, %v", n, err)
	}
}
