package prommetrics_test

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/fanout/prommetrics"
	"github.com/shoalstream/shoal/internal/testutil/promtest"
)

// Example creates the collectors of one Subscriber reading as the
// consumer "audit" on a registry of its own and prints the series they
// export that are not zero (histograms by their count of observations). A
// Subscriber makes these calls itself once it is given the Metrics in
// fanout.Options.Metrics; here they are made directly, as a Subscriber
// whose subscription to one shard delivered a batch of 2 records (64
// bytes) and expired, and whose next one was refused once
// (ResourceInUseException) before it started, would make them.
func Example() {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithConsumer("audit"))

	const shard = "shardId-000000000000"
	m.SubscribeToShard(shard, 5*time.Millisecond, "")
	m.MillisBehindLatest(shard, 2500)
	m.HandlerCall(shard, 3*time.Millisecond, nil)
	m.RecordsProcessed(shard, 2)
	m.DataBytesProcessed(shard, 64)
	m.SubscriptionEnded(shard, fanout.ReasonCompleted)
	m.SubscribeToShard(shard, 2*time.Millisecond, "ResourceInUseException")
	m.SubscribeToShard(shard, 4*time.Millisecond, "")
	m.Resubscribed(shard, 250*time.Millisecond)

	promtest.PrintNonZero(reg)
	// Output:
	// shoal_fanout_behind_latest_seconds{consumer="audit",shard="shardId-000000000000"} 2.5
	// shoal_fanout_handler_duration_seconds_count{consumer="audit",shard="shardId-000000000000"} 1
	// shoal_fanout_max_behind_latest_seconds{consumer="audit"} 2.5
	// shoal_fanout_open_subscriptions{consumer="audit"} 1
	// shoal_fanout_processed_bytes_total{consumer="audit",shard="shardId-000000000000"} 64
	// shoal_fanout_records_processed_total{consumer="audit",shard="shardId-000000000000"} 2
	// shoal_fanout_resubscribe_delay_seconds_count{consumer="audit"} 1
	// shoal_fanout_subscribe_calls_total{consumer="audit",outcome="ResourceInUseException"} 1
	// shoal_fanout_subscribe_calls_total{consumer="audit",outcome="ok"} 2
	// shoal_fanout_subscribe_duration_seconds_count{consumer="audit"} 3
	// shoal_fanout_subscriptions_ended_total{consumer="audit",reason="Completed"} 1
}
