package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// position is where a record was stored, as its result says or as it was
// read back.
type position struct {
	shard  string
	seq    string
	subseq int64
}

// untrackedKey is the partition key of records the tracker ignores.
const untrackedKey = "untracked"

// tracker records the results of records made by payload(w, i, size) and
// checks that each got exactly one.
type tracker struct {
	writers, perWriter int
	mu                 sync.Mutex
	count              [][]int32
	pos                [][]position
	errs               []error
	total              atomic.Int64
	attempts           atomic.Int64 // sum of Result.Attempts
}

func newTracker(writers, perWriter int) *tracker {
	tr := &tracker{writers: writers, perWriter: perWriter, count: make([][]int32, writers), pos: make([][]position, writers)}
	for w := range writers {
		tr.count[w] = make([]int32, perWriter)
		tr.pos[w] = make([]position, perWriter)
	}
	return tr
}

func (tr *tracker) onResult(r Result) {
	if r.Record.PartitionKey == untrackedKey {
		return
	}
	tr.total.Add(1)
	tr.attempts.Add(int64(r.Attempts))
	w, i, ok := parsePayload(string(r.Record.Data))
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !ok || w >= tr.writers || i >= tr.perWriter {
		tr.errs = append(tr.errs, fmt.Errorf("result for unknown record %q", r.Record.Data))
		return
	}
	tr.count[w][i]++
	if r.Err != nil {
		if len(tr.errs) < 10 {
			tr.errs = append(tr.errs, fmt.Errorf("record w%d i%d: %w", w, i, r.Err))
		}
		return
	}
	tr.pos[w][i] = position{r.ShardID, r.SequenceNumber, r.SubSequenceNumber}
}

// check asserts exactly one successful result per record and that each
// result names where the record was read back.
func (tr *tracker) check(t *testing.T, got readResult) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, err := range tr.errs {
		t.Error(err)
	}
	bad := 0
	for w := range tr.count {
		for i, n := range tr.count[w] {
			if n != 1 {
				if bad < 5 {
					t.Errorf("record w%d i%d got %d results", w, i, n)
				}
				bad++
			}
		}
	}
	if bad > 0 || len(tr.errs) > 0 {
		t.Fatalf("%d records without exactly one result, %d errors", bad, len(tr.errs))
	}
	mismatch := 0
	for _, r := range got.Records {
		w, i, ok := parsePayload(r.Data)
		if !ok || w >= tr.writers || i >= tr.perWriter {
			continue
		}
		if p := tr.pos[w][i]; p != (position{r.ShardID, r.SequenceNumber, r.SubSequence}) {
			if mismatch < 5 {
				t.Errorf("record w%d i%d: result says %+v, read at %s %s/%d", w, i, p, r.ShardID, r.SequenceNumber, r.SubSequence)
			}
			mismatch++
		}
	}
	if mismatch > 0 {
		t.Fatalf("%d results do not match where the records were read", mismatch)
	}
}

// checkKeyOrder asserts that, for each partition key, the records of each
// writer were read in the order they were put (ignoring duplicates), and
// returns how many records came after a later one of the same key.
func checkKeyOrder(got readResult) (outOfOrder int, firstErr string) {
	type wk struct {
		w   int
		key string
	}
	last := map[wk]int{}
	for _, r := range got.Records {
		w, i, ok := parsePayload(r.Data)
		if !ok {
			continue
		}
		k := wk{w, r.PartitionKey}
		prev, seen := last[k]
		if seen && i < prev {
			outOfOrder++
			if firstErr == "" {
				firstErr = fmt.Sprintf("key %s writer %d: record %d read after record %d", r.PartitionKey, w, i, prev)
			}
			continue
		}
		if !seen || i > prev {
			last[k] = i
		}
	}
	return outOfOrder, firstErr
}

// putAll runs writers goroutines that each put perWriter records made by
// payload(w, i, size) with key(w, i).
func putAll(t *testing.T, p *Producer, writers, perWriter, size int, key func(w, i int) string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := p.Put(context.Background(), key(w, i), payload(w, i, size)); err != nil {
					errs <- fmt.Errorf("put w%d i%d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func flush(t *testing.T, p *Producer, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (%d records still buffered)", err, p.BufferedRecords())
	}
}

// TestDeliverMany puts 1,000,000 records from 16 goroutines (20,000 with
// -short) and checks that every record gets exactly
// one successful result, that every record is read back exactly once (after
// deaggregation and the KCL's hash range filter) with its key and data,
// where its result says, and in per-key order.
func TestDeliverMany(t *testing.T) {
	total := 1_000_000
	if testing.Short() {
		total = 20_000
	}
	const writers = 16
	perWriter := total / writers
	srv := startServer(t, server.Config{Logger: zap.NewNop()})
	c := srv.Client()
	createStream(t, c, "many", 4)
	tr := newTracker(writers, perWriter)
	m := newCountingMetrics()
	p := newTestProducer(t, c, Config{StreamName: "many", DisableRateLimit: true, OnResult: tr.onResult, Metrics: m, Logger: zap.NewNop()})
	key := func(w, i int) string { return fmt.Sprintf("key-%d", (w*7919+i)%1000) }
	start := time.Now()
	putAll(t, p, writers, perWriter, 100, key)
	flush(t, p, 10*time.Minute) // a guard against a hang, not a speed requirement
	elapsed := time.Since(start)
	t.Logf("%d records in %v (%.0f/s), %d PutRecords calls, %d Kinesis records", total, elapsed,
		float64(total)/elapsed.Seconds(), m.calls.Load(), m.kinesisPut.Load())
	if n := tr.total.Load(); n != int64(total) {
		t.Fatalf("%d results, want %d", n, total)
	}
	got := readAll(t, c, "many")
	checkDelivered(t, got, writers, perWriter, 100, key)
	tr.check(t, got)
	if n, first := checkKeyOrder(got); n > 0 {
		t.Errorf("%d records out of per-key order; first: %s", n, first)
	}
	if got.Dropped > 0 {
		t.Errorf("%d user records would be dropped by the KCL", got.Dropped)
	}
}

// throttleClock is the clock of TestThrottled's server
// (server.Config.Now). It stands still from the start until thaw is
// called, and follows time.Now from then on. While it stands still the
// server's token buckets do not refill: each shard stores one second's
// worth (1,000 Kinesis records or 1 MiB) and throttles every record beyond
// that, however fast or slow the machine runs.
type throttleClock struct {
	frozenAt time.Time
	thawed   atomic.Bool
}

func (c *throttleClock) Now() time.Time {
	if c.thawed.Load() {
		return time.Now()
	}
	return c.frozenAt
}

func (c *throttleClock) thaw() { c.thawed.Store(true) }

const throttleCode = "ProvisionedThroughputExceededException"

// throttleWatch passes the producer's calls through to the server and
// counts what the server throttled. The thawAfter-th PutRecords answer
// whose every entry was throttled thaws the server's clock.
type throttleWatch struct {
	KinesisAPI
	clock     *throttleClock
	thawAfter int64
	// entries and userRecords count the throttled Kinesis records and the
	// user records inside them; allThrottled counts the answers whose every
	// entry was throttled.
	entries, userRecords, allThrottled atomic.Int64
}

func (w *throttleWatch) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out, err := w.KinesisAPI.PutRecords(ctx, in, optFns...)
	if err != nil || len(out.Records) != len(in.Records) {
		return out, err
	}
	n := 0
	for i, e := range out.Records {
		if e.ErrorCode == nil || *e.ErrorCode != throttleCode {
			continue
		}
		n++
		subs, _ := aggregation.Deaggregate(*in.Records[i].PartitionKey, in.Records[i].Data)
		w.userRecords.Add(int64(len(subs)))
	}
	w.entries.Add(int64(n))
	if n > 0 && n == len(in.Records) && w.allThrottled.Add(1) >= w.thawAfter {
		w.clock.thaw()
	}
	return out, err
}

// TestThrottled runs against a server that enforces the shard write limits
// while the producer's own limiter is set well above them, so that Kinesis
// throttles and the producer retries. Every record must still be delivered
// exactly once, where its result says, and (unless RelaxedOrdering is set)
// in per-key order, and every throttled record must have been sent again.
//
// The throttling does not depend on how fast the machine is: the server's
// clock stands still (throttleClock) until the server has answered three
// calls with every entry throttled, so each shard takes only its first
// second's worth. Every run puts more than that to one shard at least (the
// plain run 4,000 records, the aggregated ones 16,000 records or 4.8 MB,
// over two shards: one of them gets at least half), so a shard runs dry,
// and from then on every call carrying only records of dry shards is
// throttled whole, as every call is at the latest once the other shard has
// stored everything it was sent. The server
// answers such a call like any other, with every entry failing with
// ProvisionedThroughputExceededException, and the producer retries those
// entries as throttled records, after a back-off that grows from one such
// call to the next. Before that, calls carry throttled entries next to
// stored ones, of other shards and (with aggregates of different sizes
// against the byte limit) of the same shard: the partial failures that
// could reorder a key. After the thaw the run ends against the real
// limits.
func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		relaxed   bool
		agg       bool
		perWriter int
	}{
		{"aggregated", false, true, 4000},
		{"plain", false, false, 1000},
		{"relaxed/aggregated", true, true, 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &throttleClock{frozenAt: time.Now()}
			srv := startServer(t, server.Config{EnforceThroughput: true, Now: clock.Now, Logger: zap.NewNop()})
			c := srv.Client()
			createStream(t, c, "hot", 2)
			watch := &throttleWatch{KinesisAPI: c, clock: clock, thawAfter: 3}
			const writers, size = 4, 300
			perWriter := tc.perWriter
			tr := newTracker(writers, perWriter)
			m := newCountingMetrics()
			cfg := Config{
				StreamName: "hot", RateLimit: 400, RelaxedOrdering: tc.relaxed, DisableAggregation: !tc.agg,
				AggregationMaxBytes: 256 << 10, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				// Long enough never to matter: nothing here may expire,
				// however slowly the machine runs.
				RecordTTL: 10 * time.Minute,
				OnResult:  tr.onResult, Metrics: m, Logger: testLogger(t),
			}
			p := newTestProducer(t, watch, cfg)
			key := func(w, i int) string { return fmt.Sprintf("k%d", (w+i)%20) }
			start := time.Now()
			putAll(t, p, writers, perWriter, size, key)
			flush(t, p, 10*time.Minute)
			retried, failed := m.snapshot()
			t.Logf("%v: retries %v, failures %v; server throttled %d Kinesis records (%d user records), %d calls whole",
				time.Since(start), retried, failed, watch.entries.Load(), watch.userRecords.Load(), watch.allThrottled.Load())
			if watch.allThrottled.Load() < watch.thawAfter {
				t.Fatalf("%d calls were throttled whole, yet every record was delivered: the server's clock did not stand still", watch.allThrottled.Load())
			}
			// Each throttled Kinesis record is counted as a throttle retry
			// (not as a transport error, nor as a failure) ...
			if got, want := retried[throttleCode], int(watch.entries.Load()); got != want {
				t.Errorf("the producer counted %d throttle retries; the server throttled %d Kinesis records", got, want)
			}
			if len(failed) > 0 {
				t.Errorf("records failed: %v", failed)
			}
			// ... and each user record in one was sent again: beyond one
			// attempt per record, the results count one per throttled user
			// record (plus, if some call failed as a whole, its records).
			extra, throttled := tr.attempts.Load()-int64(writers*perWriter), watch.userRecords.Load()
			if (len(retried) == 1 && extra != throttled) || extra < throttled {
				t.Errorf("results count %d attempts beyond the first; %d user records were throttled (retries %v)", extra, throttled, retried)
			}
			got := readAll(t, c, "hot")
			checkDelivered(t, got, writers, perWriter, size, key)
			tr.check(t, got)
			n, first := checkKeyOrder(got)
			if !tc.relaxed && n > 0 {
				t.Errorf("%d records out of per-key order; first: %s", n, first)
			} else if n > 0 {
				t.Logf("%d records out of per-key order (allowed with RelaxedOrdering); first: %s", n, first)
			}
		})
	}
}

// TestServerRestart stops the server in the middle of a run and starts a
// new one on the same address and data directory: every record must still
// be stored within RecordTTL, and read back at least once (a call cut by
// the shutdown may have been stored and is then stored again).
//
// The run is staged, not timed: the writers put the first half of their
// records, the server stops once a quarter of all records have results,
// the writers put the second half while it is down, and it starts again
// once a call has failed against the closed port.
func TestServerRestart(t *testing.T) {
	rs := servertest.StartRestartable(t, server.Config{Logger: zap.NewNop()})
	c := rs.Client()
	createStream(t, c, "rs", 4)
	const writers, perWriter, size = 4, 5000, 100
	tr := newTracker(writers, perWriter)
	m := newCountingMetrics()
	p := newTestProducer(t, c, Config{
		StreamName: "rs", DisableRateLimit: true, OnResult: tr.onResult, Metrics: m,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, RequestTimeout: 2 * time.Second,
		// Long enough never to matter, however slowly the machine runs.
		RecordTTL: 10 * time.Minute,
		Logger:    zap.NewNop(),
	})
	key := func(w, i int) string { return fmt.Sprintf("k%d", (w*31+i)%100) }
	var wg sync.WaitGroup
	defer wg.Wait()
	down := make(chan struct{}) // closed once the server is stopped
	resume := sync.OnceFunc(func() { close(down) })
	defer resume() // before wg.Wait, if the test ends early
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if i == perWriter/2 {
					<-down
				}
				if _, err := p.Put(context.Background(), key(w, i), payload(w, i, size)); err != nil {
					t.Errorf("put: %v", err)
					return
				}
			}
		})
	}
	eventually(t, 5*time.Minute, func() error {
		if tr.total.Load() < writers*perWriter/4 {
			return errors.New("waiting for a quarter of the results")
		}
		return nil
	})
	rs.Stop()
	resume()
	eventually(t, 5*time.Minute, func() error {
		if m.callErrs.Load() == 0 {
			return errors.New("waiting for a call to fail against the closed port")
		}
		return nil
	})
	rs.Start()
	wg.Wait()
	flush(t, p, 10*time.Minute)
	retried, failed := m.snapshot()
	t.Logf("retries %v, failures %v, call errors %d", retried, failed, m.callErrs.Load())
	if m.callErrs.Load() == 0 {
		t.Errorf("no call failed: the restart did not interrupt anything")
	}
	got := readAll(t, c, "rs")
	// Duplicates are allowed (a call cut by the shutdown may have been
	// stored), losses are not.
	seen := map[[2]int]int{}
	for _, r := range got.Records {
		w, i, ok := parsePayload(r.Data)
		if ok {
			seen[[2]int{w, i}]++
		}
	}
	dups := 0
	for w := range writers {
		for i := range perWriter {
			switch n := seen[[2]int{w, i}]; {
			case n == 0:
				t.Fatalf("record w%d i%d lost", w, i)
			case n > 1:
				dups++
			}
		}
	}
	t.Logf("%d duplicates", dups)
	tr.mu.Lock()
	for _, err := range tr.errs {
		t.Error(err)
	}
	for w := range writers {
		for i := range perWriter {
			if tr.count[w][i] != 1 {
				t.Fatalf("record w%d i%d got %d results", w, i, tr.count[w][i])
			}
		}
	}
	tr.mu.Unlock()
}

// TestOrderingPartialFailures fails every 7th entry of every call while
// storing the others, the partial failure that lets a later entry of a
// shard be stored before an earlier one. By default per-key order must
// hold; with RelaxedOrdering it does not (which shows the test can see it).
//
// The fake holds the first calls until every record is put, so that the
// later calls are full (a call's worth of records is queued) however slowly
// the writers run: with RelaxedOrdering a full call repeats keys, and some
// key of it fails before a later record of the key is stored.
func TestOrderingPartialFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		relaxed bool
	}{
		{"aggregated", Config{AggregationMaxBytes: 4 << 10}, false},
		{"plain", Config{DisableAggregation: true}, false},
		{"relaxed/aggregated", Config{AggregationMaxBytes: 4 << 10, RelaxedOrdering: true}, true},
		{"relaxed/plain", Config{DisableAggregation: true, RelaxedOrdering: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKinesis(2)
			flaky := f.flaky(7)
			allPut := make(chan struct{})
			release := sync.OnceFunc(func() { close(allPut) })
			defer release() // if the test ends early
			f.setHook(func(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
				select {
				case <-allPut:
				case <-ctx.Done(): // RequestTimeout: retried
					return nil, ctx.Err(), true
				}
				return flaky(ctx, in)
			})
			cfg := tc.cfg
			cfg.StreamName = "s"
			cfg.DisableRateLimit = true
			cfg.MinBackoff = time.Millisecond
			cfg.MaxBackoff = 5 * time.Millisecond
			p := newTestProducer(t, f, cfg)
			const writers, perWriter = 4, 3000
			key := func(w, i int) string { return fmt.Sprintf("k%d", (w+i)%40) }
			putAll(t, p, writers, perWriter, 40, key)
			release()
			flush(t, p, 10*time.Minute)
			stored := readResult{Records: f.storedUserRecords()}
			checkDelivered(t, stored, writers, perWriter, 40, key)
			n, first := checkKeyOrder(stored)
			switch {
			case !tc.relaxed && n > 0:
				t.Errorf("%d records out of per-key order; first: %s", n, first)
			case tc.relaxed && n == 0:
				t.Errorf("RelaxedOrdering kept every key in order: the test does not exercise reordering")
			default:
				t.Logf("%d records out of per-key order", n)
			}
		})
	}
}
