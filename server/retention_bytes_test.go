package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/server"
)

// sizeMetrics records Metrics.SizeTrimmed calls.
type sizeMetrics struct {
	server.NopMetrics
	mu sync.Mutex
	n  map[string]int
}

func (m *sizeMetrics) SizeTrimmed(stream string, units int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[stream] += units
}

func (m *sizeMetrics) get(stream string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[stream]
}

// sizeRecord is the data of the i-th record of TestRetentionBytes: its
// index, then a pattern of it.
func sizeRecord(i int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, 1000)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// streamBytes returns the stored bytes and segments of stream name.
func streamBytes(t *testing.T, srv *server.Server, name string) (int64, int) {
	t.Helper()
	sizes, err := srv.StreamSizes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		if s.Stream == name {
			return s.Bytes, s.Segments
		}
	}
	t.Fatalf("no size of stream %s", name)
	return 0, 0
}

// checkSuffix asserts that recs are the records put last, from some index
// on, intact and in order, the newest included. It returns the index of
// the first.
func checkSuffix(t *testing.T, recs []types.Record, seqs []string, what string) int {
	t.Helper()
	if len(recs) == 0 {
		t.Fatalf("%s: no records", what)
	}
	first := int(binary.BigEndian.Uint32(recs[0].Data))
	if first+len(recs) != len(seqs) {
		t.Fatalf("%s: %d records from #%d, want every record from it to #%d", what, len(recs), first, len(seqs)-1)
	}
	for k, r := range recs {
		i := first + k
		if aws.ToString(r.SequenceNumber) != seqs[i] || !bytes.Equal(r.Data, sizeRecord(i)) || aws.ToString(r.PartitionKey) != "k" {
			t.Fatalf("%s: record %d is not #%d intact (sequence number %s, want %s)", what, k, i, aws.ToString(r.SequenceNumber), seqs[i])
		}
	}
	return first
}

// Size-based retention: the housekeeping round drops a shard's oldest
// whole segments beyond the stream's byte budget, however young; readers
// from TRIM_HORIZON, and iterators into the dropped records, go on from the
// first record kept; the newest records all stay.
func TestRetentionBytes(t *testing.T) {
	const segment, budget = 4096, 16384
	clock := newClock()
	m := &sizeMetrics{}
	e := newEnv(t, server.Config{Now: clock.Now, SegmentBytes: segment, RetentionCheckInterval: time.Hour, Metrics: m})
	created, err := e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "s", RetentionBytes: budget})
	if err != nil || !created {
		t.Fatalf("EnsureStream = %v, %v", created, err)
	}
	shard := aws.ToString(e.shards("s")[0].ShardId)
	var seqs []string
	put := func(n int) {
		for range n {
			i := len(seqs)
			seqs = append(seqs, aws.ToString(e.put("s", "k", sizeRecord(i)).SequenceNumber))
		}
	}
	put(100) // about 100 KB
	oldIt := e.iterator("s", shard, types.ShardIteratorTypeTrimHorizon, nil, nil)
	atFirst := e.iterator("s", shard, types.ShardIteratorTypeAtSequenceNumber, aws.String(seqs[0]), nil)
	before, segsBefore := streamBytes(t, e.srv.Server, "s")
	if before < 100_000 {
		t.Fatalf("%d bytes stored before the trim", before)
	}

	e.srv.EnforceRetentionNow()
	after, segsAfter := streamBytes(t, e.srv.Server, "s")
	if after > budget+segment {
		t.Fatalf("%d bytes stored after the trim, budget %d (+ a segment)", after, budget)
	}
	if got := m.get("s"); got == 0 || got != segsBefore-segsAfter {
		t.Fatalf("SizeTrimmed counted %d segments, %d went", got, segsBefore-segsAfter)
	}
	recs := e.readShard("s", shard)
	first := checkSuffix(t, recs, seqs, "TRIM_HORIZON")
	if first == 0 {
		t.Fatal("TRIM_HORIZON still starts at the first record")
	}
	if len(recs) < (budget-segment)/1100 {
		t.Fatalf("only %d records kept in a budget of %d bytes", len(recs), budget)
	}
	// Iterators into the dropped records go on from the first one kept.
	for what, it := range map[string]string{"an iterator taken before the trim": oldIt, "AT_SEQUENCE_NUMBER of a dropped record": atFirst,
		"AT_SEQUENCE_NUMBER after the trim": e.iterator("s", shard, types.ShardIteratorTypeAtSequenceNumber, aws.String(seqs[0]), nil)} {
		if got := checkSuffix(t, e.drain(it, 7), seqs, what); got != first {
			t.Fatalf("%s starts at #%d, TRIM_HORIZON at #%d", what, got, first)
		}
	}
	// A second round within the budget drops nothing.
	e.srv.EnforceRetentionNow()
	if got := m.get("s"); got != segsBefore-segsAfter {
		t.Fatalf("a round within the budget dropped %d more segments", got-(segsBefore-segsAfter))
	}

	// The budget is in the catalog: after a restart it still holds.
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, server.Config{Now: clock.Now, SegmentBytes: segment, RetentionCheckInterval: time.Hour, DataDir: e.srv.Config.DataDir})
	put(50)
	e.srv.EnforceRetentionNow()
	if after, _ := streamBytes(t, e.srv.Server, "s"); after > budget+segment {
		t.Fatalf("%d bytes stored after a restart and a trim, budget %d", after, budget)
	}
	if got := checkSuffix(t, e.readShard("s", shard), seqs, "after a restart"); got <= first {
		t.Fatalf("after a restart TRIM_HORIZON starts at #%d, before at #%d", got, first)
	}
}

// A stream without a byte budget keeps everything its period retains, and
// an engine that cannot trim by size refuses a budget before creating the
// stream.
func TestRetentionBytesOff(t *testing.T) {
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now, SegmentBytes: 4096, RetentionCheckInterval: time.Hour})
	if _, err := e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		e.put("s", "k", sizeRecord(i))
	}
	e.srv.EnforceRetentionNow()
	if recs := e.readShard("s", aws.ToString(e.shards("s")[0].ShardId)); len(recs) != 50 {
		t.Fatalf("%d records kept, want 50", len(recs))
	}
	if _, err := e.srv.EnsureStream(e.ctx, server.StreamSpec{Name: "neg", RetentionBytes: -1}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("EnsureStream with negative retention bytes: %v", err)
	}

	mem := newEnv(t, server.Config{Engine: memengine.New(memengine.Config{}), RetentionCheckInterval: time.Hour})
	_, err := mem.srv.EnsureStream(mem.ctx, server.StreamSpec{Name: "s", RetentionBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "retention bytes") {
		t.Fatalf("EnsureStream with retention bytes on the memory engine: %v", err)
	}
	_, err = mem.c.DescribeStreamSummary(mem.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	wantCode(t, err, "ResourceNotFoundException")
}
