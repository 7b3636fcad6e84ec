package console_test

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

type leaseAnswer struct {
	ShardID            string   `json:"shardId"`
	Owner              string   `json:"owner"`
	Counter            int64    `json:"counter"`
	Checkpoint         string   `json:"checkpoint"`
	SubSequenceNumber  int64    `json:"subSequenceNumber"`
	ExpiresAt          *string  `json:"expiresAt"`
	Expired            bool     `json:"expired"`
	UpdatedAt          *string  `json:"updatedAt"`
	LastRenewalAgoMs   int64    `json:"lastRenewalAgoMs"`
	MillisBehindLatest *int64   `json:"millisBehindLatest"`
	Parents            []string `json:"parents"`
}

// TestApplications reads a lease table in PostgreSQL (DATABASE_URL, a
// schema of the test's own; skipped when unreachable, failed under CI=true).
func TestApplications(t *testing.T) {
	pool, schema := pgtest.New(t)
	ctx := t.Context()
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: "leases"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	e := newEnv(t, server.Config{}, console.Config{LeaseDatabaseURL: pgtest.URL(), LeaseSchema: schema, LeaseTable: "leases"})
	e.createStream("orders", 2)
	seq := ""
	shard := ""
	for range 2 {
		out, err := e.sdk.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if seq == "" {
			seq, shard = aws.ToString(out.SequenceNumber), aws.ToString(out.ShardId)
		}
	}
	if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: "orders-app", ShardID: shard, Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}}); err != nil {
		t.Fatal(err)
	}
	l, err := store.GetLease(ctx, "orders-app", shard)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = store.TakeLease(ctx, l, "worker-1"); err != nil {
		t.Fatal(err)
	}
	if _, err = store.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: seq, SubSequenceNumber: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: "orders-app", ShardID: "shardId-000000000009", ParentShardIDs: []string{"shardId-000000000000"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: "billing", ShardID: shard}); err != nil {
		t.Fatal(err)
	}

	var apps struct {
		Applications []string `json:"applications"`
	}
	e.mustDo(http.MethodGet, "/console/api/applications", nil, http.StatusOK, &apps)
	if len(apps.Applications) != 2 || apps.Applications[0] != "billing" || apps.Applications[1] != "orders-app" {
		t.Errorf("applications %v", apps.Applications)
	}
	var got struct {
		Leases []leaseAnswer `json:"leases"`
	}
	e.mustDo(http.MethodGet, "/console/api/applications/orders-app?stream=orders", nil, http.StatusOK, &got)
	if len(got.Leases) != 2 {
		t.Fatalf("leases %+v", got.Leases)
	}
	owned, child := got.Leases[0], got.Leases[1]
	if owned.ShardID != shard || owned.Owner != "worker-1" || owned.Checkpoint != seq || owned.SubSequenceNumber != 3 ||
		owned.ExpiresAt == nil || owned.Expired || owned.UpdatedAt == nil || owned.LastRenewalAgoMs < 0 || owned.MillisBehindLatest == nil || *owned.MillisBehindLatest < 0 {
		t.Errorf("owned lease %+v", owned)
	}
	if child.ShardID != "shardId-000000000009" || child.Owner != "" || child.ExpiresAt != nil || len(child.Parents) != 1 ||
		child.Checkpoint != checkpoint.TrimHorizon || child.MillisBehindLatest != nil {
		t.Errorf("unowned child lease %+v", child)
	}
	// Without stream, no lag.
	e.mustDo(http.MethodGet, "/console/api/applications/orders-app", nil, http.StatusOK, &got)
	if got.Leases[0].MillisBehindLatest != nil {
		t.Errorf("lag without stream: %+v", got.Leases[0])
	}
	// An application without leases has none.
	e.mustDo(http.MethodGet, "/console/api/applications/nosuch", nil, http.StatusOK, &got)
	if len(got.Leases) != 0 {
		t.Errorf("nosuch: %+v", got.Leases)
	}

	// A table that does not exist is reported, and not created.
	e2 := newEnv(t, server.Config{}, console.Config{LeaseDatabaseURL: pgtest.URL(), LeaseSchema: schema, LeaseTable: "nope"})
	if a := e2.do(http.MethodGet, "/console/api/applications", nil); a.status != http.StatusNotFound || a.code() != "ConsoleNotConfigured" {
		t.Errorf("missing table: %d %s", a.status, a.body)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".nope").Scan(&exists); err != nil || exists {
		t.Errorf("table created: %v %v", exists, err)
	}
	var s struct {
		Leases bool `json:"leases"`
	}
	e2.mustDo(http.MethodGet, "/console/api/session", nil, http.StatusOK, &s)
	if !s.Leases {
		t.Errorf("session: leases false with a lease database")
	}
}
