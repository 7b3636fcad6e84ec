package server_test

// Helpers of the storage-seam tests: a ledger of acknowledged records, full
// shard reads, shard-list signatures and lineage checks.

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// ack is one acknowledged record: the shard and sequence number the server
// answered with, and the record's (unique) data.
type ack struct{ Shard, Seq, Data string }

// ledger records the acknowledged writes of a test.
type ledger struct {
	tag  string
	mu   sync.Mutex
	next int
	acks []ack
}

// put writes n records of unique data with PutRecords and records those
// acknowledged. A record the server refused fails the call.
func (l *ledger) put(ctx context.Context, c *kinesis.Client, stream string, n int) ([]ack, error) {
	l.mu.Lock()
	first := l.next
	l.next += n
	l.mu.Unlock()
	in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
	for i := range n {
		k := first + i
		in.Records = append(in.Records, types.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprintf("pk-%d", k*7919)),
			Data:         []byte(fmt.Sprintf("%s-%08d", l.tag, k)),
		})
	}
	out, err := c.PutRecords(ctx, in)
	if err != nil {
		return nil, err
	}
	var got []ack
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			return got, fmt.Errorf("record %d refused: %s %s", i, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
		}
		got = append(got, ack{Shard: aws.ToString(r.ShardId), Seq: aws.ToString(r.SequenceNumber), Data: string(in.Records[i].Data)})
	}
	l.mu.Lock()
	l.acks = append(l.acks, got...)
	l.mu.Unlock()
	return got, nil
}

// mustPut is put that fails the test on error.
func (l *ledger) mustPut(t testing.TB, c *kinesis.Client, stream string, n int) []ack {
	t.Helper()
	got, err := l.put(context.Background(), c, stream, n)
	if err != nil {
		t.Fatalf("PutRecords %s: %v", stream, err)
	}
	return got
}

func (l *ledger) all() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}

// readShardRecords reads a whole shard from TRIM_HORIZON.
func readShardRecords(ctx context.Context, c *kinesis.Client, stream, shard string) ([]types.Record, error) {
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		return nil, fmt.Errorf("GetShardIterator %s/%s: %w", stream, shard, err)
	}
	var all []types.Record
	next := it.ShardIterator
	for i := 0; next != nil; i++ {
		if i > 10000 {
			return nil, fmt.Errorf("read %s/%s: no end in sight", stream, shard)
		}
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
		if err != nil {
			return nil, fmt.Errorf("GetRecords %s/%s: %w", stream, shard, err)
		}
		all = append(all, out.Records...)
		if len(out.Records) == 0 {
			break
		}
		next = out.NextShardIterator
	}
	return all, nil
}

// readStream reads every shard of a stream: shard id -> sequence number ->
// data.
func readStream(t testing.TB, c *kinesis.Client, stream string) map[string]map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]map[string]string{}
	for _, s := range listShardSigs(t, c, stream) {
		recs, err := readShardRecords(ctx, c, stream, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, r := range recs {
			m[aws.ToString(r.SequenceNumber)] = string(r.Data)
		}
		out[s.ID] = m
	}
	return out
}

// checkAcked asserts that every acknowledged record is read back in its
// shard at its sequence number, and exactly once in the whole stream.
func checkAcked(t testing.TB, c *kinesis.Client, stream string, acks []ack) {
	t.Helper()
	recs := readStream(t, c, stream)
	count := map[string]int{}
	for _, m := range recs {
		for _, d := range m {
			count[d]++
		}
	}
	var bad []string
	for _, a := range acks {
		if got, ok := recs[a.Shard][a.Seq]; !ok || got != a.Data {
			bad = append(bad, fmt.Sprintf("%s at %s/%s: got %q (present %v)", a.Data, a.Shard, a.Seq, got, ok))
		} else if count[a.Data] != 1 {
			bad = append(bad, fmt.Sprintf("%s read %d times", a.Data, count[a.Data]))
		}
		if len(bad) >= 10 {
			break
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d acknowledged records, some not read back as acknowledged: %v", len(acks), bad)
	}
}

// checkEmpty asserts that the shards hold no records.
func checkEmpty(t testing.TB, c *kinesis.Client, stream string, shards []string) {
	t.Helper()
	for _, id := range shards {
		recs, err := readShardRecords(context.Background(), c, stream, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			t.Fatalf("new shard %s holds %d records (first %q); a new shard must be empty", id, len(recs), recs[0].Data)
		}
	}
}

// shardSig is what ListShards says of one shard.
type shardSig struct {
	ID, Parent, Adj, Start, End, StartSeq, EndSeq string
}

func (s shardSig) open() bool { return s.EndSeq == "" }

// listShardSigs returns the stream's shards by id.
func listShardSigs(t testing.TB, c *kinesis.Client, stream string) []shardSig {
	t.Helper()
	var out []shardSig
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		res, err := c.ListShards(context.Background(), in)
		if err != nil {
			t.Fatalf("ListShards %s: %v", stream, err)
		}
		for _, s := range res.Shards {
			out = append(out, shardSig{
				ID: aws.ToString(s.ShardId), Parent: aws.ToString(s.ParentShardId), Adj: aws.ToString(s.AdjacentParentShardId),
				Start: aws.ToString(s.HashKeyRange.StartingHashKey), End: aws.ToString(s.HashKeyRange.EndingHashKey),
				StartSeq: aws.ToString(s.SequenceNumberRange.StartingSequenceNumber), EndSeq: aws.ToString(s.SequenceNumberRange.EndingSequenceNumber),
			})
		}
		if res.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sameSigs(a, b []shardSig) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func openIDs(sigs []shardSig) map[string]bool {
	out := map[string]bool{}
	for _, s := range sigs {
		if s.open() {
			out[s.ID] = true
		}
	}
	return out
}

// newIDs returns the shards of after that before lacks.
func newIDs(before, after []shardSig) []string {
	had := map[string]bool{}
	for _, s := range before {
		had[s.ID] = true
	}
	var out []string
	for _, s := range after {
		if !had[s.ID] {
			out = append(out, s.ID)
		}
	}
	return out
}

// checkLineage asserts parents before children: every parent exists, has a
// lower id and is closed; and the open shards cover the hash key space
// exactly once.
func checkLineage(t testing.TB, sigs []shardSig) {
	t.Helper()
	by := map[string]shardSig{}
	for _, s := range sigs {
		by[s.ID] = s
	}
	for _, s := range sigs {
		for _, p := range []string{s.Parent, s.Adj} {
			if p == "" {
				continue
			}
			ps, ok := by[p]
			switch {
			case !ok:
				t.Fatalf("shard %s: parent %s is not listed: %+v", s.ID, p, sigs)
			case ps.ID >= s.ID:
				t.Fatalf("shard %s: parent %s is not older", s.ID, p)
			case ps.open():
				t.Fatalf("shard %s: parent %s is still open: %+v", s.ID, p, sigs)
			}
		}
	}
	var open []shardSig
	for _, s := range sigs {
		if s.open() {
			open = append(open, s)
		}
	}
	sort.Slice(open, func(i, j int) bool { return bigInt(open[i].Start).Cmp(bigInt(open[j].Start)) < 0 })
	want := new(big.Int)
	for _, s := range open {
		if bigInt(s.Start).Cmp(want) != 0 {
			t.Fatalf("open shards do not tile the hash key space: %s starts at %s, want %s: %+v", s.ID, s.Start, want, open)
		}
		want = new(big.Int).Add(bigInt(s.End), big.NewInt(1))
	}
	if want.Cmp(new(big.Int).Lsh(big.NewInt(1), 128)) != 0 {
		t.Fatalf("open shards do not reach the top of the hash key space: %+v", open)
	}
}

func bigInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(fmt.Sprintf("not a decimal: %q", s))
	}
	return n
}

// midKey returns a NewStartingHashKey that splits [start, end] in halves.
func midKey(s shardSig) string {
	sum := new(big.Int).Add(bigInt(s.Start), bigInt(s.End))
	return sum.Rsh(sum, 1).Add(sum, big.NewInt(1)).String()
}

func sigOf(t testing.TB, sigs []shardSig, id string) shardSig {
	t.Helper()
	for _, s := range sigs {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no shard %s in %+v", id, sigs)
	return shardSig{}
}
