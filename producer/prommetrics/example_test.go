package prommetrics_test

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/internal/testutil/promtest"
	"github.com/shoalstream/shoal/producer/prommetrics"
)

// buffer stands in for a *producer.Producer, which RegisterBuffer reads.
type buffer struct {
	records int
	bytes   int64
}

func (b buffer) BufferedRecords() int { return b.records }
func (b buffer) BufferedBytes() int64 { return b.bytes }

// Example creates the collectors of one producer on a registry of its own
// and prints the series they export that are not zero (histograms by their
// count of observations). A producer makes these calls itself once
// it is given the Metrics in producer.Config.Metrics; here they are made
// directly, as one PutRecords call that stored 4 Kinesis records holding 10
// user records and had one record throttled would make them.
func Example() {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, "orders")
	m.RegisterBuffer(buffer{records: 2, bytes: 300}) // p, the *producer.Producer, in real use

	m.ShardMapRefreshed(4, true, nil)
	m.PutRecordsCall(20*time.Millisecond, 5, 1, nil)
	m.KinesisRecordsPut(4, 10)
	m.UserRecordsPut(10)
	m.Retried("ProvisionedThroughputExceededException", 1)

	promtest.PrintNonZero(reg)
	// Output:
	// shoal_producer_buffered_bytes{stream="orders"} 300
	// shoal_producer_buffered_records{stream="orders"} 2
	// shoal_producer_kinesis_records_per_put_records_call_count{stream="orders"} 1
	// shoal_producer_kinesis_records_put_total{stream="orders"} 4
	// shoal_producer_open_shards{stream="orders"} 4
	// shoal_producer_put_records_calls_total{outcome="ok",stream="orders"} 1
	// shoal_producer_put_records_duration_seconds_count{stream="orders"} 1
	// shoal_producer_retries_total{code="ProvisionedThroughputExceededException",stream="orders"} 1
	// shoal_producer_shard_map_refreshes_total{outcome="changed",stream="orders"} 1
	// shoal_producer_throttles_total{stream="orders"} 1
	// shoal_producer_user_records_per_kinesis_record_count{stream="orders"} 1
	// shoal_producer_user_records_put_total{stream="orders"} 10
}
