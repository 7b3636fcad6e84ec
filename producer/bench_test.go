package producer

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// benchEndpoint returns the endpoint of the server to benchmark against:
// $SHOAL_BENCH_ENDPOINT (a separate "shoal server" process), or a server in
// this process.
func benchEndpoint(b *testing.B) string {
	if ep := os.Getenv("SHOAL_BENCH_ENDPOINT"); ep != "" {
		return ep
	}
	srv := servertest.Start(b, server.Config{Logger: zap.NewNop()})
	return srv.Endpoint
}

// BenchmarkProducer puts b.N records of 100 bytes from 16 goroutines to a
// 4-shard stream, with the rate limiter off (shoal does not throttle by
// default), and waits until every record is acknowledged. It reports user
// records per second and the producer process's CPU time per record
// (rusage; with an in-process server that includes the server's CPU).
func BenchmarkProducer(b *testing.B) {
	for _, agg := range []bool{true, false} {
		name := "aggregated"
		if !agg {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) { benchProducer(b, !agg) })
	}
}

func benchProducer(b *testing.B, disableAgg bool) {
	ep := benchEndpoint(b)
	c := servertest.Client(ep)
	stream := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	createStream(b, c, stream, 4)
	cfg := Config{
		StreamName:         stream,
		DisableRateLimit:   true,
		DisableAggregation: disableAgg,
		Logger:             zap.NewNop(),
		Metrics:            newCountingMetrics(),
	}
	if v := os.Getenv("SHOAL_BENCH_AGG_BYTES"); v != "" {
		cfg.AggregationMaxBytes, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("SHOAL_BENCH_COLLECTION_BYTES"); v != "" {
		cfg.CollectionMaxBytes, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("SHOAL_BENCH_BUFFERED_RECORDS"); v != "" {
		cfg.MaxBufferedRecords, _ = strconv.Atoi(v)
	}
	p, err := New(c, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := p.Close(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	// Warm up: load the shard map.
	if _, err := p.PutSync(context.Background(), "warm", []byte("up")); err != nil {
		b.Fatal(err)
	}
	const writers = 16
	data := make([]byte, 100)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	var next atomic.Int64
	var failed atomic.Int64
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			ctx := context.Background()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := p.Put(ctx, keys[i%int64(len(keys))], data); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := p.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
	if failed.Load() > 0 {
		b.Fatalf("%d puts failed", failed.Load())
	}
	m := cfg.Metrics.(*countingMetrics)
	if calls := m.calls.Load(); calls > 0 {
		b.ReportMetric(float64(m.callNanos.Load())/float64(calls)/1e6, "ms/call")
		b.ReportMetric(float64(m.callEntries.Load())/float64(calls), "kinesis-records/call")
	}
	if got := m.userPut.Load(); got != int64(b.N)+1 {
		_, f := m.snapshot()
		b.Fatalf("%d records acknowledged, want %d; failures %v", got, b.N+1, f)
	}
}
