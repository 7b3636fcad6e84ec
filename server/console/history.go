package console

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalstream/shoal/server"
)

// History steps and bounds.
const (
	// HistoryStep is the width of one bucket of History.
	HistoryStep = 10 * time.Second
	// HistoryKept is how far back History keeps buckets.
	HistoryKept = time.Hour
	// MaxHistoryStreams bounds the streams History keeps series of; past
	// it, a stream without a value for an hour is forgotten for a new
	// one, else the new one's values are dropped.
	MaxHistoryStreams = 1024
	// MaxHistoryShards bounds the shard-level series, across streams, in
	// the same way.
	MaxHistoryShards = 4096

	historyBuckets = int(HistoryKept / HistoryStep)
)

// The stream-level series, in the order of their indexes below.
var streamSeriesNames = []string{
	"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords", "IteratorAgeMilliseconds",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "PutRecords.FailedRecords",
}

const (
	sIncomingBytes = iota
	sIncomingRecords
	sOutgoingBytes
	sOutgoingRecords
	sIteratorAge
	sWriteThrottled
	sReadThrottled
	sPutFailed
)

// ring is a series of buckets of n values each, HistoryKept long. Its
// owner serialises calls.
type ring struct {
	n     int
	slots []int64 // the bucket each slot holds (math.MinInt64: none)
	vals  []int64 // n values per slot
}

func newRing(n int) *ring {
	r := &ring{n: n, slots: make([]int64, historyBuckets), vals: make([]int64, historyBuckets*n)}
	for i := range r.slots {
		r.slots[i] = math.MinInt64
	}
	return r
}

// at returns the values of bucket b, claiming its slot from an older
// bucket; nil when the slot holds a newer bucket (b is older than kept).
func (r *ring) at(b int64) []int64 {
	i := int(b % int64(historyBuckets))
	switch {
	case r.slots[i] > b:
		return nil
	case r.slots[i] < b:
		r.slots[i] = b
		clear(r.vals[i*r.n : (i+1)*r.n])
	}
	return r.vals[i*r.n : (i+1)*r.n]
}

// get returns value m of bucket b (0 when not kept).
func (r *ring) get(b int64, m int) int64 {
	i := int(b % int64(historyBuckets))
	if r.slots[i] != b {
		return 0
	}
	return r.vals[i*r.n+m]
}

// History is a server.Metrics that keeps the last hour of each stream's
// metrics in 10-second buckets, in memory, for the console's charts: the
// records and bytes put and read, the largest iterator age, the throttled
// writes and reads, the failed records of PutRecords, and the shard-level
// metrics a stream enabled with EnableEnhancedMonitoring. Give it to the
// server's Config.Metrics (with server.TeeMetrics beside another Metrics)
// and to the console's Config.History. Its memory is bounded
// (MaxHistoryStreams, MaxHistoryShards); a deleted stream's series go with
// it. Streams are told apart by name only: same-named streams of two
// accounts share their series. Safe for concurrent use.
type History struct {
	server.NopMetrics
	now func() time.Time

	mu      sync.RWMutex // guards streams; taken before any streamHistory.mu
	streams map[string]*streamHistory
	shards  atomic.Int64 // shard rings held, across streams
}

var _ server.Metrics = (*History)(nil)

// streamHistory is one stream's series.
type streamHistory struct {
	last atomic.Int64 // newest bucket written

	mu      sync.Mutex // guards the fields below
	total   *ring
	shards  map[string]*ring
	enabled []string // the shard-level metrics enabled
}

// NewHistory returns an empty History on the clock now (nil: time.Now).
func NewHistory(now func() time.Time) *History {
	if now == nil {
		now = time.Now
	}
	return &History{now: now, streams: make(map[string]*streamHistory)}
}

func bucketOf(t time.Time) int64 { return t.Unix() / int64(HistoryStep/time.Second) }

// stream returns the stream's series, making them if create (nil when it
// cannot, or when they do not exist and create is false).
func (h *History) stream(name string, create bool) *streamHistory {
	h.mu.RLock()
	sh := h.streams[name]
	h.mu.RUnlock()
	if sh != nil || !create {
		return sh
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sh := h.streams[name]; sh != nil {
		return sh
	}
	if len(h.streams) >= MaxHistoryStreams {
		stale := bucketOf(h.now()) - int64(historyBuckets)
		var victim string
		for n, o := range h.streams {
			if o.last.Load() < stale {
				victim = n
				break
			}
		}
		if victim == "" {
			return nil
		}
		h.dropLocked(victim)
	}
	sh = &streamHistory{total: newRing(len(streamSeriesNames)), shards: map[string]*ring{}}
	sh.last.Store(bucketOf(h.now()))
	h.streams[name] = sh
	return sh
}

func (h *History) dropLocked(name string) {
	sh := h.streams[name]
	if sh == nil {
		return
	}
	delete(h.streams, name)
	sh.mu.Lock()
	h.shards.Add(-int64(len(sh.shards)))
	sh.shards = nil
	sh.mu.Unlock()
}

// record applies fn to the stream's values of the current bucket.
func (h *History) record(stream string, fn func(v []int64)) {
	sh := h.stream(stream, true)
	if sh == nil {
		return
	}
	b := bucketOf(h.now())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if v := sh.total.at(b); v != nil {
		fn(v)
		if b > sh.last.Load() {
			sh.last.Store(b)
		}
	}
}

// Incoming adds records and bytes put.
func (h *History) Incoming(stream, _ string, records, bytes int) {
	h.record(stream, func(v []int64) {
		v[sIncomingRecords] += int64(records)
		v[sIncomingBytes] += int64(bytes)
	})
}

// Outgoing adds records and bytes read (GetRecords and enhanced fan-out),
// and keeps the largest iterator age of GetRecords.
func (h *History) Outgoing(stream, consumer string, records, bytes int, behind time.Duration) {
	h.record(stream, func(v []int64) {
		v[sOutgoingRecords] += int64(records)
		v[sOutgoingBytes] += int64(bytes)
		if consumer == "" {
			v[sIteratorAge] = max(v[sIteratorAge], behind.Milliseconds())
		}
	})
}

// Throttled adds throttled write records or read calls.
func (h *History) Throttled(stream string, write bool, n int) {
	h.record(stream, func(v []int64) {
		if write {
			v[sWriteThrottled] += int64(n)
		} else {
			v[sReadThrottled] += int64(n)
		}
	})
}

// PutRecords adds the failed records of a PutRecords call.
func (h *History) PutRecords(stream string, _, _, failed, _ int) {
	if failed == 0 {
		return
	}
	h.record(stream, func(v []int64) { v[sPutFailed] += int64(failed) })
}

// Shard adds a shard-level value (IteratorAgeMilliseconds: keeps the
// largest).
func (h *History) Shard(stream, shard, metric string, v int64) {
	m := slices.Index(shardMetricNames, metric)
	if m < 0 {
		return
	}
	sh := h.stream(stream, true)
	if sh == nil {
		return
	}
	b := bucketOf(h.now())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.shards[shard]
	if r == nil {
		if sh.shards == nil || !h.claimShard(sh) {
			return
		}
		r = newRing(len(shardMetricNames))
		sh.shards[shard] = r
	}
	vals := r.at(b)
	if vals == nil {
		return
	}
	if metric == "IteratorAgeMilliseconds" {
		vals[m] = max(vals[m], v)
	} else {
		vals[m] += v
	}
	if b > sh.last.Load() {
		sh.last.Store(b)
	}
}

// claimShard counts a new shard ring of sh (whose mu is held), first
// dropping sh's rings without a value for an hour when the bound is
// reached; false when there is no room.
func (h *History) claimShard(sh *streamHistory) bool {
	if h.shards.Load() >= MaxHistoryShards {
		stale := bucketOf(h.now()) - int64(historyBuckets)
		for id, r := range sh.shards {
			if newest(r) < stale {
				delete(sh.shards, id)
				h.shards.Add(-1)
			}
		}
		if h.shards.Load() >= MaxHistoryShards {
			return false
		}
	}
	h.shards.Add(1)
	return true
}

// newest is the newest bucket a ring holds.
func newest(r *ring) int64 {
	n := int64(math.MinInt64)
	for _, b := range r.slots {
		n = max(n, b)
	}
	return n
}

// ShardMonitoring records the shard-level metrics a stream enabled, and
// drops the shards' values of the others.
func (h *History) ShardMonitoring(stream string, metrics []string) {
	sh := h.stream(stream, len(metrics) > 0)
	if sh == nil {
		return
	}
	if slices.Contains(metrics, "ALL") {
		metrics = shardMetricNames
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.enabled = slices.Clone(metrics)
	if sh.shards == nil {
		return
	}
	if len(metrics) == 0 {
		h.shards.Add(-int64(len(sh.shards)))
		clear(sh.shards)
		return
	}
	for m, name := range shardMetricNames {
		if slices.Contains(metrics, name) {
			continue
		}
		for _, r := range sh.shards {
			for i := range r.slots {
				r.vals[i*r.n+m] = 0
			}
		}
	}
}

// StreamDeleted drops the stream's series.
func (h *History) StreamDeleted(stream string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(stream)
}

// historyJSON is the answer of GET metrics.
type historyJSON struct {
	Step   int                           `json:"step"`
	Start  string                        `json:"start"`
	Series map[string][]int64            `json:"series"`
	Shards map[string]map[string][]int64 `json:"shards"`
}

// snapshot returns the stream's last minutes, the shard-level series of
// the metrics enabled among shardMetrics.
func (h *History) snapshot(stream string, minutes int, shardMetrics []string) historyJSON {
	n := minutes * int(time.Minute/HistoryStep)
	to := bucketOf(h.now())
	from := to - int64(n) + 1
	out := historyJSON{
		Step:   int(HistoryStep / time.Second),
		Start:  ts(time.Unix(from*int64(HistoryStep/time.Second), 0)),
		Series: map[string][]int64{},
		Shards: map[string]map[string][]int64{},
	}
	sh := h.stream(stream, false)
	for m, name := range streamSeriesNames {
		vals := make([]int64, n)
		if sh != nil {
			sh.mu.Lock()
			for i := range vals {
				vals[i] = sh.total.get(from+int64(i), m)
			}
			sh.mu.Unlock()
		}
		out.Series[name] = vals
	}
	if sh == nil {
		return out
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for id, r := range sh.shards {
		series := map[string][]int64{}
		for m, name := range shardMetricNames {
			if !slices.Contains(shardMetrics, name) || !slices.Contains(sh.enabled, name) {
				continue
			}
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = r.get(from+int64(i), m)
			}
			series[name] = vals
		}
		out.Shards[id] = series
	}
	return out
}
