package responder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/bench/responder"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/internal/seqnum"
)

func newClient(t *testing.T) *kinesis.Client {
	t.Helper()
	srv := httptest.NewServer(responder.New(2))
	t.Cleanup(srv.Close)
	// sdkhttp's client hides the request body's WriteTo: with a plain
	// client, aws-sdk-go-v2 rarely fails a call answered 200 with "use of
	// closed network connection" (see sdkhttp.NewClient).
	hc := sdkhttp.NewClient(4)
	t.Cleanup(hc.CloseIdleConnections)
	return kinesis.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:  hc,
	}, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
}

// TestResponderAnswersTheSDK drives the responder through aws-sdk-go-v2 as
// "shoal bench put" and "get" do, and checks that every answer parses and
// holds together: shard ids listed by ListShards, sequence numbers that
// seqnum parses, records routed by the MD5 of their partition keys, and a
// read-back of as many records as were put.
func TestResponderAnswersTheSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t)
	name := aws.String("s")

	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil {
		t.Fatal(err)
	}
	if d := sum.StreamDescriptionSummary; d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 4 || aws.ToString(d.StreamName) != "s" {
		t.Fatalf("summary %+v", d)
	}
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Shards) != 4 {
		t.Fatalf("ListShards: %d shards", len(ls.Shards))
	}
	type rng struct{ lo, hi *big.Int }
	ranges := map[string]rng{}
	for _, s := range ls.Shards {
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if lo == nil || hi == nil {
			t.Fatalf("shard %s: bad range %+v", aws.ToString(s.ShardId), s.HashKeyRange)
		}
		ranges[aws.ToString(s.ShardId)] = rng{lo, hi}
	}

	var entries []types.PutRecordsRequestEntry
	size := 0
	for i := 0; i < 300; i++ {
		d := bytes.Repeat([]byte{byte(i)}, 10+i%7)
		size += len(d)
		entries = append(entries, types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(fmt.Sprint("key-", i))})
	}
	put, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(put.FailedRecordCount) != 0 || len(put.Records) != len(entries) {
		t.Fatalf("PutRecords: %d failed, %d results", aws.ToInt32(put.FailedRecordCount), len(put.Records))
	}
	perShard := map[string]int{}
	for i, r := range put.Records {
		id := aws.ToString(r.ShardId)
		rg, ok := ranges[id]
		if !ok {
			t.Fatalf("record %d: unknown shard %q", i, id)
		}
		if k := hashkey.FromPartitionKey(*entries[i].PartitionKey).Big(); k.Cmp(rg.lo) < 0 || k.Cmp(rg.hi) > 0 {
			t.Fatalf("record %d routed to %s, outside its range", i, id)
		}
		n, err := seqnum.Parse(aws.ToString(r.SequenceNumber))
		if err != nil || n.Index != uint16(i) {
			t.Fatalf("record %d: sequence number %q: %+v, %v", i, aws.ToString(r.SequenceNumber), n, err)
		}
		perShard[id]++
	}
	one, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, Data: []byte("x"), PartitionKey: aws.String("key-0")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(one.ShardId) != aws.ToString(put.Records[0].ShardId) {
		t.Fatalf("PutRecord went to %s, PutRecords to %s", aws.ToString(one.ShardId), aws.ToString(put.Records[0].ShardId))
	}
	if _, err := seqnum.Parse(aws.ToString(one.SequenceNumber)); err != nil {
		t.Fatalf("PutRecord sequence number %q: %v", aws.ToString(one.SequenceNumber), err)
	}
	perShard[aws.ToString(one.ShardId)]++

	total := 0
	for id, want := range perShard {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		iter := it.ShardIterator
		for iter != nil {
			gr, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(7)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range gr.Records {
				if _, err := seqnum.Parse(aws.ToString(r.SequenceNumber)); err != nil || r.ApproximateArrivalTimestamp == nil || aws.ToString(r.PartitionKey) == "" {
					t.Fatalf("GetRecords record %+v: %v", r, err)
				}
			}
			got += len(gr.Records)
			if len(gr.Records) == 0 && aws.ToInt64(gr.MillisBehindLatest) == 0 {
				break
			}
			iter = gr.NextShardIterator
		}
		if got != want {
			t.Errorf("shard %s: read %d records, put %d", id, got, want)
		}
		total += got
	}
	if total != len(entries)+1 {
		t.Fatalf("read %d records, put %d", total, len(entries)+1)
	}
}

// TestResponderErrors checks that refusals reach the SDK as typed errors.
func TestResponderErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newClient(t)
	_, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000099"), ShardIteratorType: types.ShardIteratorTypeLatest})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("GetShardIterator of a missing shard: %v", err)
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("bogus")})
	var ia *types.InvalidArgumentException
	if !errors.As(err, &ia) {
		t.Fatalf("GetRecords with a bad iterator: %v", err)
	}
}
