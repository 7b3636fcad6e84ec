// Package prommetrics reports a producer's metrics to Prometheus: [Metrics]
// implements [producer.Metrics], and goes in [producer.Config].Metrics.
//
//	m := prommetrics.New(prometheus.DefaultRegisterer, "orders")
//	p, err := producer.New(client, producer.Config{StreamName: "orders", Metrics: m})
//	...
//	m.RegisterBuffer(p) // optional: gauges of the records and bytes buffered
//
// Every metric is named shoal_producer_* and carries a "stream" label with
// the name given to [New], so that several producers can share a registry.
// [Metrics.RegisterBuffer] adds gauges of what a producer holds (any
// [Buffer]; *[producer.Producer] is one).
package prommetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/internal/promkit"
	"github.com/shoalstream/shoal/producer"
)

// Metrics implements producer.Metrics with Prometheus collectors.
type Metrics struct {
	reg prometheus.Registerer
	f   promkit.Factory // for RegisterBuffer's gauges

	userRecordsPut    prometheus.Counter
	kinesisRecordsPut prometheus.Counter
	userPerKinesis    prometheus.Histogram
	calls             *prometheus.CounterVec
	callDuration      prometheus.Histogram
	recordsPerCall    prometheus.Histogram
	retries           *prometheus.CounterVec
	throttles         prometheus.Counter
	failed            *prometheus.CounterVec
	bufferedTime      prometheus.Histogram
	mapRefreshes      *prometheus.CounterVec
	openShards        prometheus.Gauge
}

var _ producer.Metrics = (*Metrics)(nil)

// New creates the collectors for one producer of the named stream and
// registers them with reg. It panics if they are already registered for
// that stream (as prometheus.MustRegister does): create one Metrics per
// producer.
func New(reg prometheus.Registerer, stream string) *Metrics {
	f := promkit.Factory{Namespace: "shoal", Subsystem: "producer", ConstLabels: prometheus.Labels{"stream": stream}}
	m := &Metrics{
		reg:               reg,
		f:                 f,
		userRecordsPut:    f.Counter("user_records_put_total", "User records stored by Kinesis."),
		kinesisRecordsPut: f.Counter("kinesis_records_put_total", "Kinesis records (aggregated or not) stored by Kinesis."),
		userPerKinesis:    f.Histogram("user_records_per_kinesis_record", "User records in each stored Kinesis record.", prometheus.ExponentialBuckets(1, 4, 10)),
		calls:             f.CounterVec("put_records_calls_total", "PutRecords calls, by outcome (ok: Kinesis answered, error: the call failed).", "outcome"),
		callDuration:      f.Histogram("put_records_duration_seconds", "Duration of PutRecords calls.", prometheus.ExponentialBuckets(0.001, 2, 14)),
		recordsPerCall:    f.Histogram("kinesis_records_per_put_records_call", "Kinesis records in each PutRecords call.", prometheus.ExponentialBuckets(1, 2, 10)),
		retries:           f.CounterVec("retries_total", "Kinesis records sent again, by the error code that failed them.", "code"),
		throttles:         f.Counter("throttles_total", "Kinesis records throttled (ProvisionedThroughputExceededException)."),
		failed:            f.CounterVec("user_records_failed_total", "User records whose result is an error, by code.", "code"),
		bufferedTime:      f.Histogram("buffered_time_seconds", "Time the oldest user record of each Kinesis record waited before it was first sent.", prometheus.ExponentialBuckets(0.001, 2, 16)),
		mapRefreshes:      f.CounterVec("shard_map_refreshes_total", "Shard map refreshes, by outcome (unchanged, changed, error).", "outcome"),
		openShards:        f.Gauge("open_shards", "Open shards in the producer's shard map."),
	}
	reg.MustRegister(m.userRecordsPut, m.kinesisRecordsPut, m.userPerKinesis, m.calls, m.callDuration, m.recordsPerCall,
		m.retries, m.throttles, m.failed, m.bufferedTime, m.mapRefreshes, m.openShards)
	return m
}

// Buffer is what RegisterBuffer reads; *producer.Producer implements it.
type Buffer interface {
	BufferedRecords() int
	BufferedBytes() int64
}

// RegisterBuffer adds gauges of the records and bytes that b holds.
func (m *Metrics) RegisterBuffer(b Buffer) {
	m.reg.MustRegister(
		m.f.GaugeFunc("buffered_records", "User records put and not yet resolved.", func() float64 { return float64(b.BufferedRecords()) }),
		m.f.GaugeFunc("buffered_bytes", "Data and partition key bytes of those records.", func() float64 { return float64(b.BufferedBytes()) }),
	)
}

// UserRecordsPut implements producer.Metrics.
func (m *Metrics) UserRecordsPut(n int) { m.userRecordsPut.Add(float64(n)) }

// KinesisRecordsPut implements producer.Metrics.
func (m *Metrics) KinesisRecordsPut(records, userRecords int) {
	m.kinesisRecordsPut.Add(float64(records))
	if records > 0 {
		m.userPerKinesis.Observe(float64(userRecords) / float64(records))
	}
}

// PutRecordsCall implements producer.Metrics.
func (m *Metrics) PutRecordsCall(d time.Duration, records, _ int, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.calls.WithLabelValues(outcome).Inc()
	m.callDuration.Observe(d.Seconds())
	m.recordsPerCall.Observe(float64(records))
}

// Retried implements producer.Metrics.
func (m *Metrics) Retried(code string, n int) {
	m.retries.WithLabelValues(code).Add(float64(n))
	if code == "ProvisionedThroughputExceededException" {
		m.throttles.Add(float64(n))
	}
}

// UserRecordsFailed implements producer.Metrics.
func (m *Metrics) UserRecordsFailed(code string, n int) {
	m.failed.WithLabelValues(code).Add(float64(n))
}

// BufferedTime implements producer.Metrics.
func (m *Metrics) BufferedTime(d time.Duration) { m.bufferedTime.Observe(d.Seconds()) }

// ShardMapRefreshed implements producer.Metrics.
func (m *Metrics) ShardMapRefreshed(openShards int, changed bool, err error) {
	switch {
	case err != nil:
		m.mapRefreshes.WithLabelValues("error").Inc()
		return
	case changed:
		m.mapRefreshes.WithLabelValues("changed").Inc()
	default:
		m.mapRefreshes.WithLabelValues("unchanged").Inc()
	}
	m.openShards.Set(float64(openShards))
}
