package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// streamOp calls one operation on a stream addressed by name and/or ARN.
type streamOp struct {
	name string
	call func(e *env, name, arn *string) error
}

// streamOps lists every operation that takes StreamName (and StreamARN).
// Each may run any number of times on an ACTIVE on-demand stream "s" with
// records in shard 0. DeleteStream is tested apart.
var streamOps = []streamOp{
	{"DescribeStream", func(e *env, n, a *string) error {
		out, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: n, StreamARN: a})
		if err == nil && aws.ToString(out.StreamDescription.StreamName) != "s" {
			e.t.Fatalf("described %s", aws.ToString(out.StreamDescription.StreamName))
		}
		return err
	}},
	{"DescribeStreamSummary", func(e *env, n, a *string) error {
		out, err := e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: n, StreamARN: a})
		if err == nil && aws.ToString(out.StreamDescriptionSummary.StreamARN) != arn("s") {
			e.t.Fatalf("described %s", aws.ToString(out.StreamDescriptionSummary.StreamARN))
		}
		return err
	}},
	{"ListShards", func(e *env, n, a *string) error {
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: n, StreamARN: a})
		if err == nil && len(out.Shards) != 4 {
			e.t.Fatalf("%d shards", len(out.Shards))
		}
		return err
	}},
	{"PutRecord", func(e *env, n, a *string) error {
		_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: n, StreamARN: a, PartitionKey: aws.String("k"), Data: []byte("x")})
		return err
	}},
	{"PutRecords", func(e *env, n, a *string) error {
		out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: n, StreamARN: a,
			Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}}})
		if err == nil && aws.ToInt32(out.FailedRecordCount) != 0 {
			e.t.Fatalf("%d failed", aws.ToInt32(out.FailedRecordCount))
		}
		return err
	}},
	{"GetShardIterator", func(e *env, n, a *string) error {
		out, err := e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: n, StreamARN: a,
			ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err == nil {
			recs := e.drain(aws.ToString(out.ShardIterator), 0)
			if len(recs) == 0 {
				e.t.Fatal("iterator read nothing")
			}
		}
		return err
	}},
	{"IncreaseStreamRetentionPeriod", func(e *env, n, a *string) error {
		_, err := e.c.IncreaseStreamRetentionPeriod(e.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: n, StreamARN: a, RetentionPeriodHours: aws.Int32(24)})
		return err
	}},
	{"DecreaseStreamRetentionPeriod", func(e *env, n, a *string) error {
		_, err := e.c.DecreaseStreamRetentionPeriod(e.ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: n, StreamARN: a, RetentionPeriodHours: aws.Int32(24)})
		return err
	}},
	{"AddTagsToStream", func(e *env, n, a *string) error {
		_, err := e.c.AddTagsToStream(e.ctx, &kinesis.AddTagsToStreamInput{StreamName: n, StreamARN: a, Tags: map[string]string{"k": "v"}})
		return err
	}},
	{"RemoveTagsFromStream", func(e *env, n, a *string) error {
		_, err := e.c.RemoveTagsFromStream(e.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: n, StreamARN: a, TagKeys: []string{"other"}})
		return err
	}},
	{"ListTagsForStream", func(e *env, n, a *string) error {
		out, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: n, StreamARN: a})
		if err == nil && len(out.Tags) != 1 {
			e.t.Fatalf("tags %+v", out.Tags)
		}
		return err
	}},
	{"UpdateStreamWarmThroughput", func(e *env, n, a *string) error {
		out, err := e.c.UpdateStreamWarmThroughput(e.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: n, StreamARN: a, WarmThroughputMiBps: aws.Int32(8)})
		if err == nil && (aws.ToString(out.StreamARN) != arn("s") || aws.ToString(out.StreamName) != "s") {
			e.t.Fatalf("UpdateStreamWarmThroughput answered %s %s", aws.ToString(out.StreamName), aws.ToString(out.StreamARN))
		}
		return err
	}},
}

func TestStreamARNAddressing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createOnDemand("s")
	e.createStream("other", 1)
	_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), ExplicitHashKey: aws.String("0"), PartitionKey: aws.String("k"), Data: []byte("x")})
	noErr(t, err, "PutRecord")
	_, err = e.c.AddTagsToStream(e.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"k": "v"}})
	noErr(t, err, "AddTagsToStream")

	name := aws.String("s")
	good := aws.String(arn("s"))
	for _, op := range streamOps {
		t.Run(op.name, func(t *testing.T) {
			e := *e
			e.t = t
			noErr(t, op.call(&e, nil, good), "by ARN only")
			noErr(t, op.call(&e, name, good), "by name and matching ARN")
			noErr(t, op.call(&e, name, nil), "by name only")
			for _, a := range []string{
				"arn:aws:kinesis:us-east-1:111111111111:stream/s", // another account
				"arn:aws:kinesis:eu-west-1:000000000000:stream/s", // another region
				arn("nope"), // no such stream
			} {
				wantErr[types.ResourceNotFoundException](t, op.call(&e, nil, aws.String(a)))
			}
			wantErr[types.InvalidArgumentException](t, op.call(&e, aws.String("other"), good))
			wantErr[types.InvalidArgumentException](t, op.call(&e, name, aws.String(arn("other"))))
			wantErr[types.InvalidArgumentException](t, op.call(&e, nil, nil))
			for _, a := range []string{"s", "arn:aws:kinesis:us-east-1:000000000000:stream/", "arn:aws:s3:us-east-1:000000000000:stream/s", "arn:aws:kinesis:us-east-1:0:stream/s"} {
				wantErr[types.ValidationException](t, op.call(&e, nil, aws.String(a)))
			}
		})
	}

	t.Run("GetRecords", func(t *testing.T) {
		it := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), StreamARN: good})
		noErr(t, err, "GetRecords with the stream's ARN")
		if len(out.Records) == 0 {
			t.Fatal("no records")
		}
		_, err = e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), StreamARN: aws.String(arn("other"))})
		wantErr[types.InvalidArgumentException](t, err)
		_, err = e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), StreamARN: aws.String("arn:aws:kinesis:us-east-1:111111111111:stream/s")})
		wantErr[types.ResourceNotFoundException](t, err)
	})

	t.Run("DeleteStream", func(t *testing.T) {
		_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:111111111111:stream/other")})
		wantErr[types.ResourceNotFoundException](t, err)
		_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), StreamARN: aws.String(arn("other"))})
		wantErr[types.InvalidArgumentException](t, err)
		_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamARN: aws.String(arn("other"))})
		noErr(t, err, "DeleteStream by ARN")
		_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("other")})
		wantErr[types.ResourceNotFoundException](t, err)
	})
}

func TestRegionAndAccountInARNs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{Region: "eu-central-1", AccountID: "123456789012"})
	e.createStream("s", 1)
	want := "arn:aws:kinesis:eu-central-1:123456789012:stream/s"
	if got := aws.ToString(e.summary("s").StreamARN); got != want {
		t.Fatalf("DescribeStreamSummary StreamARN %s, want %s", got, want)
	}
	ds, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamARN: aws.String(want)})
	noErr(t, err, "DescribeStream by ARN")
	if got := aws.ToString(ds.StreamDescription.StreamARN); got != want {
		t.Fatalf("DescribeStream StreamARN %s", got)
	}
	ls, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams")
	if len(ls.StreamSummaries) != 1 || aws.ToString(ls.StreamSummaries[0].StreamARN) != want {
		t.Fatalf("ListStreams summaries %+v", ls.StreamSummaries)
	}
	// The default region and account are now foreign.
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn("s"))})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.ListTagsForResource(e.ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(arn("s"))})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.UpdateMaxRecordSize(e.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(want), MaxRecordSizeInKiB: aws.Int32(2048)})
	noErr(t, err, "UpdateMaxRecordSize by ARN")
	_, err = e.c.TagResource(e.ctx, &kinesis.TagResourceInput{ResourceARN: aws.String(want), Tags: map[string]string{"a": "b"}})
	noErr(t, err, "TagResource")
	// Partition aws-cn has the same pattern and is accepted as long as
	// region and account match.
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String("arn:aws-cn:kinesis:eu-central-1:123456789012:stream/s")})
	noErr(t, err, "DescribeStreamSummary by aws-cn ARN")
}
