package server_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/server"
)

// BenchmarkPutRecordsOtherStreamBusy measures PutRecords (100 records of
// 100 B) on stream B on the real server, with stream A idle and with a
// goroutine running control-plane calls on A without pause (tags added and
// removed, a shard split and its children merged back). It reports the p50
// and p99 latency of B's calls in ms; with no process-wide lock on the
// data path, busy should be close to idle. Run with a fixed count, e.g.
//
//	go test -run '^$' -bench BenchmarkPutRecordsOtherStreamBusy -benchtime 3000x ./server/
//
// "busy" runs the calls on A back to back (each a catalog write with two
// fsyncs, on the disk B's appends fsync to); "paced" runs them 50 ms apart
// (20 control-plane calls a second on A, still far more than any real
// stream sees).
func BenchmarkPutRecordsOtherStreamBusy(b *testing.B) {
	for _, v := range []struct {
		name string
		busy bool
		gap  time.Duration
	}{{"idle", false, 0}, {"busy", true, 0}, {"paced", true, 50 * time.Millisecond}} {
		b.Run(v.name, func(b *testing.B) { benchPutOtherStream(b, v.busy, v.gap) })
	}
}

func benchPutOtherStream(b *testing.B, busy bool, gap time.Duration) {
	r := startRig(b, "", server.Config{})
	ctx := context.Background()
	for _, name := range []string{"A", "B"} {
		if _, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
			b.Fatal(err)
		}
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String("B")}
	data := make([]byte, 100)
	for i := range 100 {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: data})
	}
	put := func() error {
		out, err := r.c.PutRecords(ctx, in)
		if err == nil && aws.ToInt32(out.FailedRecordCount) != 0 {
			err = fmt.Errorf("%d records refused", aws.ToInt32(out.FailedRecordCount))
		}
		return err
	}
	for range 20 { // warm up connections and logs
		if err := put(); err != nil {
			b.Fatal(err)
		}
	}

	// The time B's appends spend in the engine (fsync included), to tell
	// disk contention from waiting elsewhere in the server.
	meta, _, err := r.fe.Catalog().Stream(ctx, "B")
	if err != nil {
		b.Fatal(err)
	}
	var appMu sync.Mutex
	var appLat []time.Duration
	r.fe.mu.Lock()
	r.fe.onAppend = func(id engine.LogID, took time.Duration) {
		if id.Stream == meta.ID {
			appMu.Lock()
			appLat = append(appLat, took)
			appMu.Unlock()
		}
	}
	r.fe.mu.Unlock()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var cycles atomic.Int64
	var busyErr error
	if busy {
		// Its own client, so that it does not share B's connection pool.
		hc := newTestHTTPClient()
		defer hc.CloseIdleConnections()
		c := newTestClient(r.endpoint, hc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			busyErr = churn(c, stop, &cycles, gap)
		}()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := put(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if busyErr != nil {
		b.Fatalf("control-plane loop on A: %v", busyErr)
	}
	b.ReportMetric(quantileMs(lat, 0.50), "p50-ms")
	b.ReportMetric(quantileMs(lat, 0.99), "p99-ms")
	appMu.Lock()
	b.ReportMetric(quantileMs(appLat, 0.50), "append-p50-ms")
	b.ReportMetric(quantileMs(appLat, 0.99), "append-p99-ms")
	appMu.Unlock()
	if busy {
		b.ReportMetric(float64(cycles.Load()), "A-cycles")
	}
}

// quantileMs returns the q quantile of ds in milliseconds (ds is sorted).
func quantileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / float64(time.Millisecond)
}

// churn runs control-plane calls on stream A (2 shards) until stop is
// closed: tags added and removed, then shard cur split and its two
// children merged into the next cur. Shard indexes are handed out in
// order, so the ids are known without listing.
func churn(c *kinesis.Client, stop <-chan struct{}, cycles *atomic.Int64, gap time.Duration) error {
	ctx := context.Background()
	cur, next := 0, 2
	// Shard 0 covers [0, 2^127-1]; the split key stays the same because
	// every merge restores that range.
	const key = "85070591730234615865843651857942052864" // 2^126
	pause := func() bool {                               // false once stop is closed
		if gap <= 0 {
			select {
			case <-stop:
				return false
			default:
				return true
			}
		}
		t := time.NewTimer(gap)
		defer t.Stop()
		select {
		case <-stop:
			return false
		case <-t.C:
			return true
		}
	}
	for {
		if !pause() {
			return nil
		}
		if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("A"), Tags: map[string]string{"k": "v"}}); err != nil {
			return err
		}
		if !pause() {
			return nil
		}
		if _, err := c.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("A"), TagKeys: []string{"k"}}); err != nil {
			return err
		}
		if !pause() {
			return nil
		}
		if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("A"), ShardToSplit: aws.String(shardID(cur)), NewStartingHashKey: aws.String(key)}); err != nil {
			return err
		}
		if !pause() {
			return nil
		}
		if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("A"), ShardToMerge: aws.String(shardID(next)), AdjacentShardToMerge: aws.String(shardID(next + 1))}); err != nil {
			return err
		}
		cur, next = next+2, next+3
		cycles.Add(1)
	}
}
