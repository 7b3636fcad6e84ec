package server

import "time"

// TeeMetrics returns a Metrics that passes every measurement to each of ms,
// in order (nil ones are left out): the Prometheus adapter and the web
// console's history, say. With none it records nothing; with one it is that
// one.
func TeeMetrics(ms ...Metrics) Metrics {
	var t tee
	for _, m := range ms {
		if m != nil {
			t = append(t, m)
		}
	}
	switch len(t) {
	case 0:
		return NopMetrics{}
	case 1:
		return t[0]
	}
	return t
}

// tee is the Metrics of TeeMetrics.
type tee []Metrics

var _ Metrics = tee(nil)

// Call passes the call on to each.
func (t tee) Call(op string, d time.Duration, code string) {
	for _, m := range t {
		m.Call(op, d, code)
	}
}

// Incoming passes the measurement on to each.
func (t tee) Incoming(stream, op string, records, bytes int) {
	for _, m := range t {
		m.Incoming(stream, op, records, bytes)
	}
}

// PutRecords passes the measurement on to each.
func (t tee) PutRecords(stream string, total, successful, failed, throttled int) {
	for _, m := range t {
		m.PutRecords(stream, total, successful, failed, throttled)
	}
}

// Outgoing passes the measurement on to each.
func (t tee) Outgoing(stream, consumer string, records, bytes int, behind time.Duration) {
	for _, m := range t {
		m.Outgoing(stream, consumer, records, bytes, behind)
	}
}

// Throttled passes the measurement on to each.
func (t tee) Throttled(stream string, write bool, n int) {
	for _, m := range t {
		m.Throttled(stream, write, n)
	}
}

// Subscription passes the measurement on to each.
func (t tee) Subscription(stream, consumer, result string) {
	for _, m := range t {
		m.Subscription(stream, consumer, result)
	}
}

// OpenSubscriptions passes the measurement on to each.
func (t tee) OpenSubscriptions(n int) {
	for _, m := range t {
		m.OpenSubscriptions(n)
	}
}

// Shard passes the measurement on to each.
func (t tee) Shard(stream, shard, metric string, v int64) {
	for _, m := range t {
		m.Shard(stream, shard, metric, v)
	}
}

// Reshard passes the measurement on to each.
func (t tee) Reshard(stream, kind string) {
	for _, m := range t {
		m.Reshard(stream, kind)
	}
}

// ShardMonitoring passes the change on to each.
func (t tee) ShardMonitoring(stream string, metrics []string) {
	for _, m := range t {
		m.ShardMonitoring(stream, metrics)
	}
}

// StreamDeleted passes the deletion on to each.
func (t tee) StreamDeleted(stream string) {
	for _, m := range t {
		m.StreamDeleted(stream)
	}
}

// Append passes the measurement on to each.
func (t tee) Append(d time.Duration, records int, err error) {
	for _, m := range t {
		m.Append(d, records, err)
	}
}

// Fsync passes the measurement on to each.
func (t tee) Fsync(d time.Duration, batches int, err error) {
	for _, m := range t {
		m.Fsync(d, batches, err)
	}
}

// DiskGuard passes the sample on to each.
func (t tee) DiskGuard(engaged bool, usedFraction float64) {
	for _, m := range t {
		m.DiskGuard(engaged, usedFraction)
	}
}

// Fault passes the count on to each.
func (t tee) Fault(op, kind string) {
	for _, m := range t {
		m.Fault(op, kind)
	}
}

// SizeTrimmed passes the count on to each.
func (t tee) SizeTrimmed(stream string, units int) {
	for _, m := range t {
		m.SizeTrimmed(stream, units)
	}
}
