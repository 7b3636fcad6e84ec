package prommetrics_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoalstream/shoal/server/prommetrics"
)

// A server given m (server.Config.Metrics) reports each call; here two
// calls are reported by hand.
func Example() {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg)
	m.Incoming("orders", "PutRecords", 500, 50_000)
	m.Call("PutRecords", 3*time.Millisecond, "")
	n, _ := testutil.GatherAndCount(reg, "shoal_stream_incoming_records_total", "shoal_api_requests_total")
	fmt.Println(n, "series")
	// Output: 2 series
}
