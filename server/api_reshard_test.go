package server_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// readToEnd reads a shard from TRIM_HORIZON until the shard ends (a closed
// shard: no NextShardIterator) or a call returns no records (an open shard).
// It returns the records and the ChildShards of the last response.
func (e *env) readToEnd(name, shard string) ([]types.Record, []types.ChildShard, bool) {
	e.t.Helper()
	it := e.iterator(name, shard, types.ShardIteratorTypeTrimHorizon, nil, nil)
	var all []types.Record
	for i := 0; i < 10000; i++ {
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(7)})
		if err != nil {
			e.t.Fatalf("GetRecords %s: %v", shard, err)
		}
		all = append(all, out.Records...)
		if out.NextShardIterator == nil {
			return all, out.ChildShards, true
		}
		if len(out.ChildShards) > 0 {
			e.t.Fatalf("ChildShards before the end of shard %s", shard)
		}
		if len(out.Records) == 0 {
			return all, nil, false
		}
		it = *out.NextShardIterator
	}
	e.t.Fatal("readToEnd: no end in sight")
	return nil, nil, false
}

func (e *env) split(name, shard, key string) error {
	_, err := e.nr.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamName: aws.String(name), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(key)})
	return err
}

func (e *env) merge(name, a, b string) error {
	_, err := e.nr.MergeShards(e.ctx, &kinesis.MergeShardsInput{StreamName: aws.String(name), ShardToMerge: aws.String(a), AdjacentShardToMerge: aws.String(b)})
	return err
}

func openShards(shs []types.Shard) []types.Shard {
	var out []types.Shard
	for _, s := range shs {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			out = append(out, s)
		}
	}
	return out
}

var half = new(big.Int).Lsh(big.NewInt(1), 127).String() // 2^127

func putExplicit(t *testing.T, e *env, name, key string, data string) *kinesis.PutRecordOutput {
	t.Helper()
	out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("pk"), ExplicitHashKey: aws.String(key), Data: []byte(data)})
	noErr(t, err, "PutRecord")
	return out
}

func TestSplitShardErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{ShardLimit: 7})
	e.createStream("s", 2)
	e.createOnDemand("od") // 4 shards: 6 open in all
	shs := e.shards("s")
	start0, end0 := *shs[0].HashKeyRange.StartingHashKey, *shs[0].HashKeyRange.EndingHashKey

	wantCode(t, e.split("s", shardID(0), "abc"), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "SplitShard", map[string]any{"StreamName": "s", "ShardToSplit": shardID(0)}), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "MergeShards", map[string]any{"StreamName": "s", "ShardToMerge": shardID(0)}), "ValidationException")
	wantErr[types.InvalidArgumentException](t, e.split("s", shardID(0), start0))
	over := new(big.Int).Add(bigOf(end0), big.NewInt(1)).String()
	wantErr[types.InvalidArgumentException](t, e.split("s", shardID(0), over))
	wantErr[types.ResourceNotFoundException](t, e.split("s", shardID(9), "5"))
	wantErr[types.ResourceNotFoundException](t, e.split("nope", shardID(0), "5"))
	// AWS documents ValidationException for resharding an ON_DEMAND stream.
	wantErr[types.ValidationException](t, e.split("od", shardID(0), "5"))
	wantErr[types.ValidationException](t, e.merge("od", shardID(0), shardID(1)))
	_, err := e.nr.UpdateShardCount(e.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("od"), TargetShardCount: aws.Int32(5), ScalingType: types.ScalingTypeUniformScaling})
	wantErr[types.ValidationException](t, err)

	// The key may equal the shard's end.
	noErr(t, e.split("s", shardID(0), end0), "SplitShard at the end key")
	// The limit of 7 open shards is reached.
	wantErr[types.LimitExceededException](t, e.split("s", shardID(1), new(big.Int).Add(bigOf(half), big.NewInt(1)).String()))
	// A closed shard cannot be split again.
	wantErr[types.InvalidArgumentException](t, e.split("s", shardID(0), "5"))
	// Merge errors.
	wantErr[types.InvalidArgumentException](t, e.merge("s", shardID(0), shardID(1)))   // 0 is closed
	wantErr[types.InvalidArgumentException](t, e.merge("s", shardID(2), shardID(1)))   // not adjacent
	wantErr[types.InvalidArgumentException](t, e.merge("s", shardID(3), shardID(3)))   // itself
	wantErr[types.ResourceNotFoundException](t, e.merge("s", shardID(3), shardID(42))) // unknown
	noErr(t, e.merge("s", shardID(1), shardID(3)), "MergeShards in reverse order")
	shs = e.shards("s")
	if len(shs) != 5 || aws.ToString(shs[4].ParentShardId) != shardID(1) || aws.ToString(shs[4].AdjacentParentShardId) != shardID(3) {
		t.Fatalf("after merge: %+v", shs)
	}
	if *shs[4].HashKeyRange.StartingHashKey != end0 {
		t.Fatalf("merged range starts at %s, want %s", *shs[4].HashKeyRange.StartingHashKey, end0)
	}
}

// In a synctest bubble (newBubbleEnv): the stream is UPDATING for exactly
// UpdateDelay, however long the calls take.
func TestSplitShardUpdating(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSplitShardUpdating)
}

func testSplitShardUpdating(t *testing.T) {
	const delay = 300 * time.Millisecond
	e := newBubbleEnv(t, server.Config{UpdateDelay: delay})
	e.createStream("s", 1)
	noErr(t, e.split("s", shardID(0), half), "SplitShard")
	if st := e.summary("s").StreamStatus; st != types.StreamStatusUpdating {
		t.Fatalf("status %s, want UPDATING", st)
	}
	wantErr[types.ResourceInUseException](t, e.split("s", shardID(1), "5"))
	time.Sleep(delay)
	synctest.Wait() // the status timer has saved the change
	if st := e.summary("s").StreamStatus; st != types.StreamStatusActive {
		t.Fatalf("status %s after UpdateDelay, want ACTIVE", st)
	}
}

func TestSplitReadParentThenChildren(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, server.Config{DataDir: dir})
	e.createStream("s", 1)
	var before []string
	for i := range 20 {
		before = append(before, *putExplicit(t, e, "s", fmt.Sprint(i), fmt.Sprint("b", i)).SequenceNumber)
	}
	noErr(t, e.split("s", shardID(0), half), "SplitShard")
	lo := putExplicit(t, e, "s", "1", "lo")
	hi := putExplicit(t, e, "s", half, "hi")
	if *lo.ShardId != shardID(1) || *hi.ShardId != shardID(2) {
		t.Fatalf("puts after split went to %s and %s", *lo.ShardId, *hi.ShardId)
	}
	check := func(e *env) {
		t.Helper()
		shs := e.shards("s")
		if len(shs) != 3 {
			t.Fatalf("%d shards, want 3", len(shs))
		}
		end := shs[0].SequenceNumberRange.EndingSequenceNumber
		if end == nil || !seqLess(before[len(before)-1], *end) {
			t.Fatalf("parent EndingSequenceNumber %v", end)
		}
		for i, sh := range shs[1:] {
			if aws.ToString(sh.ParentShardId) != shardID(0) || sh.SequenceNumberRange.EndingSequenceNumber != nil {
				t.Fatalf("child %d: %+v", i, sh)
			}
		}
		if *shs[1].HashKeyRange.EndingHashKey != new(big.Int).Sub(bigOf(half), big.NewInt(1)).String() || *shs[2].HashKeyRange.StartingHashKey != half {
			t.Fatalf("children ranges: %+v %+v", shs[1].HashKeyRange, shs[2].HashKeyRange)
		}
		recs, kids, ended := e.readToEnd("s", shardID(0))
		if !ended || len(recs) != 20 || len(kids) != 2 {
			t.Fatalf("parent: %d records, ended %v, %d children", len(recs), ended, len(kids))
		}
		for i, r := range recs {
			if *r.SequenceNumber != before[i] {
				t.Fatalf("parent record %d: %s, want %s", i, *r.SequenceNumber, before[i])
			}
		}
		if *kids[0].ShardId != shardID(1) || kids[0].ParentShards[0] != shardID(0) || *kids[1].HashKeyRange.StartingHashKey != half {
			t.Fatalf("ChildShards: %+v", kids)
		}
		// LATEST on the closed parent ends at once.
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(e.iterator("s", shardID(0), types.ShardIteratorTypeLatest, nil, nil))})
		noErr(t, err, "GetRecords LATEST on the closed parent")
		if out.NextShardIterator != nil || len(out.ChildShards) != 2 {
			t.Fatalf("LATEST on closed parent: next %v, %d children", out.NextShardIterator, len(out.ChildShards))
		}
		for _, c := range []struct {
			id   string
			data string
		}{{shardID(1), "lo"}, {shardID(2), "hi"}} {
			recs, _, ended := e.readToEnd("s", c.id)
			if ended || len(recs) != 1 || string(recs[0].Data) != c.data {
				t.Fatalf("child %s: %d records, ended %v", c.id, len(recs), ended)
			}
		}
		// ShardFilter types with a closed shard.
		for _, f := range []struct {
			typ  types.ShardFilterType
			want int
		}{{types.ShardFilterTypeAtLatest, 2}, {types.ShardFilterTypeAtTrimHorizon, 3}, {types.ShardFilterTypeFromTrimHorizon, 3}} {
			out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: f.typ}})
			noErr(t, err, "ListShards")
			if len(out.Shards) != f.want {
				t.Fatalf("ShardFilter %s: %d shards, want %d", f.typ, len(out.Shards), f.want)
			}
		}
		for _, f := range []struct {
			typ  types.ShardFilterType
			ts   time.Time
			want int
		}{
			{types.ShardFilterTypeAtTimestamp, time.Now().Add(time.Hour), 2},
			{types.ShardFilterTypeAtTimestamp, time.Now().Add(-time.Hour), 1},
			{types.ShardFilterTypeFromTimestamp, time.Now().Add(-time.Hour), 3},
			{types.ShardFilterTypeFromTimestamp, time.Now().Add(time.Hour), 2},
		} {
			out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: f.typ, Timestamp: aws.Time(f.ts)}})
			noErr(t, err, "ListShards")
			if len(out.Shards) != f.want {
				t.Fatalf("ShardFilter %s at %v: %d shards, want %d", f.typ, f.ts, len(out.Shards), f.want)
			}
		}
		d, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
		noErr(t, err, "DescribeStream")
		if len(d.StreamDescription.Shards) != 3 || d.StreamDescription.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil {
			t.Fatalf("DescribeStream shards: %+v", d.StreamDescription.Shards)
		}
	}
	check(e)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noErr(t, e.srv.Shutdown(ctx), "Shutdown")
	e2 := newEnv(t, server.Config{DataDir: dir})
	check(e2)
	// Indexes are never reused after a restart.
	noErr(t, e2.split("s", shardID(2), new(big.Int).Add(bigOf(half), big.NewInt(10)).String()), "SplitShard after restart")
	if shs := e2.shards("s"); len(shs) != 5 || *shs[4].ShardId != shardID(4) {
		t.Fatalf("after second split: %+v", shs)
	}
}

// TestPutWhileResharding puts concurrently while shards split and merge:
// every acknowledged record is read exactly once, in the shard it was
// acknowledged for, at the sequence number it was given.
func TestPutWhileResharding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 2)
	type ack struct{ shard, seq, data string }
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var recs []types.PutRecordsRequestEntry
				for i := range 20 {
					recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(w, "-", n, "-", i)), Data: []byte(fmt.Sprint(w, "-", n, "-", i))})
				}
				out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
				if err != nil {
					t.Errorf("PutRecords: %v", err)
					return
				}
				mu.Lock()
				for i, r := range out.Records {
					if r.ErrorCode == nil {
						acks = append(acks, ack{*r.ShardId, *r.SequenceNumber, string(recs[i].Data)})
					}
				}
				mu.Unlock()
				p, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint("single", w, n)), Data: []byte(fmt.Sprint("single", w, "-", n))})
				if err != nil {
					t.Errorf("PutRecord: %v", err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{*p.ShardId, *p.SequenceNumber, fmt.Sprint("single", w, "-", n)})
				mu.Unlock()
			}
		})
	}
	for _, target := range []int32{4, 3, 2, 4} {
		time.Sleep(30 * time.Millisecond)
		_, err := e.nr.UpdateShardCount(e.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling})
		noErr(t, err, fmt.Sprint("UpdateShardCount ", target))
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()

	seen := map[string]ack{}
	for _, sh := range e.shards("s") {
		recs, _, _ := e.readToEnd("s", *sh.ShardId)
		for _, r := range recs {
			key := *sh.ShardId + "/" + *r.SequenceNumber
			if _, dup := seen[key]; dup {
				t.Fatalf("record %s read twice", key)
			}
			seen[key] = ack{*sh.ShardId, *r.SequenceNumber, string(r.Data)}
		}
	}
	if len(seen) != len(acks) {
		t.Errorf("read %d records, %d were acknowledged", len(seen), len(acks))
	}
	for _, a := range acks {
		got, ok := seen[a.shard+"/"+a.seq]
		if !ok || got.data != a.data {
			t.Fatalf("acknowledged record %+v: read %+v (found %v)", a, got, ok)
		}
	}
	if len(acks) == 0 {
		t.Fatal("no record was acknowledged")
	}
}

func TestUpdateShardCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{ShardLimit: 20})
	e.createStream("s", 2)
	upd := func(n int32) (*kinesis.UpdateShardCountOutput, error) {
		return e.nr.UpdateShardCount(e.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
	}
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateShardCount", map[string]any{"StreamName": "s", "TargetShardCount": 3}), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateShardCount", map[string]any{"StreamName": "s", "TargetShardCount": 3, "ScalingType": "X"}), "ValidationException")
	_, err := upd(5)
	wantErr[types.LimitExceededException](t, err) // more than double
	_, err = upd(0)
	wantCode(t, err, "ValidationException")

	var data []string
	putSome := func(tag string) {
		for i := range 30 {
			d := fmt.Sprint(tag, i)
			e.put("s", d, []byte(d))
			data = append(data, d)
		}
	}
	putSome("a")
	for _, n := range []int32{4, 3, 2} {
		cur := int32(len(openShards(e.shards("s"))))
		out, err := upd(n)
		noErr(t, err, fmt.Sprint("UpdateShardCount ", n))
		if out.CurrentShardCount == nil || *out.CurrentShardCount != cur || *out.TargetShardCount != n || *out.StreamName != "s" || *out.StreamARN != arn("s") {
			t.Fatalf("UpdateShardCount output: %+v", out)
		}
		open := openShards(e.shards("s"))
		if len(open) != int(n) {
			t.Fatalf("%d open shards, want %d", len(open), n)
		}
		width := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(n)))
		for i, sh := range open {
			w := new(big.Int).Sub(bigOf(*sh.HashKeyRange.EndingHashKey), bigOf(*sh.HashKeyRange.StartingHashKey))
			if d := new(big.Int).Sub(w, width); d.CmpAbs(big.NewInt(int64(n))) > 0 {
				t.Fatalf("open shard %d range width %s, want about %s", i, w, width)
			}
		}
		putSome(fmt.Sprint("n", n))
	}
	got := map[string]int{}
	for _, sh := range e.shards("s") {
		recs, _, _ := e.readToEnd("s", *sh.ShardId)
		for _, r := range recs {
			got[string(r.Data)]++
		}
	}
	for _, d := range data {
		if got[d] != 1 {
			t.Fatalf("record %s read %d times", d, got[d])
		}
	}
	if len(got) != len(data) {
		t.Fatalf("read %d distinct records, put %d", len(got), len(data))
	}
	_, err = upd(21)
	wantErr[types.LimitExceededException](t, err) // more than double
	e2 := newEnv(t, server.Config{ShardLimit: 3})
	e2.createStream("s", 2)
	_, err = e2.nr.UpdateShardCount(e2.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	wantErr[types.LimitExceededException](t, err)
}
