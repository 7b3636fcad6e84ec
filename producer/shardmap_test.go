package producer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/server"
)

func bigKey(b *big.Int) hashkey.Key {
	var buf [16]byte
	b.FillBytes(buf[:])
	return hashkey.FromBytes(buf)
}

// evenShards returns n open shards with the ranges CreateStream gives and
// ids shardId-<first+i>.
func evenShards(n, first int) []shardInfo {
	starts, ends := hashkey.SplitEvenly(n)
	out := make([]shardInfo, n)
	for i := range n {
		out[i] = shardInfo{id: fmt.Sprintf("shardId-%012d", first+i), start: starts[i], end: ends[i], open: true}
	}
	return out
}

func TestCheckOpen(t *testing.T) {
	four := evenShards(4, 0)
	if _, err := checkOpen(four); err != nil {
		t.Fatalf("even split: %v", err)
	}
	closed := append([]shardInfo{{id: "old", start: hashkey.Key{}, end: hashkey.Max}}, four...)
	if got, err := checkOpen(closed); err != nil || len(got) != 4 {
		t.Fatalf("with a closed parent: %v %v", got, err)
	}
	gap := []shardInfo{four[0], four[2], four[3]}
	overlap := append([]shardInfo{{id: "x", start: four[1].start, end: four[2].end, open: true}}, four...)
	short := four[:3]
	for name, infos := range map[string][]shardInfo{"gap": gap, "overlap": overlap, "short": short, "empty": nil} {
		if _, err := checkOpen(infos); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLookup(t *testing.T) {
	infos := evenShards(5, 0)
	m := &shardMap{}
	pls := make([]*pipeline, len(infos))
	for i := range infos {
		pls[i] = &pipeline{shard: &infos[i]}
		m.routes = append(m.routes, route{end: infos[i].end, pl: pls[i]})
	}
	for i, s := range infos {
		for _, k := range []hashkey.Key{s.start, s.end} {
			if got := m.lookup(k); got != pls[i] {
				t.Errorf("lookup(%s) = %s, want %s", k, got.shard.id, s.id)
			}
		}
	}
	for i := range 1000 {
		k := hashkey.FromPartitionKey(fmt.Sprint(i))
		got := m.lookup(k)
		if !got.shard.contains(k) {
			t.Fatalf("lookup(%s) = %s, which does not contain it", k, got.shard.id)
		}
	}
}

// runStale puts records through a producer that starts with the given
// stale shard map against a 4-shard stream, then checks that each record
// got exactly one successful result and is read back exactly once after
// the KCL's filter, where its result says and in per-key order.
func runStale(t *testing.T, stale []shardInfo, keys []string, cfg Config) (*countingMetrics, readResult) {
	t.Helper()
	return runStaleRead(t, stale, keys, cfg, true)
}

// runStaleRead is runStale reading with the KCL's filter (kcl) or with the
// consumer package's per-record filter.
func runStaleRead(t *testing.T, stale []shardInfo, keys []string, cfg Config, kcl bool) (*countingMetrics, readResult) {
	t.Helper()
	srv := startServer(t, server.Config{Logger: zap.NewNop()})
	c := srv.Client()
	createStream(t, c, "stale", 4)
	const writers, size = 4, 60
	perWriter := 2500
	tr := newTracker(writers, perWriter)
	m := newCountingMetrics()
	cfg.StreamName = "stale"
	cfg.OnResult = tr.onResult
	cfg.Metrics = m
	cfg.Logger = testLogger(t)
	p := newTestProducer(t, c, cfg, testHooks{initialMap: stale})
	key := func(w, i int) string { return keys[(w*13+i)%len(keys)] }
	putAll(t, p, writers, perWriter, size, key)
	flush(t, p, time.Minute)
	got := readFiltered(t, c, "stale", kcl)
	checkDelivered(t, got, writers, perWriter, size, key)
	tr.check(t, got)
	if n, first := checkKeyOrder(got); n > 0 {
		t.Errorf("%d records out of per-key order; first: %s", n, first)
	}
	retried, failed := m.snapshot()
	t.Logf("retries %v, failures %v, map refreshes %d (changes %d); KCL drops %d user records of wrong-shard aggregates (%d of them inside the range)",
		retried, failed, m.refreshes.Load(), m.mapChanges.Load(), got.Dropped, got.DroppedInRange)
	if m.refreshes.Load() == 0 {
		t.Errorf("the stale map was never refreshed")
	}
	return m, got
}

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	return keys
}

// keysIn returns n keys whose hash lies in s.
func keysIn(s shardInfo, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("key-%d", i)
		if s.contains(hashkey.FromPartitionKey(k)) {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestStaleMap gives the producer a shard map that does not match the
// stream: aggregates built for a predicted shard land on shards that own
// only some of their user records, and the KCL would drop them whole. Every
// user record must still be delivered exactly once.
func TestStaleMap(t *testing.T) {
	real := evenShards(4, 0)
	t.Run("one-parent-shard", func(t *testing.T) {
		// As if the producer last saw the stream with one shard that has
		// since been split: every aggregate lands somewhere unexpected.
		stale := []shardInfo{{id: "shardId-000000000099", start: hashkey.Key{}, end: hashkey.Max, open: true}}
		m, got := runStaleRead(t, stale, manyKeys(500), Config{AggregationMaxBytes: 16 << 10}, false)
		if m.retries("WrongShard") == 0 || got.Dropped == 0 {
			t.Errorf("no aggregate was sent again: the test does not test wrong-shard handling")
		}
	})
	t.Run("shifted-ranges", func(t *testing.T) {
		// Four shards whose boundaries sit 1/8 of the key space off the
		// real ones (ids the stream never had).
		stale := make([]shardInfo, 4)
		eighth := new(big.Int).Lsh(big.NewInt(1), 125)
		for i := range 4 {
			start := new(big.Int).Add(real[i].start.Big(), eighth)
			end := new(big.Int).Add(real[i].end.Big(), eighth)
			if i == 0 {
				start = big.NewInt(0)
			}
			if i == 3 {
				end = hashkey.Max.Big()
			}
			stale[i] = shardInfo{id: fmt.Sprintf("shardId-%012d", 40+i), start: bigKey(start), end: bigKey(end), open: true}
		}
		m, _ := runStaleRead(t, stale, manyKeys(500), Config{AggregationMaxBytes: 16 << 10}, false)
		if m.retries("WrongShard") == 0 {
			t.Errorf("no aggregate was sent again")
		}
	})
	t.Run("aggregates-owned-by-receiving-shard", func(t *testing.T) {
		// Shard 0 is right; the other three are seen as one parent. All
		// keys belong to real shard 2, so the aggregates predicted for the
		// parent land on shard 2 and are wholly owned by it: they are done,
		// with shard 2's sequence numbers, and nothing is sent again.
		stale := []shardInfo{real[0], {id: "shardId-000000000077", start: real[1].start, end: hashkey.Max, open: true}}
		m, got := runStale(t, stale, keysIn(real[2], 50), Config{})
		if m.retries("WrongShard") != 0 || got.Dropped != 0 {
			t.Errorf("aggregates owned by their receiving shard were sent again (%d) or dropped (%d)", m.retries("WrongShard"), got.Dropped)
		}
	})
	t.Run("resend-whole/kcl-reader", func(t *testing.T) {
		// With ResendWholeAggregate, a reader that drops a wrong-shard
		// aggregate whole (the Java KCL) gets every record exactly once.
		stale := []shardInfo{{id: "shardId-000000000099", start: hashkey.Key{}, end: hashkey.Max, open: true}}
		m, got := runStale(t, stale, manyKeys(500), Config{AggregationMaxBytes: 16 << 10, ResendWholeAggregate: true})
		if m.retries("WrongShard") == 0 || got.Dropped == 0 {
			t.Errorf("no aggregate was sent again: the test does not test ResendWholeAggregate")
		}
	})
	t.Run("plain", func(t *testing.T) {
		// Without aggregation a record is always where Kinesis put it.
		stale := []shardInfo{{id: "shardId-000000000099", start: hashkey.Key{}, end: hashkey.Max, open: true}}
		m, got := runStale(t, stale, manyKeys(200), Config{DisableAggregation: true})
		if m.retries("WrongShard") != 0 || got.Dropped != 0 {
			t.Errorf("plain records were sent again")
		}
	})
}

// TestStreamRecreated deletes the stream while the producer writes to it
// and creates it again with another shard count: the records put meanwhile
// wait (the stream is not found, so sends stop until the map is fresh) and
// are all delivered exactly once to the new stream, within RecordTTL. The
// run is staged, not timed: half the records are put while the stream is
// missing, it is created again once the producer has seen it missing, and
// the other half is put after that.
func TestStreamRecreated(t *testing.T) {
	srv := startServer(t, server.Config{Logger: zap.NewNop()})
	c := srv.Client()
	createStream(t, c, "re", 2)
	const writers, perWriter, size = 2, 3000, 80
	tr := newTracker(writers, perWriter)
	m := newCountingMetrics()
	p := newTestProducer(t, c, Config{
		StreamName: "re", OnResult: tr.onResult, Metrics: m, Logger: testLogger(t),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, DisableRateLimit: true,
		// Long enough never to matter, however slowly the machine runs.
		RecordTTL: 10 * time.Minute,
	})
	key := func(w, i int) string { return fmt.Sprintf("k%d", (w*7+i)%300) }
	// Load the map and put something before the deletion.
	if _, err := p.PutSync(context.Background(), untrackedKey, []byte("deleted with the stream")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("re")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	back := make(chan struct{}) // closed once the stream exists again
	resume := sync.OnceFunc(func() { close(back) })
	defer resume() // before wg.Wait, if the test ends early
	wg.Go(func() {
		for w := range writers {
			if w == writers/2 {
				<-back
			}
			for i := range perWriter {
				if _, err := p.Put(ctx, key(w, i), payload(w, i, size)); err != nil {
					t.Errorf("put: %v", err)
					return
				}
			}
		}
	})
	eventually(t, 5*time.Minute, func() error {
		if m.retries("ResourceNotFoundException") == 0 {
			return errors.New("the producer has not seen the stream missing yet")
		}
		return nil
	})
	createStream(t, c, "re", 3)
	resume()
	wg.Wait()
	flush(t, p, 10*time.Minute)
	got := readFiltered(t, c, "re", false) // the consumer package's per-record filter: see Config.ResendWholeAggregate
	checkDelivered(t, got, writers, perWriter, size, key)
	tr.check(t, got)
	if n, first := checkKeyOrder(got); n > 0 {
		t.Errorf("%d records out of per-key order; first: %s", n, first)
	}
	retried, failed := m.snapshot()
	t.Logf("retries %v, failures %v, map changes %d", retried, failed, m.mapChanges.Load())
}

// TestPeriodicRefresh re-creates the stream with another shard count while
// the producer is idle: the periodic refresh picks the new shards up, and
// later records are predicted right (no record lands on an unexpected
// shard).
func TestPeriodicRefresh(t *testing.T) {
	srv := startServer(t, server.Config{Logger: zap.NewNop()})
	c := srv.Client()
	createStream(t, c, "per", 2)
	m := newCountingMetrics()
	p := newTestProducer(t, c, Config{StreamName: "per", ShardMapRefreshInterval: 50 * time.Millisecond, Metrics: m, Logger: testLogger(t)})
	ctx := context.Background()
	if _, err := p.PutSync(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	changes := m.mapChanges.Load()
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("per")}); err != nil {
		t.Fatal(err)
	}
	createStream(t, c, "per", 5)
	eventually(t, 5*time.Minute, func() error {
		if m.mapChanges.Load() == changes {
			return errors.New("map not refreshed yet")
		}
		return nil
	})
	var pend []*Pending
	for i := range 200 {
		pd, err := p.Put(ctx, fmt.Sprint("key-", i), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		pend = append(pend, pd)
	}
	flush(t, p, 10*time.Second)
	shards := map[string]bool{}
	for _, pd := range pend {
		res, _ := pd.Result()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		shards[res.ShardID] = true
	}
	if len(shards) != 5 {
		t.Errorf("records went to %d shards, want 5", len(shards))
	}
	if n := m.retries("WrongShard"); n != 0 {
		t.Errorf("%d wrong-shard retries after the refresh", n)
	}
}
