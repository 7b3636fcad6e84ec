package prommetrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/internal/testutil/fakeclock"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/prommetrics"
)

// scrape reads the registry over HTTP as Prometheus does and returns each
// sample's value by its series ("name{label=value,...}" with the labels
// sorted).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var list []*dto.MetricFamily
	for _, f := range fams {
		list = append(list, f)
	}
	samples, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, list...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, s := range samples {
		out[s.Metric.String()] = float64(s.Value)
	}
	return out
}

// After a known workload every counter holds exactly what was done.
func TestServerMetricsAfterAWorkload(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg)
	clk := fakeclock.New(time.Now().Truncate(time.Second))
	srv := servertest.Start(t, server.Config{Metrics: m, EnforceThroughput: true, Now: clk.Now, SubscriptionKeepAlive: time.Hour})
	metricsURL := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metricsURL.Close)
	c := srv.Client(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	// 3 PutRecord of 10 + 2 bytes; one PutRecords of 4 records of 5 + 1 bytes.
	for range 3 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("pk"), Data: []byte("0123456789")}); err != nil {
			t.Fatal(err)
		}
	}
	var recs []types.PutRecordsRequestEntry
	for range 4 {
		recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("abcde")})
	}
	if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs}); err != nil {
		t.Fatal(err)
	}
	// Reads: 5 GetRecords calls in one second pass, the sixth is throttled.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	for i := range 6 {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if i == 5 {
			var pte *types.ProvisionedThroughputExceededException
			if err == nil || !errors.As(err, &pte) {
				t.Fatalf("sixth GetRecords in a second: %v", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		iter = out.NextShardIterator
	}
	_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("missing")})
	if err == nil {
		t.Fatal("DescribeStreamSummary of a missing stream succeeded")
	}
	got := scrape(t, metricsURL.URL)
	want := map[string]float64{
		`shoal_stream_incoming_records_total{operation="PutRecord", stream="s"}`:                          3,
		`shoal_stream_incoming_bytes_total{operation="PutRecord", stream="s"}`:                            36,
		`shoal_stream_incoming_records_total{operation="PutRecords", stream="s"}`:                         4,
		`shoal_stream_incoming_bytes_total{operation="PutRecords", stream="s"}`:                           24,
		`shoal_stream_putrecords_records_total{outcome="successful", stream="s"}`:                         4,
		`shoal_stream_putrecords_records_total{outcome="failed", stream="s"}`:                             0,
		`shoal_stream_outgoing_records_total{consumer="", stream="s"}`:                                    7,
		`shoal_stream_outgoing_bytes_total{consumer="", stream="s"}`:                                      60,
		`shoal_stream_read_throttled_requests_total{stream="s"}`:                                          1,
		`shoal_api_requests_total{code="OK", operation="PutRecord"}`:                                      3,
		`shoal_api_requests_total{code="OK", operation="GetRecords"}`:                                     5,
		`shoal_api_requests_total{code="ProvisionedThroughputExceededException", operation="GetRecords"}`: 1,
		`shoal_api_requests_total{code="ResourceNotFoundException", operation="DescribeStreamSummary"}`:   1,
		`shoal_api_request_duration_seconds_count{operation="PutRecord"}`:                                 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "shoal_shard_") {
			t.Errorf("a per-shard series without enhanced monitoring: %s", k)
		}
	}

	// A fan-out subscription: one event with the 7 records.
	reg2, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s"), ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	sc := srv.StreamingClient()
	sub, err := sc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: reg2.Consumer.ConsumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-sub.GetStream().Events()
	if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); !ok || len(e.Value.Records) != 7 {
		t.Fatalf("first event %#v", ev)
	}
	got = scrape(t, metricsURL.URL)
	for k, v := range map[string]float64{
		`shoal_subscriptions_total{consumer="app", result="ok", stream="s"}`: 1,
		`shoal_subscriptions_open`:                                        1,
		`shoal_stream_outgoing_records_total{consumer="app", stream="s"}`: 7,
		`shoal_stream_outgoing_bytes_total{consumer="app", stream="s"}`:   60,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	_ = sub.GetStream().Close()

	// Enhanced monitoring brings per-shard series, and takes them away.
	if _, err := c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{"IncomingRecords", "IncomingBytes"}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // a fresh write budget
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("pk"), Data: []byte("xyz")}); err != nil {
		t.Fatal(err)
	}
	got = scrape(t, metricsURL.URL)
	if v := got[`shoal_shard_incoming_records_total{shard="shardId-000000000000", stream="s"}`]; v != 1 {
		t.Errorf("per-shard incoming records = %v, want 1", v)
	}
	if v := got[`shoal_shard_incoming_bytes_total{shard="shardId-000000000000", stream="s"}`]; v != 5 {
		t.Errorf("per-shard incoming bytes = %v, want 5", v)
	}
	if _, err := c.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{"ALL"}}); err != nil {
		t.Fatal(err)
	}
	for k := range scrape(t, metricsURL.URL) {
		if strings.HasPrefix(k, "shoal_shard_") {
			t.Errorf("a per-shard series after disabling enhanced monitoring: %s", k)
		}
	}
	// A deleted stream's series go.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	for k := range scrape(t, metricsURL.URL) {
		if strings.Contains(k, `stream="s"`) {
			t.Errorf("a series of a deleted stream: %s", k)
		}
	}
}

// A stream of 1,000 shards without enhanced monitoring adds no per-shard
// series: writing to every shard leaves a bounded number of series.
func TestServerMetricsCardinality(t *testing.T) {
	reg := prometheus.NewRegistry()
	eng := memengine.New(memengine.Config{})
	t.Cleanup(func() { _ = eng.Close() })
	srv := servertest.Start(t, server.Config{Engine: eng, Metrics: prommetrics.New(reg), Logger: zap.NewNop()})
	metricsURL := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metricsURL.Close)
	c := srv.Client()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("wide"), ShardCount: aws.Int32(1000)}); err != nil {
		t.Fatal(err)
	}
	for batch := range 4 {
		var recs []types.PutRecordsRequestEntry
		for i := range 500 {
			recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("pk-", batch, "-", i)), Data: []byte("x")})
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("wide"), Records: recs})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v", err)
		}
	}
	got := scrape(t, metricsURL.URL)
	if v := got[`shoal_stream_incoming_records_total{operation="PutRecords", stream="wide"}`]; v != 2000 {
		t.Fatalf("incoming records = %v, want 2000", v)
	}
	for k := range got {
		if strings.Contains(k, "shard=") {
			t.Errorf("a per-shard series: %s", k)
		}
	}
	if len(got) > 150 {
		t.Errorf("%d series after writing to 1,000 shards", len(got))
	}
}
