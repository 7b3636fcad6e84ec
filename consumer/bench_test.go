package consumer

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
)

// Benchmarks of the consumer on a real server (fsync never, on loopback)
// and the real PostgreSQL. They run only when asked for:
//
//	go test -run '^$' -bench . -benchtime 1x ./consumer/
//
// Each documents its op and the -benchtime that repeats the earlier
// measurement; the figures are reported with b.ReportMetric (ns/op, the
// pace or the set-up of a scenario, is left out where it means nothing).

// quietWorker starts a worker without test logging.
func (e *env) quietWorker(id string, mod func(*Config), factory ProcessorFactory) *running {
	return e.startWorkerWith(id, workerOptions{factory: factory, mod: func(c *Config) {
		c.Logger = zap.NewNop()
		if mod != nil {
			mod(c)
		}
	}})
}

// countingProc counts records and checkpoints every batch; it can record
// the latency of records whose data starts with a put time.
type countingProc struct {
	n       *atomic.Int64
	latency func(time.Duration)
}

func (p *countingProc) Initialize(context.Context, InitializeInput) error { return nil }
func (p *countingProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	now := time.Now()
	if p.latency != nil {
		for _, r := range in.Records {
			p.latency(now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Data)))))
		}
	}
	p.n.Add(int64(len(in.Records)))
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *countingProc) LeaseLost(context.Context, LeaseLostInput) {}
func (p *countingProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *countingProc) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// ms converts a duration to the float milliseconds of a metric.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkLatency measures put -> ProcessRecords latency with polling: one
// worker on 4 shards, records put one PutRecord call at a time at 200/s,
// for several idle intervals (IdleTimeBetweenReads). An op is one record;
// -benchtime 1000x repeats the earlier measurement (1,000 records). Metrics:
// p50-ms, p99-ms, max-ms of the latency.
func BenchmarkLatency(b *testing.B) {
	for _, idle := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second} {
		b.Run("idle="+idle.String(), func(b *testing.B) {
			e := newEnv(b, envOptions{shards: 4})
			var mu sync.Mutex
			var lat []time.Duration
			var n atomic.Int64
			w := e.quietWorker("w", func(c *Config) { c.IdleTimeBetweenReads = idle }, func(string) Processor {
				return &countingProc{n: &n, latency: func(d time.Duration) {
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}}
			})
			eventually(b, 20*time.Second, func() error { return balanced([]*running{w}, 4, 4, 4) })
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			i := 0
			for b.Loop() {
				<-tick.C
				data := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
				if _, err := e.client.PutRecord(context.Background(), &kinesis.PutRecordInput{
					StreamName: aws.String(testStream), PartitionKey: aws.String(strconv.Itoa(i)), Data: data,
				}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			eventually(b, 30*time.Second, func() error {
				if n.Load() < int64(i) {
					return fmt.Errorf("%d of %d", n.Load(), i)
				}
				return nil
			})
			_ = w.stop(b)
			mu.Lock()
			defer mu.Unlock()
			b.ReportMetric(0, "ns/op") // the put pace
			b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
			b.ReportMetric(ms(percentile(lat, 1)), "max-ms")
		})
	}
}

// BenchmarkThroughput measures how many user records per second one worker
// processes from 4 shards filled beforehand with 100,000 records each (the
// processor counts and checkpoints every batch), plain and KPL-aggregated.
// An op is one worker reading all of them, from the start (its own
// application, so its own leases); -benchtime 1x is the earlier
// measurement. Metric: records/s.
func BenchmarkThroughput(b *testing.B) {
	const perShard = 100_000
	payload := make([]byte, 100)
	for _, agg := range []bool{false, true} {
		b.Run(fmt.Sprintf("aggregated=%v", agg), func(b *testing.B) {
			e := newEnv(b, envOptions{shards: 4})
			shards := e.shardIDs()
			// Explicit hash keys place records on each shard evenly.
			out, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
			if err != nil {
				b.Fatal(err)
			}
			var entries []types.PutRecordsRequestEntry
			for _, s := range out.Shards {
				ehk := aws.ToString(s.HashKeyRange.StartingHashKey)
				if !agg {
					for range perShard {
						entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(ehk), Data: payload})
					}
					continue
				}
				a, _ := aggregation.NewAggregator(aggregation.Config{MaxBytes: 50 << 10})
				for i := range perShard {
					r := aggregation.UserRecord{PartitionKey: "k", ExplicitHashKey: ehk, Data: payload}
					if a.Add(r) != nil || i == perShard-1 {
						if i == perShard-1 {
							_ = a.Add(r)
						}
						rec, _ := a.Build()
						entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(rec.PartitionKey), ExplicitHashKey: aws.String(ehk), Data: rec.Data})
						a.Reset()
						if i != perShard-1 {
							_ = a.Add(r)
						}
					}
				}
			}
			e.putEntries(entries)
			total := int64(perShard * len(shards))
			var took time.Duration
			run := 0
			for b.Loop() {
				var n atomic.Int64
				start := time.Now()
				app := fmt.Sprintf("%s-%d", testApp, run)
				w := e.quietWorker("w", func(c *Config) { c.ApplicationName = app }, func(string) Processor { return &countingProc{n: &n} })
				eventually(b, 5*time.Minute, func() error {
					if n.Load() < total {
						return fmt.Errorf("%d of %d", n.Load(), total)
					}
					return nil
				})
				took += time.Since(start)
				_ = w.stop(b)
				run++
			}
			b.Logf("aggregated=%v: %d user records (%d Kinesis records, 100-byte payloads) from 4 shards, %d times, one worker: %.0f records/s",
				agg, total, len(entries), run, float64(total)*float64(run)/took.Seconds())
			b.ReportMetric(0, "ns/op") // includes the worker's stop
			b.ReportMetric(float64(total)*float64(run)/took.Seconds(), "records/s")
		})
	}
}

// BenchmarkRebalance measures how long leases take to rebalance when a
// worker joins, leaves gracefully, or crashes, on 8 shards, with the
// default failover (10s, take interval 20s) and the tests' (2s, 1s). An op
// is the whole scenario with new workers (and their own application);
// -benchtime 1x is the earlier measurement. Metrics, means over the ops:
// join2-ms (the second worker joins: 4/4), join3-ms (the third: 3/3/2),
// leave-ms (one stops gracefully: 4/4 again), crash-ms (one crashes: its
// leases taken over).
func BenchmarkRebalance(b *testing.B) {
	for _, tc := range []struct{ failover, take time.Duration }{{2 * time.Second, time.Second}, {10 * time.Second, 20 * time.Second}} {
		b.Run(fmt.Sprintf("failover=%v,take=%v", tc.failover, tc.take), func(b *testing.B) {
			e := newEnv(b, envOptions{shards: 8})
			e.storeFailover = tc.failover
			var join2, join3, leave, crash time.Duration
			run := 0
			for b.Loop() {
				app := fmt.Sprintf("%s-%d", testApp, run)
				mod := func(c *Config) { c.FailoverTime, c.TakeInterval, c.ApplicationName = tc.failover, tc.take, app }
				var n atomic.Int64
				factory := func(string) Processor { return &countingProc{n: &n} }
				w1 := e.quietWorker("a", mod, factory)
				eventually(b, time.Minute, func() error { return balanced([]*running{w1}, 8, 8, 8) })
				w2 := e.quietWorker("b", mod, factory)
				start := time.Now()
				eventually(b, 5*time.Minute, func() error { return balanced([]*running{w1, w2}, 8, 4, 4) })
				d := time.Since(start)
				join2 += d
				b.Logf("second worker joins: balanced 4/4 in %v", d.Round(time.Millisecond))
				w3 := e.quietWorker("c", mod, factory)
				start = time.Now()
				eventually(b, 5*time.Minute, func() error { return balanced([]*running{w1, w2, w3}, 8, 2, 3) })
				d = time.Since(start)
				join3 += d
				b.Logf("third worker joins: balanced 3/3/2 in %v", d.Round(time.Millisecond))
				start = time.Now()
				_ = w3.stop(b)
				stopped := time.Since(start)
				eventually(b, 5*time.Minute, func() error { return balanced([]*running{w1, w2}, 8, 4, 4) })
				d = time.Since(start)
				leave += d
				b.Logf("worker leaves gracefully: balanced 4/4 in %v (its Run returned after %v)", d.Round(time.Millisecond), stopped.Round(time.Millisecond))
				start = time.Now()
				w2.crash(b)
				eventually(b, 5*time.Minute, func() error { return balanced([]*running{w1}, 8, 8, 8) })
				d = time.Since(start)
				crash += d
				b.Logf("worker crashes: its leases taken over in %v", d.Round(time.Millisecond))
				_ = w1.stop(b)
				run++
			}
			b.ReportMetric(0, "ns/op") // the scenario, set-up included
			b.ReportMetric(ms(join2)/float64(run), "join2-ms")
			b.ReportMetric(ms(join3)/float64(run), "join3-ms")
			b.ReportMetric(ms(leave)/float64(run), "leave-ms")
			b.ReportMetric(ms(crash)/float64(run), "crash-ms")
		})
	}
}
