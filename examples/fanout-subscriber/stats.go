package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// payload is what the producer puts as a record's data: the run it belongs
// to, its number in the run, the value the metrics application aggregates,
// and when the producer's Put was called.
type payload struct {
	Run   string
	N     int
	Value int
	Put   time.Time
}

func (p payload) encode() []byte {
	return fmt.Appendf(nil, "run %s n %d value %d put %d", p.Run, p.N, p.Value, p.Put.UnixNano())
}

// decodePayload parses what encode wrote; ok is false for data that is not
// a payload (someone else's record on a shared stream).
func decodePayload(b []byte) (payload, bool) {
	f := strings.Fields(string(b))
	if len(f) != 8 || f[0] != "run" || f[2] != "n" || f[4] != "value" || f[6] != "put" {
		return payload{}, false
	}
	n, err1 := strconv.Atoi(f[3])
	v, err2 := strconv.Atoi(f[5])
	ns, err3 := strconv.ParseInt(f[7], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return payload{}, false
	}
	return payload{Run: f[1], N: n, Value: v, Put: time.Unix(0, ns)}, true
}

// keyOf is the partition key of record n: the records are readings of
// keys sensors, in turn.
func keyOf(n, keys int) string { return "sensor-" + strconv.Itoa(n%keys) }

// valueOf is the reading record n carries: arbitrary, but the same on every
// run, so that the per-key sums can be checked.
func valueOf(n int) int { return (n*37 + 11) % 100 }

// appStats counts what one application received of this run's records: each
// application has its own, fed by its own handler.
type appStats struct {
	name  string
	runID string
	want  int       // records of the run; 0 means unbounded
	out   io.Writer // nil: no line per record
	width int       // of the name column

	mu       sync.Mutex // guards the fields below
	seen     map[int]int
	dups     int
	other    int // records of other runs, or not from this program
	putLat   []time.Duration
	arrLat   []time.Duration
	behind   map[string]int64 // latest MillisBehindLatest per shard
	maxBhd   int64
	lastLat  time.Duration // arrival->receive of the latest first copy
	finished bool
	done     chan struct{} // closed once every record of the run was received
}

func newAppStats(name, runID string, want int, out io.Writer, width int) *appStats {
	return &appStats{
		name: name, runID: runID, want: want, out: out, width: width,
		seen: map[int]int{}, behind: map[string]int64{}, done: make(chan struct{}),
	}
}

// add records the delivery of one record and prints its line. It returns
// the payload, whether this is the first copy of it, and ok false when the
// record is not one of this run's.
func (s *appStats) add(shardID, key string, data []byte, arrival time.Time, behind int64) (payload, bool, bool) {
	now := time.Now()
	p, ok := decodePayload(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behind[shardID] = behind
	s.maxBhd = max(s.maxBhd, behind)
	if !ok || p.Run != s.runID {
		s.other++
		return p, false, false
	}
	s.seen[p.N]++
	first := s.seen[p.N] == 1
	lat := now.Sub(p.Put)
	if first {
		s.putLat = append(s.putLat, lat)
		s.lastLat = max(0, now.Sub(arrival))
		s.arrLat = append(s.arrLat, s.lastLat)
	} else {
		s.dups++
	}
	if s.out != nil {
		dup := ""
		if !first {
			dup = " duplicate"
		}
		_, _ = fmt.Fprintf(s.out, "%-*s %s #%d %s value=%d behind=%dms latency=%s%s\n",
			s.width, s.name, shardID, p.N, key, p.Value, behind, lat.Round(100*time.Microsecond), dup)
	}
	if s.want > 0 && len(s.seen) == s.want && !s.finished {
		s.finished = true
		close(s.done)
	}
	return p, first, true
}

// status is a one-line progress report: records received, the largest
// MillisBehindLatest of the shards' latest batches (as Kinesis computed it
// when it sent them), and how long the latest record took from arriving in
// Kinesis to reaching the handler.
func (s *appStats) status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var behind int64
	for _, b := range s.behind {
		behind = max(behind, b)
	}
	return fmt.Sprintf("%s %d (behind %dms, latest arrival->receive %s)", s.name, len(s.seen), behind, fmtDur(s.lastLat))
}

// summary is the application's line of the final summary.
func (s *appStats) summary(produced int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%-*s received %d of %d, duplicates %d, other records %d, max behind %dms, latency put->receive p50 %s p99 %s max %s, arrival->receive p50 %s p99 %s",
		s.width+1, s.name+":", len(s.seen), produced, s.dups, s.other, s.maxBhd,
		fmtDur(percentile(s.putLat, 0.50)), fmtDur(percentile(s.putLat, 0.99)), fmtDur(percentile(s.putLat, 1)),
		fmtDur(percentile(s.arrLat, 0.50)), fmtDur(percentile(s.arrLat, 0.99)))
}

func (s *appStats) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// percentile returns the q-quantile (0 < q <= 1) of ds by the nearest-rank
// method, or -1 for no samples.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	sorted := slices.Sorted(slices.Values(ds))
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return d.Round(100 * time.Microsecond).String()
}

// keyAgg is what the metrics application keeps per partition key.
type keyAgg struct {
	count, sum, lo, hi int
}

// aggregator is the metrics application's state: per-key count, sum, min
// and max of the values of the first copy of each record.
type aggregator struct {
	mu   sync.Mutex // guards keys
	keys map[string]*keyAgg
}

func (a *aggregator) add(key string, v int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := a.keys[key]
	if k == nil {
		k = &keyAgg{lo: v, hi: v}
		a.keys[key] = k
	}
	k.count++
	k.sum += v
	k.lo = min(k.lo, v)
	k.hi = max(k.hi, v)
}

// lines is the per-key report, sorted by key.
func (a *aggregator) lines(app string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, key := range slices.Sorted(maps.Keys(a.keys)) {
		k := a.keys[key]
		out = append(out, fmt.Sprintf("%s key %s: count %d sum %d min %d max %d mean %.1f",
			app, key, k.count, k.sum, k.lo, k.hi, float64(k.sum)/float64(k.count)))
	}
	return out
}
