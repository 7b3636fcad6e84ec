package prommetrics_test

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/consumer/prommetrics"
	"github.com/shoalstream/shoal/internal/testutil/promtest"
)

// Example creates the collectors of one worker of the application
// "orders-app" on a registry of its own and prints the series they export
// that are not zero (histograms by their count of observations). A worker
// makes these calls itself once it is given the Metrics in
// consumer.Config.Metrics; here they are made directly, as a worker that
// took the leases of two shards, read and processed a batch of 3 records
// (120 bytes) from one of them, checkpointed it, and found both shards
// behind would make them.
func Example() {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, prommetrics.WithApplication("orders-app"))

	for i, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		m.LeaseTaken(shard, false)
		m.LeasesHeld(i + 1)
	}
	m.LeaseBalance(2, 1)
	m.GetRecords("shardId-000000000000", 8*time.Millisecond, 3, nil)
	m.MillisBehindLatest("shardId-000000000000", 1500)
	m.MillisBehindLatest("shardId-000000000001", 4000)
	m.ProcessRecords("shardId-000000000000", 30*time.Millisecond, nil)
	m.RecordsProcessed("shardId-000000000000", 3)
	m.DataBytesProcessed("shardId-000000000000", 120)
	m.Checkpoint("shardId-000000000000", 2*time.Millisecond, nil)
	// The worker is stopped: shard 1's lag no longer counts.
	m.ShardShutdown("shardId-000000000001", consumer.ShutdownRequested)

	promtest.PrintNonZero(reg)
	// Output:
	// shoal_consumer_active_leases{application="orders-app"} 2
	// shoal_consumer_behind_latest_seconds{application="orders-app",shard="shardId-000000000000"} 1.5
	// shoal_consumer_checkpoint_duration_seconds_count{application="orders-app"} 1
	// shoal_consumer_checkpoints_total{application="orders-app",outcome="ok"} 1
	// shoal_consumer_get_records_calls_total{application="orders-app",outcome="ok"} 1
	// shoal_consumer_get_records_duration_seconds_count{application="orders-app"} 1
	// shoal_consumer_leases_held{application="orders-app"} 2
	// shoal_consumer_leases_taken_total{application="orders-app"} 2
	// shoal_consumer_max_behind_latest_seconds{application="orders-app"} 1.5
	// shoal_consumer_process_records_duration_seconds_count{application="orders-app",shard="shardId-000000000000"} 1
	// shoal_consumer_processed_bytes_total{application="orders-app",shard="shardId-000000000000"} 120
	// shoal_consumer_records_processed_total{application="orders-app",shard="shardId-000000000000"} 3
	// shoal_consumer_shard_shutdowns_total{application="orders-app",reason="REQUESTED"} 1
	// shoal_consumer_workers{application="orders-app"} 1
}
