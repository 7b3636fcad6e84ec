package prommetrics_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/consumer/prommetrics"
	"github.com/shoalstream/shoal/internal/testutil/promtest"
)

// TestMain fails the package if any goroutine outlives the tests: the
// worker's, its Store's listener, the servers'. The HTTP client's idle
// connections end when the test servers shut down, which goleak waits for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestMaxBehindLatestForgetsShards: the application's lag is the largest
// of the shards held, and a shard that is lost or shut down stops counting
// (its own series goes too), so that the value does not stick.
func TestMaxBehindLatestForgetsShards(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithApplication("app"))
	m.MillisBehindLatest("a", 5000)
	m.MillisBehindLatest("b", 2000)
	m.MillisBehindLatest("c", 100)
	promtest.Compare(t, reg, `
shoal_consumer_behind_latest_seconds{application="app",shard="a"} 5
shoal_consumer_behind_latest_seconds{application="app",shard="b"} 2
shoal_consumer_behind_latest_seconds{application="app",shard="c"} 0.1
shoal_consumer_max_behind_latest_seconds{application="app"} 5
`, "shoal_consumer_behind_latest_seconds", "shoal_consumer_max_behind_latest_seconds")

	m.LeaseLost("a")
	m.MillisBehindLatest("b", 1500) // the last value counts, not the largest seen
	promtest.Compare(t, reg, `
shoal_consumer_behind_latest_seconds{application="app",shard="b"} 1.5
shoal_consumer_behind_latest_seconds{application="app",shard="c"} 0.1
shoal_consumer_max_behind_latest_seconds{application="app"} 1.5
shoal_consumer_leases_lost_total{application="app"} 1
`, "shoal_consumer_behind_latest_seconds", "shoal_consumer_max_behind_latest_seconds", "shoal_consumer_leases_lost_total")

	m.ShardShutdown("b", consumer.ShutdownShardEnd)
	m.ShardShutdown("a", consumer.ShutdownLeaseLost) // after LeaseLost: nothing left to drop
	promtest.Compare(t, reg, `
shoal_consumer_behind_latest_seconds{application="app",shard="c"} 0.1
shoal_consumer_max_behind_latest_seconds{application="app"} 0.1
shoal_consumer_shard_shutdowns_total{application="app",reason="LEASE_LOST"} 1
shoal_consumer_shard_shutdowns_total{application="app",reason="SHARD_END"} 1
`, "shoal_consumer_behind_latest_seconds", "shoal_consumer_max_behind_latest_seconds", "shoal_consumer_shard_shutdowns_total")

	m.ShardShutdown("c", consumer.ShutdownRequested)
	if n := testutil.CollectAndCount(reg, "shoal_consumer_behind_latest_seconds"); n != 0 {
		t.Errorf("%d behind_latest series after every shard stopped, want 0", n)
	}
	promtest.Compare(t, reg, `shoal_consumer_max_behind_latest_seconds{application="app"} 0`, "shoal_consumer_max_behind_latest_seconds")
}

// TestOutcomes: the calls' errors become the outcome labels the package
// documents.
func TestOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithApplication("app"), prommetrics.WithStream("orders"))
	for _, err := range []error{
		nil, nil,
		fmt.Errorf("get records: %w", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}),
		&types.ExpiredIteratorException{Message: aws.String("old")},
		fmt.Errorf("get records: %w", context.Canceled),
		errors.New("connection reset"),
	} {
		m.GetRecords("s", time.Millisecond, 0, err)
	}
	lost := fmt.Errorf("checkpoint s: %w", checkpoint.ErrLeaseLost)
	m.Checkpoint("s", time.Millisecond, nil)
	m.Checkpoint("s", time.Millisecond, lost)
	m.Checkpoint("s", time.Millisecond, errors.New("database down"))
	m.RenewLease("s", time.Millisecond, nil)
	m.RenewLease("s", time.Millisecond, fmt.Errorf("renew: %w", checkpoint.ErrNotFound))
	m.ProcessRecords("s", time.Millisecond, nil)
	m.ProcessRecords("s", time.Millisecond, errors.New("downstream unavailable"))
	m.LeaseTaken("s", false)
	m.LeaseTaken("t", true)
	m.RecordsDropped("s", 2)
	m.AggregatedRecords("s", 3, 30)
	m.CorruptAggregates("s", 1)
	m.BatchFailure("s", consumer.FailureRetried, 4)
	m.BatchFailure("s", consumer.FailureRetried, 4)
	m.BatchFailure("s", consumer.FailureDeadLetterFailed, 4)
	m.BatchFailure("s", consumer.FailureDeadLettered, 4)
	m.BatchFailure("t", consumer.FailureSkipped, 2)
	m.BatchFailure("t", consumer.FailureStopped, 1)
	m.ShardStalled("s")
	m.ShardStalled("s")
	m.ShardStalled("t")
	m.LeaseHandoff("s", consumer.HandoffRequested)
	m.LeaseHandoff("s", consumer.HandoffRequested)
	m.LeaseHandoff("t", consumer.HandoffHanded)
	m.LeaseHandoff("t", consumer.HandoffForced)
	promtest.Compare(t, reg, `
shoal_consumer_aggregated_records_total{application="app",stream="orders"} 3
shoal_consumer_aggregated_user_records_total{application="app",stream="orders"} 30
shoal_consumer_batch_failure_records_total{application="app",outcome="dead_letter_failed",stream="orders"} 4
shoal_consumer_batch_failure_records_total{application="app",outcome="dead_lettered",stream="orders"} 4
shoal_consumer_batch_failure_records_total{application="app",outcome="retried",stream="orders"} 8
shoal_consumer_batch_failure_records_total{application="app",outcome="skipped",stream="orders"} 2
shoal_consumer_batch_failure_records_total{application="app",outcome="stopped",stream="orders"} 1
shoal_consumer_batch_failures_total{application="app",outcome="dead_letter_failed",stream="orders"} 1
shoal_consumer_batch_failures_total{application="app",outcome="dead_lettered",stream="orders"} 1
shoal_consumer_batch_failures_total{application="app",outcome="retried",stream="orders"} 2
shoal_consumer_batch_failures_total{application="app",outcome="skipped",stream="orders"} 1
shoal_consumer_batch_failures_total{application="app",outcome="stopped",stream="orders"} 1
shoal_consumer_checkpoints_total{application="app",outcome="error",stream="orders"} 1
shoal_consumer_checkpoints_total{application="app",outcome="lease_lost",stream="orders"} 1
shoal_consumer_checkpoints_total{application="app",outcome="ok",stream="orders"} 1
shoal_consumer_corrupt_aggregates_total{application="app",stream="orders"} 1
shoal_consumer_get_records_calls_total{application="app",outcome="canceled",stream="orders"} 1
shoal_consumer_get_records_calls_total{application="app",outcome="error",stream="orders"} 1
shoal_consumer_get_records_calls_total{application="app",outcome="expired_iterator",stream="orders"} 1
shoal_consumer_get_records_calls_total{application="app",outcome="ok",stream="orders"} 2
shoal_consumer_get_records_calls_total{application="app",outcome="throttled",stream="orders"} 1
shoal_consumer_lease_handoffs_total{application="app",outcome="forced",stream="orders"} 1
shoal_consumer_lease_handoffs_total{application="app",outcome="handed",stream="orders"} 1
shoal_consumer_lease_handoffs_total{application="app",outcome="requested",stream="orders"} 2
shoal_consumer_lease_renewals_total{application="app",outcome="lease_lost",stream="orders"} 1
shoal_consumer_lease_renewals_total{application="app",outcome="ok",stream="orders"} 1
shoal_consumer_leases_stolen_total{application="app",stream="orders"} 1
shoal_consumer_leases_taken_total{application="app",stream="orders"} 2
shoal_consumer_process_records_failures_total{application="app",shard="s",stream="orders"} 1
shoal_consumer_records_dropped_total{application="app",stream="orders"} 2
shoal_consumer_shard_stalls_total{application="app",shard="s",stream="orders"} 2
shoal_consumer_shard_stalls_total{application="app",shard="t",stream="orders"} 1
`, "shoal_consumer_aggregated_records_total", "shoal_consumer_aggregated_user_records_total",
		"shoal_consumer_batch_failure_records_total", "shoal_consumer_batch_failures_total", "shoal_consumer_shard_stalls_total",
		"shoal_consumer_checkpoints_total", "shoal_consumer_corrupt_aggregates_total", "shoal_consumer_get_records_calls_total",
		"shoal_consumer_lease_handoffs_total", "shoal_consumer_lease_renewals_total", "shoal_consumer_leases_stolen_total", "shoal_consumer_leases_taken_total",
		"shoal_consumer_process_records_failures_total", "shoal_consumer_records_dropped_total")
	for name, want := range map[string]uint64{
		"shoal_consumer_get_records_duration_seconds":   6,
		"shoal_consumer_checkpoint_duration_seconds":    3,
		"shoal_consumer_lease_renewal_duration_seconds": 2,
	} {
		if got := histogramCount(t, reg, name, ""); got != want {
			t.Errorf("%s: %d observations, want %d", name, got, want)
		}
	}
	if got := histogramCount(t, reg, "shoal_consumer_process_records_duration_seconds", "s"); got != 2 {
		t.Errorf("process_records_duration_seconds{shard=s}: %d observations, want 2", got)
	}
}

// histogramCount returns the observations of the histogram name (of the
// shard's series if shard is not "").
func histogramCount(t *testing.T, g prometheus.Gatherer, name, shard string) uint64 {
	t.Helper()
	for _, s := range promtest.Series(t, g, name) {
		match := shard == ""
		for _, l := range s.GetLabel() {
			if l.GetName() == "shard" && l.GetValue() == shard {
				match = true
			}
		}
		if match {
			return s.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestLabels: applications share a registry; the same one twice panics, as
// prometheus.MustRegister does; extra labels tell two workers of one
// application apart; empty values are left out.
func TestLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := prommetrics.New(reg, prommetrics.WithApplication("a"))
	b := prommetrics.New(reg, prommetrics.WithApplication("b"), prommetrics.WithStream(""))
	a.LeasesHeld(1)
	b.LeasesHeld(2)
	promtest.Compare(t, reg, `
shoal_consumer_leases_held{application="a"} 1
shoal_consumer_leases_held{application="b"} 2
`, "shoal_consumer_leases_held")

	workers := prometheus.NewRegistry()
	for i := range 2 {
		w := prommetrics.New(workers, prommetrics.WithApplication("a"), prommetrics.WithLabels(prometheus.Labels{"worker": fmt.Sprint("w", i)}))
		w.LeasesHeld(i + 3)
	}
	promtest.Compare(t, workers, `
shoal_consumer_leases_held{application="a",worker="w0"} 3
shoal_consumer_leases_held{application="a",worker="w1"} 4
`, "shoal_consumer_leases_held")

	defer func() {
		if recover() == nil {
			t.Error("a second Metrics of application a registered without a panic")
		}
	}()
	prommetrics.New(reg, prommetrics.WithApplication("a"))
}

// TestConcurrentUse: the worker's goroutines call the Metrics concurrently
// while Prometheus scrapes it (run with -race).
func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg)
	var wg sync.WaitGroup
	for i := range 4 {
		shard := fmt.Sprintf("shard-%d", i)
		wg.Go(func() {
			for j := range 200 {
				m.MillisBehindLatest(shard, int64(j))
				m.RecordsProcessed(shard, 1)
				m.DataBytesProcessed(shard, 10)
				m.ProcessRecords(shard, time.Millisecond, nil)
				if j%50 == 49 {
					m.LeaseLost(shard)
				}
			}
			m.ShardShutdown(shard, consumer.ShutdownLeaseLost)
		})
	}
	wg.Go(func() { promtest.GatherRepeatedly(t, reg, 50) })
	wg.Wait()
	promtest.Compare(t, reg, `
shoal_consumer_max_behind_latest_seconds 0
shoal_consumer_records_processed_total{shard="shard-0"} 200
shoal_consumer_records_processed_total{shard="shard-1"} 200
shoal_consumer_records_processed_total{shard="shard-2"} 200
shoal_consumer_records_processed_total{shard="shard-3"} 200
shoal_consumer_shard_shutdowns_total{reason="LEASE_LOST"} 4
`, "shoal_consumer_max_behind_latest_seconds", "shoal_consumer_records_processed_total", "shoal_consumer_shard_shutdowns_total")
	if n := testutil.CollectAndCount(reg, "shoal_consumer_behind_latest_seconds"); n != 0 {
		t.Errorf("%d behind_latest series after every shard stopped, want 0", n)
	}
}
