package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalstream/shoal/producer"
)

// produceFlags are the flags of "bench produce".
type produceFlags struct {
	endpoint, region, stream string
	profile                  string
	shards                   int
	create                   bool
	records                  int64
	duration                 time.Duration
	size, writers, keys      int
	noAggregation, relaxed   bool
	rateLimit                int
	noRateLimit              bool
	maxBuffered              int
	json                     bool
}

// latencySampleEvery is how often (1 in N user records) the put→result
// latency is measured.
const latencySampleEvery = 64

func runProduce(ctx context.Context, args []string, out io.Writer) error {
	var f produceFlags
	fs := newFlagSet("produce", "shoal bench produce [flags]",
		`Drives the shoal producer (the KPL-like package producer: per-shard batching,
KPL aggregation, rate limiting and retries) against any Kinesis endpoint and
reports what it sustained: user records/s, payload MB/s, PutRecords calls,
the latency from Put to the record's result (1 in 64 records), the CPU time
of this process per user record (getrusage: the producer's cost, with the
SDK's and HTTP's) and errors. -writers goroutines call Put with records of
-size random bytes and partition keys taken in turn from -keys distinct keys,
until -records records were put (or for -duration), then Flush; the time
covers the puts and the flush.
`, out)
	fs.StringVar(&f.endpoint, "endpoint", "http://127.0.0.1:4567", "Kinesis endpoint URL")
	fs.StringVar(&f.region, "region", "us-east-1", "region used for SigV4 signing")
	fs.StringVar(&f.stream, "stream", "bench-produce", "stream name")
	fs.IntVar(&f.shards, "shards", 4, "shard count of the stream when the tool creates it")
	fs.BoolVar(&f.create, "create", true, "create the stream if it is missing and wait until it is ACTIVE")
	fs.Int64Var(&f.records, "records", 0, "if > 0, put exactly this many user records instead of running for -duration")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to put records (then flush), when -records is 0")
	fs.IntVar(&f.size, "size", 100, "bytes of random payload per record")
	fs.IntVar(&f.writers, "writers", 16, "goroutines calling Put")
	fs.IntVar(&f.keys, "keys", 1000, "number of distinct partition keys")
	fs.BoolVar(&f.noAggregation, "no-aggregation", false, "send every user record as its own Kinesis record (Config.DisableAggregation)")
	fs.BoolVar(&f.relaxed, "relaxed-ordering", false, "let one call carry several records of a shard that share a key (Config.RelaxedOrdering)")
	fs.IntVar(&f.rateLimit, "rate-limit", 0, "per-shard rate limit in percent of the shard write limits (Config.RateLimit); 0 means the producer's default, 100; negative disables it")
	fs.BoolVar(&f.noRateLimit, "no-rate-limit", false, "disable the producer's rate limiter (Config.DisableRateLimit)")
	fs.IntVar(&f.maxBuffered, "max-buffered-records", 0, "Config.MaxBufferedRecords (0: the producer's default, 100000)")
	fs.BoolVar(&f.json, "json", false, "also print the result as one JSON line")
	registerProfile(fs, &f.profile)
	if done, err := parse(fs, args); done {
		return err
	}
	switch {
	case f.shards < 1:
		return fmt.Errorf("bench: -shards must be >= 1, got %d", f.shards)
	case f.records < 0:
		return fmt.Errorf("bench: -records must be >= 0, got %d", f.records)
	case f.records == 0 && f.duration <= 0:
		return errors.New("bench: need -records > 0 or -duration > 0")
	case f.size < 0:
		return fmt.Errorf("bench: -size must be >= 0, got %d", f.size)
	case f.writers < 1:
		return fmt.Errorf("bench: -writers must be >= 1, got %d", f.writers)
	case f.keys < 1:
		return fmt.Errorf("bench: -keys must be >= 1, got %d", f.keys)
	case f.maxBuffered < 0:
		return fmt.Errorf("bench: -max-buffered-records must be >= 0, got %d", f.maxBuffered)
	}
	rateOff := f.noRateLimit || f.rateLimit < 0
	rate := f.rateLimit
	if rateOff {
		rate = 0
	}

	c := common{endpoint: f.endpoint, region: f.region, stream: f.stream, shards: f.shards, create: f.create, profile: f.profile}
	if err := c.loadCredentials(ctx); err != nil {
		return err
	}
	cl := c.newClient(f.endpoint, 2) // the producer turns SDK retries off for PutRecords
	open, err := ensureStream(ctx, cl, &c, out)
	if err != nil {
		return err
	}
	m := newProduceMetrics()
	p, err := producer.New(cl.Client, producer.Config{
		StreamName:         f.stream,
		DisableAggregation: f.noAggregation,
		RelaxedOrdering:    f.relaxed,
		RateLimit:          rate,
		DisableRateLimit:   rateOff,
		MaxBufferedRecords: f.maxBuffered,
		Metrics:            m,
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(cctx)
	}()

	limit := fmt.Sprintf("duration %v", f.duration)
	if f.records > 0 {
		limit = fmt.Sprintf("%d records", f.records)
	}
	agg, order, rl := "aggregation on", "strict ordering", "rate limit off"
	if f.noAggregation {
		agg = "aggregation off"
	}
	if f.relaxed {
		order = "relaxed ordering"
	}
	if !rateOff {
		rl = fmt.Sprintf("rate limit %d%%", max(rate, 0))
		if rate == 0 {
			rl = "rate limit 100% (default)"
		}
	}
	_, _ = fmt.Fprintf(out, "bench produce: %s, %s, %d writers, %d B/record, %d keys, %s, %s, %s, %s\n",
		f.endpoint, streamDesc(&c, open), f.writers, f.size, f.keys, agg, order, rl, limit)

	// The producer's first ListShards (its shard map) is part of the run:
	// the stream holds exactly the records the run reports, no warm-up one.
	base := m.snapshot()

	keys := makeKeys("produce-", f.keys)
	pool := make([]byte, payloadPool+f.size)
	_, _ = rand.NewChaCha8([32]byte{'s', 'h', 'o', 'a', 'l', 'p'}).Read(pool)

	var (
		next      atomic.Int64 // records claimed by writers
		stop      atomic.Bool  // -duration is over
		puts      atomic.Int64 // records Put accepted
		putErrs   atomic.Int64
		firstMu   sync.Mutex
		firstErr  error
		latMu     sync.Mutex
		lat       []time.Duration
		samplers  sync.WaitGroup
		writersWG sync.WaitGroup
	)
	setFirst := func(err error) {
		firstMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		firstMu.Unlock()
	}
	cpu0, cpuOK := processCPU()
	start := time.Now()
	deadline := start.Add(f.duration)
	for range f.writers {
		writersWG.Go(func() {
			var n int64
			defer func() { puts.Add(n) }()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if f.records > 0 && i >= f.records {
					return
				}
				if f.records == 0 && (stop.Load() || i%256 == 0 && time.Now().After(deadline)) {
					stop.Store(true)
					return
				}
				off := int(uint64(i) * 2654435761 % payloadPool)
				sample := i%latencySampleEvery == 0
				var t0 time.Time
				if sample {
					t0 = time.Now()
				}
				pd, err := p.Put(ctx, keys[i%int64(len(keys))], pool[off:off+f.size:off+f.size])
				if err != nil {
					if ctx.Err() == nil {
						putErrs.Add(1)
						setFirst(fmt.Errorf("put: %w", err))
					}
					continue
				}
				n++
				if sample {
					samplers.Go(func() {
						<-pd.Done()
						d := time.Since(t0)
						if res, _ := pd.Result(); res.Err == nil {
							latMu.Lock()
							lat = append(lat, d)
							latMu.Unlock()
						}
					})
				}
			}
		})
	}
	writersWG.Wait()
	interrupted := ctx.Err() != nil
	fctx := ctx
	if interrupted {
		// Collect the results of what was put, for a while.
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
	}
	if err := p.Flush(fctx); err != nil {
		setFirst(fmt.Errorf("flush: %w (%d records without a result)", err, p.BufferedRecords()))
	}
	elapsed := time.Since(start)
	cpu1, _ := processCPU()
	if p.BufferedRecords() == 0 {
		samplers.Wait() // every Pending is done
	}

	s := m.snapshot().minus(base)
	latMu.Lock()
	pct := summarize(lat)
	samples := len(lat)
	latMu.Unlock()
	put := puts.Load()
	r := produceResult{
		Op: "produce", Endpoint: f.endpoint, Stream: f.stream, Shards: open, Writers: f.writers,
		Size: f.size, Keys: f.keys, Aggregation: !f.noAggregation, RelaxedOrdering: f.relaxed,
		Seconds: elapsed.Seconds(), Put: put, Records: s.userPut, Bytes: s.userPut * int64(f.size),
		Calls: s.calls, KinesisRecords: s.kinesisPut,
		FailedRecords: s.failedTotal(), FailedByCode: s.failed, FailedCalls: s.callErrs,
		Retries: s.retriedTotal(), RetriesByCode: s.retried, PutErrors: putErrs.Load(),
		LatencySamples: samples, Interrupted: interrupted,
	}
	if !rateOff {
		r.RateLimit = rate
		if rate == 0 {
			r.RateLimit = 100
		}
	}
	if sec := r.Seconds; sec > 0 {
		r.RecordsPerSec = float64(r.Records) / sec
		r.MBPerSec = float64(r.Bytes) / 1e6 / sec
		r.CallsPerSec = float64(r.Calls) / sec
	}
	if s.calls > 0 {
		r.CallMeanMS = msFloat(time.Duration(s.callNanos / s.calls))
	}
	if samples > 0 {
		r.LatencyMS = &latencyJSON{
			P50: msFloat(pct.P50), P90: msFloat(pct.P90), P99: msFloat(pct.P99),
			P999: msFloat(pct.P999), Max: msFloat(pct.Max), Mean: msFloat(pct.Mean),
		}
	}
	if cpuOK {
		r.CPUSeconds = (cpu1 - cpu0).Seconds()
		if put > 0 {
			r.CPUNsPerRecord = float64((cpu1 - cpu0).Nanoseconds()) / float64(put)
		}
	}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	if err := r.print(out, pct, cpuOK, f.json); err != nil {
		return err
	}
	if interrupted {
		return fmt.Errorf("bench: produce interrupted: %w", ctx.Err())
	}
	return nil
}

// produceResult is the summary of "bench produce", printed as one JSON
// object on one line with -json.
type produceResult struct {
	Op              string  `json:"op"` // "produce"
	Endpoint        string  `json:"endpoint"`
	Stream          string  `json:"stream"`
	Shards          int     `json:"shards"`
	Writers         int     `json:"writers"`
	Size            int     `json:"size"`
	Keys            int     `json:"keys"`
	Aggregation     bool    `json:"aggregation"`
	RelaxedOrdering bool    `json:"relaxed_ordering"`
	RateLimit       int     `json:"rate_limit"` // percent; 0 when the limiter is off
	Seconds         float64 `json:"seconds"`
	// Put counts user records Put accepted; Records those Kinesis stored
	// (their results succeeded), and Bytes their payload.
	Put            int64        `json:"put"`
	Records        int64        `json:"records"`
	Bytes          int64        `json:"bytes"`
	RecordsPerSec  float64      `json:"records_per_sec"`
	MBPerSec       float64      `json:"mb_per_sec"`
	Calls          int64        `json:"calls"` // PutRecords calls
	CallsPerSec    float64      `json:"calls_per_sec"`
	CallMeanMS     float64      `json:"call_mean_ms"`
	KinesisRecords int64        `json:"kinesis_records"` // stored, aggregates count once
	LatencyMS      *latencyJSON `json:"latency_ms,omitempty"`
	LatencySamples int          `json:"latency_samples"`
	CPUSeconds     float64      `json:"cpu_seconds"`
	CPUNsPerRecord float64      `json:"cpu_ns_per_record"`
	// FailedRecords counts user records whose result is an error;
	// Retries, Kinesis records sent again; both by error code.
	FailedRecords int64          `json:"failed_records"`
	FailedByCode  map[string]int `json:"failed_by_code,omitempty"`
	FailedCalls   int64          `json:"failed_calls"`
	Retries       int64          `json:"retries"`
	RetriesByCode map[string]int `json:"retries_by_code,omitempty"`
	PutErrors     int64          `json:"put_errors"`
	Interrupted   bool           `json:"interrupted,omitempty"`
	FirstError    string         `json:"first_error,omitempty"`
}

func (r *produceResult) print(out io.Writer, p percentiles, cpuOK bool, asJSON bool) error {
	perCall := ""
	if r.Calls > 0 {
		perCall = fmt.Sprintf(", %.1f Kinesis records and %.1f user records each, mean %s",
			float64(r.KinesisRecords)/float64(r.Calls), float64(r.Records)/float64(r.Calls),
			fmtLatency(time.Duration(r.CallMeanMS*float64(time.Millisecond))))
	}
	_, _ = fmt.Fprintf(out, "produce: %d records in %.2fs = %.1f records/s, %.2f MB/s (payload), %d PutRecords calls (%.1f/s%s)\n",
		r.Records, r.Seconds, r.RecordsPerSec, r.MBPerSec, r.Calls, r.CallsPerSec, perCall)
	if r.LatencySamples > 0 {
		_, _ = fmt.Fprintf(out, "latency put→result (1 in %d records): p50 %s p90 %s p99 %s p99.9 %s max %s (mean %s)\n",
			latencySampleEvery, fmtLatency(p.P50), fmtLatency(p.P90), fmtLatency(p.P99),
			fmtLatency(p.P999), fmtLatency(p.Max), fmtLatency(p.Mean))
	}
	if cpuOK && r.Seconds > 0 {
		_, _ = fmt.Fprintf(out, "cpu: %.0f ns per user record (this process, user+system: %.2fs, %.2f cores)\n",
			r.CPUNsPerRecord, r.CPUSeconds, r.CPUSeconds/r.Seconds)
	}
	_, _ = fmt.Fprintf(out, "errors: %d failed records%s, %d failed PutRecords calls, %d retried Kinesis records%s, %d failed puts\n",
		r.FailedRecords, byCode(r.FailedByCode), r.FailedCalls, r.Retries, byCode(r.RetriesByCode), r.PutErrors)
	return printTail(out, r.FirstError, r.Interrupted, asJSON, r)
}

// byCode formats counts by error code as " (code n, ...)", or "".
func byCode(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// produceMetrics counts what the producer reports.
type produceMetrics struct {
	producer.NopMetrics
	userPut, kinesisPut, calls, callErrs, callNanos atomic.Int64
	mu                                              sync.Mutex
	retried, failed                                 map[string]int
}

func newProduceMetrics() *produceMetrics {
	return &produceMetrics{retried: map[string]int{}, failed: map[string]int{}}
}

func (m *produceMetrics) UserRecordsPut(n int)       { m.userPut.Add(int64(n)) }
func (m *produceMetrics) KinesisRecordsPut(n, _ int) { m.kinesisPut.Add(int64(n)) }
func (m *produceMetrics) PutRecordsCall(d time.Duration, _, _ int, err error) {
	m.calls.Add(1)
	m.callNanos.Add(int64(d))
	if err != nil {
		m.callErrs.Add(1)
	}
}
func (m *produceMetrics) Retried(code string, n int) {
	m.mu.Lock()
	m.retried[code] += n
	m.mu.Unlock()
}
func (m *produceMetrics) UserRecordsFailed(code string, n int) {
	m.mu.Lock()
	m.failed[code] += n
	m.mu.Unlock()
}

// produceCounts is a snapshot of produceMetrics.
type produceCounts struct {
	userPut, kinesisPut, calls, callErrs, callNanos int64
	retried, failed                                 map[string]int
}

func (m *produceMetrics) snapshot() produceCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return produceCounts{
		userPut: m.userPut.Load(), kinesisPut: m.kinesisPut.Load(), calls: m.calls.Load(),
		callErrs: m.callErrs.Load(), callNanos: m.callNanos.Load(),
		retried: maps.Clone(m.retried), failed: maps.Clone(m.failed),
	}
}

// minus returns the counts since base.
func (c produceCounts) minus(base produceCounts) produceCounts {
	d := produceCounts{
		userPut: c.userPut - base.userPut, kinesisPut: c.kinesisPut - base.kinesisPut,
		calls: c.calls - base.calls, callErrs: c.callErrs - base.callErrs, callNanos: c.callNanos - base.callNanos,
		retried: map[string]int{}, failed: map[string]int{},
	}
	for k, v := range c.retried {
		if n := v - base.retried[k]; n != 0 {
			d.retried[k] = n
		}
	}
	for k, v := range c.failed {
		if n := v - base.failed[k]; n != 0 {
			d.failed[k] = n
		}
	}
	return d
}

func (c produceCounts) retriedTotal() int64 { return sumCounts(c.retried) }
func (c produceCounts) failedTotal() int64  { return sumCounts(c.failed) }

func sumCounts(m map[string]int) int64 {
	var n int64
	for _, v := range m {
		n += int64(v)
	}
	return n
}
