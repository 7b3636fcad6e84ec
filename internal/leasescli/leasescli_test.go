package leasescli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

const app = "orders-app"

func mustStore(t *testing.T, ctx context.Context, schema string, failover time.Duration) checkpoint.Store {
	t.Helper()
	pool := pgtest.Pool(t, pgtest.Config(t, schema))
	s, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: "leases", FailoverTime: failover})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestLeasesTable(t *testing.T) {
	awscredstest.Isolate(t) // the placeholder credentials; the server does not check them
	ctx := context.Background()
	var skew atomic.Int64
	srv := servertest.Start(t, server.Config{Fsync: storage.FsyncNever, Logger: zap.NewNop(),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	client := srv.Client()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// Two records on one shard, 5 seconds apart by the server's clock.
	var seqs []string
	var shard string
	for i := range 2 {
		if i == 1 {
			skew.Store(int64(5 * time.Second))
		}
		res, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(res.SequenceNumber))
		shard = aws.ToString(res.ShardId)
	}
	other := "shardId-000000000000"
	if shard == other {
		other = "shardId-000000000001"
	}

	_, schema := pgtest.New(t)
	store := mustStore(t, ctx, schema, 10*time.Second)
	quick := mustStore(t, ctx, schema, 10*time.Millisecond) // leases taken with it expire at once
	create := func(l checkpoint.Lease) checkpoint.Lease {
		l.Application = app
		if _, err := store.CreateLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		got, err := store.GetLease(ctx, app, l.ShardID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// The shard with records: owned, checkpointed at the first record.
	l := create(checkpoint.Lease{ShardID: shard, Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}})
	l, err := store.TakeLease(ctx, l, "worker-1")
	if err == nil {
		l, err = store.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: seqs[0], SubSequenceNumber: 3})
	}
	if err != nil {
		t.Fatal(err)
	}
	// The empty shard: unowned, at TRIM_HORIZON.
	create(checkpoint.Lease{ShardID: other, Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}})
	// A child the stream does not have, owned by a worker that died.
	child := create(checkpoint.Lease{ShardID: "shardId-000000000002", ParentShardIDs: []string{"shardId-000000000000", "shardId-000000000001"},
		Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}})
	if _, err := quick.TakeLease(ctx, child, "worker-2"); err != nil {
		t.Fatal(err)
	}
	// Another application's lease is not shown.
	if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: "other-app", ShardID: shard}); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	args := []string{"--database-url", pgtest.URL(), "--schema", schema, "--table", "leases", "--application", app,
		"--endpoint", srv.Endpoint, "--stream", "orders"}
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		out.Reset()
		if err := Main(ctx, args, &out); err != nil {
			t.Fatalf("Main: %v\n%s", err, out.String())
		}
		text = out.String()
		if strings.Contains(text, " ago ") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // waiting for the database's clock to pass the expiry
	}
	t.Logf("output:\n%s", text)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 5 {
		t.Fatalf("%d lines", len(lines))
	}
	row := func(shardID string) []string {
		for _, ln := range lines {
			if strings.HasPrefix(ln, shardID+" ") {
				return strings.Fields(ln)
			}
		}
		t.Fatalf("no row for %s", shardID)
		return nil
	}
	if h := strings.Fields(lines[0]); strings.Join(h, " ") != "SHARD OWNER COUNTER CHECKPOINT EXPIRES PARENTS LAG" {
		t.Errorf("header %q", lines[0])
	}
	r := row(shard)
	if r[1] != "worker-1" || r[2] != fmt.Sprint(l.Counter) || r[3] != seqs[0]+"/3" || r[4] != "in" || r[6] != "-" {
		t.Errorf("owned row %q", r)
	}
	if d, err := time.ParseDuration(r[7]); err != nil || d < 5*time.Second || d >= 6*time.Second {
		t.Errorf("lag %q, want 5s and a little", r[7])
	}
	r = row(other)
	if strings.Join(r[1:], " ") != "- 0 TRIM_HORIZON - - 0s" {
		t.Errorf("unowned row %q", r)
	}
	r = row("shardId-000000000002")
	if r[1] != "worker-2" || r[4] != "expired" || r[7] != "shardId-000000000000,shardId-000000000001" || r[8] != "n/a" {
		t.Errorf("expired row %q", r)
	}
	if !regexp.MustCompile(`application orders-app: 3 leases, 1 worker \(worker-1: 1\), 1 unowned, 1 expired`).MatchString(text) {
		t.Errorf("summary missing:\n%s", text)
	}
	if !strings.Contains(text, "note: lag of shardId-000000000002: ") || !strings.Contains(text, "ResourceNotFoundException") {
		t.Errorf("no note for the missing shard:\n%s", text)
	}

	// Without --stream there is no lag.
	out.Reset()
	if err := Main(ctx, args[:8], &out); err != nil {
		t.Fatal(err)
	}
	// (The LAG column, the last: "5s" alone would also match an expiry
	// such as "in 9.5s".)
	for _, ln := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if f := strings.Fields(ln); strings.HasPrefix(ln, "shardId-") && f[len(f)-1] != "n/a" {
			t.Errorf("lag without --stream: %q", ln)
		}
	}
	if strings.Contains(out.String(), "note:") {
		t.Errorf("a note without --stream:\n%s", out.String())
	}
}

func TestLeasesErrors(t *testing.T) {
	awscredstest.Isolate(t)
	ctx := context.Background()
	_, schema := pgtest.New(t)
	var out bytes.Buffer
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--application is required"},
		{[]string{"--application", "a", "extra"}, "unexpected arguments"},
		{[]string{"--application", "a", "--endpoint", "http://x"}, "--endpoint needs --stream"},
		{[]string{"--application", "a", "--profile", "p"}, "--profile needs --stream"},
		// The credentials come before the database: a bad profile fails first.
		{[]string{"--application", "a", "--stream", "s", "--endpoint", "http://x", "--profile", "nosuch", "--database-url", "::bad"}, `"nosuch"`},
		{[]string{"--application", "a", "--database-url", pgtest.URL(), "--schema", schema, "--table", "nope"}, "no lease table " + schema + ".nope"},
		{[]string{"--application", "a", "--database-url", "::bad"}, "--database-url"},
	} {
		out.Reset()
		err := Main(ctx, tc.args, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Main(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
	out.Reset()
	if err := Main(ctx, []string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "--application") {
		t.Errorf("-h: %v\n%s", err, out.String())
	}
	// The table was not created by the failed run.
	pool := pgtest.Pool(t, pgtest.Config(t, schema))
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".nope").Scan(&exists); err != nil || exists {
		t.Errorf("table created: %v %v", exists, err)
	}
}

// TestLeasesCredentials: --stream's calls are signed with the keys of the
// environment, of --profile, or the placeholder when there are none; the
// placeholder is refused for AWS itself (no --endpoint), and a missing
// profile is an error.
func TestLeasesCredentials(t *testing.T) {
	signer := func(t *testing.T, profile string) string {
		t.Helper()
		keys := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case keys <- awscredstest.AccessKey(r):
			default:
			}
			http.Error(w, `{"__type":"AccessDeniedException","message":"refused by the test"}`, http.StatusBadRequest)
		}))
		defer srv.Close()
		client, err := kinesisClient(t.Context(), srv.URL, "us-east-1", profile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("s")}); err == nil {
			t.Fatal("ListShards = nil against an endpoint that refuses every call")
		}
		return <-keys
	}
	t.Run("environment", func(t *testing.T) {
		awscredstest.Isolate(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLEASESENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		if got := signer(t, ""); got != "AKIDLEASESENV" {
			t.Errorf("signed with %q", got)
		}
	})
	t.Run("profile", func(t *testing.T) {
		_, credsFile := awscredstest.Isolate(t)
		awscredstest.WriteFile(t, credsFile, "[ops]\naws_access_key_id = AKIDLEASESOPS\naws_secret_access_key = secret\n")
		if got := signer(t, "ops"); got != "AKIDLEASESOPS" {
			t.Errorf("signed with %q", got)
		}
	})
	t.Run("none", func(t *testing.T) {
		awscredstest.Isolate(t)
		if got := signer(t, ""); got != awscreds.PlaceholderAccessKeyID {
			t.Errorf("signed with %q", got)
		}
		if _, err := kinesisClient(t.Context(), "", "us-east-1", ""); err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
			t.Errorf("without an endpoint: %v, want an error", err)
		}
	})
	t.Run("missing profile", func(t *testing.T) {
		awscredstest.Isolate(t)
		if _, err := kinesisClient(t.Context(), "http://127.0.0.1:1", "us-east-1", "nosuch"); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
			t.Errorf("kinesisClient = %v, want an error naming the profile", err)
		}
	})
}
