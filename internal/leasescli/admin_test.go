package leasescli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
	"github.com/shoalstream/shoal/internal/storage"
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

func TestParsePosition(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.UTC)
	for in, want := range map[string]checkpoint.Checkpoint{
		"TRIM_HORIZON":                  {SequenceNumber: checkpoint.TrimHorizon},
		"trim_horizon":                  {SequenceNumber: checkpoint.TrimHorizon},
		"LATEST":                        {SequenceNumber: checkpoint.Latest},
		"49590338271490256608559692538": {SequenceNumber: "49590338271490256608559692538"},
		"0":                             {SequenceNumber: "0"},
		"123/4":                         {SequenceNumber: "123", SubSequenceNumber: 4},
		"2025-03-04T05:06:07.89Z":       checkpoint.AtTime(at),
		"2025-03-04T06:06:07.89+01:00":  checkpoint.AtTime(at),
	} {
		got, err := parsePosition(in)
		if err != nil || got != want {
			t.Errorf("parsePosition(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "SHARD_END", "AT_TIMESTAMP", "0123", "12/x", "12/", "-5", "2025-03-04", "yesterday", "1/99999999999999999999"} {
		if cp, err := parsePosition(in); err == nil {
			t.Errorf("parsePosition(%q) = %+v, want an error", in, cp)
		}
	}
}

// adminEnv is a stream of two shards with records, and a lease table whose
// application has a lease on each: shard 0 held by w1 and checkpointed at
// its first record, shard 1 unowned.
type adminEnv struct {
	srv         *servertest.Server
	schema      string
	store       checkpoint.Store
	shard, free string
	seqs        []string // the records of shard
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	awscredstest.Isolate(t)
	ctx := t.Context()
	srv := servertest.Start(t, server.Config{Fsync: storage.FsyncNever, Logger: zap.NewNop()})
	client := srv.Client()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{srv: srv}
	for range 3 {
		res, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		e.seqs, e.shard = append(e.seqs, aws.ToString(res.SequenceNumber)), aws.ToString(res.ShardId)
	}
	e.free = "shardId-000000000000"
	if e.shard == e.free {
		e.free = "shardId-000000000001"
	}
	_, e.schema = pgtest.New(t)
	e.store = mustStore(t, ctx, e.schema, 10*time.Second)
	for _, id := range []string{e.shard, e.free} {
		if _, err := e.store.CreateLease(ctx, checkpoint.Lease{Application: app, ShardID: id}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := e.store.GetLease(ctx, app, e.shard)
	if err == nil {
		l, err = e.store.TakeLease(ctx, l, "w1")
	}
	if err == nil {
		_, err = e.store.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: e.seqs[0]})
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs "shoal leases" with args and the table's flags.
func (e *adminEnv) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	args = append(args, "--database-url", pgtest.URL(), "--schema", e.schema, "--table", "leases")
	if args[0] == "reset" {
		args = append(args, "--endpoint", e.srv.Endpoint)
	}
	err := Main(t.Context(), args, &out)
	return out.String(), err
}

func (e *adminEnv) lease(t *testing.T, shard string) checkpoint.Lease {
	t.Helper()
	l, err := e.store.GetLease(t.Context(), app, shard)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestResetCommand: "shoal leases reset" to each kind of position, on every
// lease and on one.
func TestResetCommand(t *testing.T) {
	e := newAdminEnv(t)
	held := e.lease(t, e.shard)
	out, err := e.run(t, "reset", "--application", app, "--stream", "orders", "--to", "TRIM_HORIZON")
	if err != nil {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	t.Logf("output:\n%s", out)
	if !strings.Contains(out, "application orders-app: 2 leases reset to TRIM_HORIZON") {
		t.Errorf("output:\n%s", out)
	}
	for _, want := range [][]string{{e.shard, "w1", e.seqs[0], "TRIM_HORIZON"}, {e.free, "-", "TRIM_HORIZON", "TRIM_HORIZON"}} {
		if !hasRow(out, want) {
			t.Errorf("no row %v in:\n%s", want, out)
		}
	}
	l := e.lease(t, e.shard)
	if l.Owner != "" || l.Counter != held.Counter+1 || l.Checkpoint.SequenceNumber != checkpoint.TrimHorizon {
		t.Errorf("after the reset: %+v", l)
	}
	// Its former owner's checkpoint fails.
	if _, err := e.store.Checkpoint(t.Context(), held, checkpoint.Checkpoint{SequenceNumber: e.seqs[2]}); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Errorf("the former owner's checkpoint after the reset: %v", err)
	}

	// A sequence number (with a sub-sequence number), on one shard.
	if out, err = e.run(t, "reset", "--application", app, "--stream", "orders", "--to", e.seqs[1]+"/2", "--shard", e.shard); err != nil {
		t.Fatalf("reset to a sequence number: %v\n%s", err, out)
	}
	if l := e.lease(t, e.shard); l.Checkpoint != (checkpoint.Checkpoint{SequenceNumber: e.seqs[1], SubSequenceNumber: 2}) {
		t.Errorf("after the reset to %s/2: %s", e.seqs[1], l.Checkpoint)
	}
	if l := e.lease(t, e.free); l.Checkpoint.SequenceNumber != checkpoint.TrimHorizon {
		t.Errorf("the other lease moved: %s", l.Checkpoint)
	}
	// A time, on every lease.
	at := "2025-06-07T08:09:10.5+02:00"
	if out, err = e.run(t, "reset", "--application", app, "--stream", "orders", "--to", at); err != nil {
		t.Fatalf("reset to a time: %v\n%s", err, out)
	}
	want := checkpoint.AtTime(time.Date(2025, 6, 7, 6, 9, 10, 500000000, time.UTC))
	for _, s := range []string{e.shard, e.free} {
		if l := e.lease(t, s); l.Checkpoint != want {
			t.Errorf("%s after the reset to %s: %s", s, at, l.Checkpoint)
		}
	}
	if !strings.Contains(out, "AT_TIMESTAMP@2025-06-07T06:09:10.5Z") {
		t.Errorf("output:\n%s", out)
	}
	// LATEST, on one.
	if out, err = e.run(t, "reset", "--application", app, "--stream", "orders", "--to", "LATEST", "--shard", e.free); err != nil || !strings.Contains(out, "1 lease reset to LATEST") {
		t.Fatalf("reset to LATEST: %v\n%s", err, out)
	}
	if l := e.lease(t, e.free); l.Checkpoint.SequenceNumber != checkpoint.Latest {
		t.Errorf("after the reset to LATEST: %s", l.Checkpoint)
	}
}

// hasRow reports whether a line of out has the fields want, in order.
func hasRow(out string, want []string) bool {
	for _, ln := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(ln), " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

// TestReleaseAndDeleteCommands: "shoal leases release" takes a lease from
// its owner; "shoal leases delete" removes the application's leases.
func TestReleaseAndDeleteCommands(t *testing.T) {
	e := newAdminEnv(t)
	held := e.lease(t, e.shard)
	out, err := e.run(t, "release", "--application", app, "--shard", e.shard)
	if err != nil || !strings.Contains(out, "lease "+e.shard+" released (was held by w1); checkpoint "+e.seqs[0]) {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if l := e.lease(t, e.shard); l.Owner != "" || l.Counter != held.Counter+1 || l.Checkpoint != held.Checkpoint {
		t.Errorf("after the release: %+v", l)
	}
	if _, err := e.store.RenewLease(t.Context(), held); !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Errorf("the former owner's renewal: %v", err)
	}
	if out, err = e.run(t, "release", "--application", app, "--shard", e.shard); err != nil || !strings.Contains(out, "was not held") {
		t.Errorf("release of an unowned lease: %v\n%s", err, out)
	}
	if out, err = e.run(t, "delete", "--application", app); err != nil || !strings.Contains(out, "application orders-app: 2 leases deleted") {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if list, err := e.store.ListLeases(t.Context(), app); err != nil || len(list) != 0 {
		t.Errorf("leases after delete: %+v, %v", list, err)
	}
	if out, err = e.run(t, "delete", "--application", app); err != nil || !strings.Contains(out, "0 leases deleted") {
		t.Errorf("delete again: %v\n%s", err, out)
	}
}

func TestAdminCommandErrors(t *testing.T) {
	e := newAdminEnv(t)
	reset := func(args ...string) []string {
		return append([]string{"reset", "--application", app, "--stream", "orders"}, args...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reset", "--application", app, "--to", "LATEST"}, "--application, --stream and --to are required"},
		{[]string{"reset", "--application", app, "--stream", "orders"}, "--application, --stream and --to are required"},
		{reset("--to", "yesterday"), "neither TRIM_HORIZON"},
		{reset("--to", "SHARD_END"), "neither TRIM_HORIZON"},
		{reset("--to", e.seqs[1]), "give --shard"},
		{reset("--to", "LATEST", "extra"), "unexpected arguments"},
		{reset("--to", "LATEST", "--shard", "shardId-000000000007"), "stream orders has no shard shardId-000000000007"},
		{reset("--to", e.seqs[1], "--shard", e.free), "does not hold sequence number"},
		{reset("--to", "1"+e.seqs[2], "--shard", e.shard), "does not hold sequence number"},
		{[]string{"reset", "--application", app, "--stream", "nosuch", "--to", "LATEST"}, "list the shards of nosuch"},
		{[]string{"reset", "--application", "nosuch-app", "--stream", "orders", "--to", "LATEST"}, "application nosuch-app has no lease of a shard of stream orders"},
		{[]string{"release", "--application", app}, "--application and --shard are required"},
		{[]string{"release", "--application", app, "--shard", "shardId-000000000007"}, "lease not found"},
		{[]string{"delete"}, "--application is required"},
	} {
		out, err := e.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
	// A missing table is reported, not created.
	var out bytes.Buffer
	for _, args := range [][]string{
		{"release", "--application", app, "--shard", e.shard},
		{"delete", "--application", app},
	} {
		out.Reset()
		err := Main(t.Context(), append(args, "--database-url", pgtest.URL(), "--schema", e.schema, "--table", "nope"), &out)
		if err == nil || !strings.Contains(err.Error(), "no lease table "+e.schema+".nope") {
			t.Errorf("%q on a missing table: %v", args, err)
		}
	}
	for _, sub := range []string{"reset", "release", "delete"} {
		out.Reset()
		if err := Main(context.Background(), []string{sub, "-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "shoal leases "+sub) {
			t.Errorf("%s -h: %v\n%s", sub, err, out.String())
		}
	}
	// Nothing of that changed the leases.
	if l := e.lease(t, e.shard); l.Owner != "w1" || l.Checkpoint.SequenceNumber != e.seqs[0] {
		t.Errorf("lease after the refused commands: %+v", l)
	}
}
