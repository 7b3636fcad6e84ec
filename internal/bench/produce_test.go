package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/bench"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// produceJSON is the part of "bench produce -json" the tests read.
type produceJSON struct {
	Op             string  `json:"op"`
	Shards         int     `json:"shards"`
	Aggregation    bool    `json:"aggregation"`
	RateLimit      int     `json:"rate_limit"`
	Put            int64   `json:"put"`
	Records        int64   `json:"records"`
	Bytes          int64   `json:"bytes"`
	Calls          int64   `json:"calls"`
	KinesisRecords int64   `json:"kinesis_records"`
	RecordsPerSec  float64 `json:"records_per_sec"`
	LatencySamples int     `json:"latency_samples"`
	LatencyMS      *struct {
		P50, P99 float64
	} `json:"latency_ms"`
	CPUNsPerRecord float64 `json:"cpu_ns_per_record"`
	FailedRecords  int64   `json:"failed_records"`
	FailedCalls    int64   `json:"failed_calls"`
	PutErrors      int64   `json:"put_errors"`
}

// readUserRecords reads every shard of the stream from TRIM_HORIZON and
// returns its user records after deaggregation, and how many Kinesis
// records held them.
func readUserRecords(t *testing.T, c *kinesis.Client, stream string) (user []aggregation.UserRecord, kinesisRecords int) {
	t.Helper()
	ctx := context.Background()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil; {
			got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got.Records {
				kinesisRecords++
				subs, err := aggregation.Deaggregate(aws.ToString(r.PartitionKey), r.Data)
				if err != nil && !errors.Is(err, aggregation.ErrNotAggregated) {
					t.Fatalf("deaggregate: %v", err)
				}
				for _, u := range subs {
					user = append(user, aggregation.UserRecord{PartitionKey: u.PartitionKey, Data: u.Data})
				}
			}
			if len(got.Records) == 0 && aws.ToInt64(got.MillisBehindLatest) == 0 {
				break
			}
			iter = got.NextShardIterator
		}
	}
	return user, kinesisRecords
}

// TestProduceRecords runs "bench produce -records 5000" against a real
// server, with and without aggregation, and checks that the tool reports
// 5000 records and that the stream holds exactly those 5000 user records.
func TestProduceRecords(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		agg   bool
	}{
		{"aggregated", nil, true},
		{"plain", []string{"-no-aggregation", "-no-rate-limit"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, server.Config{Logger: zap.NewNop()})
			var out bytes.Buffer
			args := append([]string{"produce", "--endpoint", srv.Endpoint, "--stream", "prod", "--shards", "3",
				"--records", "5000", "--size", "40", "--writers", "4", "--keys", "50", "--json"}, tc.extra...)
			if err := bench.Main(t.Context(), args, &out); err != nil {
				t.Fatalf("Main: %v\n%s", err, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var r produceJSON
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
				t.Fatalf("last line is not a JSON result: %v\n%s", err, out.String())
			}
			t.Logf("\n%s", out.String())
			if r.Op != "produce" || r.Shards != 3 || r.Aggregation != tc.agg {
				t.Errorf("result header: %+v", r)
			}
			if r.Put != 5000 || r.Records != 5000 || r.Bytes != 5000*40 {
				t.Errorf("reported %d put, %d records, %d bytes; want 5000, 5000, 200000", r.Put, r.Records, r.Bytes)
			}
			if r.FailedRecords != 0 || r.FailedCalls != 0 || r.PutErrors != 0 {
				t.Errorf("errors reported: %+v", r)
			}
			if r.Calls < 1 || r.RecordsPerSec <= 0 || r.CPUNsPerRecord <= 0 {
				t.Errorf("figures missing: %+v", r)
			}
			if r.LatencySamples < 5000/64 || r.LatencyMS == nil || r.LatencyMS.P50 <= 0 || r.LatencyMS.P99 < r.LatencyMS.P50 {
				t.Errorf("put→result latency: %d samples, %+v", r.LatencySamples, r.LatencyMS)
			}
			if !strings.Contains(out.String(), "produce: 5000 records in ") {
				t.Errorf("human output missing the summary line:\n%s", out.String())
			}

			user, kinesisRecords := readUserRecords(t, srv.Client(), "prod")
			if len(user) != 5000 {
				t.Fatalf("stream holds %d user records, want 5000", len(user))
			}
			if int64(kinesisRecords) != r.KinesisRecords {
				t.Errorf("stream holds %d Kinesis records, the tool reported %d", kinesisRecords, r.KinesisRecords)
			}
			if tc.agg && kinesisRecords >= 5000 || !tc.agg && kinesisRecords != 5000 {
				t.Errorf("aggregation %v: %d Kinesis records for 5000 user records", tc.agg, kinesisRecords)
			}
			keys := map[string]bool{}
			for _, u := range user {
				keys[u.PartitionKey] = true
				if len(u.Data) != 40 {
					t.Fatalf("user record of %d bytes, want 40", len(u.Data))
				}
			}
			if len(keys) != 50 {
				t.Errorf("%d distinct keys, want 50", len(keys))
			}
		})
	}
}

func TestProduceFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-writers", "0"},
		{"-records", "-1"},
		{"-records", "0", "-duration", "0"},
		{"-keys", "0"},
		{"-size", "-1"},
		{"stray"},
	} {
		var out bytes.Buffer
		if err := bench.Main(t.Context(), append([]string{"produce"}, args...), &out); err == nil {
			t.Errorf("produce %q: no error", args)
		}
	}
	var out bytes.Buffer
	if err := bench.Main(t.Context(), []string{"produce", "-h"}, &out); err != nil || !strings.Contains(out.String(), "-no-rate-limit") {
		t.Errorf("produce -h: %v\n%s", err, out.String())
	}
}

// TestProduceDuration runs "bench produce -duration": it stops putting after
// the duration, and the stream holds what it reports.
func TestProduceDuration(t *testing.T) {
	srv := servertest.Start(t, server.Config{Logger: zap.NewNop()})
	var out bytes.Buffer
	args := []string{"produce", "-endpoint", srv.Endpoint, "-duration", "300ms", "-rate-limit", "-1", "-writers", "2", "-json"}
	if err := bench.Main(t.Context(), args, &out); err != nil {
		t.Fatalf("Main: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var r produceJSON
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("last line is not a JSON result: %v\n%s", err, out.String())
	}
	if r.Records == 0 || r.Records != r.Put || r.RateLimit != 0 {
		t.Fatalf("reported %d put, %d stored, rate limit %d\n%s", r.Put, r.Records, r.RateLimit, out.String())
	}
	if user, _ := readUserRecords(t, srv.Client(), "bench-produce"); int64(len(user)) != r.Records {
		t.Errorf("stream holds %d user records, the tool reported %d", len(user), r.Records)
	}
}
