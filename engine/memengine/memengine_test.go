package memengine_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/memengine"
)

// clock is a settable time source.
type clock struct{ ms int64 }

func (c *clock) now() time.Time { return time.UnixMilli(c.ms) }

func newLog(t *testing.T, c *clock) (*memengine.Engine, engine.Log) {
	t.Helper()
	e := memengine.New(memengine.Config{Now: c.now})
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	l, err := e.CreateLog(t.Context(), engine.LogID{Stream: "s", Shard: 0})
	if err != nil {
		t.Fatal(err)
	}
	return e, l
}

func appendN(t *testing.T, l engine.Log, n int) engine.Position {
	t.Helper()
	rs := make([]engine.Record, n)
	for i := range rs {
		rs[i] = engine.Record{PartitionKey: "k", Data: []byte{byte(i)}}
	}
	p, _, err := l.Append(t.Context(), rs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Offsets are batch sequence numbers from 1, never reused after a trim;
// indexes count records in the batch.
func TestPositions(t *testing.T) {
	c := &clock{ms: 1000}
	_, l := newLog(t, c)
	ctx := t.Context()
	if in, _ := l.Info(ctx); in.Oldest != (engine.Position{Offset: 1}) || in.End != in.Oldest {
		t.Fatalf("Info of an empty log = %+v", in)
	}
	for i := uint64(1); i <= 3; i++ {
		if p := appendN(t, l, 3); p != (engine.Position{Offset: i}) {
			t.Fatalf("batch %d at %v", i, p)
		}
		c.ms += 10
	}
	es, next, err := l.Read(ctx, engine.Position{Offset: 2, Index: 1}, 3, 0)
	if err != nil || len(es) != 3 || es[0].Pos != (engine.Position{Offset: 2, Index: 1}) || es[2].Pos != (engine.Position{Offset: 3, Index: 0}) || next != (engine.Position{Offset: 3, Index: 1}) {
		t.Fatalf("Read = %v, %v, %v", es, next, err)
	}
	// TrimBefore drops whole batches that arrived before the cutoff.
	if n, err := l.TrimBefore(ctx, 1011); n != 2 || err != nil {
		t.Fatalf("TrimBefore = %d, %v; want 2", n, err)
	}
	if in, _ := l.Info(ctx); in.Oldest != (engine.Position{Offset: 3}) || in.End != (engine.Position{Offset: 4}) || in.LastArrivalMillis != 1020 {
		t.Fatalf("Info after TrimBefore = %+v", in)
	}
	if n, _ := l.TrimBefore(ctx, 5000); n != 1 {
		t.Fatalf("TrimBefore of the rest = %d, want 1", n)
	}
	es, next, err = l.Read(ctx, engine.Position{}, 10, 0)
	if err != nil || len(es) != 0 || next != (engine.Position{Offset: 4}) {
		t.Fatalf("Read of a trimmed log = %v, %v, %v; want nothing, next = end", es, next, err)
	}
	if p := appendN(t, l, 1); p != (engine.Position{Offset: 4}) {
		t.Fatalf("append after trimming everything at %v, want 4:0", p)
	}
}

// Read fills its limits greedily; a limit <= 0 is no limit.
func TestReadLimits(t *testing.T) {
	_, l := newLog(t, &clock{})
	ctx := t.Context()
	appendN(t, l, 10) // 10 records of 2 bytes
	for _, c := range []struct{ maxRecords, maxBytes, want int }{
		{0, 0, 10}, {-1, -1, 10}, {4, 0, 4}, {0, 7, 3}, {0, 8, 4}, {2, 8, 2}, {0, 1, 1},
	} {
		es, _, err := l.Read(ctx, engine.Position{}, c.maxRecords, c.maxBytes)
		if err != nil || len(es) != c.want {
			t.Fatalf("Read(maxRecords %d, maxBytes %d) = %d entries, %v; want %d", c.maxRecords, c.maxBytes, len(es), err, c.want)
		}
	}
}

// Entries' data do not overlap: appending to one does not change the next.
func TestReadDataCapacity(t *testing.T) {
	_, l := newLog(t, &clock{})
	appendN(t, l, 3)
	es, _, err := l.Read(t.Context(), engine.Position{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(es[0].Data, 0xee)
	if !bytes.Equal(es[1].Data, []byte{1}) {
		t.Fatalf("appending to an entry's data changed the next one: %x", es[1].Data)
	}
}

// A nil Config.Now means the wall clock.
func TestWallClock(t *testing.T) {
	e := memengine.New(memengine.Config{})
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	l, err := e.CreateLog(context.Background(), engine.LogID{Stream: "s"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	_, ms, err := l.Append(context.Background(), []engine.Record{{PartitionKey: "k"}})
	if err != nil || ms < before || ms > time.Now().UnixMilli() {
		t.Fatalf("arrival %d, %v; want the wall clock's time (%d..)", ms, err, before)
	}
}

// Versions are unique across records, so a deleted and re-created record
// never matches a version its predecessor had.
func TestVersionsUnique(t *testing.T) {
	e := memengine.New(memengine.Config{})
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	ctx := t.Context()
	c := e.Catalog()
	v1, err := c.PutStream(ctx, engine.StreamMeta{Name: "s"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteStream(ctx, "s", v1); err != nil {
		t.Fatal(err)
	}
	v2, err := c.PutStream(ctx, engine.StreamMeta{Name: "s"}, 0)
	if err != nil || v2 == v1 {
		t.Fatalf("re-created record version %d, %v; the deleted one had %d", v2, err, v1)
	}
}
