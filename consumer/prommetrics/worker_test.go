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
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/consumer/prommetrics"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/background"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/promtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

const (
	testApp    = "metrics-app"
	testStream = "metrics-stream"
)

// tally is what the test's processors saw, per shard.
type tally struct {
	mu      sync.Mutex
	records map[string]int // user records processed and checkpointed
	bytes   map[string]int // their data bytes
	calls   map[string]int // ProcessRecords calls
}

func (c *tally) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.records {
		n += r
	}
	return n
}

// proc counts what it processes and checkpoints every batch; it does not
// checkpoint on shutdown, so that every checkpoint is a batch's.
type proc struct {
	c     *tally
	shard string
}

func (p *proc) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *proc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.c.mu.Lock()
	p.c.calls[p.shard]++
	p.c.mu.Unlock()
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	for _, r := range in.Records {
		p.c.records[p.shard]++
		p.c.bytes[p.shard] += len(r.Data)
	}
	return nil
}

func (p *proc) LeaseLost(context.Context, consumer.LeaseLostInput) {}

func (p *proc) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *proc) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error { return nil }

// putAll puts the entries and adds, per shard, the user records and data
// bytes they hold (an aggregate: those of its user records, given in user)
// to want.
func putAll(t *testing.T, c *kinesis.Client, entries []types.PutRecordsRequestEntry, user map[int][]aggregation.UserRecord, wantRecords, wantBytes map[string]int) {
	t.Helper()
	out, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put records: %v (%d failed)", err, aws.ToInt32(out.FailedRecordCount))
	}
	for i, r := range out.Records {
		shard := aws.ToString(r.ShardId)
		if recs, ok := user[i]; ok {
			for _, u := range recs {
				wantRecords[shard]++
				wantBytes[shard] += len(u.Data)
			}
			continue
		}
		wantRecords[shard]++
		wantBytes[shard] += len(entries[i].Data)
	}
}

// value returns the value of the counter or gauge name whose labels
// include labels ("k=v" pairs); 0 if there is none.
func value(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
series:
	for _, s := range promtest.Series(t, g, name) {
		have := map[string]bool{}
		for _, l := range s.GetLabel() {
			have[l.GetName()+"="+l.GetValue()] = true
		}
		for _, l := range labels {
			if !have[l] {
				continue series
			}
		}
		return promtest.Value(s)
	}
	return 0
}

// TestWorkerExactCounts runs a real Worker (real server, real PostgreSQL)
// with the Prometheus Metrics through a known workload and checks the
// counters exactly: 30 plain records, a lease stolen from under the worker
// and taken back once it expired, then a KPL aggregate of 3 user records
// and 10 more plain records, then a graceful shutdown.
func TestWorkerExactCounts(t *testing.T) {
	srv := servertest.Start(t, server.Config{Logger: zap.NewNop(), Fsync: storage.FsyncNever})
	client := srv.Client()
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	pool, schema := pgtest.New(t)
	newStore := func(failover time.Duration) checkpoint.Store {
		s, err := checkpoint.NewPGStore(t.Context(), pool, checkpoint.PGConfig{Schema: schema, FailoverTime: failover})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	store := newStore(2 * time.Second)
	thief := newStore(500 * time.Millisecond) // its take expires soon, unrenewed

	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithApplication(testApp), prommetrics.WithStream(testStream))
	seen := &tally{records: map[string]int{}, bytes: map[string]int{}, calls: map[string]int{}}
	w, err := consumer.New(client, store, func(shard string) consumer.Processor { return &proc{c: seen, shard: shard} }, consumer.Config{
		ApplicationName: testApp, StreamName: testStream, WorkerID: "w1",
		InitialPosition: consumer.TrimHorizon, FailoverTime: 2 * time.Second, TakeInterval: time.Second,
		IdleTimeBetweenReads: 50 * time.Millisecond, TaskBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second, Metrics: m,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := background.Run(t, context.Background(), w.Run)

	wantRecords, wantBytes := map[string]int{}, map[string]int{}
	var entries []types.PutRecordsRequestEntry
	for i := range 30 {
		entries = append(entries, types.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprint("key-", i)), Data: []byte(fmt.Sprintf("record-%02d%s", i, strings.Repeat("x", i%5))),
		})
	}
	putAll(t, client, entries, nil, wantRecords, wantBytes)
	if len(wantRecords) != 2 {
		t.Fatalf("records went to %d shards, want 2: %v", len(wantRecords), wantRecords)
	}
	wait.Eventually(t, 15*time.Second, func() error {
		if n := seen.total(); n != 30 {
			return fmt.Errorf("%d of 30 records processed", n)
		}
		return nil
	})

	// Another owner takes a lease from under the worker: it stops that
	// shard (LEASE_LOST) and takes the lease back once the thief's take
	// expires.
	stolen := w.HeldShards()[0]
	l, err := thief.GetLease(t.Context(), testApp, stolen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := thief.TakeLease(t.Context(), l, "thief"); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 15*time.Second, func() error {
		lost := value(t, reg, "shoal_consumer_shard_shutdowns_total", "reason="+consumer.ShutdownLeaseLost)
		taken := value(t, reg, "shoal_consumer_leases_taken_total")
		if lost != 1 || taken != 3 || len(w.HeldShards()) != 2 {
			return fmt.Errorf("shutdowns by LEASE_LOST %g, leases taken %g, held %v: want 1, 3 and both", lost, taken, w.HeldShards())
		}
		return nil
	})

	// One KPL aggregate of 3 user records (one partition key: all in the
	// aggregate's shard) and 10 more plain records.
	agg, err := aggregation.NewAggregator(aggregation.Config{AggregateSingle: true})
	if err != nil {
		t.Fatal(err)
	}
	users := []aggregation.UserRecord{{PartitionKey: "agg", Data: []byte("a")}, {PartitionKey: "agg", Data: []byte("bb")}, {PartitionKey: "agg", Data: []byte("ccc")}}
	for _, u := range users {
		if err := agg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	entries = []types.PutRecordsRequestEntry{{PartitionKey: aws.String(rec.PartitionKey), Data: rec.Data}}
	if rec.ExplicitHashKey != "" {
		entries[0].ExplicitHashKey = aws.String(rec.ExplicitHashKey)
	}
	for i := 30; i < 40; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("key-", i)), Data: []byte(fmt.Sprintf("late-%d", i))})
	}
	putAll(t, client, entries, map[int][]aggregation.UserRecord{0: users}, wantRecords, wantBytes)
	wait.Eventually(t, 15*time.Second, func() error {
		if n := seen.total(); n != 43 {
			return fmt.Errorf("%d of 43 records processed", n)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	seen.mu.Lock()
	defer seen.mu.Unlock()
	calls := 0
	for shard, want := range wantRecords {
		if seen.records[shard] != want || seen.bytes[shard] != wantBytes[shard] {
			t.Fatalf("%s: processor saw %d records, %d bytes; want %d, %d (a duplicate delivery?)",
				shard, seen.records[shard], seen.bytes[shard], want, wantBytes[shard])
		}
		for name, want := range map[string]int{
			"shoal_consumer_records_processed_total": want,
			"shoal_consumer_processed_bytes_total":   wantBytes[shard],
		} {
			if got := value(t, reg, name, "shard="+shard); got != float64(want) {
				t.Errorf("%s{shard=%q} = %g, want %d", name, shard, got, want)
			}
		}
		if got := histogramCount(t, reg, "shoal_consumer_process_records_duration_seconds", shard); got != uint64(seen.calls[shard]) {
			t.Errorf("process_records_duration_seconds{shard=%q}: %d observations, want %d (the processor's calls)", shard, got, seen.calls[shard])
		}
		calls += seen.calls[shard]
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"shoal_consumer_checkpoints_total", []string{"outcome=ok"}, float64(calls)},
		{"shoal_consumer_checkpoints_total", []string{"outcome=error"}, 0},
		{"shoal_consumer_checkpoints_total", []string{"outcome=lease_lost"}, 0},
		{"shoal_consumer_process_records_failures_total", nil, 0},
		{"shoal_consumer_leases_taken_total", nil, 3},
		{"shoal_consumer_leases_stolen_total", nil, 0},
		{"shoal_consumer_leases_lost_total", nil, 1},
		{"shoal_consumer_leases_held", nil, 0},
		{"shoal_consumer_active_leases", nil, 2},
		{"shoal_consumer_workers", nil, 1},
		{"shoal_consumer_shard_shutdowns_total", []string{"reason=" + consumer.ShutdownLeaseLost}, 1},
		{"shoal_consumer_shard_shutdowns_total", []string{"reason=" + consumer.ShutdownRequested}, 2},
		{"shoal_consumer_shard_shutdowns_total", []string{"reason=" + consumer.ShutdownShardEnd}, 0},
		{"shoal_consumer_aggregated_records_total", nil, 1},
		{"shoal_consumer_aggregated_user_records_total", nil, 3},
		{"shoal_consumer_records_dropped_total", nil, 0},
		{"shoal_consumer_corrupt_aggregates_total", nil, 0},
		{"shoal_consumer_max_behind_latest_seconds", nil, 0},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, reg, "shoal_consumer_get_records_calls_total", "outcome=ok"); got < 2 {
		t.Errorf("%g successful GetRecords calls, want at least one per shard", got)
	}
	if n := testutil.CollectAndCount(reg, "shoal_consumer_behind_latest_seconds"); n != 0 {
		t.Errorf("%d behind_latest series after the worker stopped, want 0", n)
	}
	// Every series carries the application and stream labels, and none
	// carries a partition key or data.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			text := fmt.Sprint(s.GetLabel())
			if !strings.Contains(text, `value:"`+testApp+`"`) || !strings.Contains(text, `value:"`+testStream+`"`) {
				t.Errorf("%s %s: no application or stream label", f.GetName(), text)
			}
			if strings.Contains(text, "key-") || strings.Contains(text, "record-") || strings.Contains(text, "agg") {
				t.Errorf("%s %s: a partition key or data in a label", f.GetName(), text)
			}
		}
	}
}
