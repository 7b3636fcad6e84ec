package fileengine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// buildDataDir fills dir with streams*shards shard logs, each a real
// segment file holding one batch, and one catalog record per stream. It
// returns the records of that batch.
func buildDataDir(tb testing.TB, dir string, streams, shards int) []engine.Record {
	tb.Helper()
	recs := makeRecs("template", 3)
	tmpl := tb.TempDir()
	sl, err := storage.Open(tmpl, storage.Options{Fsync: storage.FsyncNever})
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := sl.Append(recs); err != nil {
		tb.Fatal(err)
	}
	if err := sl.Close(); err != nil {
		tb.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(tmpl, "00000000000000000000.log"))
	if err != nil {
		tb.Fatal(err)
	}
	catDir := filepath.Join(dir, "catalog", "streams")
	if err := os.MkdirAll(catDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for s := 0; s < streams; s++ {
		m := engine.StreamMeta{Name: fmt.Sprintf("stream-%04d", s), ID: fmt.Sprintf("id%04d", s), Status: "ACTIVE"}
		for i := 0; i < shards; i++ {
			d := filepath.Join(dir, "streams", m.ID, shardName(uint32(i)))
			if err := os.MkdirAll(d, 0o755); err != nil {
				tb.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "00000000000000000000.log"), seg, 0o644); err != nil {
				tb.Fatal(err)
			}
			m.Shards = append(m.Shards, engine.ShardMeta{Index: uint32(i), Start: "0", End: strconv.Itoa(i)})
		}
		// Written directly (no fsync) to build large catalogs quickly.
		raw, err := json.Marshal(streamFile{Version: 1, Stream: m})
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(catDir, streamFileName(m.Name)), raw, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	// As a clean Close leaves it: Open recovers logs lazily.
	if err := leaveCleanMarker(dir); err != nil {
		tb.Fatal(err)
	}
	return recs
}

// TestOpen10kLogs opens an engine over 10,000 shard logs (100 streams of
// 100 shards): Open and Catalog().Streams open no log and take well under
// a second; a log opens, recovered, on first use.
func TestOpen10kLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 shard logs")
	}
	ctx := context.Background()
	dir := t.TempDir()
	recs := buildDataDir(t, dir, 100, 100)
	fds := countFDs()

	start := time.Now()
	e, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, e)
	all, err := e.Catalog().Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("Open + Catalog().Streams over 10,000 shard logs (100 streams): %v", elapsed)
	if len(all) != 100 {
		t.Fatalf("%d streams, want 100", len(all))
	}
	if e.OpenLogs() != 0 {
		t.Fatalf("Open opened %d logs", e.OpenLogs())
	}
	if now := countFDs(); fds >= 0 && now > fds+2 {
		t.Fatalf("Open left %d descriptors open (%d before)", now-fds, fds)
	}
	// No bound on elapsed: the machine's speed is not under test. What
	// makes Open independent of the number of logs is asserted above (it
	// opened none); the time is logged for the record.

	start = time.Now()
	ids, err := e.Logs(ctx)
	if err != nil || len(ids) != 10_000 {
		t.Fatalf("Logs = %d ids, %v", len(ids), err)
	}
	t.Logf("Logs() listing 10,000 shard logs: %v", time.Since(start))

	start = time.Now()
	l, _ := e.OpenLog(ctx, lid("id0042", 42))
	es, _, err := l.Read(ctx, engine.Position{}, 10, 0)
	if err != nil || len(es) != len(recs) || es[2].PartitionKey != recs[2].PartitionKey {
		t.Fatalf("Read of a lazily opened log = %d entries, %v", len(es), err)
	}
	t.Logf("first Read of one log (open + recovery): %v", time.Since(start))
	if e.OpenLogs() != 1 {
		t.Fatalf("OpenLogs = %d after one read, want 1", e.OpenLogs())
	}
}

// BenchmarkOpen10kLogs measures Open + Catalog().Streams + Close over
// 10,000 shard logs: 100 streams of 100 shards, and 10,000 streams of one
// shard (10,000 catalog files).
func BenchmarkOpen10kLogs(b *testing.B) {
	for _, c := range []struct{ streams, shards int }{{100, 100}, {10_000, 1}} {
		b.Run(fmt.Sprintf("streams=%d", c.streams), func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			buildDataDir(b, dir, c.streams, c.shards)
			for b.Loop() {
				e, err := Open(Config{Dir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if all, err := e.Catalog().Streams(ctx); err != nil || len(all) != c.streams {
					b.Fatalf("Streams = %d, %v", len(all), err)
				}
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutStream measures one durable catalog update (a
// compare-and-set chain on one stream record: write, fsync, rename, fsync
// of the directory).
func BenchmarkPutStream(b *testing.B) {
	ctx := context.Background()
	e := openEngine(b, Config{})
	m := sampleStream("bench")
	v, err := e.Catalog().PutStream(ctx, m, 0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if v, err = e.Catalog().PutStream(ctx, m, v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutStreamParallel updates a different stream per goroutine:
// writes of different names do not wait for each other's fsyncs.
func BenchmarkPutStreamParallel(b *testing.B) {
	ctx := context.Background()
	e := openEngine(b, Config{})
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		m := sampleStream(fmt.Sprintf("bench-%d", n.Add(1)))
		var v uint64
		var err error
		for pb.Next() {
			if v, err = e.Catalog().PutStream(ctx, m, v); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
