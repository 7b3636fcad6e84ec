package fileengine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

// legacyFixture is a meta.json as servers before the engine seam wrote it
// (server.metaRoot): two streams with shards, lineage, consumers and tags.
const legacyFixture = `{
  "version": 1,
  "secret": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
  "account": {
    "commitmentStatus": "ENABLED",
    "commitmentStart": 1700000000000
  },
  "streams": [
    {
      "name": "orders",
      "id": "a1b2",
      "created": 1700000000001,
      "status": "ACTIVE",
      "mode": "PROVISIONED",
      "retentionHours": 48,
      "tags": {"env": "prod", "team": "core"},
      "maxRecordKiB": 1024,
      "warmMiBps": 10,
      "distribution": "USER_PARTITION_KEY",
      "metrics": ["IncomingBytes", "IncomingRecords"],
      "trimFloorMs": 1699990000000,
      "nextIndex": 3,
      "scaleTimes": [1700000000100],
      "shards": [
        {"index": 0, "start": "0", "end": "340282366920938463463374607431768211455", "createdMs": 1700000000001, "endSeq": "49000", "closedMs": 1700000000100},
        {"index": 1, "parent": "shardId-000000000000", "start": "0", "end": "170141183460469231731687303715884105727", "createdMs": 1700000000100},
        {"index": 2, "parent": "shardId-000000000000", "start": "170141183460469231731687303715884105728", "end": "340282366920938463463374607431768211455", "createdMs": 1700000000100}
      ],
      "consumers": [
        {"name": "app", "created": 1700000000200, "status": "ACTIVE", "tags": {"owner": "x"}},
        {"name": "old", "created": 1700000000300, "status": "DELETING"}
      ]
    },
    {
      "name": "..",
      "id": "c3d4",
      "created": 1700000000002,
      "status": "CREATING",
      "mode": "ON_DEMAND",
      "retentionHours": 24,
      "maxRecordKiB": 1024,
      "distribution": "AUTO",
      "shards": [
        {"index": 0, "start": "0", "end": "340282366920938463463374607431768211455", "createdMs": 1700000000002}
      ]
    }
  ],
  "modified": 1700000000400
}`

func legacyWant() ([]engine.StreamMeta, engine.AccountMeta) {
	w := int32(10)
	orders := engine.StreamMeta{
		Name: "orders", ID: "a1b2", Created: 1700000000001, Status: "ACTIVE", Mode: "PROVISIONED",
		RetentionHours: 48, Tags: map[string]string{"env": "prod", "team": "core"}, MaxRecordKiB: 1024,
		WarmMiBps: &w, Distribution: "USER_PARTITION_KEY", Metrics: []string{"IncomingBytes", "IncomingRecords"},
		TrimFloorMs: 1699990000000, NextIndex: 3, ScaleTimes: []int64{1700000000100},
		Shards: []engine.ShardMeta{
			{Index: 0, Start: "0", End: "340282366920938463463374607431768211455", CreatedMs: 1700000000001, EndSeq: "49000", ClosedMs: 1700000000100},
			{Index: 1, Parent: "shardId-000000000000", Start: "0", End: "170141183460469231731687303715884105727", CreatedMs: 1700000000100},
			{Index: 2, Parent: "shardId-000000000000", Start: "170141183460469231731687303715884105728", End: "340282366920938463463374607431768211455", CreatedMs: 1700000000100},
		},
		Consumers: []engine.ConsumerMeta{
			{Name: "app", Created: 1700000000200, Status: "ACTIVE", Tags: map[string]string{"owner": "x"}},
			{Name: "old", Created: 1700000000300, Status: "DELETING"},
		},
	}
	dots := engine.StreamMeta{
		Name: "..", ID: "c3d4", Created: 1700000000002, Status: "CREATING", Mode: "ON_DEMAND", RetentionHours: 24,
		MaxRecordKiB: 1024, Distribution: "AUTO",
		Shards: []engine.ShardMeta{{Index: 0, Start: "0", End: "340282366920938463463374607431768211455", CreatedMs: 1700000000002}},
	}
	acc := engine.AccountMeta{
		Secret:           "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		CommitmentStatus: "ENABLED", CommitmentStart: 1700000000000,
	}
	return []engine.StreamMeta{dots, orders}, acc
}

// checkMigrated checks that the catalog holds exactly the fixture, at
// version 1, and that meta.json is gone.
func checkMigrated(t *testing.T, e *Engine) {
	t.Helper()
	ctx := context.Background()
	wantStreams, wantAcc := legacyWant()
	all, err := e.Catalog().Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Meta.Name < all[j].Meta.Name })
	if len(all) != len(wantStreams) {
		t.Fatalf("%d streams after migration, want %d", len(all), len(wantStreams))
	}
	for i, w := range wantStreams {
		if all[i].Version != 1 || !reflect.DeepEqual(all[i].Meta, w) {
			t.Fatalf("stream %d = version %d %+v\nwant version 1 %+v", i, all[i].Version, all[i].Meta, w)
		}
	}
	a, v, err := e.Catalog().Account(ctx)
	if err != nil || v != 1 || a != wantAcc {
		t.Fatalf("Account = %+v, %d, %v; want %+v, 1", a, v, err, wantAcc)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, legacyMetaFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("meta.json still there: %v", err)
	}
}

// TestMigrate opens a data dir of a legacy server: its shard logs stay
// where they are and its meta.json becomes catalog records.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A legacy shard log with data, written through the same layout.
	pre := openEngine(t, Config{Dir: filepath.Join(dir, "pre")})
	l, _ := pre.CreateLog(ctx, lid("a1b2", 1))
	want := appendT(t, l, makeRecs("legacy", 3))
	if err := pre.Close(); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "streams"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "pre", "streams", "a1b2"), filepath.Join(data, "streams", "a1b2")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, legacyMetaFile), []byte(legacyFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, Config{Dir: data})
	checkMigrated(t, e)
	l, _ = e.OpenLog(ctx, lid("a1b2", 1))
	checkEntries(t, readAll(t, l, 10), want)
	ids, err := e.Logs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != lid("a1b2", 1) {
		t.Fatalf("Logs = %v, %v", ids, err)
	}
	// Opening again changes nothing.
	e = reopen(t, e)
	checkMigrated(t, e)
}

// TestMigrateInterrupted: a migration a crash interrupted (some records
// written, others stale or extra, meta.json still there) is redone from
// meta.json.
func TestMigrateInterrupted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := openEngine(t, Config{Dir: dir})
	stale := sampleStream("orders")
	if _, err := e.Catalog().PutStream(ctx, stale, 0); err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v < 4; v++ { // version 4
		if _, err := e.Catalog().PutStream(ctx, stale, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Catalog().PutStream(ctx, sampleStream("extra"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Catalog().PutAccount(ctx, engine.AccountMeta{Secret: "wrong"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, legacyMetaFile), []byte(legacyFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, Config{Dir: dir})
	checkMigrated(t, e)
}

// TestMigrateBad: an unreadable meta.json fails Open and stays in place.
func TestMigrateBad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, legacyMetaFile)
	if err := os.WriteFile(p, []byte(`{"streams":[{"name":""}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if e, err := Open(Config{Dir: dir}); err == nil {
		_ = e.Close() // the test fails below anyway
		t.Fatal("Open with a nameless legacy stream succeeded")
	}
	if err := os.WriteFile(p, []byte(`{`), 0o644); err != nil {
		t.Fatal(err)
	}
	if e, err := Open(Config{Dir: dir}); err == nil {
		_ = e.Close() // the test fails below anyway
		t.Fatal("Open with a broken meta.json succeeded")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("meta.json: %v", err)
	}
}
