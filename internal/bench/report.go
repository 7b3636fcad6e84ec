package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// percentiles summarises call latencies.
type percentiles struct {
	P50, P90, P99, P999, Max, Mean time.Duration
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 when sorted is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float rounding (99.9/100*1000 = 999.0000000000001)
	// from pushing the rank up by one.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarize sorts lat in place and returns its percentiles.
func summarize(lat []time.Duration) percentiles {
	if len(lat) == 0 {
		return percentiles{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return percentiles{
		P50:  percentile(lat, 50),
		P90:  percentile(lat, 90),
		P99:  percentile(lat, 99),
		P999: percentile(lat, 99.9),
		Max:  lat[len(lat)-1],
		Mean: sum / time.Duration(len(lat)),
	}
}

// fmtLatency prints d in milliseconds with enough digits for loopback calls.
func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 1 {
		return fmt.Sprintf("%.3fms", ms)
	}
	return fmt.Sprintf("%.2fms", ms)
}

// latencyJSON is the JSON form of percentiles, in milliseconds.
type latencyJSON struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func msFloat(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// result is the machine-readable summary printed with --json, one JSON
// object on one line.
type result struct {
	Op            string      `json:"op"`   // "put" or "get"
	Mode          string      `json:"mode"` // put: "records" or "record"; get: "read"
	Endpoint      string      `json:"endpoint"`
	Stream        string      `json:"stream"`
	Shards        int         `json:"shards"`
	Clients       int         `json:"clients"`
	Seconds       float64     `json:"seconds"`
	Records       int64       `json:"records"`
	Bytes         int64       `json:"bytes"`
	Calls         int64       `json:"calls"`
	RecordsPerSec float64     `json:"records_per_sec"`
	MBPerSec      float64     `json:"mb_per_sec"`
	CallsPerSec   float64     `json:"calls_per_sec"`
	LatencyMS     latencyJSON `json:"latency_ms"`
	FailedRecords int64       `json:"failed_records"`
	FailedCalls   int64       `json:"failed_calls"`
	Retries       int64       `json:"retries"`
	WarmupCalls   int64       `json:"warmup_calls"`
	WarmupRecords int64       `json:"warmup_records"`
	Cursors       int         `json:"cursors,omitempty"` // get: (reader, shard) passes

	CaughtUp    int    `json:"caught_up,omitempty"`
	Prefilled   int64  `json:"prefilled,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
	FirstError  string `json:"first_error,omitempty"`

	pct percentiles // the latencies behind LatencyMS
}

// newResult fills the figures of a result from a run.
func newResult(o *runOutcome) result {
	m := &o.measured
	p := summarize(m.lat)
	r := result{
		pct:           p,
		Seconds:       o.elapsed.Seconds(),
		Records:       m.records,
		Bytes:         m.bytes,
		Calls:         m.calls,
		FailedRecords: m.failedRecords,
		FailedCalls:   m.failedCalls,
		Retries:       m.retries,
		WarmupCalls:   o.warm.calls,
		WarmupRecords: o.warm.records,
		Interrupted:   o.interrupted,
		LatencyMS: latencyJSON{
			P50: msFloat(p.P50), P90: msFloat(p.P90), P99: msFloat(p.P99),
			P999: msFloat(p.P999), Max: msFloat(p.Max), Mean: msFloat(p.Mean),
		},
	}
	if s := r.Seconds; s > 0 {
		r.RecordsPerSec = float64(m.records) / s
		r.MBPerSec = float64(m.bytes) / 1e6 / s
		r.CallsPerSec = float64(m.calls) / s
	}
	if m.firstErr != nil {
		r.FirstError = m.firstErr.Error()
	} else if o.warm.firstErr != nil {
		r.FirstError = "warmup: " + o.warm.firstErr.Error()
	}
	return r
}

// print writes the human-readable report of o (and the JSON line if asJSON)
// to out. callName names the API call counted ("PutRecords", "GetRecords").
func (r *result) print(out io.Writer, o *runOutcome, callName string, asJSON bool) error {
	p := r.pct
	if o.warm.calls > 0 {
		_, _ = fmt.Fprintf(out, "warmup: %d calls, %d records (not counted below)\n", o.warm.calls, o.warm.records)
	}
	_, _ = fmt.Fprintf(out, "%s: %d records in %.2fs = %.1f records/s, %.2f MB/s (payload), %d %s calls (%.1f/s)\n",
		r.Op, r.Records, r.Seconds, r.RecordsPerSec, r.MBPerSec, r.Calls, callName, r.CallsPerSec)
	_, _ = fmt.Fprintf(out, "latency per call: p50 %s p90 %s p99 %s p99.9 %s max %s (mean %s)\n",
		fmtLatency(p.P50), fmtLatency(p.P90), fmtLatency(p.P99), fmtLatency(p.P999), fmtLatency(p.Max), fmtLatency(p.Mean))
	if r.Op == "put" && r.Mode == "records" {
		_, _ = fmt.Fprintf(out, "errors: %d failed records (PutRecords FailedRecordCount), %d failed calls, %d SDK retries\n",
			r.FailedRecords, r.FailedCalls, r.Retries)
	} else if r.Op == "put" {
		_, _ = fmt.Fprintf(out, "errors: %d failed calls, %d SDK retries\n", r.FailedCalls, r.Retries)
	} else {
		_, _ = fmt.Fprintf(out, "errors: %d failed calls, %d SDK retries; %d/%d shard cursors caught up\n",
			r.FailedCalls, r.Retries, r.CaughtUp, r.Cursors)
	}
	return printTail(out, r.FirstError, r.Interrupted, asJSON, r)
}

// printTail prints what every report ends with: the first error, whether the
// run was interrupted, and, if asked, the result r as one JSON line.
func printTail(out io.Writer, firstError string, interrupted, asJSON bool, r any) error {
	if firstError != "" {
		_, _ = fmt.Fprintf(out, "first error: %s\n", firstError)
	}
	if interrupted {
		_, _ = fmt.Fprintln(out, "interrupted: figures cover the run until then")
	}
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode json result: %w", err)
		}
		if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
			return fmt.Errorf("write json result: %w", err)
		}
	}
	return nil
}
