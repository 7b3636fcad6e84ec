// Package promkit builds the Prometheus collectors of the client adapters
// (consumer/prommetrics, fanout/prommetrics, producer/prommetrics): a
// [Factory] makes counters, gauges and histograms of one namespace and
// subsystem that all carry the same constant labels, [Options] is what the
// adapters' options set, and [Lag] is the per-shard MillisBehindLatest
// gauge with its maximum over the shards tracked.
package promkit

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Options is what an adapter's options set: the constant labels of every
// series. An adapter declares `type Option func(*options)` with
// `type options = promkit.Options`, so that only its own functions make
// Options.
type Options struct{ labels prometheus.Labels }

// AddLabels adds the labels of l whose value is not empty.
func (o *Options) AddLabels(l prometheus.Labels) {
	if o.labels == nil {
		o.labels = prometheus.Labels{}
	}
	for k, v := range l {
		if v != "" {
			o.labels[k] = v
		}
	}
}

// Labels returns the constant labels that opts set (an empty map for none).
func Labels[O ~func(*Options)](opts []O) prometheus.Labels {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	if o.labels == nil {
		return prometheus.Labels{}
	}
	return o.labels
}

// Factory makes collectors named Namespace_Subsystem_name, each with
// ConstLabels.
type Factory struct {
	Namespace, Subsystem string
	ConstLabels          prometheus.Labels
}

func (f Factory) counterOpts(name, help string) prometheus.CounterOpts {
	return prometheus.CounterOpts{Namespace: f.Namespace, Subsystem: f.Subsystem, Name: name, Help: help, ConstLabels: f.ConstLabels}
}

func (f Factory) gaugeOpts(name, help string) prometheus.GaugeOpts {
	return prometheus.GaugeOpts{Namespace: f.Namespace, Subsystem: f.Subsystem, Name: name, Help: help, ConstLabels: f.ConstLabels}
}

func (f Factory) histogramOpts(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{Namespace: f.Namespace, Subsystem: f.Subsystem, Name: name, Help: help, ConstLabels: f.ConstLabels, Buckets: buckets}
}

// Counter makes a counter.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(f.counterOpts(name, help))
}

// CounterVec makes a counter with the variable labels named.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(f.counterOpts(name, help), labels)
}

// Gauge makes a gauge.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(f.gaugeOpts(name, help))
}

// GaugeVec makes a gauge with the variable labels named.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(f.gaugeOpts(name, help), labels)
}

// GaugeFunc makes a gauge whose value is fn's at each scrape.
func (f Factory) GaugeFunc(name, help string, fn func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(f.gaugeOpts(name, help), fn)
}

// Histogram makes a histogram of the buckets given.
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(f.histogramOpts(name, help, buckets))
}

// HistogramVec makes a histogram of the buckets given with the variable
// labels named.
func (f Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(f.histogramOpts(name, help, buckets), labels)
}

// Lag is the MillisBehindLatest of the shards being tracked, in seconds:
// a gauge per shard ("shard" label) and a gauge of the largest over them
// (0 when none is tracked). It is a prometheus.Collector of both; register
// it as one.
type Lag struct {
	behind *prometheus.GaugeVec
	max    prometheus.GaugeFunc

	mu   sync.Mutex       // guards byID and, with it, the behind series
	byID map[string]int64 // MillisBehindLatest of the shards tracked
}

var _ prometheus.Collector = (*Lag)(nil)

// Lag makes the gauges of a Lag: name{shard} and maxName.
func (f Factory) Lag(name, help, maxName, maxHelp string) *Lag {
	l := &Lag{behind: f.GaugeVec(name, help, "shard"), byID: map[string]int64{}}
	l.max = f.GaugeFunc(maxName, maxHelp, l.largest)
	return l
}

// Set records a shard's MillisBehindLatest.
func (l *Lag) Set(shardID string, ms int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID[shardID] = ms
	l.behind.WithLabelValues(shardID).Set(seconds(ms))
}

// Forget drops a shard: its series goes, and it no longer counts in the
// largest.
func (l *Lag) Forget(shardID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byID, shardID)
	l.behind.DeleteLabelValues(shardID)
}

// largest is the largest MillisBehindLatest of the shards tracked, in
// seconds.
func (l *Lag) largest() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var most int64
	for _, ms := range l.byID {
		most = max(most, ms)
	}
	return seconds(most)
}

func seconds(ms int64) float64 { return float64(ms) / 1000 }

// Describe implements prometheus.Collector.
func (l *Lag) Describe(ch chan<- *prometheus.Desc) {
	l.behind.Describe(ch)
	l.max.Describe(ch)
}

// Collect implements prometheus.Collector.
func (l *Lag) Collect(ch chan<- prometheus.Metric) {
	l.behind.Collect(ch)
	l.max.Collect(ch)
}
