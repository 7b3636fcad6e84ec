package console_test

import (
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

// putN puts n records "<prefix>-<i>" with distinct partition keys.
func (e *env) putN(stream, prefix string, n int) []string {
	e.t.Helper()
	var data []string
	for i := range n {
		d := fmt.Sprintf("%s-%d", prefix, i)
		e.put(stream, fmt.Sprintf("key-%s-%d", prefix, i), []byte(d))
		data = append(data, d)
	}
	return data
}

// TestWholeStreamAcrossReshards pages through a stream that was split and
// merged again: every record comes once, parents' before their children's.
func TestWholeStreamAcrossReshards(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("lineage", 1)
	want := e.putN("lineage", "parent", 25)
	mid := new(big.Int).Lsh(big.NewInt(1), 127).String()
	if _, err := e.sdk.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamName: aws.String("lineage"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	want = append(want, e.putN("lineage", "child", 30)...)
	if _, err := e.sdk.MergeShards(e.ctx, &kinesis.MergeShardsInput{StreamName: aws.String("lineage"), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000002")}); err != nil {
		t.Fatal(err)
	}
	want = append(want, e.putN("lineage", "grandchild", 10)...)

	generation := map[string]int{"shardId-000000000000": 0, "shardId-000000000001": 1, "shardId-000000000002": 1, "shardId-000000000003": 2}
	for _, limit := range []int{7, 1000} {
		recs := e.readAll("lineage", fmt.Sprintf("from=TRIM_HORIZON&limit=%d", limit))
		var got []string
		seen := map[string]bool{}
		gen := 0
		for _, r := range recs {
			if seen[r.SequenceNumber] {
				t.Errorf("limit %d: %s shown twice", limit, r.SequenceNumber)
			}
			seen[r.SequenceNumber] = true
			got = append(got, string(r.Data))
			g, ok := generation[r.ShardID]
			if !ok || g < gen {
				t.Errorf("limit %d: a record of %s (generation %d) after generation %d", limit, r.ShardID, g, gen)
			}
			gen = max(gen, g)
		}
		if !sameSet(got, want) {
			t.Errorf("limit %d: read %d records %v, want %d %v", limit, len(got), got, len(want), want)
		}
	}

	// One shard: only its own records, and the read catches up at its end.
	recs := e.readAll("lineage", "from=TRIM_HORIZON&shard=shardId-000000000000&limit=10")
	if len(recs) != 25 {
		t.Errorf("shard 0 alone: %d records, want 25", len(recs))
	}
	// From a sequence number of a child: the rest of that child, then the
	// merged grandchild.
	var first page
	e.mustDo(http.MethodGet, "/console/api/streams/lineage/records?from=TRIM_HORIZON&shard=shardId-000000000001&limit=1", nil, http.StatusOK, &first)
	if len(first.Records) != 1 {
		t.Fatalf("first record of shard 1: %+v", first)
	}
	recs = e.readAll("lineage", "from=AFTER_SEQUENCE_NUMBER&seq="+first.Records[0].SequenceNumber+"&limit=5")
	byShard := map[string]int{}
	for _, r := range recs {
		byShard[r.ShardID]++
		if r.SequenceNumber == first.Records[0].SequenceNumber {
			t.Errorf("AFTER_SEQUENCE_NUMBER returned the record itself")
		}
	}
	if byShard["shardId-000000000000"] != 0 || byShard["shardId-000000000002"] != 0 || byShard["shardId-000000000003"] != 10 || byShard["shardId-000000000001"] == 0 {
		t.Errorf("from a sequence number of shard 1: records by shard %v", byShard)
	}
	// LATEST: nothing yet, caught up.
	var latest page
	e.mustDo(http.MethodGet, "/console/api/streams/lineage/records?from=LATEST", nil, http.StatusOK, &latest)
	if len(latest.Records) != 0 || !latest.CaughtUp {
		t.Errorf("LATEST: %+v", latest)
	}
	// ...then what is put after it, from its cursor.
	e.put("lineage", "late", []byte("late"))
	var next page
	e.mustDo(http.MethodGet, "/console/api/streams/lineage/records?cursor="+latest.Cursor, nil, http.StatusOK, &next)
	if len(next.Records) != 1 || string(next.Records[0].Data) != "late" {
		t.Errorf("after LATEST: %+v", next)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestDeaggregation: a KPL aggregate is shown as its user records, a page
// may end inside it, and the partition key filter applies to the user
// records.
func TestDeaggregation(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("kpl", 1)
	agg, err := aggregation.NewAggregator(aggregation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "b", "c", "d", "e"}
	for _, k := range keys {
		if err := agg.Add(aggregation.UserRecord{PartitionKey: k, Data: []byte("user-" + k)}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sdk.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("kpl"), PartitionKey: aws.String(rec.PartitionKey), Data: rec.Data}); err != nil {
		t.Fatal(err)
	}
	e.put("kpl", "plain", []byte("plain"))

	for _, limit := range []int{2, 100} {
		recs := e.readAll("kpl", fmt.Sprintf("from=TRIM_HORIZON&limit=%d", limit))
		if len(recs) != 6 {
			t.Fatalf("limit %d: %d records, want 6: %+v", limit, len(recs), recs)
		}
		for i, k := range keys {
			r := recs[i]
			if !r.Aggregated || r.SubSequenceNumber != int64(i) || r.PartitionKey != k || string(r.Data) != "user-"+k || r.SequenceNumber != recs[0].SequenceNumber {
				t.Errorf("limit %d: user record %d: %+v", limit, i, r)
			}
		}
		if r := recs[5]; r.Aggregated || r.SubSequenceNumber != 0 || string(r.Data) != "plain" {
			t.Errorf("limit %d: plain record %+v", limit, r)
		}
	}
	recs := e.readAll("kpl", "from=TRIM_HORIZON&limit=1&key=c")
	if len(recs) != 1 || recs[0].PartitionKey != "c" || recs[0].SubSequenceNumber != 2 {
		t.Errorf("key=c: %+v", recs)
	}
}
