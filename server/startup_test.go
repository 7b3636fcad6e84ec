package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// startupEnv is a server whose log the test can read.
type startupEnv struct {
	srv  *servertest.Server
	c    *kinesis.Client
	logs *observer.ObservedLogs
	ctx  context.Context
}

func newStartupEnv(t *testing.T, cfg server.Config) *startupEnv {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	cfg.Logger = zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	srv := servertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &startupEnv{srv: srv, c: srv.Client(), logs: logs, ctx: ctx}
}

func (e *startupEnv) summary(t *testing.T, name string) *types.StreamDescriptionSummary {
	t.Helper()
	out, err := e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeStreamSummary %s: %v", name, err)
	}
	return out.StreamDescriptionSummary
}

// TestEnsureStreamCreates creates streams with every option, with the
// status delays on: EnsureStream returns only once the stream and its
// consumers are ACTIVE, so the very next call sees them so.
func TestEnsureStreamCreates(t *testing.T) {
	t.Parallel()
	e := newStartupEnv(t, server.Config{CreateDelay: 30 * time.Millisecond, UpdateDelay: 20 * time.Millisecond, ConsumerCreateDelay: 20 * time.Millisecond})
	spec := server.StreamSpec{
		Name: "orders", Shards: 3, RetentionHours: 48, Tags: map[string]string{"team": "payments"},
		Consumers: []string{"c1", "c2"}, EncryptionKeyID: "alias/aws/kinesis", ShardLevelMetrics: []string{"IncomingBytes"},
	}
	created, err := e.srv.EnsureStream(e.ctx, spec)
	if err != nil || !created {
		t.Fatalf("EnsureStream: created %v, %v; want a new stream", created, err)
	}
	s := e.summary(t, "orders")
	if s.StreamStatus != types.StreamStatusActive || aws.ToInt32(s.OpenShardCount) != 3 || s.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Errorf("orders: %s, %d shards, %s; want ACTIVE, 3 shards, PROVISIONED", s.StreamStatus, aws.ToInt32(s.OpenShardCount), s.StreamModeDetails.StreamMode)
	}
	if aws.ToInt32(s.RetentionPeriodHours) != 48 {
		t.Errorf("retention %d hours, want 48", aws.ToInt32(s.RetentionPeriodHours))
	}
	if s.EncryptionType != types.EncryptionTypeKms || aws.ToString(s.KeyId) != "alias/aws/kinesis" {
		t.Errorf("encryption %s with %q, want KMS with alias/aws/kinesis", s.EncryptionType, aws.ToString(s.KeyId))
	}
	if len(s.EnhancedMonitoring) != 1 || !slices.Equal(s.EnhancedMonitoring[0].ShardLevelMetrics, []types.MetricsName{types.MetricsNameIncomingBytes}) {
		t.Errorf("shard-level metrics %+v, want IncomingBytes", s.EnhancedMonitoring)
	}
	tags, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" || aws.ToString(tags.Tags[0].Value) != "payments" {
		t.Errorf("tags %+v, want team=payments", tags.Tags)
	}
	cons, err := e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: s.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cons.Consumers {
		names = append(names, aws.ToString(c.ConsumerName))
		if c.ConsumerStatus != types.ConsumerStatusActive {
			t.Errorf("consumer %s is %s, want ACTIVE", aws.ToString(c.ConsumerName), c.ConsumerStatus)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"c1", "c2"}) {
		t.Errorf("consumers %v, want c1 and c2", names)
	}

	created, err = e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "events", OnDemand: true})
	if err != nil || !created {
		t.Fatalf("EnsureStream events: created %v, %v", created, err)
	}
	if s := e.summary(t, "events"); s.StreamStatus != types.StreamStatusActive || s.StreamModeDetails.StreamMode != types.StreamModeOnDemand {
		t.Errorf("events: %s, %s; want ACTIVE, ON_DEMAND", s.StreamStatus, s.StreamModeDetails.StreamMode)
	}
	created, err = e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "plain"})
	if err != nil || !created {
		t.Fatalf("EnsureStream plain: created %v, %v", created, err)
	}
	if s := e.summary(t, "plain"); aws.ToInt32(s.OpenShardCount) != 1 || aws.ToInt32(s.RetentionPeriodHours) != 24 || s.EncryptionType != types.EncryptionTypeNone {
		t.Errorf("plain: %d shards, %d hours, %s; want the defaults: 1 shard, 24 hours, no encryption", aws.ToInt32(s.OpenShardCount), aws.ToInt32(s.RetentionPeriodHours), s.EncryptionType)
	}
}

// TestEnsureStreamIdempotent: a second EnsureStream of the same spec
// changes nothing, and one for a stream still CREATING waits for it.
func TestEnsureStreamIdempotent(t *testing.T) {
	t.Parallel()
	e := newStartupEnv(t, server.Config{CreateDelay: 50 * time.Millisecond})
	spec := server.StreamSpec{Name: "orders", Shards: 2, RetentionHours: 48, Consumers: []string{"c1"}}
	if created, err := e.srv.EnsureStream(e.ctx, spec); err != nil || !created {
		t.Fatalf("first EnsureStream: created %v, %v", created, err)
	}
	before := e.summary(t, "orders")
	if created, err := e.srv.EnsureStream(e.ctx, spec); err != nil || created {
		t.Fatalf("second EnsureStream: created %v, %v; want the stream found", created, err)
	}
	after := e.summary(t, "orders")
	if !aws.ToTime(before.StreamCreationTimestamp).Equal(aws.ToTime(after.StreamCreationTimestamp)) || aws.ToInt32(after.ConsumerCount) != 1 || aws.ToInt32(after.OpenShardCount) != 2 {
		t.Errorf("after a second EnsureStream: %+v; want the stream unchanged (%+v)", after, before)
	}

	// A stream another caller created, still CREATING.
	if _, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("busy"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if created, err := e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "busy", Shards: 1}); err != nil || created {
		t.Fatalf("EnsureStream busy: created %v, %v; want the stream found", created, err)
	}
	if s := e.summary(t, "busy"); s.StreamStatus != types.StreamStatusActive {
		t.Errorf("busy is %s after EnsureStream, want ACTIVE", s.StreamStatus)
	}
	if n := e.logs.FilterMessage("stream named at start-up exists with another shape; left as it is").Len(); n != 0 {
		t.Errorf("%d shape warnings for streams of the same shape", n)
	}
}

// TestEnsureStreamOtherShape: a stream that exists with another shard
// count or mode is left as it is, with a warning naming it.
func TestEnsureStreamOtherShape(t *testing.T) {
	t.Parallel()
	e := newStartupEnv(t, server.Config{})
	if _, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("two"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec      server.StreamSpec
		wantMode  types.StreamMode
		wantShard int32
	}{
		{server.StreamSpec{Name: "two", Shards: 3, RetentionHours: 72}, types.StreamModeProvisioned, 2},
		{server.StreamSpec{Name: "two", OnDemand: true}, types.StreamModeProvisioned, 2},
		{server.StreamSpec{Name: "od", Shards: 4}, types.StreamModeOnDemand, 4},
	} {
		mark := e.logs.Len()
		created, err := e.srv.EnsureStream(e.ctx, tc.spec)
		if err != nil || created {
			t.Fatalf("EnsureStream %+v: created %v, %v; want the stream left alone", tc.spec, created, err)
		}
		s := e.summary(t, tc.spec.Name)
		if s.StreamModeDetails.StreamMode != tc.wantMode || aws.ToInt32(s.OpenShardCount) != tc.wantShard || aws.ToInt32(s.RetentionPeriodHours) != 24 {
			t.Errorf("%s after EnsureStream %+v: %s, %d shards, %d hours; want it unchanged", tc.spec.Name, tc.spec, s.StreamModeDetails.StreamMode, aws.ToInt32(s.OpenShardCount), aws.ToInt32(s.RetentionPeriodHours))
		}
		var warned bool
		for _, l := range e.logs.All()[mark:] {
			if l.Level == zapcore.WarnLevel && strings.Contains(l.Message, "another shape") && l.ContextMap()["stream"] == tc.spec.Name {
				warned = true
			}
		}
		if !warned {
			t.Errorf("EnsureStream %+v logged no warning about the shape", tc.spec)
		}
	}
}

// TestEnsureStreamRefuses: bad specs are refused before anything is made,
// and a stream whose options fail is deleted again.
func TestEnsureStreamRefuses(t *testing.T) {
	t.Parallel()
	e := newStartupEnv(t, server.Config{})
	for _, tc := range []struct {
		spec server.StreamSpec
		want string
	}{
		{server.StreamSpec{Shards: 1}, "stream name is empty"},
		{server.StreamSpec{Name: "a/b"}, `stream name "a/b"`},
		{server.StreamSpec{Name: strings.Repeat("x", 129)}, "is not valid"},
		{server.StreamSpec{Name: "s", Shards: -1}, "shard count -1"},
		{server.StreamSpec{Name: "s", Shards: 100001}, "shard count 100001"},
		{server.StreamSpec{Name: "s", Shards: 2, OnDemand: true}, "exclude each other"},
		{server.StreamSpec{Name: "s", RetentionHours: 12}, "retention period 12 hours"},
		{server.StreamSpec{Name: "s", RetentionHours: 9000}, "retention period 9000 hours"},
		{server.StreamSpec{Name: "s", Consumers: []string{"ok", "bad name"}}, `consumer name "bad name"`},
		{server.StreamSpec{Name: "s", Consumers: []string{"c", "c"}}, `consumer "c" is named twice`},
	} {
		created, err := e.srv.EnsureStream(e.ctx, tc.spec)
		if err == nil || created || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EnsureStream %+v: created %v, %v; want an error saying %q", tc.spec, created, err, tc.want)
		}
	}
	created, err := e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "nokey", Shards: 1, EncryptionKeyID: "alias/no-such-key"})
	if err == nil || created || !strings.Contains(err.Error(), "encryption") {
		t.Fatalf("EnsureStream with an unknown key: created %v, %v; want an encryption error", created, err)
	}
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("nokey")})
	if nf := (*types.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
		t.Errorf("DescribeStreamSummary of the stream whose encryption failed: %v; want it deleted again", err)
	}
	list, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
	if err != nil || len(list.StreamNames) != 0 {
		t.Errorf("ListStreams after refused specs: %v, %v; want none", list.StreamNames, err)
	}
}
