package server_test

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/server"
)

// recordingMetrics records every call it receives.
type recordingMetrics struct {
	mu    sync.Mutex // guards calls
	calls []string
}

func (r *recordingMetrics) add(format string, args ...any) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recordingMetrics) Call(op string, d time.Duration, code string) {
	r.add("Call %s %v %s", op, d, code)
}
func (r *recordingMetrics) Incoming(s, op string, n, b int) {
	r.add("Incoming %s %s %d %d", s, op, n, b)
}
func (r *recordingMetrics) PutRecords(s string, t, ok, f, th int) {
	r.add("PutRecords %s %d %d %d %d", s, t, ok, f, th)
}
func (r *recordingMetrics) Outgoing(s, c string, n, b int, d time.Duration) {
	r.add("Outgoing %s %s %d %d %v", s, c, n, b, d)
}
func (r *recordingMetrics) Throttled(s string, w bool, n int) { r.add("Throttled %s %v %d", s, w, n) }
func (r *recordingMetrics) Subscription(s, c, res string)     { r.add("Subscription %s %s %s", s, c, res) }
func (r *recordingMetrics) OpenSubscriptions(n int)           { r.add("OpenSubscriptions %d", n) }
func (r *recordingMetrics) Shard(s, sh, m string, v int64)    { r.add("Shard %s %s %s %d", s, sh, m, v) }
func (r *recordingMetrics) Reshard(s, k string)               { r.add("Reshard %s %s", s, k) }
func (r *recordingMetrics) ShardMonitoring(s string, m []string) {
	r.add("ShardMonitoring %s %v", s, m)
}
func (r *recordingMetrics) StreamDeleted(s string) { r.add("StreamDeleted %s", s) }
func (r *recordingMetrics) Append(d time.Duration, n int, err error) {
	r.add("Append %v %d %v", d, n, err)
}
func (r *recordingMetrics) Fsync(d time.Duration, n int, err error) {
	r.add("Fsync %v %d %v", d, n, err)
}
func (r *recordingMetrics) DiskGuard(e bool, f float64) { r.add("DiskGuard %v %v", e, f) }
func (r *recordingMetrics) Fault(op, k string)          { r.add("Fault %s %s", op, k) }
func (r *recordingMetrics) SizeTrimmed(s string, n int) { r.add("SizeTrimmed %s %d", s, n) }

// TestTeeMetrics: every method reaches each Metrics, in order; nil ones
// are left out.
func TestTeeMetrics(t *testing.T) {
	a, b := &recordingMetrics{}, &recordingMetrics{}
	m := server.TeeMetrics(a, nil, b)
	m.Call("PutRecord", time.Second, "")
	m.Incoming("s", "PutRecord", 1, 2)
	m.PutRecords("s", 5, 4, 1, 1)
	m.Outgoing("s", "c", 1, 2, time.Millisecond)
	m.Throttled("s", true, 3)
	m.Subscription("s", "c", "ok")
	m.OpenSubscriptions(2)
	m.Shard("s", "shardId-000000000000", "IncomingBytes", 7)
	m.Reshard("s", "split")
	m.ShardMonitoring("s", []string{"IncomingBytes"})
	m.StreamDeleted("s")
	m.Append(time.Millisecond, 3, nil)
	m.Fsync(time.Millisecond, 2, nil)
	m.DiskGuard(true, 0.5)
	m.Fault("fsync", "slow-fsync")
	m.SizeTrimmed("s", 1)
	n := reflect.TypeFor[server.Metrics]().NumMethod()
	if len(a.calls) != n || !slices.Equal(a.calls, b.calls) {
		t.Fatalf("%d of %d methods reached the first, the second got %d:\n%v\n%v", len(a.calls), n, len(b.calls), a.calls, b.calls)
	}
	if one := server.TeeMetrics(nil, a); one != server.Metrics(a) {
		t.Errorf("TeeMetrics of one = %T, want it", one)
	}
	server.TeeMetrics().Call("x", 0, "") // no Metrics: records nothing, does not fail
}
