package prommetrics_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/fanout/prommetrics"
	"github.com/shoalstream/shoal/internal/testutil/promtest"
)

// TestMain fails the package if any goroutine outlives the tests: the
// Subscriber's, the SDK event stream readers it owns, the server's. The
// HTTP client's idle connections end when the test server shuts down,
// which goleak waits for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestMaxBehindLatestForgetsShards: the lag is the largest of the shards
// being read, and a shard whose reading stopped stops counting (its own
// series goes too); a subscription that merely ended does not.
func TestMaxBehindLatestForgetsShards(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithConsumer("audit"), prommetrics.WithStream("orders"))
	m.SubscribeToShard("a", time.Millisecond, "")
	m.SubscribeToShard("b", time.Millisecond, "")
	m.MillisBehindLatest("a", 7000)
	m.MillisBehindLatest("b", 250)
	m.SubscriptionEnded("a", fanout.ReasonCompleted)
	promtest.Compare(t, reg, `
shoal_fanout_behind_latest_seconds{consumer="audit",shard="a",stream="orders"} 7
shoal_fanout_behind_latest_seconds{consumer="audit",shard="b",stream="orders"} 0.25
shoal_fanout_max_behind_latest_seconds{consumer="audit",stream="orders"} 7
shoal_fanout_open_subscriptions{consumer="audit",stream="orders"} 1
`, "shoal_fanout_behind_latest_seconds", "shoal_fanout_max_behind_latest_seconds", "shoal_fanout_open_subscriptions")

	m.ShardShutdown("a", fanout.ReasonShardEnded)
	promtest.Compare(t, reg, `
shoal_fanout_behind_latest_seconds{consumer="audit",shard="b",stream="orders"} 0.25
shoal_fanout_max_behind_latest_seconds{consumer="audit",stream="orders"} 0.25
shoal_fanout_shard_shutdowns_total{consumer="audit",reason="ShardEnded",stream="orders"} 1
`, "shoal_fanout_behind_latest_seconds", "shoal_fanout_max_behind_latest_seconds", "shoal_fanout_shard_shutdowns_total")

	m.SubscriptionEnded("b", fanout.ReasonCanceled)
	m.ShardShutdown("b", fanout.ReasonCanceled)
	if n := testutil.CollectAndCount(reg, "shoal_fanout_behind_latest_seconds"); n != 0 {
		t.Errorf("%d behind_latest series after every shard stopped, want 0", n)
	}
	promtest.Compare(t, reg, `
shoal_fanout_max_behind_latest_seconds{consumer="audit",stream="orders"} 0
shoal_fanout_open_subscriptions{consumer="audit",stream="orders"} 0
shoal_fanout_subscriptions_ended_total{consumer="audit",reason="Canceled",stream="orders"} 1
shoal_fanout_subscriptions_ended_total{consumer="audit",reason="Completed",stream="orders"} 1
`, "shoal_fanout_max_behind_latest_seconds", "shoal_fanout_open_subscriptions", "shoal_fanout_subscriptions_ended_total")
}

// TestHandlerAndSubscribeOutcomes: failed calls are counted by code and
// are not open subscriptions; handler errors and dropped records count.
func TestHandlerAndSubscribeOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg)
	m.SubscribeToShard("s", time.Millisecond, "LimitExceededException")
	m.SubscribeToShard("s", time.Millisecond, fanout.ReasonTransport)
	m.SubscribeToShard("s", time.Millisecond, "")
	m.HandlerCall("s", time.Millisecond, nil)
	m.HandlerCall("s", time.Millisecond, fmt.Errorf("downstream unavailable"))
	m.RecordsDropped("s", 4)
	promtest.Compare(t, reg, `
shoal_fanout_handler_errors_total 1
shoal_fanout_open_subscriptions 1
shoal_fanout_records_dropped_total 4
shoal_fanout_subscribe_calls_total{outcome="LimitExceededException"} 1
shoal_fanout_subscribe_calls_total{outcome="Transport"} 1
shoal_fanout_subscribe_calls_total{outcome="ok"} 1
`, "shoal_fanout_handler_errors_total", "shoal_fanout_open_subscriptions", "shoal_fanout_records_dropped_total",
		"shoal_fanout_subscribe_calls_total")
}

// TestConcurrentUse: the shards' goroutines call the Metrics concurrently
// while Prometheus scrapes it (run with -race).
func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithConsumer("c"))
	var wg sync.WaitGroup
	for i := range 4 {
		shard := fmt.Sprint("shard-", i)
		wg.Go(func() {
			for j := range 100 {
				m.SubscribeToShard(shard, time.Millisecond, "")
				m.MillisBehindLatest(shard, int64(j))
				m.RecordsProcessed(shard, 2)
				m.SubscriptionEnded(shard, fanout.ReasonCompleted)
			}
			m.ShardShutdown(shard, fanout.ReasonCanceled)
		})
	}
	wg.Go(func() { promtest.GatherRepeatedly(t, reg, 50) })
	wg.Wait()
	promtest.Compare(t, reg, `
shoal_fanout_max_behind_latest_seconds{consumer="c"} 0
shoal_fanout_open_subscriptions{consumer="c"} 0
shoal_fanout_records_processed_total{consumer="c",shard="shard-0"} 200
shoal_fanout_records_processed_total{consumer="c",shard="shard-1"} 200
shoal_fanout_records_processed_total{consumer="c",shard="shard-2"} 200
shoal_fanout_records_processed_total{consumer="c",shard="shard-3"} 200
`, "shoal_fanout_max_behind_latest_seconds", "shoal_fanout_open_subscriptions", "shoal_fanout_records_processed_total")
}
