package consumer

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
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

// The measurements below run only with SHOAL_BENCH=1 and print their
// results (go test -v):
//
//	SHOAL_BENCH=1 go test -run 'TestBench' -v -count=1 ./consumer/
//
// Each uses a real server (fsync never, on loopback) and the real
// PostgreSQL.

func benchOnly(t *testing.T) {
	if os.Getenv("SHOAL_BENCH") != "1" {
		t.Skip("set SHOAL_BENCH=1 to run the measurements")
	}
}

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

// TestBenchLatency measures put -> ProcessRecords latency with polling:
// one worker on 4 shards, records put one PutRecords call at a time at
// about 200/s, for several idle intervals.
func TestBenchLatency(t *testing.T) {
	benchOnly(t)
	for _, idle := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second} {
		t.Run(idle.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{shards: 4})
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
			eventually(t, 20*time.Second, func() error { return balanced([]*running{w}, 4, 4, 4) })
			const total = 1000
			tick := time.NewTicker(5 * time.Millisecond)
			for i := range total {
				<-tick.C
				data := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
				if _, err := e.client.PutRecord(context.Background(), &kinesis.PutRecordInput{
					StreamName: aws.String(testStream), PartitionKey: aws.String(strconv.Itoa(i)), Data: data,
				}); err != nil {
					t.Fatal(err)
				}
			}
			tick.Stop()
			eventually(t, 30*time.Second, func() error {
				if n.Load() < total {
					return fmt.Errorf("%d of %d", n.Load(), total)
				}
				return nil
			})
			_ = w.stop(t)
			mu.Lock()
			defer mu.Unlock()
			t.Logf("idle %v: put->process latency p50 %v p99 %v max %v (%d records, 4 shards, 1 worker)",
				idle, percentile(lat, 0.50).Round(100*time.Microsecond), percentile(lat, 0.99).Round(100*time.Microsecond),
				percentile(lat, 1).Round(100*time.Microsecond), len(lat))
		})
	}
}

// TestBenchThroughput measures how many user records per second one worker
// processes from 4 shards filled beforehand (the processor counts and
// checkpoints every batch), plain and KPL-aggregated.
func TestBenchThroughput(t *testing.T) {
	benchOnly(t)
	const perShard = 100_000
	payload := make([]byte, 100)
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregated=%v", agg), func(t *testing.T) {
			e := newEnv(t, envOptions{shards: 4})
			shards := e.shardIDs()
			// Explicit hash keys place records on each shard evenly.
			out, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
			if err != nil {
				t.Fatal(err)
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
			var n atomic.Int64
			start := time.Now()
			w := e.quietWorker("w", nil, func(string) Processor { return &countingProc{n: &n} })
			total := int64(perShard * len(shards))
			eventually(t, 5*time.Minute, func() error {
				if n.Load() < total {
					return fmt.Errorf("%d of %d", n.Load(), total)
				}
				return nil
			})
			d := time.Since(start)
			_ = w.stop(t)
			t.Logf("aggregated=%v: %d user records (%d Kinesis records, 100-byte payloads) from 4 shards in %v: %.0f records/s, one worker",
				agg, total, len(entries), d.Round(time.Millisecond), float64(total)/d.Seconds())
		})
	}
}

// TestBenchRebalance measures how long leases take to rebalance when a
// worker joins, leaves gracefully, or crashes, on 8 shards, with the
// default failover (10s, take interval 20s) and the tests' (2s, 1s).
func TestBenchRebalance(t *testing.T) {
	benchOnly(t)
	for _, tc := range []struct{ failover, take time.Duration }{{2 * time.Second, time.Second}, {10 * time.Second, 20 * time.Second}} {
		t.Run(fmt.Sprintf("failover %v take %v", tc.failover, tc.take), func(t *testing.T) {
			e := newEnv(t, envOptions{shards: 8})
			mod := func(c *Config) { c.FailoverTime, c.TakeInterval = tc.failover, tc.take }
			var n atomic.Int64
			factory := func(string) Processor { return &countingProc{n: &n} }
			e.storeFailover = tc.failover
			a := e.quietWorker("a", mod, factory)
			eventually(t, time.Minute, func() error { return balanced([]*running{a}, 8, 8, 8) })
			b := e.quietWorker("b", mod, factory)
			start := time.Now()
			eventually(t, 5*time.Minute, func() error { return balanced([]*running{a, b}, 8, 4, 4) })
			t.Logf("second worker joins: balanced 4/4 in %v", time.Since(start).Round(time.Millisecond))
			c := e.quietWorker("c", mod, factory)
			start = time.Now()
			eventually(t, 5*time.Minute, func() error { return balanced([]*running{a, b, c}, 8, 2, 3) })
			t.Logf("third worker joins: balanced 3/3/2 in %v", time.Since(start).Round(time.Millisecond))
			start = time.Now()
			_ = c.stop(t)
			stopped := time.Since(start)
			eventually(t, 5*time.Minute, func() error { return balanced([]*running{a, b}, 8, 4, 4) })
			t.Logf("worker leaves gracefully: balanced 4/4 in %v (its Run returned after %v)", time.Since(start).Round(time.Millisecond), stopped.Round(time.Millisecond))
			start = time.Now()
			b.crash(t)
			eventually(t, 5*time.Minute, func() error { return balanced([]*running{a}, 8, 8, 8) })
			t.Logf("worker crashes: its leases taken over in %v", time.Since(start).Round(time.Millisecond))
			_ = a.stop(t)
		})
	}
}
