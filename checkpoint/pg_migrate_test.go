package checkpoint

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/testutil/pgtest"
)

// TestPGMigrationFromVersion1: a lease table as the previous release of this
// library left it (schema version 1, rows written by its workers) is
// migrated in place by the current one: every lease reads as before, with
// no hand-off and no checkpoint timestamp, and the new operations (hand-off,
// reset to a time) and their events work on the old rows.
func TestPGMigrationFromVersion1(t *testing.T) {
	pool, schema := pgtest.New(t)
	ctx := t.Context()
	cfg := PGConfig{Schema: schema, Table: "leases", FailoverTime: time.Minute, Logger: zaptest.NewLogger(t)}.withDefaults()
	old := &PGStore{pool: pool, cfg: cfg, log: cfg.Logger, n: newPGNames(cfg.Schema, cfg.Table)}
	old.life, old.close = context.WithCancel(context.Background())
	defer old.close()
	if err := old.migrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	v, err := old.schemaVersion(ctx, pool)
	if err != nil || v != 1 {
		t.Fatalf("schema version %d, %v; want 1", v, err)
	}
	// What version 1's workers wrote: an owned lease with a checkpoint and
	// a pending checkpoint, an unowned one, an ended parent with children.
	for _, stmt := range []string{
		`INSERT INTO ` + old.n.table + ` (application, shard_id, lease_owner, lease_counter, checkpoint_seq, checkpoint_subseq,
	pending_checkpoint_seq, pending_checkpoint_subseq, owner_switches_since_checkpoint, expires_at, op_token)
VALUES ('app', 'shardId-000000000001', 'w1', 7, '12345678901234567890', 3, '12345678901234567899', 0, 1, now() + interval '1 hour', 42)`,
		`INSERT INTO ` + old.n.table + ` (application, shard_id, checkpoint_seq) VALUES ('app', 'shardId-000000000002', 'TRIM_HORIZON')`,
		`INSERT INTO ` + old.n.table + ` (application, shard_id, lease_counter, checkpoint_seq, child_shard_ids, starting_hash_key, ending_hash_key)
VALUES ('app', 'shardId-000000000000', 3, 'SHARD_END', '{shardId-000000000001,shardId-000000000002}', '0', '99')`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// A listener of version 1 is on the channel when the migration runs.
	conn, err := old.listenConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(conn)

	s, err := NewPGStore(ctx, pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if v, err := s.schemaVersion(ctx, pool); err != nil || v != latestVersion() {
		t.Fatalf("schema version after the migration %d, %v; want %d", v, err, latestVersion())
	}
	leases, err := s.ListLeases(ctx, "app")
	if err != nil || len(leases) != 3 {
		t.Fatalf("ListLeases = %+v, %v", leases, err)
	}
	parent, owned, free := leases[0], leases[1], leases[2]
	if !parent.Checkpoint.IsShardEnd() || parent.Counter != 3 || len(parent.ChildShardIDs) != 2 || parent.EndingHashKey != "99" {
		t.Errorf("ended parent after the migration: %+v", parent)
	}
	if owned.Owner != "w1" || owned.Counter != 7 || owned.Checkpoint != (Checkpoint{SequenceNumber: "12345678901234567890", SubSequenceNumber: 3}) ||
		owned.PendingCheckpoint == nil || owned.PendingCheckpoint.SequenceNumber != "12345678901234567899" ||
		owned.OwnerSwitchesSinceCheckpoint != 1 || owned.Expired {
		t.Errorf("owned lease after the migration: %+v", owned)
	}
	for _, l := range leases {
		if l.HandoffTo != "" || l.HandoffPending() || !l.HandoffExpiresAt.IsZero() {
			t.Errorf("%s: a hand-off after the migration: %+v", l.ShardID, l)
		}
	}
	if free.Owner != "" || free.Counter != 0 || free.Checkpoint.SequenceNumber != TrimHorizon {
		t.Errorf("unowned lease after the migration: %+v", free)
	}

	// The old owner's copy is still good (the columns it knows did not
	// change); a hand-off of its lease is asked for and made.
	if owned, err = s.RenewLease(ctx, owned); err != nil {
		t.Fatalf("renew a version 1 lease: %v", err)
	}
	if _, err := s.RequestHandoff(ctx, owned, "w2"); err != nil {
		t.Fatal(err)
	}
	// A listener's connection opened before the migration hears the new
	// trigger's events: version 1's fields, and the requester.
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(n.Payload), &payload); err != nil {
		t.Fatal(err)
	}
	if payload["type"] != string(EventHandoffRequested) || payload["application"] != "app" || payload["shard_id"] != "shardId-000000000001" ||
		payload["owner"] != "w1" || payload["counter"] != float64(owned.Counter) || payload["handoff_to"] != "w2" {
		t.Errorf("notification %s", n.Payload)
	}
	handed, err := s.HandOffLease(ctx, owned)
	if err != nil || handed.Owner != "w2" || handed.Checkpoint != owned.Checkpoint {
		t.Fatalf("hand-off of a version 1 lease = %+v, %v", handed, err)
	}

	// A reset of a version 1 row to a time: the new column keeps the time,
	// and the trigger announces the reset.
	at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	reset, err := s.ResetLeases(ctx, "app", []string{free.ShardID}, AtTime(at))
	if err != nil || len(reset) != 1 || reset[0].Checkpoint != AtTime(at) {
		t.Fatalf("reset of a version 1 lease = %+v, %v", reset, err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(n.Payload), &payload); err != nil {
			t.Fatal(err)
		}
		if payload["type"] == string(EventReset) {
			if payload["shard_id"] != free.ShardID || payload["counter"] != float64(reset[0].Counter) {
				t.Errorf("notification %s", n.Payload)
			}
			break
		}
	}

	// A second store finds the table current and migrates nothing.
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "leases_schema_version"}.Sanitize()).Scan(&rows); err != nil || rows != latestVersion() {
		t.Fatalf("%d version rows, %v", rows, err)
	}
	again, err := NewPGStore(ctx, pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = again.Close()
}

// TestPGMigrationFromVersion2: a lease table of schema version 2, with rows
// as version 2's workers write them (a hand-off pending, a reset to a
// time), is migrated in place: every row joins the empty stream (the
// application's only stream) and reads as before under its bare shard ID;
// the old owner's copy stays good; leases of named streams may then share
// the shard IDs; events carry the stream.
func TestPGMigrationFromVersion2(t *testing.T) {
	pool, schema := pgtest.New(t)
	ctx := t.Context()
	cfg := PGConfig{Schema: schema, Table: "leases", FailoverTime: time.Minute, Logger: zaptest.NewLogger(t)}.withDefaults()
	old := &PGStore{pool: pool, cfg: cfg, log: cfg.Logger, n: newPGNames(cfg.Schema, cfg.Table)}
	old.life, old.close = context.WithCancel(context.Background())
	defer old.close()
	if err := old.migrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO ` + old.n.table + ` (application, shard_id, lease_owner, lease_counter, checkpoint_seq, checkpoint_subseq,
	owner_switches_since_checkpoint, expires_at, op_token, handoff_to, handoff_expires_at)
VALUES ('app', 'shardId-000000000001', 'w1', 7, '12345678901234567890', 3, 1, now() + interval '1 hour', 42, 'w2', now() + interval '1 hour')`,
		`INSERT INTO ` + old.n.table + ` (application, shard_id, lease_counter, checkpoint_seq, checkpoint_timestamp)
VALUES ('app', 'shardId-000000000002', 4, 'AT_TIMESTAMP', '2030-01-02T03:04:05Z')`,
		`INSERT INTO ` + old.n.table + ` (application, shard_id, checkpoint_seq) VALUES ('other-app', 'shardId-000000000001', 'LATEST')`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	conn, err := old.listenConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(conn)

	s, err := NewPGStore(ctx, pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if v, err := s.schemaVersion(ctx, pool); err != nil || v != 3 {
		t.Fatalf("schema version after the migration %d, %v; want 3", v, err)
	}
	leases, err := s.ListLeases(ctx, "app")
	if err != nil || len(leases) != 2 {
		t.Fatalf("ListLeases = %+v, %v", leases, err)
	}
	owned, reset := leases[0], leases[1]
	for _, l := range leases {
		if l.Stream != "" || l.Key() != l.ShardID {
			t.Errorf("%s: stream %q after the migration", l.ShardID, l.Stream)
		}
	}
	if owned.Owner != "w1" || owned.Counter != 7 || owned.Checkpoint != (Checkpoint{SequenceNumber: "12345678901234567890", SubSequenceNumber: 3}) ||
		owned.HandoffTo != "w2" || !owned.HandoffPending() {
		t.Errorf("owned lease after the migration: %+v", owned)
	}
	if reset.Counter != 4 || reset.Checkpoint != AtTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("reset lease after the migration: %+v", reset)
	}
	if got, err := s.GetLease(ctx, "other-app", "shardId-000000000001"); err != nil || got.Checkpoint.SequenceNumber != Latest {
		t.Errorf("other application's lease = %+v, %v", got, err)
	}

	// The old owner's copy is still good: it hands the lease over.
	handed, err := s.HandOffLease(ctx, owned)
	if err != nil || handed.Owner != "w2" || handed.Stream != "" {
		t.Fatalf("hand-off of a version 2 lease = %+v, %v", handed, err)
	}
	// A named stream's lease of the same shard ID is a lease of its own.
	stream := StreamIdentity("arn:aws:kinesis:us-east-1:000000000000:stream/orders", time.UnixMilli(1_700_000_000_000))
	created, err := s.CreateLease(ctx, Lease{Application: "app", Stream: stream, ShardID: "shardId-000000000001"})
	if err != nil || !created {
		t.Fatalf("CreateLease in a named stream = %v, %v", created, err)
	}
	// A listener's connection opened before the migration hears the
	// stream in the new trigger's events.
	var payload map[string]any
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(n.Payload), &payload); err != nil {
			t.Fatal(err)
		}
		if payload["type"] == string(EventCreated) {
			break
		}
	}
	if payload["stream"] != stream || payload["shard_id"] != "shardId-000000000001" {
		t.Errorf("notification %v", payload)
	}
	if got, err := s.GetLease(ctx, "app", "shardId-000000000001"); err != nil || got.Owner != "w2" {
		t.Errorf("the empty stream's lease = %+v, %v", got, err)
	}
	if got, err := s.GetLease(ctx, "app", LeaseKey(stream, "shardId-000000000001")); err != nil || got.Owner != "" || got.Stream != stream {
		t.Errorf("the named stream's lease = %+v, %v", got, err)
	}
}
