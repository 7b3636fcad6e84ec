package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

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
	flush(t, p, 5*time.Minute)
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

// TestThrottled runs against a server that enforces the shard write limits
// while the producer's own limiter is set well above them, so that Kinesis
// throttles and the producer retries. Every record must still be delivered
// exactly once, and (unless RelaxedOrdering is set) in per-key order.
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
			srv := startServer(t, server.Config{EnforceThroughput: true, Logger: zap.NewNop()})
			c := srv.Client()
			createStream(t, c, "hot", 2)
			const writers, size = 4, 300
			perWriter := tc.perWriter
			tr := newTracker(writers, perWriter)
			m := newCountingMetrics()
			cfg := Config{
				StreamName: "hot", RateLimit: 400, RelaxedOrdering: tc.relaxed, DisableAggregation: !tc.agg,
				AggregationMaxBytes: 256 << 10, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				OnResult: tr.onResult, Metrics: m, Logger: testLogger(t),
			}
			p := newTestProducer(t, c, cfg)
			key := func(w, i int) string { return fmt.Sprintf("k%d", (w+i)%20) }
			start := time.Now()
			putAll(t, p, writers, perWriter, size, key)
			flush(t, p, time.Minute)
			retried, failed := m.snapshot()
			t.Logf("%v: retries %v, failures %v", time.Since(start), retried, failed)
			// A call whose every entry is throttled currently makes the server
			// panic and drop the connection (server bug, reported), which the
			// producer retries as a transport error.
			if retried["ProvisionedThroughputExceededException"]+retried["Transport"] == 0 {
				t.Errorf("no throttling happened: the test does not test retries")
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
		Logger: zap.NewNop(),
	})
	key := func(w, i int) string { return fmt.Sprintf("k%d", (w*31+i)%100) }
	var wg sync.WaitGroup
	var put atomic.Int64
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := p.Put(context.Background(), key(w, i), payload(w, i, size)); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				put.Add(1)
				if i%100 == 0 {
					time.Sleep(2 * time.Millisecond) // spread the puts over the restart
				}
			}
		})
	}
	eventually(t, 30*time.Second, func() error {
		if tr.total.Load() < writers*perWriter/4 {
			return errors.New("waiting for a quarter of the results")
		}
		return nil
	})
	rs.Stop()
	time.Sleep(300 * time.Millisecond) // let calls fail against the closed port
	rs.Start()
	wg.Wait()
	flush(t, p, 30*time.Second)
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
			f.setHook(f.flaky(7))
			cfg := tc.cfg
			cfg.StreamName = "s"
			cfg.DisableRateLimit = true
			cfg.MinBackoff = time.Millisecond
			cfg.MaxBackoff = 5 * time.Millisecond
			p := newTestProducer(t, f, cfg)
			const writers, perWriter = 4, 3000
			key := func(w, i int) string { return fmt.Sprintf("k%d", (w+i)%40) }
			putAll(t, p, writers, perWriter, 40, key)
			flush(t, p, time.Minute)
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
