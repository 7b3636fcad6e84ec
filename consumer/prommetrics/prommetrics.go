// Package prommetrics reports a consumer worker's metrics to Prometheus:
// [Metrics] implements [consumer.Metrics], and goes in
// [consumer.Config].Metrics.
//
//	m := prommetrics.New(prometheus.DefaultRegisterer, prommetrics.WithApplication("orders-app"))
//	w, err := consumer.New(client, store, newProcessor, consumer.Config{
//		ApplicationName: "orders-app", StreamName: "orders", Metrics: m})
//
// Every metric is named shoal_consumer_* and carries an "application"
// label with the name given to [WithApplication] (and "stream", with
// [WithStream]), so that workers of several applications can share a
// registry; two workers of one application in one process need a label of
// their own ([WithLabels]) or a registry each. Prometheus wants the same
// label names on every series of a name: the Metrics of one registry are
// all given the same options (values apart). Counts are plain counters
// (_total), durations are histograms in seconds, sizes are in bytes.
//
// The per-shard series (records and bytes processed, ProcessRecords
// duration, MillisBehindLatest) carry a "shard" label: as many values as
// the stream has had shards while the process ran, children of a reshard
// included. The gauge of a shard's MillisBehindLatest is removed when the
// worker stops processing the shard (lease lost, released, shard ended), and
// shoal_consumer_max_behind_latest_seconds is the largest over the shards
// the worker holds: the application's lag, as far as this worker sees it
// (take the max over workers; a shard the worker takes back reports again at
// its next read). Nothing records data or partition keys.
//
// Metric names and the KCL metric each corresponds to:
//
//	shoal_consumer_records_processed_total{shard}            RecordsProcessed
//	shoal_consumer_processed_bytes_total{shard}              DataBytesProcessed
//	shoal_consumer_process_records_duration_seconds{shard}   RecordProcessor.processRecords.Time
//	shoal_consumer_process_records_failures_total{shard}     ProcessTask Success (failed calls)
//	shoal_consumer_behind_latest_seconds{shard}              MillisBehindLatest (last value)
//	shoal_consumer_max_behind_latest_seconds                 MillisBehindLatest (max over held shards)
//	shoal_consumer_get_records_calls_total{outcome}          KinesisDataFetcher.getRecords.Success, ExpiredIterator
//	shoal_consumer_get_records_duration_seconds              KinesisDataFetcher.getRecords.Time
//	shoal_consumer_leases_held                               CurrentLeases
//	shoal_consumer_active_leases                             TotalLeases (not ended, parents done)
//	shoal_consumer_workers                                   NumWorkers
//	shoal_consumer_leases_taken_total                        TakenLeases
//	shoal_consumer_leases_stolen_total                       StolenLeases
//	shoal_consumer_leases_lost_total                         LostLeases
//	shoal_consumer_lease_renewals_total{outcome}             RenewLease.Success
//	shoal_consumer_lease_renewal_duration_seconds            RenewLease.Time
//	shoal_consumer_checkpoints_total{outcome}                UpdateLease.Success (checkpoints)
//	shoal_consumer_checkpoint_duration_seconds               UpdateLease.Time (checkpoints)
//	shoal_consumer_shard_shutdowns_total{reason}             ShutdownTask, by ShutdownReason
//	shoal_consumer_records_dropped_total                     (none: user records outside the shard's hash key range)
//	shoal_consumer_aggregated_records_total                  (none: KPL aggregates read)
//	shoal_consumer_aggregated_user_records_total             (none: user records in them)
//	shoal_consumer_corrupt_aggregates_total                  (none: aggregates failing their checks)
//	shoal_consumer_batch_failures_total{outcome}             (none: the failure policy's decisions)
//	shoal_consumer_batch_failure_records_total{outcome}      (none: the user records they concerned)
//	shoal_consumer_shard_stalls_total{shard}                 (none: the shard watchdog's restarts)
//	shoal_consumer_lease_handoffs_total{outcome}             (none: graceful hand-offs, by step)
//
// outcome is "ok" or "error", and also "throttled", "expired_iterator" and
// "canceled" (a call cut short by a shutdown or a lost lease) for
// GetRecords, "lease_lost" for renewals and checkpoints; for the failure
// policy (consumer.Config.FailurePolicy) it is one of retried, stopped,
// skipped, dead_lettered and dead_letter_failed (consumer.FailureRetried
// and the others); for hand-offs it is requested, handed or forced
// (consumer.HandoffRequested and the others). reason is the KCL's:
// SHARD_END, REQUESTED, LEASE_LOST.
package prommetrics

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/internal/promkit"
)

// Metrics implements consumer.Metrics with Prometheus collectors.
type Metrics struct {
	recordsProcessed *prometheus.CounterVec
	bytesProcessed   *prometheus.CounterVec
	processDuration  *prometheus.HistogramVec
	processFailures  *prometheus.CounterVec
	lag              *promkit.Lag // behind_latest_seconds{shard}, max_behind_latest_seconds
	getCalls         *prometheus.CounterVec
	getDuration      prometheus.Histogram
	leasesHeld       prometheus.Gauge
	activeLeases     prometheus.Gauge
	workers          prometheus.Gauge
	taken            prometheus.Counter
	stolen           prometheus.Counter
	lost             prometheus.Counter
	renewals         *prometheus.CounterVec
	renewDuration    prometheus.Histogram
	checkpoints      *prometheus.CounterVec
	cpDuration       prometheus.Histogram
	shutdowns        *prometheus.CounterVec
	dropped          prometheus.Counter
	aggregates       prometheus.Counter
	aggregatedUser   prometheus.Counter
	corrupt          prometheus.Counter
	batchFailures    *prometheus.CounterVec
	failureRecords   *prometheus.CounterVec
	stalls           *prometheus.CounterVec
	handoffs         *prometheus.CounterVec
}

var _ consumer.Metrics = (*Metrics)(nil)

// Option configures New.
type Option func(*options)

type options = promkit.Options

// WithApplication sets the "application" label of every series: the
// consumer application's name (consumer.Config.ApplicationName). Without
// it there is no such label.
func WithApplication(name string) Option { return WithLabels(prometheus.Labels{"application": name}) }

// WithStream sets the "stream" label of every series: the stream's name.
// Without it there is no such label.
func WithStream(name string) Option { return WithLabels(prometheus.Labels{"stream": name}) }

// WithLabels adds constant labels to every series, to tell apart
// several workers of one application in one process (a "worker" label,
// say). Empty values are left out. The names "shard", "outcome" and
// "reason" are taken.
func WithLabels(l prometheus.Labels) Option { return func(o *options) { o.AddLabels(l) } }

// Buckets of the histograms, in seconds: ProcessRecords runs the
// application's code (1ms to 66s); the Kinesis and Store calls take
// milliseconds (0.5ms to 8s).
var (
	processBuckets = prometheus.ExponentialBuckets(0.001, 4, 9)
	callBuckets    = prometheus.ExponentialBuckets(0.0005, 2, 15)
)

// New creates the collectors for one worker and registers them with reg.
// It panics if they are already registered with the same labels (as
// prometheus.MustRegister does): create one Metrics per worker.
func New(reg prometheus.Registerer, opts ...Option) *Metrics {
	f := promkit.Factory{Namespace: "shoal", Subsystem: "consumer", ConstLabels: promkit.Labels(opts)}
	m := &Metrics{
		recordsProcessed: f.CounterVec("records_processed_total", "User records ProcessRecords handled without error, by shard.", "shard"),
		bytesProcessed:   f.CounterVec("processed_bytes_total", "Data bytes of those records, by shard.", "shard"),
		processDuration:  f.HistogramVec("process_records_duration_seconds", "Duration of ProcessRecords calls, by shard.", processBuckets, "shard"),
		processFailures:  f.CounterVec("process_records_failures_total", "ProcessRecords calls that returned an error, by shard.", "shard"),
		lag: f.Lag("behind_latest_seconds", "MillisBehindLatest of the last records read, by shard held (in seconds).",
			"max_behind_latest_seconds", "Largest MillisBehindLatest over the shards this worker holds (in seconds); 0 when it holds none."),
		getCalls:       f.CounterVec("get_records_calls_total", "GetRecords calls, by outcome (ok, throttled, expired_iterator, canceled, error).", "outcome"),
		getDuration:    f.Histogram("get_records_duration_seconds", "Duration of GetRecords calls.", callBuckets),
		leasesHeld:     f.Gauge("leases_held", "Leases this worker holds."),
		activeLeases:   f.Gauge("active_leases", "The application's leases to be processed now (not ended, parents done), at the last lease-taking round."),
		workers:        f.Gauge("workers", "Workers sharing the application's leases as this worker counted them at the last lease-taking round."),
		taken:          f.Counter("leases_taken_total", "Leases this worker took (stolen ones included)."),
		stolen:         f.Counter("leases_stolen_total", "Leases this worker took from another live worker."),
		lost:           f.Counter("leases_lost_total", "Leases this worker lost while it held them."),
		renewals:       f.CounterVec("lease_renewals_total", "Lease renewals, by outcome (ok, lease_lost, error).", "outcome"),
		renewDuration:  f.Histogram("lease_renewal_duration_seconds", "Duration of lease renewals.", callBuckets),
		checkpoints:    f.CounterVec("checkpoints_total", "Checkpoint writes, by outcome (ok, lease_lost, error).", "outcome"),
		cpDuration:     f.Histogram("checkpoint_duration_seconds", "Duration of checkpoint writes.", callBuckets),
		shutdowns:      f.CounterVec("shard_shutdowns_total", "Shards this worker stopped processing, by reason (SHARD_END, REQUESTED, LEASE_LOST).", "reason"),
		dropped:        f.Counter("records_dropped_total", "User records of KPL aggregates dropped: their hash key is outside the shard's range."),
		aggregates:     f.Counter("aggregated_records_total", "KPL aggregated Kinesis records read."),
		aggregatedUser: f.Counter("aggregated_user_records_total", "User records in the KPL aggregated Kinesis records read."),
		corrupt:        f.Counter("corrupt_aggregates_total", "Kinesis records that looked like KPL aggregates but failed their checks."),
		batchFailures: f.CounterVec("batch_failures_total",
			"Failed ProcessRecords calls (and dead-letter handler calls), by what the failure policy did (retried, stopped, skipped, dead_lettered, dead_letter_failed).", "outcome"),
		failureRecords: f.CounterVec("batch_failure_records_total", "User records of those batches, by outcome.", "outcome"),
		stalls:         f.CounterVec("shard_stalls_total", "Times the shard watchdog found a shard without progress while records waited and restarted its reader, by shard.", "shard"),
		handoffs: f.CounterVec("lease_handoffs_total",
			"Graceful hand-offs of leases moved for balance, by step (requested: asked for by this worker; handed: handed over by it; forced: taken after the owner did not hand over in time).", "outcome"),
	}
	reg.MustRegister(m.recordsProcessed, m.bytesProcessed, m.processDuration, m.processFailures, m.lag,
		m.getCalls, m.getDuration, m.leasesHeld, m.activeLeases, m.workers, m.taken, m.stolen, m.lost,
		m.renewals, m.renewDuration, m.checkpoints, m.cpDuration, m.shutdowns,
		m.dropped, m.aggregates, m.aggregatedUser, m.corrupt, m.batchFailures, m.failureRecords, m.stalls, m.handoffs)
	return m
}

// outcome names the result of a Store call.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, checkpoint.ErrLeaseLost), errors.Is(err, checkpoint.ErrNotFound):
		return "lease_lost"
	}
	return "error"
}

// RecordsProcessed implements consumer.Metrics.
func (m *Metrics) RecordsProcessed(shardID string, n int) {
	m.recordsProcessed.WithLabelValues(shardID).Add(float64(n))
}

// DataBytesProcessed implements consumer.Metrics.
func (m *Metrics) DataBytesProcessed(shardID string, n int) {
	m.bytesProcessed.WithLabelValues(shardID).Add(float64(n))
}

// ProcessRecords implements consumer.Metrics.
func (m *Metrics) ProcessRecords(shardID string, d time.Duration, err error) {
	m.processDuration.WithLabelValues(shardID).Observe(d.Seconds())
	if err != nil {
		m.processFailures.WithLabelValues(shardID).Inc()
	}
}

// MillisBehindLatest implements consumer.Metrics.
func (m *Metrics) MillisBehindLatest(shardID string, ms int64) {
	m.lag.Set(shardID, ms)
}

// GetRecords implements consumer.Metrics.
func (m *Metrics) GetRecords(_ string, d time.Duration, _ int, err error) {
	var (
		throttled *types.ProvisionedThroughputExceededException
		expired   *types.ExpiredIteratorException
	)
	o := "ok"
	switch {
	case err == nil:
	case errors.As(err, &throttled):
		o = "throttled"
	case errors.As(err, &expired):
		o = "expired_iterator"
	case errors.Is(err, context.Canceled):
		o = "canceled"
	default:
		o = "error"
	}
	m.getCalls.WithLabelValues(o).Inc()
	m.getDuration.Observe(d.Seconds())
}

// LeasesHeld implements consumer.Metrics.
func (m *Metrics) LeasesHeld(n int) { m.leasesHeld.Set(float64(n)) }

// LeaseBalance implements consumer.Metrics.
func (m *Metrics) LeaseBalance(leases, workers int) {
	m.activeLeases.Set(float64(leases))
	m.workers.Set(float64(workers))
}

// LeaseTaken implements consumer.Metrics.
func (m *Metrics) LeaseTaken(_ string, stolen bool) {
	m.taken.Inc()
	if stolen {
		m.stolen.Inc()
	}
}

// LeaseLost implements consumer.Metrics. The shard's MillisBehindLatest is
// dropped at once (ShardShutdown drops it again, after the shard's last
// read).
func (m *Metrics) LeaseLost(shardID string) {
	m.lost.Inc()
	m.lag.Forget(shardID)
}

// RenewLease implements consumer.Metrics.
func (m *Metrics) RenewLease(_ string, d time.Duration, err error) {
	m.renewals.WithLabelValues(outcome(err)).Inc()
	m.renewDuration.Observe(d.Seconds())
}

// ShardShutdown implements consumer.Metrics: it also drops the shard's
// MillisBehindLatest.
func (m *Metrics) ShardShutdown(shardID, reason string) {
	m.shutdowns.WithLabelValues(reason).Inc()
	m.lag.Forget(shardID)
}

// Checkpoint implements consumer.Metrics.
func (m *Metrics) Checkpoint(_ string, d time.Duration, err error) {
	m.checkpoints.WithLabelValues(outcome(err)).Inc()
	m.cpDuration.Observe(d.Seconds())
}

// RecordsDropped implements consumer.Metrics.
func (m *Metrics) RecordsDropped(_ string, n int) { m.dropped.Add(float64(n)) }

// AggregatedRecords implements consumer.Metrics.
func (m *Metrics) AggregatedRecords(_ string, records, userRecords int) {
	m.aggregates.Add(float64(records))
	m.aggregatedUser.Add(float64(userRecords))
}

// CorruptAggregates implements consumer.Metrics.
func (m *Metrics) CorruptAggregates(_ string, n int) { m.corrupt.Add(float64(n)) }

// BatchFailure implements consumer.Metrics.
func (m *Metrics) BatchFailure(_, outcome string, records int) {
	m.batchFailures.WithLabelValues(outcome).Inc()
	m.failureRecords.WithLabelValues(outcome).Add(float64(records))
}

// ShardStalled implements consumer.Metrics.
func (m *Metrics) ShardStalled(shardID string) { m.stalls.WithLabelValues(shardID).Inc() }

// LeaseHandoff implements consumer.Metrics.
func (m *Metrics) LeaseHandoff(_, outcome string) { m.handoffs.WithLabelValues(outcome).Inc() }
