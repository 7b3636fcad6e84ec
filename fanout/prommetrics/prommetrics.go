// Package prommetrics reports enhanced fan-out metrics to Prometheus:
// [Metrics] implements [fanout.Metrics], and goes in
// [fanout.Options].Metrics (of a [fanout.Config], or of a
// [fanout.ShardSubscription]).
//
//	m := prommetrics.New(prometheus.DefaultRegisterer, prommetrics.WithConsumer("audit"))
//	s, err := fanout.New(client, fanout.Config{StreamName: "orders", ConsumerName: "audit",
//		Handler: handle, Options: fanout.Options{Metrics: m}})
//
// Every metric is named shoal_fanout_* and carries a "consumer" label with
// the name given to [WithConsumer] (and "stream", with [WithStream]), so
// that several Subscribers can share a registry. Counts are counters
// (_total), durations are histograms in seconds, sizes are in bytes.
//
// The per-shard series (records and bytes processed, Handler duration,
// MillisBehindLatest) carry a "shard" label: as many values as the stream
// has had shards while the process ran, children of a reshard included.
// The gauge of a shard's MillisBehindLatest is removed when its reading
// stops (the shard ended, ctx ended, the Handler failed, a fatal error),
// and shoal_fanout_max_behind_latest_seconds is the largest over the
// shards being read. Nothing records data or partition keys.
//
// Metric names and the KCL (or Kinesis CloudWatch) metric each
// corresponds to:
//
//	shoal_fanout_records_processed_total{shard}          RecordsProcessed
//	shoal_fanout_processed_bytes_total{shard}            DataBytesProcessed
//	shoal_fanout_handler_duration_seconds{shard}         RecordProcessor.processRecords.Time
//	shoal_fanout_handler_errors_total                    ProcessTask Success (failed calls)
//	shoal_fanout_behind_latest_seconds{shard}            MillisBehindLatest (last value; CloudWatch SubscribeToShardEvent.MillisBehindLatest)
//	shoal_fanout_max_behind_latest_seconds               MillisBehindLatest (max over shards read)
//	shoal_fanout_subscribe_calls_total{outcome}          CloudWatch SubscribeToShard.Success, .RateExceeded
//	shoal_fanout_subscribe_duration_seconds              (none: SubscribeToShard until the event stream started)
//	shoal_fanout_subscriptions_ended_total{reason}       (none: why each subscription ended)
//	shoal_fanout_open_subscriptions                      (none: subscriptions running)
//	shoal_fanout_resubscribe_delay_seconds               (none: time a shard went without a subscription)
//	shoal_fanout_shard_shutdowns_total{reason}           ShutdownTask, by reason
//	shoal_fanout_records_dropped_total                   (none: user records outside the shard's hash key range)
//
// outcome is "ok" or why the call failed, and reason why a subscription
// ended: "Completed" (Kinesis ended it after its lifetime), "ShardEnded",
// "Idle", "Canceled", "HandlerError", "Transport", or an AWS error code
// such as "ResourceInUseException"; or why the reading of a shard stopped
// (see [fanout.Metrics]). Label values come from a fixed list and the AWS
// error codes of the Kinesis API.
package prommetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/internal/promkit"
)

// Metrics implements fanout.Metrics with Prometheus collectors.
type Metrics struct {
	recordsProcessed *prometheus.CounterVec
	bytesProcessed   *prometheus.CounterVec
	handlerDuration  *prometheus.HistogramVec
	handlerErrors    prometheus.Counter
	lag              *promkit.Lag // behind_latest_seconds{shard}, max_behind_latest_seconds
	subscribeCalls   *prometheus.CounterVec
	subscribeTime    prometheus.Histogram
	ended            *prometheus.CounterVec
	open             prometheus.Gauge
	resubscribe      prometheus.Histogram
	shutdowns        *prometheus.CounterVec
	dropped          prometheus.Counter
}

var _ fanout.Metrics = (*Metrics)(nil)

// Option configures New.
type Option func(*options)

type options = promkit.Options

// WithConsumer sets the "consumer" label of every series: the stream
// consumer's name (fanout.Config.ConsumerName). Without it there is no such
// label.
func WithConsumer(name string) Option { return WithLabels(prometheus.Labels{"consumer": name}) }

// WithStream sets the "stream" label of every series: the stream's name.
// Without it there is no such label.
func WithStream(name string) Option { return WithLabels(prometheus.Labels{"stream": name}) }

// WithLabels adds constant labels to every series. Empty values are left
// out. The names "shard", "outcome" and "reason" are taken.
func WithLabels(l prometheus.Labels) Option { return func(o *options) { o.AddLabels(l) } }

// Buckets of the histograms, in seconds: the Handler runs the
// application's code (1ms to 66s); SubscribeToShard takes milliseconds
// (0.5ms to 8s); a resubscription is immediate after a subscription's
// lifetime, or waits a back-off of up to seconds (1ms to 33s).
var (
	handlerBuckets     = prometheus.ExponentialBuckets(0.001, 4, 9)
	callBuckets        = prometheus.ExponentialBuckets(0.0005, 2, 15)
	resubscribeBuckets = prometheus.ExponentialBuckets(0.001, 2, 16)
)

// New creates the collectors for one Subscriber (or a set of SubscribeShard
// calls) and registers them with reg. It panics if they are already
// registered with the same labels (as prometheus.MustRegister does).
func New(reg prometheus.Registerer, opts ...Option) *Metrics {
	f := promkit.Factory{Namespace: "shoal", Subsystem: "fanout", ConstLabels: promkit.Labels(opts)}
	m := &Metrics{
		recordsProcessed: f.CounterVec("records_processed_total", "Records of the batches the Handler returned nil for, by shard.", "shard"),
		bytesProcessed:   f.CounterVec("processed_bytes_total", "Data bytes of those records, by shard.", "shard"),
		handlerDuration:  f.HistogramVec("handler_duration_seconds", "Duration of Handler calls, by shard.", handlerBuckets, "shard"),
		handlerErrors:    f.Counter("handler_errors_total", "Handler calls that returned an error."),
		lag: f.Lag("behind_latest_seconds", "MillisBehindLatest of the last event, by shard being read (in seconds).",
			"max_behind_latest_seconds", "Largest MillisBehindLatest over the shards being read (in seconds); 0 when none is."),
		subscribeCalls: f.CounterVec("subscribe_calls_total", "SubscribeToShard calls, by outcome (ok, or the error code).", "outcome"),
		subscribeTime:  f.Histogram("subscribe_duration_seconds", "Duration of SubscribeToShard calls, until the event stream started or the call failed.", callBuckets),
		ended:          f.CounterVec("subscriptions_ended_total", "Subscriptions that ended, by reason (Completed, ShardEnded, Idle, Canceled, HandlerError, Transport, or the error code).", "reason"),
		open:           f.Gauge("open_subscriptions", "Subscriptions running."),
		resubscribe:    f.Histogram("resubscribe_delay_seconds", "Time a shard went without a subscription, from the end of one to the start of the next.", resubscribeBuckets),
		shutdowns:      f.CounterVec("shard_shutdowns_total", "Shards whose reading stopped, by reason (ShardEnded, Canceled, HandlerError, or the error code).", "reason"),
		dropped:        f.Counter("records_dropped_total", "User records of KPL aggregates dropped: their hash key is outside the shard's range."),
	}
	reg.MustRegister(m.recordsProcessed, m.bytesProcessed, m.handlerDuration, m.handlerErrors, m.lag,
		m.subscribeCalls, m.subscribeTime, m.ended, m.open, m.resubscribe, m.shutdowns, m.dropped)
	return m
}

// SubscribeToShard implements fanout.Metrics.
func (m *Metrics) SubscribeToShard(_ string, d time.Duration, code string) {
	m.subscribeTime.Observe(d.Seconds())
	if code == "" {
		m.subscribeCalls.WithLabelValues("ok").Inc()
		m.open.Inc()
		return
	}
	m.subscribeCalls.WithLabelValues(code).Inc()
}

// SubscriptionEnded implements fanout.Metrics.
func (m *Metrics) SubscriptionEnded(_, reason string) {
	m.ended.WithLabelValues(reason).Inc()
	m.open.Dec()
}

// ShardShutdown implements fanout.Metrics: it also drops the shard's
// MillisBehindLatest.
func (m *Metrics) ShardShutdown(shardID, reason string) {
	m.shutdowns.WithLabelValues(reason).Inc()
	m.lag.Forget(shardID)
}

// Resubscribed implements fanout.Metrics.
func (m *Metrics) Resubscribed(_ string, d time.Duration) { m.resubscribe.Observe(d.Seconds()) }

// MillisBehindLatest implements fanout.Metrics.
func (m *Metrics) MillisBehindLatest(shardID string, ms int64) {
	m.lag.Set(shardID, ms)
}

// HandlerCall implements fanout.Metrics.
func (m *Metrics) HandlerCall(shardID string, d time.Duration, err error) {
	m.handlerDuration.WithLabelValues(shardID).Observe(d.Seconds())
	if err != nil {
		m.handlerErrors.Inc()
	}
}

// RecordsProcessed implements fanout.Metrics.
func (m *Metrics) RecordsProcessed(shardID string, n int) {
	m.recordsProcessed.WithLabelValues(shardID).Add(float64(n))
}

// DataBytesProcessed implements fanout.Metrics.
func (m *Metrics) DataBytesProcessed(shardID string, n int) {
	m.bytesProcessed.WithLabelValues(shardID).Add(float64(n))
}

// RecordsDropped implements fanout.Metrics.
func (m *Metrics) RecordsDropped(_ string, n int) { m.dropped.Add(float64(n)) }
