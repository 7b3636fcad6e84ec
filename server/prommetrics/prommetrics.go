// Package prommetrics reports a shoal server's metrics to Prometheus:
// [Metrics] implements [server.Metrics] and goes in [server.Config].Metrics.
//
//	m := prommetrics.New(prometheus.DefaultRegisterer)
//	srv, err := server.New(server.Config{DataDir: dir, Metrics: m})
//
// Every metric is named shoal_*, in base units (seconds, bytes), after the
// CloudWatch metric of Kinesis Data Streams it stands for (the README maps
// each). Per-stream series carry a "stream" label (and "consumer" for
// enhanced fan-out); per-shard series ("shard") exist only for the
// shard-level metrics a stream enabled with EnableEnhancedMonitoring, and
// go when it disables them. No label ever carries a partition key or
// record data.
package prommetrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/server"
)

// Metrics implements server.Metrics with Prometheus collectors. It is safe
// for concurrent use.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	incomingRecords *prometheus.CounterVec
	incomingBytes   *prometheus.CounterVec
	putRecords      *prometheus.CounterVec
	outgoingRecords *prometheus.CounterVec
	outgoingBytes   *prometheus.CounterVec
	iteratorAge     *prometheus.GaugeVec
	behindLatest    *prometheus.GaugeVec
	writeThrottled  *prometheus.CounterVec
	readThrottled   *prometheus.CounterVec
	subscriptions   *prometheus.CounterVec
	openSubs        prometheus.Gauge
	reshards        *prometheus.CounterVec
	fsyncDuration   prometheus.Histogram
	appendDuration  prometheus.Histogram
	appendFailures  prometheus.Counter
	groupCommit     prometheus.Histogram
	fsyncFailures   prometheus.Counter
	diskUsed        prometheus.Gauge
	diskRefusing    prometheus.Gauge
	faults          *prometheus.CounterVec
	sizeTrimmed     *prometheus.CounterVec
	shard           map[string]shardSeries // by shard-level metric name
}

// shardSeries is the collector of one shard-level metric.
type shardSeries struct {
	counter *prometheus.CounterVec // all but IteratorAgeMilliseconds
	gauge   *prometheus.GaugeVec   // IteratorAgeMilliseconds, in seconds
	scale   float64
}

var _ server.Metrics = (*Metrics)(nil)

// New creates the collectors and registers them with reg (it panics if
// they are registered already, as prometheus.MustRegister does).
func New(reg prometheus.Registerer) *Metrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shoal", Name: name, Help: help}, labels)
	}
	gv := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "shoal", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		requests: cv("api_requests_total", "API calls by operation and error code (\"OK\" for success). CloudWatch: <operation>.Success.", "operation", "code"),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "shoal", Name: "api_request_duration_seconds",
			Help:    "API call latency by operation (SubscribeToShard: until its event stream started). CloudWatch: <operation>.Latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"operation"}),
		incomingRecords: cv("stream_incoming_records_total", "Records stored by PutRecord and PutRecords. CloudWatch: IncomingRecords (summed over operation).", "stream", "operation"),
		incomingBytes:   cv("stream_incoming_bytes_total", "Bytes (data and partition keys) stored by PutRecord and PutRecords. CloudWatch: IncomingBytes, PutRecord.Bytes, PutRecords.Bytes.", "stream", "operation"),
		putRecords:      cv("stream_putrecords_records_total", "Records of PutRecords calls by outcome: successful, failed (throttled included), throttled. CloudWatch: PutRecords.SuccessfulRecords, .FailedRecords, .ThrottledRecords; .TotalRecords is successful + failed.", "stream", "outcome"),
		outgoingRecords: cv("stream_outgoing_records_total", "Records read by GetRecords (consumer \"\") and by SubscribeToShard consumers. CloudWatch: GetRecords.Records, SubscribeToShardEvent.Records.", "stream", "consumer"),
		outgoingBytes:   cv("stream_outgoing_bytes_total", "Bytes read by GetRecords (consumer \"\") and by SubscribeToShard consumers. CloudWatch: GetRecords.Bytes, SubscribeToShardEvent.Bytes.", "stream", "consumer"),
		iteratorAge:     gv("stream_iterator_age_seconds", "Age of the last record returned by the latest GetRecords of the stream (0 when it returned none). CloudWatch: GetRecords.IteratorAgeMilliseconds.", "stream"),
		behindLatest:    gv("subscription_behind_latest_seconds", "Age of the last record of the latest SubscribeToShard event of a consumer. CloudWatch: SubscribeToShardEvent.MillisBehindLatest.", "stream", "consumer"),
		writeThrottled:  cv("stream_write_throttled_records_total", "Records refused for a shard's write throughput. CloudWatch: WriteProvisionedThroughputExceeded.", "stream"),
		readThrottled:   cv("stream_read_throttled_requests_total", "GetRecords calls refused for a shard's read throughput. CloudWatch: ReadProvisionedThroughputExceeded.", "stream"),
		subscriptions:   cv("subscriptions_total", "SubscribeToShard calls by result: ok, rate_exceeded, in_use, or an error code. CloudWatch: SubscribeToShard.Success, .RateExceeded.", "stream", "consumer", "result"),
		openSubs:        prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "shoal", Name: "subscriptions_open", Help: "SubscribeToShard event streams running."}),
		reshards:        cv("reshards_total", "Finished reshards by kind: split, merge, scale (UpdateShardCount), by hand or automatic.", "stream", "kind"),
		sizeTrimmed:     cv("stream_size_trimmed_segments_total", "Segments of a stream's shard logs that size-based retention (retentionBytes) removed.", "stream"),
		shard:           map[string]shardSeries{},
		faults:          cv("faults_injected_total", "Faults injected by fault injection rules, by operation (fsync for slow-fsync) and kind (throttle, internal, expired-iterator, latency, cut-subscription, slow-fsync).", "operation", "kind"),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "shoal", Name: "storage_append_duration_seconds",
			Help: "Latency of an append of a batch of records to a shard's log, until it is durable (fsync always: after fdatasync).", Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}),
		appendFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shoal", Name: "storage_append_failures_total",
			Help: "Appends to shard logs that failed (nothing of them was acknowledged)."}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "shoal", Name: "storage_fsync_duration_seconds",
			Help: "Latency of the file engine's group-commit fdatasync.", Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}),
		groupCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "shoal", Name: "storage_group_commit_batches",
			Help: "Appended batches one fdatasync made durable (group commit).", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}}),
		fsyncFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shoal", Name: "storage_fsync_failures_total",
			Help: "Failed fdatasync calls of the file engine (their appends failed, nothing was acknowledged)."}),
		diskUsed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "shoal", Name: "disk_used_ratio",
			Help: "Fraction of the data directory's file system in use, as the disk guard last measured it."}),
		diskRefusing: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "shoal", Name: "disk_writes_refused",
			Help: "1 while the disk guard refuses writes (usage reached the high-water mark and has not yet fallen below the low-water mark), else 0. Refused records count in shoal_stream_write_throttled_records_total."}),
	}
	cols := []prometheus.Collector{m.requests, m.requestDuration, m.incomingRecords, m.incomingBytes, m.putRecords, m.outgoingRecords,
		m.outgoingBytes, m.iteratorAge, m.behindLatest, m.writeThrottled, m.readThrottled, m.subscriptions, m.openSubs, m.reshards,
		m.fsyncDuration, m.appendDuration, m.appendFailures, m.groupCommit, m.fsyncFailures, m.diskUsed, m.diskRefusing, m.faults, m.sizeTrimmed}
	for _, sm := range []struct{ metric, name, help string }{
		{"IncomingBytes", "shard_incoming_bytes_total", "Bytes stored in a shard (enhanced monitoring). CloudWatch: IncomingBytes by ShardId."},
		{"IncomingRecords", "shard_incoming_records_total", "Records stored in a shard (enhanced monitoring). CloudWatch: IncomingRecords by ShardId."},
		{"OutgoingBytes", "shard_outgoing_bytes_total", "Bytes read from a shard by GetRecords and subscriptions (enhanced monitoring). CloudWatch: OutgoingBytes by ShardId."},
		{"OutgoingRecords", "shard_outgoing_records_total", "Records read from a shard (enhanced monitoring). CloudWatch: OutgoingRecords by ShardId."},
		{"WriteProvisionedThroughputExceeded", "shard_write_throttled_records_total", "Records a shard refused for its write throughput (enhanced monitoring)."},
		{"ReadProvisionedThroughputExceeded", "shard_read_throttled_requests_total", "GetRecords calls a shard refused for its read throughput (enhanced monitoring)."},
	} {
		s := shardSeries{counter: cv(sm.name, sm.help, "stream", "shard"), scale: 1}
		m.shard[sm.metric] = s
		cols = append(cols, s.counter)
	}
	age := shardSeries{gauge: gv("shard_iterator_age_seconds", "Age of the last record read from a shard (enhanced monitoring). CloudWatch: IteratorAgeMilliseconds by ShardId.", "stream", "shard"), scale: 0.001}
	m.shard["IteratorAgeMilliseconds"] = age
	cols = append(cols, age.gauge)
	reg.MustRegister(cols...)
	return m
}

// Call implements server.Metrics.
func (m *Metrics) Call(op string, d time.Duration, code string) {
	if code == "" {
		code = "OK"
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.requestDuration.WithLabelValues(op).Observe(d.Seconds())
}

// Incoming implements server.Metrics.
func (m *Metrics) Incoming(stream, op string, records, bytes int) {
	if records == 0 {
		return
	}
	m.incomingRecords.WithLabelValues(stream, op).Add(float64(records))
	m.incomingBytes.WithLabelValues(stream, op).Add(float64(bytes))
}

// PutRecords implements server.Metrics.
func (m *Metrics) PutRecords(stream string, _, successful, failed, throttled int) {
	m.putRecords.WithLabelValues(stream, "successful").Add(float64(successful))
	m.putRecords.WithLabelValues(stream, "failed").Add(float64(failed))
	m.putRecords.WithLabelValues(stream, "throttled").Add(float64(throttled))
}

// Outgoing implements server.Metrics.
func (m *Metrics) Outgoing(stream, consumer string, records, bytes int, behind time.Duration) {
	m.outgoingRecords.WithLabelValues(stream, consumer).Add(float64(records))
	m.outgoingBytes.WithLabelValues(stream, consumer).Add(float64(bytes))
	if consumer == "" {
		m.iteratorAge.WithLabelValues(stream).Set(behind.Seconds())
	} else {
		m.behindLatest.WithLabelValues(stream, consumer).Set(behind.Seconds())
	}
}

// Throttled implements server.Metrics.
func (m *Metrics) Throttled(stream string, write bool, n int) {
	if write {
		m.writeThrottled.WithLabelValues(stream).Add(float64(n))
	} else {
		m.readThrottled.WithLabelValues(stream).Add(float64(n))
	}
}

// Subscription implements server.Metrics.
func (m *Metrics) Subscription(stream, consumer, result string) {
	m.subscriptions.WithLabelValues(stream, consumer, result).Inc()
}

// OpenSubscriptions implements server.Metrics.
func (m *Metrics) OpenSubscriptions(n int) { m.openSubs.Set(float64(n)) }

// Shard implements server.Metrics.
func (m *Metrics) Shard(stream, shard, metric string, v int64) {
	s, ok := m.shard[metric]
	switch {
	case !ok:
	case s.gauge != nil:
		s.gauge.WithLabelValues(stream, shard).Set(float64(v) * s.scale)
	default:
		s.counter.WithLabelValues(stream, shard).Add(float64(v))
	}
}

// Reshard implements server.Metrics.
func (m *Metrics) Reshard(stream, kind string) { m.reshards.WithLabelValues(stream, kind).Inc() }

// ShardMonitoring implements server.Metrics: the per-shard series of the
// metrics the stream no longer enables go.
func (m *Metrics) ShardMonitoring(stream string, metrics []string) {
	for name, s := range m.shard {
		if slices.Contains(metrics, name) {
			continue
		}
		if s.gauge != nil {
			s.gauge.DeletePartialMatch(prometheus.Labels{"stream": stream})
		} else {
			s.counter.DeletePartialMatch(prometheus.Labels{"stream": stream})
		}
	}
}

// StreamDeleted implements server.Metrics: every series of the stream goes.
func (m *Metrics) StreamDeleted(stream string) {
	l := prometheus.Labels{"stream": stream}
	for _, v := range []*prometheus.CounterVec{m.incomingRecords, m.incomingBytes, m.putRecords, m.outgoingRecords, m.outgoingBytes,
		m.writeThrottled, m.readThrottled, m.subscriptions, m.reshards, m.sizeTrimmed} {
		v.DeletePartialMatch(l)
	}
	m.iteratorAge.DeletePartialMatch(l)
	m.behindLatest.DeletePartialMatch(l)
	m.ShardMonitoring(stream, nil)
}

// Fsync implements server.Metrics.
func (m *Metrics) Fsync(d time.Duration, batches int, err error) {
	if err != nil {
		m.fsyncFailures.Inc()
		return
	}
	m.fsyncDuration.Observe(d.Seconds())
	m.groupCommit.Observe(float64(batches))
}

// DiskGuard implements server.Metrics.
func (m *Metrics) DiskGuard(engaged bool, usedFraction float64) {
	m.diskUsed.Set(usedFraction)
	if engaged {
		m.diskRefusing.Set(1)
	} else {
		m.diskRefusing.Set(0)
	}
}

// Fault implements server.Metrics.
func (m *Metrics) Fault(op, kind string) { m.faults.WithLabelValues(op, kind).Inc() }

// SizeTrimmed implements server.Metrics.
func (m *Metrics) SizeTrimmed(stream string, units int) {
	m.sizeTrimmed.WithLabelValues(stream).Add(float64(units))
}

// Append implements server.Metrics.
func (m *Metrics) Append(d time.Duration, _ int, err error) {
	if err != nil {
		m.appendFailures.Inc()
		return
	}
	m.appendDuration.Observe(d.Seconds())
}
