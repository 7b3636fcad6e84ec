package server_test

import (
	"fmt"
	"math/big"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/server"
)

// BenchmarkReshardFullStream measures how long SplitShard and MergeShards
// take, from the call to the stream being ACTIVE with the children listed,
// on a one-shard stream holding SHOAL_BENCH_BYTES (default 1 GiB) of 1 MiB
// records (five of each, after one fill, whatever b.N is):
//
//	go test -run '^$' -bench BenchmarkReshardFullStream -benchtime 1x ./server/
func BenchmarkReshardFullStream(b *testing.B) {
	var t testing.TB = b
	total := int64(1 << 30)
	if v := os.Getenv("SHOAL_BENCH_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("SHOAL_BENCH_BYTES: %v", err)
		}
		total = n
	}
	e := newEnv(t, server.Config{Logger: zap.NewNop()})
	e.createStream("s", 1)

	// Fill: PutRecords of 9 records of 1 MiB (data plus partition key).
	const pk = "k"
	rec := make([]byte, 1<<20-len(pk))
	start := time.Now()
	var put int64
	for put < total {
		var recs []types.PutRecordsRequestEntry
		for range 9 {
			recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(pk), Data: rec})
		}
		out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
		noErr(t, err, "PutRecords")
		if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
			t.Fatalf("%d records failed", n)
		}
		put += 9 << 20
	}
	fill := time.Since(start)
	t.Logf("filled %d MiB in %v (%.0f MiB/s, fsync always, through the SDK)", put>>20, fill.Round(time.Millisecond), float64(put>>20)/fill.Seconds())

	// ready waits until the stream is ACTIVE and lists want shards.
	ready := func(want int) {
		for {
			d := e.summary("s")
			if d.StreamStatus == types.StreamStatusActive && len(e.shards("s")) == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	var splits, merges []time.Duration
	parent := 0
	shards := 1
	for range 5 {
		sh := e.shards("s")
		p := sh[len(sh)-1] // the open shard covering the whole key space
		mid := new(big.Int).Rsh(new(big.Int).Add(bigOf(*p.HashKeyRange.StartingHashKey), bigOf(*p.HashKeyRange.EndingHashKey)), 1)
		t0 := time.Now()
		noErr(t, e.split("s", shardID(parent), mid.String()), "SplitShard")
		shards += 2
		ready(shards)
		splits = append(splits, time.Since(t0))
		t0 = time.Now()
		noErr(t, e.merge("s", shardID(parent+1), shardID(parent+2)), "MergeShards")
		shards++
		ready(shards)
		merges = append(merges, time.Since(t0))
		parent += 3
	}
	t.Logf("%d MiB in shard 0; the first SplitShard splits shard 0, each later one the previous merge's child: SplitShard -> ACTIVE with children listed: %v; MergeShards: %v",
		put>>20, fmtDurations(splits), fmtDurations(merges))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(put>>20), "MiB-in-parent")
	b.ReportMetric(float64(slices.Max(splits))/float64(time.Millisecond), "split-max-ms")
	b.ReportMetric(float64(slices.Max(merges))/float64(time.Millisecond), "merge-max-ms")
}

func fmtDurations(ds []time.Duration) string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprint(d.Round(10 * time.Microsecond))
	}
	return s
}
