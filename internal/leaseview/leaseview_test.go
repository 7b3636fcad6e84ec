package leaseview_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/leaseview"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}

// TestReader reads a lease table in PostgreSQL (DATABASE_URL; skipped when
// unreachable, failed under CI=true) and the lag of its leases.
func TestReader(t *testing.T) {
	pool, schema := pgtest.New(t)
	ctx := context.Background()

	missing := leaseview.NewReader(pool, schema, "leases")
	if _, _, err := missing.Leases(ctx, "app"); !errors.Is(err, leaseview.ErrNoTable) {
		t.Fatalf("Leases of a missing table: %v", err)
	}
	if _, err := missing.Applications(ctx); !errors.Is(err, leaseview.ErrNoTable) {
		t.Fatalf("Applications of a missing table: %v", err)
	}
	_ = missing.Close()

	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: "leases"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	srv := servertest.Start(t, server.Config{Fsync: server.FsyncNever, Logger: zap.NewNop()})
	client := srv.Client()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	put, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []checkpoint.Lease{
		{Application: "b", ShardID: "shardId-000000000000", Checkpoint: checkpoint.Checkpoint{SequenceNumber: aws.ToString(put.SequenceNumber)}},
		{Application: "b", ShardID: "shardId-000000000001", Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.Latest}},
		{Application: "b", ShardID: "shardId-000000000002", Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}},
		{Application: "a", ShardID: "shardId-000000000000"},
	} {
		if _, err := store.CreateLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	r := leaseview.NewReader(pool, schema, "leases")
	defer func() { _ = r.Close() }()
	apps, err := r.Applications(ctx)
	if err != nil || len(apps) != 2 || apps[0] != "a" || apps[1] != "b" {
		t.Fatalf("Applications = %v, %v", apps, err)
	}
	leases, now, err := r.Leases(ctx, "b")
	if err != nil || len(leases) != 3 || now.IsZero() {
		t.Fatalf("Leases = %+v, %v, %v", leases, now, err)
	}
	paced := 0
	lags := leaseview.Lags(ctx, client, "s", leases, leaseview.LagOptions{Concurrency: 1, BeforeRead: func(context.Context, string) error {
		paced++
		return nil
	}})
	if l := lags["shardId-000000000000"]; !l.Known || l.Err != nil || l.Behind < 0 {
		t.Errorf("lag of the checkpointed shard: %+v", l)
	}
	if l := lags["shardId-000000000001"]; l.Known || l.Err != nil {
		t.Errorf("lag of a LATEST checkpoint: %+v", l)
	}
	if l := lags["shardId-000000000002"]; l.Known || l.Err == nil {
		t.Errorf("lag of a shard the stream lacks: %+v", l)
	}
	if paced != 1 {
		t.Errorf("BeforeRead called %d times, want 1", paced)
	}
}

// TestConnectHidesURL: a database URL that does not parse is refused
// without repeating it (it may hold a password).
func TestConnectHidesURL(t *testing.T) {
	_, err := leaseview.Connect(context.Background(), "postgres://u:hunter2@[bad", 1)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Connect = %v", err)
	}
	for _, s := range []string{"hunter2", "[bad"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q repeats %q", err, s)
		}
	}
}
