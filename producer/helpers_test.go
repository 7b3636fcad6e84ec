package producer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// startServer runs a shoal server for the test with the given config
// (warn-level logs only, so that -v output stays readable).
func startServer(t testing.TB, cfg server.Config) *servertest.Server {
	t.Helper()
	return servertest.Start(t, cfg)
}

func createStream(t testing.TB, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	_, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	if err != nil {
		t.Fatalf("CreateStream %s: %v", name, err)
	}
}

// newTestProducer creates a producer with cfg (StreamName and Logger filled
// in if empty) and closes it at the end of the test.
func newTestProducer(t testing.TB, c KinesisAPI, cfg Config, hooks ...testHooks) *Producer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	var h testHooks
	if len(hooks) > 0 {
		h = hooks[0]
	}
	p, err := newProducer(c, cfg, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// readRecord is one user record read back from the stream, after the KCL's
// deaggregation and hash range filter.
type readRecord struct {
	ShardID        string
	SequenceNumber string
	SubSequence    int64
	PartitionKey   string
	Data           string
	Aggregated     bool
}

// readResult is everything read back from a stream.
type readResult struct {
	Records []readRecord // kept by the KCL filter, in shard order
	// Dropped counts user records inside aggregates that the KCL drops
	// because some user record of the same aggregate lies outside the
	// shard's hash range.
	Dropped int
	// DroppedInRange counts, among those, the ones that were inside the
	// range (a per-record filter would have kept them).
	DroppedInRange int
	Shards         map[string]shardInfo
}

// readAll reads every shard of the stream from TRIM_HORIZON to its end and
// deaggregates as the KCL does (AggregatorUtil.deaggregate): an aggregated
// record any of whose user records has a hash key (explicit hash key, else
// MD5 of the partition key) outside the shard's range is dropped whole.
func readAll(t testing.TB, c *kinesis.Client, stream string) readResult {
	t.Helper()
	return readFiltered(t, c, stream, true)
}

// readFiltered is readAll with the KCL's filter (kcl) or, if kcl is false,
// the filter of this repository's consumer package, which drops only the
// out-of-range user records of an aggregate.
func readFiltered(t testing.TB, c *kinesis.Client, stream string, kcl bool) readResult {
	t.Helper()
	ctx := context.Background()
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	res := readResult{Shards: map[string]shardInfo{}}
	for _, s := range out.Shards {
		start, _ := hashkey.Parse(*s.HashKeyRange.StartingHashKey)
		end, _ := hashkey.Parse(*s.HashKeyRange.EndingHashKey)
		info := shardInfo{id: *s.ShardId, start: start, end: end}
		res.Shards[info.id] = info
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		iter := it.ShardIterator
		for iter != nil {
			got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatalf("GetRecords: %v", err)
			}
			for _, r := range got.Records {
				subs, derr := aggregation.Deaggregate(*r.PartitionKey, r.Data)
				if derr != nil && !errors.Is(derr, aggregation.ErrNotAggregated) {
					t.Fatalf("deaggregate: %v", derr)
				}
				keep := true
				if len(subs) > 0 && subs[0].Aggregated {
					for _, s := range subs {
						if !info.contains(effectiveHash(s.PartitionKey, s.ExplicitHashKey)) {
							keep = false
						}
					}
				}
				for _, s := range subs {
					if !kcl && s.Aggregated {
						keep = info.contains(effectiveHash(s.PartitionKey, s.ExplicitHashKey))
					}
					if !keep {
						res.Dropped++
						if info.contains(effectiveHash(s.PartitionKey, s.ExplicitHashKey)) {
							res.DroppedInRange++
						}
						continue
					}
					res.Records = append(res.Records, readRecord{
						ShardID: info.id, SequenceNumber: *r.SequenceNumber, SubSequence: s.SubSequenceNumber,
						PartitionKey: s.PartitionKey, Data: string(s.Data), Aggregated: s.Aggregated,
					})
				}
			}
			if len(got.Records) == 0 && (got.MillisBehindLatest == nil || *got.MillisBehindLatest == 0) {
				break
			}
			iter = got.NextShardIterator
		}
	}
	return res
}

func effectiveHash(pk, ehk string) hashkey.Key {
	if ehk != "" {
		k, err := hashkey.Parse(ehk)
		if err != nil {
			panic(err)
		}
		return k
	}
	return hashkey.FromPartitionKey(pk)
}

// payload is the deterministic data of record i of writer w.
func payload(w, i int, size int) []byte {
	s := fmt.Sprintf("w%d-i%d-", w, i)
	b := make([]byte, max(size, len(s)))
	copy(b, s)
	for j := len(s); j < len(b); j++ {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

// parsePayload returns the writer and index a payload was made for.
func parsePayload(data string) (w, i int, ok bool) {
	rest, found := strings.CutPrefix(data, "w")
	if !found {
		return 0, 0, false
	}
	ws, rest, found := strings.Cut(rest, "-i")
	if !found {
		return 0, 0, false
	}
	is, _, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	i, err2 := strconv.Atoi(is)
	return w, i, err1 == nil && err2 == nil
}

// countingMetrics counts what the producer reports.
type countingMetrics struct {
	NopMetrics
	userPut, kinesisPut, calls, callErrs atomic.Int64
	callEntries, callNanos               atomic.Int64
	mu                                   sync.Mutex
	retried, failed                      map[string]int
	refreshes, mapChanges                atomic.Int64
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{retried: map[string]int{}, failed: map[string]int{}}
}

func (m *countingMetrics) UserRecordsPut(n int)       { m.userPut.Add(int64(n)) }
func (m *countingMetrics) KinesisRecordsPut(n, _ int) { m.kinesisPut.Add(int64(n)) }
func (m *countingMetrics) PutRecordsCall(d time.Duration, n, _ int, err error) {
	m.calls.Add(1)
	m.callEntries.Add(int64(n))
	m.callNanos.Add(int64(d))
	if err != nil {
		m.callErrs.Add(1)
	}
}
func (m *countingMetrics) Retried(code string, n int) {
	m.mu.Lock()
	m.retried[code] += n
	m.mu.Unlock()
}
func (m *countingMetrics) UserRecordsFailed(code string, n int) {
	m.mu.Lock()
	m.failed[code] += n
	m.mu.Unlock()
}
func (m *countingMetrics) ShardMapRefreshed(_ int, changed bool, err error) {
	if err == nil {
		m.refreshes.Add(1)
	}
	if changed {
		m.mapChanges.Add(1)
	}
}
func (m *countingMetrics) retries(code string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.retried[code]
}
func (m *countingMetrics) snapshot() (retried, failed map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	retried, failed = map[string]int{}, map[string]int{}
	for k, v := range m.retried {
		retried[k] = v
	}
	for k, v := range m.failed {
		failed[k] = v
	}
	return retried, failed
}

// eventually polls cond until it returns nil or timeout passes.
var eventually = wait.Eventually

// testLogger logs through t at debug level when SHOAL_TEST_LOG is set, and
// not at all otherwise.
func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}
