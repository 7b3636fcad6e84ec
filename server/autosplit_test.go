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
// as fast as it can until stop closes, and records what was acknowledged:
// record "key:n" is the n-th record of its key, and the n of a key grow by
// one with every acknowledged record.
type hotWriter struct {
	e      *env
	stream string
	keys   []string

	mu    sync.Mutex
	acked map[string]int // key -> records of it acknowledged
}

func (w *hotWriter) run(stop <-chan struct{}, paceEvery time.Duration) {
	w.acked = map[string]int{}
	next := map[string]int{}
	batch := 500
	if paceEvery > 0 {
		batch = 20
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
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
		if paceEvery > 0 {
			select {
			case <-stop:
				return
			case <-time.After(paceEvery):
			}
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
func TestOnDemandAutoSplit(t *testing.T) {
	t.Parallel()
	// No fsync: a slow sync on a loaded machine would leave a measurement
	// bucket cold and restart the window; durability is not under test.
	e := newEnv(t, server.Config{AutoSplitWindow: 2 * time.Second, AutoSplitCooldown: time.Minute, Fsync: server.FsyncNever})
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
	for _, name := range []string{"hot", "prov", "switched", "cool"} {
		pace, n := time.Duration(0), 2 // two writers that overlap their calls, each with its own keys
		if name == "cool" {
			pace, n = 100*time.Millisecond, 1 // at most 200 records/s
		}
		for i := range n {
			w := &hotWriter{e: e, stream: name, keys: keys[i*len(keys)/n : (i+1)*len(keys)/n]}
			writers = append(writers, w)
			wg.Go(func() { w.run(stop, pace) })
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

	deadline := time.Now().Add(90 * time.Second)
	for len(e.shards("hot")) == 4 {
		if time.Now().After(deadline) {
			t.Fatal("the hot shard was not split")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Keep writing across the split for a moment, into the children.
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
// OnDemandMaxShards.
func TestOnDemandAutoSplitCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{AutoSplitWindow: time.Second, AutoSplitCooldown: 10 * time.Millisecond, OnDemandMaxShards: 5, Fsync: server.FsyncNever})
	e.createOnDemand("s")
	// Keys spread over shards 0 and 1: both become hot, only one may split.
	keys := keysBelow(new(big.Int).Lsh(big.NewInt(1), 127), 32)
	w := &hotWriter{e: e, stream: "s", keys: keys}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.run(stop, 0) })
	deadline := time.Now().Add(90 * time.Second)
	for len(e.shards("s")) == 4 {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatal("no shard was split")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Several more windows of load: still no more than 5 open shards.
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if open := openShards(e.shards("s")); len(open) != 5 {
		t.Fatalf("%d open shards, want the cap of 5", len(open))
	}
	w.checkExactlyOnceInOrder(t)
}
