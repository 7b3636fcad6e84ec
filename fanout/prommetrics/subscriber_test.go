package prommetrics_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/fanout/prommetrics"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/background"
	"github.com/shoalstream/shoal/internal/testutil/promtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

const testStream = "fanout-metrics"

// sums returns, per label set of the family name, the value (counters
// and gauges) or the count of observations (histograms), keyed by the
// labels other than the constant ones, as "k=v,k=v" ("" for none).
func sums(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range promtest.Series(t, g, name) {
		var key []string
		for _, l := range s.GetLabel() {
			if l.GetName() != "consumer" && l.GetName() != "stream" {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
		}
		out[strings.Join(key, ",")] = promtest.Value(s)
	}
	return out
}

func total(m map[string]float64) float64 {
	n := 0.0
	for _, v := range m {
		n += v
	}
	return n
}

// TestSubscriberExactCounts runs a Subscriber against a real server whose
// subscriptions last 300ms, through a known workload (40 plain records and
// a KPL aggregate of three user records, one of them outside its shard's
// hash key range), and checks the counts exactly, and the invariants of the
// subscription counts across many expiries.
func TestSubscriberExactCounts(t *testing.T) {
	srv := servertest.Start(t, server.Config{
		Logger: zap.NewNop(), Fsync: storage.FsyncNever,
		SubscriptionLifetime: 300 * time.Millisecond, SubscriptionKeepAlive: 100 * time.Millisecond,
	})
	client := srv.StreamingClient() // no overall HTTP timeout: it would cut event streams
	ctx := t.Context()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, func() error {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
		if err != nil {
			return err
		}
		if s := out.StreamDescriptionSummary.StreamStatus; s != types.StreamStatusActive {
			return fmt.Errorf("stream %s", s)
		}
		return nil
	})

	var entries []types.PutRecordsRequestEntry
	for i := range 40 {
		entries = append(entries, types.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprint("key-", i)), Data: []byte(fmt.Sprintf("event-%02d%s", i, strings.Repeat("x", i%4))),
		})
	}
	agg, err := aggregation.NewAggregator(aggregation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const maxHashKey = "340282366920938463463374607431768211455"
	for _, u := range []aggregation.UserRecord{
		{PartitionKey: "u1", ExplicitHashKey: "0", Data: []byte("in-1")},
		{PartitionKey: "u2", ExplicitHashKey: "0", Data: []byte("in-22")},
		{PartitionKey: "u3", ExplicitHashKey: maxHashKey, Data: []byte("out")}, // the last shard's: dropped
	} {
		if err := agg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(rec.PartitionKey), ExplicitHashKey: aws.String(rec.ExplicitHashKey), Data: rec.Data})
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put records: %v", err)
	}
	wantRecords, wantBytes := map[string]float64{}, map[string]float64{}
	for i, r := range out.Records {
		key := "shard=" + aws.ToString(r.ShardId)
		if i == 40 { // the aggregate: its two user records in range
			wantRecords[key] += 2
			wantBytes[key] += float64(len("in-1") + len("in-22"))
			continue
		}
		wantRecords[key]++
		wantBytes[key] += float64(len(entries[i].Data))
	}
	if len(wantRecords) != 2 {
		t.Fatalf("records went to %d shards, want 2", len(wantRecords))
	}

	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithConsumer("audit"), prommetrics.WithStream(testStream))
	var (
		mu      sync.Mutex
		calls   = map[string]float64{} // Handler calls by "shard=<id>"
		handled int
	)
	s, err := fanout.New(client, fanout.Config{
		StreamName: testStream, ConsumerName: "audit", StartingPosition: fanout.TrimHorizon(), Deaggregate: true,
		Handler: func(_ context.Context, b fanout.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			calls["shard="+b.ShardID]++
			handled += len(b.Records)
			return nil
		},
		Options: fanout.Options{
			Backoff: fanout.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond},
			Logger:  zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			Metrics: m,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := background.Run(t, ctx, s.Run)
	// Every record handled, and subscriptions expired and replaced a few
	// times (the server ends each after 300ms).
	wait.Eventually(t, 15*time.Second, func() error {
		mu.Lock()
		n := handled
		mu.Unlock()
		if completed := sums(t, reg, "shoal_fanout_subscriptions_ended_total")["reason=Completed"]; n != 42 || completed < 4 {
			return fmt.Errorf("%d of 42 records handled, %g subscriptions completed (want 4)", n, completed)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	check := func(name string, want map[string]float64) {
		t.Helper()
		got := sums(t, reg, name)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("shoal_fanout_records_processed_total", wantRecords)
	check("shoal_fanout_processed_bytes_total", wantBytes)
	check("shoal_fanout_handler_duration_seconds", calls)
	check("shoal_fanout_records_dropped_total", map[string]float64{"": 1})
	check("shoal_fanout_handler_errors_total", map[string]float64{"": 0})
	check("shoal_fanout_open_subscriptions", map[string]float64{"": 0})
	check("shoal_fanout_max_behind_latest_seconds", map[string]float64{"": 0})
	check("shoal_fanout_behind_latest_seconds", map[string]float64{})
	check("shoal_fanout_shard_shutdowns_total", map[string]float64{"reason=Canceled": 2})

	// Every subscription that started ended once; each but the first of
	// each shard was a resubscription; every call was timed.
	subscribes := sums(t, reg, "shoal_fanout_subscribe_calls_total")
	started := subscribes["outcome=ok"]
	if ended := total(sums(t, reg, "shoal_fanout_subscriptions_ended_total")); ended != started {
		t.Errorf("%g subscriptions ended, %g started", ended, started)
	}
	if n := total(sums(t, reg, "shoal_fanout_resubscribe_delay_seconds")); n != started-2 {
		t.Errorf("%g resubscriptions observed, want %g (started - one per shard)", n, started-2)
	}
	if n := total(sums(t, reg, "shoal_fanout_subscribe_duration_seconds")); n != total(subscribes) {
		t.Errorf("%g SubscribeToShard durations observed, want %g (every call)", n, total(subscribes))
	}
	if n := testutil.CollectAndCount(reg); n < 10 {
		t.Errorf("%d series gathered", n)
	}
}
