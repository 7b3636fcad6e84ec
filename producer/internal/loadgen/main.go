// Command loadgen drives a producer.Producer against any Kinesis endpoint
// and reports what it sustained: user records per second, PutRecords calls,
// and the CPU time of this process per user record (getrusage).
//
//	go run ./producer/internal/loadgen -endpoint http://127.0.0.1:4620 -records 2000000
//
// It creates the stream (-shards) if it is missing. Records carry -size
// bytes and a key drawn round-robin from -keys distinct keys, put by
// -writers goroutines. The rate limiter is off unless -rate-limit is set,
// since shoal does not throttle by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/bench"
	"github.com/shoalstream/shoal/producer"
)

type counters struct {
	producer.NopMetrics
	calls, entries, nanos, ok atomic.Int64
	failed                    atomic.Int64
}

func (c *counters) PutRecordsCall(d time.Duration, n, _ int, _ error) {
	c.calls.Add(1)
	c.entries.Add(int64(n))
	c.nanos.Add(int64(d))
}
func (c *counters) UserRecordsPut(n int)              { c.ok.Add(int64(n)) }
func (c *counters) UserRecordsFailed(_ string, n int) { c.failed.Add(int64(n)) }

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:4567", "Kinesis endpoint")
	region := flag.String("region", "us-east-1", "region")
	stream := flag.String("stream", "loadgen", "stream name")
	shards := flag.Int("shards", 4, "shards of the stream if it is created")
	records := flag.Int("records", 1_000_000, "user records to put")
	size := flag.Int("size", 100, "bytes of data per record")
	writers := flag.Int("writers", 16, "goroutines calling Put")
	keys := flag.Int("keys", 1000, "distinct partition keys")
	plain := flag.Bool("no-aggregation", false, "send every user record as its own Kinesis record")
	relaxed := flag.Bool("relaxed-ordering", false, "set Config.RelaxedOrdering")
	rateLimit := flag.Int("rate-limit", 0, "RateLimit percent (0: limiter off)")
	buffered := flag.Int("max-buffered-records", 0, "MaxBufferedRecords (0: default)")
	flag.Parse()
	if err := run(*endpoint, *region, *stream, int32(*shards), *records, *size, *writers, *keys, *plain, *relaxed, *rateLimit, *buffered); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(endpoint, region, stream string, shards int32, records, size, writers, nkeys int, plain, relaxed bool, rateLimit, buffered int) error {
	ctx := context.Background()
	client := bench.NewClient(endpoint, region, 3)
	_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return err
	}
	m := &counters{}
	cfg := producer.Config{
		StreamName: stream, DisableAggregation: plain, RelaxedOrdering: relaxed,
		DisableRateLimit: rateLimit == 0, RateLimit: rateLimit, MaxBufferedRecords: buffered, Metrics: m,
	}
	p, err := producer.New(client.Client, cfg)
	if err != nil {
		return err
	}
	if _, err := p.PutSync(ctx, "warm-up", []byte("x")); err != nil {
		return err
	}
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	data := make([]byte, size)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	c0, e0, n0 := m.calls.Load(), m.entries.Load(), m.nanos.Load()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(records) {
					return
				}
				if _, err := p.Put(ctx, keys[i%int64(nkeys)], data); err != nil {
					fmt.Fprintln(os.Stderr, "put:", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Flush(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	calls, entries, nanos := m.calls.Load()-c0, m.entries.Load()-e0, m.nanos.Load()-n0
	fmt.Printf("produce: %d records of %d B in %.2fs = %.0f records/s, %.1f MB/s (payload)\n",
		records, size, elapsed.Seconds(), float64(records)/elapsed.Seconds(), float64(records*size)/elapsed.Seconds()/1e6)
	if calls > 0 {
		fmt.Printf("calls: %d PutRecords (%.1f Kinesis records each, %.1f ms mean)\n",
			calls, float64(entries)/float64(calls), float64(nanos)/float64(calls)/1e6)
	}
	fmt.Printf("cpu: %.0f ns per user record (this process, user+system)\n", float64(cpu.Nanoseconds())/float64(records))
	fmt.Printf("results: %d stored, %d failed\n", m.ok.Load()-1, m.failed.Load())
	return p.Close(ctx)
}
