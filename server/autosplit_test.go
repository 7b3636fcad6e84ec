package server_test

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/server"
)

// keysBelow returns n partition keys whose hash keys are below limit.
func keysBelow(limit *big.Int, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprint("key-", i)
		if hashkey.FromPartitionKey(k).Big().Cmp(limit) < 0 {
			out = append(out, k)
		}
	}
	return out
}

// readWhole reads a shard, open or closed, from TRIM_HORIZON to its end (a
// closed shard) or to a call that returns nothing (an open shard).
func (e *env) readWhole(name, shard string) []types.Record {
	e.t.Helper()
	it := e.iterator(name, shard, types.ShardIteratorTypeTrimHorizon, nil, nil)
	var all []types.Record
	for range 100000 {
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		noErr(e.t, err, "GetRecords "+shard)
		all = append(all, out.Records...)
		if out.NextShardIterator == nil || len(out.Records) == 0 {
			return all
		}
		it = *out.NextShardIterator
	}
	e.t.Fatalf("readWhole %s: no end in sight", shard)
	return nil
}

// hotWriter writes batches of small records with the given keys to a stream
// until stop closes, and records what was acknowledged: record "key:n" is
// the n-th record of its key, and the n of a key grow by one with every
// acknowledged record.
type hotWriter struct {
	e      *env
	stream string
	keys   []string

	mu    sync.Mutex
	acked map[string]int // key -> records of it acknowledged
}

// run puts a batch of records at once and then every interval. In a
// synctest bubble the clock moves only while every goroutine waits, so the
// load is exactly batch records per interval, however slow the machine.
func (w *hotWriter) run(stop <-chan struct{}, batch int, interval time.Duration) {
	w.acked = map[string]int{}
	next := map[string]int{}
	for {
		var recs []types.PutRecordsRequestEntry
		var keys []string
		for i := range batch {
			k := w.keys[i%len(w.keys)]
			recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: fmt.Appendf(nil, "%s:%d", k, next[k])})
			keys = append(keys, k)
			next[k]++
		}
		out, err := w.e.c.PutRecords(w.e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String(w.stream), Records: recs})
		if err != nil {
			w.e.t.Errorf("PutRecords %s: %v", w.stream, err)
			return
		}
		w.mu.Lock()
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				// Keep n dense: a failed record would leave a gap that the
				// order check below cannot tell from a lost record.
				w.e.t.Errorf("PutRecords %s entry %d: %s", w.stream, i, *r.ErrorCode)
				continue
			}
			w.acked[keys[i]]++
		}
		w.mu.Unlock()
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
	}
}

// checkExactlyOnceInOrder reads every shard of the stream, parents before
// children, and checks that each acknowledged record is read exactly once
// and that the records of each key come in the order they were written.
func (w *hotWriter) checkExactlyOnceInOrder(t *testing.T) {
	t.Helper()
	next := map[string]int{}
	total := 0
	// Shard ids grow with creation, so reading in id order reads every
	// parent before its children.
	for _, sh := range w.e.shards(w.stream) {
		for _, r := range w.e.readWhole(w.stream, *sh.ShardId) {
			k, n, ok := strings.Cut(string(r.Data), ":")
			i, err := strconv.Atoi(n)
			if !ok || err != nil || k != *r.PartitionKey {
				t.Fatalf("record %q with key %s", r.Data, *r.PartitionKey)
			}
			if i != next[k] {
				t.Fatalf("key %s: read record %d in %s, want %d (lost, duplicated or out of order)", k, i, *sh.ShardId, next[k])
			}
			next[k]++
			total++
		}
	}
	for _, k := range w.keys {
		if next[k] != w.acked[k] {
			t.Fatalf("key %s: read %d records, %d acknowledged", k, next[k], w.acked[k])
		}
	}
	if total == 0 {
		t.Fatal("nothing was written")
	}
}

// TestOnDemandAutoSplit loads one shard of an ON_DEMAND stream above its
// write capacity and checks that the server splits it at the median of the
// hash keys written, without losing, duplicating or reordering a record;
// the same load on a PROVISIONED stream, on a stream switched from ON_DEMAND
// to PROVISIONED, and a load below capacity on an ON_DEMAND stream split
// nothing.
//
// It runs in a synctest bubble (newBubbleEnv), where the auto-splitter's
// ticker and clock are the bubble's: each measurement bucket holds exactly
// the load the writers put in it, and the split comes when the window is
// over, not when a loaded machine gets round to it.
func TestOnDemandAutoSplit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testOnDemandAutoSplit)
}

func testOnDemandAutoSplit(t *testing.T) {
	const window = 2 * time.Second
	const bucket = window / 10 // the auto-splitter's measurement bucket
	// No fsync: durability is not under test, and the test runs faster.
	e := newBubbleEnv(t, server.Config{AutoSplitWindow: window, AutoSplitCooldown: time.Minute, Fsync: server.FsyncNever})
	// The bubble's clock has not moved since server.New started the
	// auto-splitter: its buckets end at start + k*bucket.
	start := time.Now()
	e.createOnDemand("hot")
	e.createStream("prov", 4)
	e.createOnDemand("switched")
	e.createOnDemand("cool")
	if n := len(e.shards("hot")); n != 4 {
		t.Fatalf("ON_DEMAND stream starts with %d shards, want 4", n)
	}
	_, err := e.c.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("switched")), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
	noErr(t, err, "UpdateStreamMode")

	// Keys in the lowest eighth of shard 0's range [0, 2^126): the median
	// of their hash keys is below 2^123, far from the midpoint 2^125.
	low := new(big.Int).Lsh(big.NewInt(1), 123)
	keys := keysBelow(low, 16)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writers []*hotWriter
	// Every writer puts a batch every half bucket, so that every bucket
	// holds at least one of its batches whole; a batch due at a bucket's end
	// runs concurrently with the auto-splitter's round (and the split). A
	// threshold of 1.0 makes a bucket hot above 200 records (1,000
	// records/s).
	for _, name := range []string{"hot", "prov", "switched", "cool"} {
		batch, n := 150, 2 // two writers that overlap their calls, each with its own keys: 3,000 records/s
		if name == "cool" {
			batch, n = 20, 1 // 200 records/s, at most 60 records in a bucket
		}
		for i := range n {
			w := &hotWriter{e: e, stream: name, keys: keys[i*len(keys)/n : (i+1)*len(keys)/n]}
			writers = append(writers, w)
			wg.Go(func() { w.run(stop, batch, bucket/2) })
		}
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// The checks fall between the writers' batches and the buckets' ends.
	time.Sleep(time.Until(start.Add(window - bucket/4)))
	if n := len(e.shards("hot")); n != 4 {
		t.Fatalf("%d shards before the window is over, want 4", n)
	}
	time.Sleep(time.Until(start.Add(window + bucket/4)))
	if n := len(e.shards("hot")); n != 6 {
		t.Fatalf("%d shards once the window is over, want 6: the hot shard was not split", n)
	}
	// Keep writing for a moment, into the children: the batches due at the
	// split's instant raced it.
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	shs := e.shards("hot")
	if len(shs) != 6 {
		t.Fatalf("after the split: %d shards, want 6 (one split, cooldown a minute)", len(shs))
	}
	if shs[0].SequenceNumberRange.EndingSequenceNumber == nil {
		t.Fatal("the hot shard is still open")
	}
	for _, sh := range shs[1:4] {
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			t.Fatalf("cold shard %s was closed", *sh.ShardId)
		}
	}
	a, b := shs[4], shs[5]
	if aws.ToString(a.ParentShardId) != shardID(0) || aws.ToString(b.ParentShardId) != shardID(0) {
		t.Fatalf("children: %+v %+v", a, b)
	}
	at := bigOf(*b.HashKeyRange.StartingHashKey)
	if *a.HashKeyRange.StartingHashKey != "0" || *b.HashKeyRange.EndingHashKey != *shs[0].HashKeyRange.EndingHashKey ||
		new(big.Int).Add(bigOf(*a.HashKeyRange.EndingHashKey), big.NewInt(1)).Cmp(at) != 0 {
		t.Fatalf("children do not tile the parent: %+v %+v", a.HashKeyRange, b.HashKeyRange)
	}
	if at.Sign() <= 0 || at.Cmp(low) >= 0 {
		t.Fatalf("split at %s: want the median of the written keys, below %s", at, low)
	}
	// Both children got records: the split point is among the keys.
	for _, c := range []string{*a.ShardId, *b.ShardId} {
		if len(e.readWhole("hot", c)) == 0 {
			t.Errorf("child %s got no record", c)
		}
	}
	for _, name := range []string{"prov", "switched", "cool"} {
		if n := len(e.shards(name)); n != 4 {
			t.Errorf("stream %s has %d shards, want 4", name, n)
		}
	}
	byStream := map[string]*hotWriter{}
	for _, w := range writers {
		if all := byStream[w.stream]; all != nil {
			all.keys = append(all.keys, w.keys...)
			for k, n := range w.acked {
				all.acked[k] = n
			}
			continue
		}
		byStream[w.stream] = &hotWriter{e: e, stream: w.stream, keys: slices.Clone(w.keys), acked: maps.Clone(w.acked)}
	}
	for _, name := range []string{"hot", "prov", "switched", "cool"} {
		byStream[name].checkExactlyOnceInOrder(t)
	}
}

// TestOnDemandAutoSplitCap checks that automatic splits stop at
// OnDemandMaxShards. In a synctest bubble, as TestOnDemandAutoSplit.
func TestOnDemandAutoSplitCap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testOnDemandAutoSplitCap)
}

func testOnDemandAutoSplitCap(t *testing.T) {
	const window = time.Second
	const bucket = window / 10
	e := newBubbleEnv(t, server.Config{AutoSplitWindow: window, AutoSplitCooldown: 10 * time.Millisecond, OnDemandMaxShards: 5, Fsync: server.FsyncNever})
	start := time.Now() // buckets end at start + k*bucket, as in testOnDemandAutoSplit
	e.createOnDemand("s")
	// Keys spread over shards 0 and 1 (16 each): both become hot, only one
	// may split. 300 records every half bucket: 150 a shard, above the 100
	// of a hot bucket.
	keys := keysBelow(new(big.Int).Lsh(big.NewInt(1), 127), 32)
	w := &hotWriter{e: e, stream: "s", keys: keys}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.run(stop, 300, bucket/2) })
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	time.Sleep(time.Until(start.Add(window + bucket/4)))
	if open := openShards(e.shards("s")); len(open) != 5 {
		t.Fatalf("%d open shards once the window is over, want 5 (one split)", len(open))
	}
	// Two more windows of load, in which the other hot shard and then the
	// children are refused a split at every bucket's end: still no more
	// than 5 open shards.
	time.Sleep(2 * window)
	close(stop)
	wg.Wait()
	if open := openShards(e.shards("s")); len(open) != 5 {
		t.Fatalf("%d open shards, want the cap of 5", len(open))
	}
	w.checkExactlyOnceInOrder(t)
}
