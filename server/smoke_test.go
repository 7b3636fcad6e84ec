package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

func TestPutGetRoundTrip(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	c := srv.Client()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < 100; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte{byte(i), 0, 255}})
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("failed %d", *out.FailedRecordCount)
	}
	got := 0
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		gr, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range gr.Records {
			var i int
			if _, err := fmt.Sscanf(aws.ToString(r.PartitionKey), "k%d", &i); err != nil {
				t.Fatalf("partition key %q: %v", aws.ToString(r.PartitionKey), err)
			}
			if !bytes.Equal(r.Data, []byte{byte(i), 0, 255}) {
				t.Fatalf("record %d data %v", i, r.Data)
			}
			if out.Records[i].SequenceNumber == nil || *out.Records[i].SequenceNumber != *r.SequenceNumber || *out.Records[i].ShardId != shard {
				t.Fatalf("record %d: put said %s/%s, read %s/%s", i, aws.ToString(out.Records[i].ShardId), aws.ToString(out.Records[i].SequenceNumber), shard, aws.ToString(r.SequenceNumber))
			}
			got++
		}
	}
	if got != 100 {
		t.Fatalf("read %d records", got)
	}
}
