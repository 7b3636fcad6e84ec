package consumer

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// boundaryProc notes when each shard's records were processed.
type boundaryProc struct {
	shard string
	m     *boundaryLog
}

type boundaryLog struct {
	mu    sync.Mutex
	first map[string]time.Time // shard -> first ProcessRecords with records
	last  map[string]time.Time // shard -> last ProcessRecords with records
	init  map[string]time.Time // shard -> Initialize
	ended map[string]time.Time // shard -> ShardEnded
	// firstLat is the put -> process latency of each shard's first
	// record; lat collects every record's.
	firstLat map[string]time.Duration
	lat      []time.Duration
}

func (m *boundaryLog) note(at map[string]time.Time, shard string) {
	m.mu.Lock()
	at[shard] = time.Now()
	m.mu.Unlock()
}

func (p *boundaryProc) Initialize(_ context.Context, in InitializeInput) error {
	p.m.note(p.m.init, in.ShardID)
	return nil
}
func (p *boundaryProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	if len(in.Records) > 0 {
		now := time.Now()
		p.m.mu.Lock()
		for _, r := range in.Records {
			p.m.lat = append(p.m.lat, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Data)))))
		}
		if _, ok := p.m.first[in.ShardID]; !ok {
			p.m.first[in.ShardID] = now
			p.m.firstLat[in.ShardID] = p.m.lat[len(p.m.lat)-len(in.Records)]
		}
		p.m.last[in.ShardID] = now
		p.m.mu.Unlock()
	}
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *boundaryProc) LeaseLost(context.Context, LeaseLostInput) {}
func (p *boundaryProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	p.m.note(p.m.ended, in.ShardID)
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *boundaryProc) ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// BenchmarkShardBoundaryPause measures the consumer's pause at a split:
// from the last record of the parent processed to the first record of a
// child processed, and from the SplitShard call to that first child record,
// with a steady producer (PutRecord every 5 ms, random keys), one worker,
// per setting of IdleTimeBetweenReads (TakeInterval and ShardSyncInterval
// at their defaults: the children come from the parent's last GetRecords,
// ChildShards, and the take is event-driven). It also splits that time into
// its parts: the parent's reader seeing the end (a caught-up reader polls
// once per IdleTimeBetweenReads), and the lease handoff from ShardEnded to
// the children's Initialize. An op is one split (of the open shard holding
// the top of the key space); -benchtime 6x repeats the earlier measurement:
//
//	go test -run '^$' -bench BenchmarkShardBoundaryPause -benchtime 6x ./consumer/
//
// Metrics (over the splits): pause-p50-ms, pause-max-ms (last parent record
// to first child record), split-p50-ms, split-max-ms (SplitShard call to
// first child record), end-seen-p50-ms (SplitShard call to ShardEnded),
// handoff-p50-ms (ShardEnded to both children initialized),
// child-lat-p50-ms (put -> process latency of the children's first
// records), lat-p50-ms (of all records).
func BenchmarkShardBoundaryPause(b *testing.B) {
	for _, idle := range []time.Duration{time.Second, 200 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("idle="+idle.String(), func(b *testing.B) {
			e := newEnv(b, envOptions{shards: 1})
			m := &boundaryLog{first: map[string]time.Time{}, last: map[string]time.Time{}, init: map[string]time.Time{}, ended: map[string]time.Time{}, firstLat: map[string]time.Duration{}}
			w := e.quietWorker("w", func(c *Config) {
				c.IdleTimeBetweenReads = idle
				c.TakeInterval = 0      // the default, 2×FailoverTime
				c.ShardSyncInterval = 0 // the default, 60s
			}, func(shard string) Processor { return &boundaryProc{shard: shard, m: m} })
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ctx.Err() == nil; i++ {
					<-tick.C
					_, err := e.client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(testStream), PartitionKey: aws.String(strconv.Itoa(i)),
						Data: binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))})
					if err != nil && ctx.Err() == nil {
						b.Errorf("PutRecord: %v", err)
						return
					}
				}
			})
			defer func() { cancel(); wg.Wait() }()

			// Each op splits the open shard at the top of the key space.
			var pauses, fromSplit, endSeen, handoff, firstLat []time.Duration
			parent := "shardId-000000000000"
			top := new(big.Int).Lsh(big.NewInt(1), 128)
			lo := big.NewInt(0)
			run := 0
			for b.Loop() {
				eventually(b, 30*time.Second, func() error {
					m.mu.Lock()
					defer m.mu.Unlock()
					if _, ok := m.first[parent]; !ok {
						return fmt.Errorf("shard %s not processed yet", parent)
					}
					return nil
				})
				// Steady state, and a random phase against the readers'
				// polls: part of the measurement's design, not a wait for
				// anything.
				time.Sleep(300*time.Millisecond + rand.N(idle))
				mid := new(big.Int).Add(lo, new(big.Int).Rsh(new(big.Int).Sub(top, lo), 1))
				split := time.Now()
				if _, err := e.client.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String(testStream), ShardToSplit: aws.String(parent), NewStartingHashKey: aws.String(mid.String())}); err != nil {
					b.Fatal(err)
				}
				kidLo, kidHi := fmt.Sprintf("shardId-%012d", 2*run+1), fmt.Sprintf("shardId-%012d", 2*run+2)
				var first time.Time
				eventually(b, 60*time.Second, func() error {
					m.mu.Lock()
					defer m.mu.Unlock()
					a, okA := m.first[kidLo]
					c, okC := m.first[kidHi]
					if !okA || !okC {
						return fmt.Errorf("children of %s not both processed yet", parent)
					}
					first = a
					if c.Before(a) {
						first = c
					}
					return nil
				})
				m.mu.Lock()
				last := m.last[parent]
				b.Logf("idle %v split %d: parent last record +%v, parent ended +%v, children initialized +%v +%v, first child record +%v (after the SplitShard call)",
					idle, run, last.Sub(split).Round(time.Millisecond), m.ended[parent].Sub(split).Round(time.Millisecond),
					m.init[kidLo].Sub(split).Round(time.Millisecond), m.init[kidHi].Sub(split).Round(time.Millisecond), first.Sub(split).Round(time.Millisecond))
				endSeen = append(endSeen, m.ended[parent].Sub(split))
				handoff = append(handoff, max(m.init[kidLo].Sub(m.ended[parent]), m.init[kidHi].Sub(m.ended[parent])))
				firstLat = append(firstLat, max(m.firstLat[kidLo], m.firstLat[kidHi]))
				m.mu.Unlock()
				pauses = append(pauses, first.Sub(last))
				fromSplit = append(fromSplit, first.Sub(split))
				parent, lo = kidHi, mid
				run++
			}
			_ = w.stop(b)
			m.mu.Lock()
			steady := percentile(m.lat, 0.5)
			m.mu.Unlock()
			b.ReportMetric(0, "ns/op") // includes the wait for a steady state
			b.ReportMetric(ms(percentile(pauses, 0.5)), "pause-p50-ms")
			b.ReportMetric(ms(percentile(pauses, 1)), "pause-max-ms")
			b.ReportMetric(ms(percentile(fromSplit, 0.5)), "split-p50-ms")
			b.ReportMetric(ms(percentile(fromSplit, 1)), "split-max-ms")
			b.ReportMetric(ms(percentile(endSeen, 0.5)), "end-seen-p50-ms")
			b.ReportMetric(ms(percentile(handoff, 0.5)), "handoff-p50-ms")
			b.ReportMetric(ms(percentile(firstLat, 0.5)), "child-lat-p50-ms")
			b.ReportMetric(ms(steady), "lat-p50-ms")
		})
	}
}
