package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/wait"
)

// TestNATSTwoNodesAPI drives the control plane through one shoal server and
// reads every answer through the other, on one NATS cluster: settings,
// tags, UpdateShardCount and MergeShards, every iterator type, and the
// errors Kinesis gives for a stale or wrong request.
func TestNATSTwoNodesAPI(t *testing.T) {
	p := startNATSPair(t, "API")
	ca, cb := p.ca, p.cb
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "api"
	s := aws.String(name)
	// seen polls B until check passes: B applies A's changes through the
	// catalog watch, milliseconds later.
	seen := func(what string, check func() error) {
		t.Helper()
		wait.Eventually(t, 30*time.Second, func() error {
			if err := check(); err != nil {
				return fmt.Errorf("%s through B: %w", what, err)
			}
			return nil
		})
	}
	summary := func() (*types.StreamDescriptionSummary, error) {
		out, err := cb.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: s})
		if err != nil {
			return nil, err
		}
		return out.StreamDescriptionSummary, nil
	}

	if _, err := ca.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: s, ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	seen("the new stream", func() error { _, err := summary(); return err })
	if _, err := ca.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: s, RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: s, Tags: map[string]string{"team": "data"}}); err != nil {
		t.Fatal(err)
	}
	seen("retention and tags", func() error {
		sum, err := summary()
		if err != nil {
			return err
		}
		tags, err := cb.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: s})
		if err != nil {
			return err
		}
		if aws.ToInt32(sum.RetentionPeriodHours) != 48 || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "data" {
			return fmt.Errorf("retention %d h, tags %v", aws.ToInt32(sum.RetentionPeriodHours), tags.Tags)
		}
		return nil
	})
	// B refuses what A's change made invalid, with Kinesis's error.
	_, err := cb.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: s, RetentionPeriodHours: aws.Int32(72)})
	if !isCode(err, "InvalidArgumentException") {
		t.Fatalf("decreasing retention to more than it is, through B: %v, want InvalidArgumentException", err)
	}

	// Records through A; every iterator type through B.
	var seqs []string
	start := time.Now().Add(-time.Second)
	for i := range 6 { // key k: one shard
		out, err := ca.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: s, PartitionKey: aws.String("k"), Data: fmt.Appendf(nil, "r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	put0, err := ca.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: s, PartitionKey: aws.String("k"), Data: []byte("r6")})
	if err != nil {
		t.Fatal(err)
	}
	seqs = append(seqs, aws.ToString(put0.SequenceNumber))
	shard := put0.ShardId
	iter := func(typ types.ShardIteratorType, seq *string, ts *time.Time) []types.Record {
		t.Helper()
		it, err := cb.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: s, ShardId: shard, ShardIteratorType: typ, StartingSequenceNumber: seq, Timestamp: ts})
		if err != nil {
			t.Fatalf("GetShardIterator %s through B: %v", typ, err)
		}
		// Read until caught up: B's nearest replica may not have applied
		// A's newest batch yet, and B then learns of it from A's notice or
		// the leader's state, a moment later.
		var recs []types.Record
		for next, empty := it.ShardIterator, 0; next != nil && empty < 3; {
			out, err := cb.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
			if err != nil {
				t.Fatalf("GetRecords %s through B: %v", typ, err)
			}
			recs = append(recs, out.Records...)
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				empty++
			}
			next = out.NextShardIterator
		}
		return recs
	}
	if got := iter(types.ShardIteratorTypeTrimHorizon, nil, nil); len(got) != 7 || aws.ToString(got[0].SequenceNumber) != seqs[0] {
		t.Fatalf("TRIM_HORIZON through B: %d records", len(got))
	}
	if got := iter(types.ShardIteratorTypeAtSequenceNumber, aws.String(seqs[3]), nil); len(got) != 4 || aws.ToString(got[0].SequenceNumber) != seqs[3] {
		t.Fatalf("AT_SEQUENCE_NUMBER through B: %d records", len(got))
	}
	if got := iter(types.ShardIteratorTypeAfterSequenceNumber, aws.String(seqs[3]), nil); len(got) != 3 || aws.ToString(got[0].SequenceNumber) != seqs[4] {
		t.Fatalf("AFTER_SEQUENCE_NUMBER through B: %d records", len(got))
	}
	if got := iter(types.ShardIteratorTypeAtTimestamp, nil, &start); len(got) != 7 {
		t.Fatalf("AT_TIMESTAMP before the puts through B: %d records, want 7", len(got))
	}
	if got := iter(types.ShardIteratorTypeLatest, nil, nil); len(got) != 0 {
		t.Fatalf("LATEST through B: %d records, want 0", len(got))
	}
	// An iterator made by A reads through B (one HMAC secret for all servers).
	itA, err := ca.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: s, ShardId: shard, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cb.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: itA.ShardIterator}); err != nil || len(out.Records) == 0 || aws.ToString(out.Records[0].SequenceNumber) != seqs[0] {
		t.Fatalf("A's iterator through B: %v", err)
	}

	// UpdateShardCount through A, then merge through B.
	if _, err := ca.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: s, TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		t.Fatal(err)
	}
	var open []types.Shard
	seen("four open shards", func() error {
		out, err := cb.ListShards(ctx, &kinesis.ListShardsInput{StreamName: s, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		if err != nil {
			return err
		}
		if len(out.Shards) != 4 {
			return fmt.Errorf("%d open shards", len(out.Shards))
		}
		open = out.Shards
		return nil
	})
	if _, err := cb.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: s, ShardToMerge: open[0].ShardId, AdjacentShardToMerge: open[1].ShardId}); err != nil {
		t.Fatalf("MergeShards through B: %v", err)
	}
	wait.Eventually(t, 30*time.Second, func() error {
		out, err := ca.ListShards(ctx, &kinesis.ListShardsInput{StreamName: s, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		if err != nil {
			return err
		}
		if len(out.Shards) != 3 {
			return fmt.Errorf("A lists %d open shards after B's merge, want 3", len(out.Shards))
		}
		return nil
	})
	// A merge of a shard that is closed now, through A: InvalidArgument
	// (or ResourceInUse while A's view catches up), never a second merge.
	_, err = ca.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: s, ShardToMerge: open[0].ShardId, AdjacentShardToMerge: open[1].ShardId})
	if !isCode(err, "InvalidArgumentException") && !isCode(err, "ResourceInUseException") {
		t.Fatalf("merging closed shards again through A: %v", err)
	}
	// The old shard of key k ended: reading it to its end through B gives its
	// children.
	it, err := cb.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: s, ShardId: shard, ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seqs[6])})
	if err != nil {
		t.Fatal(err)
	}
	for next := it.ShardIterator; next != nil; {
		out, err := cb.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
		if err != nil {
			t.Fatal(err)
		}
		if out.NextShardIterator == nil {
			if len(out.ChildShards) == 0 {
				t.Fatal("the closed shard ended without child shards")
			}
			break
		}
		next = out.NextShardIterator
	}

	// Deleting through A: B answers ResourceNotFound.
	if _, err := ca.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: s}); err != nil {
		t.Fatal(err)
	}
	seen("the deletion", func() error {
		if _, err := summary(); !isCode(err, "ResourceNotFoundException") {
			return fmt.Errorf("DescribeStreamSummary: %v", err)
		}
		return nil
	})
}
