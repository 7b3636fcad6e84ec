package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

func shardIDs(shards []types.Shard) string {
	ids := make([]string, len(shards))
	for i, sh := range shards {
		ids[i] = strings.TrimPrefix(aws.ToString(sh.ShardId), "shardId-00000000000")
	}
	return strings.Join(ids, ",")
}

func TestListShards(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 7)
	created := clock.Now()
	clock.Advance(time.Hour)
	e.put("s", "k", []byte("x"))

	out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	noErr(t, err, "ListShards")
	if shardIDs(out.Shards) != "0,1,2,3,4,5,6" || out.NextToken != nil {
		t.Fatalf("ListShards %s token %v", shardIDs(out.Shards), out.NextToken)
	}
	checkHashRanges(t, out.Shards)
	// ListShards and DescribeStream describe shards the same way.
	ds, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStream")
	for i, sh := range out.Shards {
		d := ds.StreamDescription.Shards[i]
		if *sh.HashKeyRange.StartingHashKey != *d.HashKeyRange.StartingHashKey || *sh.HashKeyRange.EndingHashKey != *d.HashKeyRange.EndingHashKey ||
			*sh.SequenceNumberRange.StartingSequenceNumber != *d.SequenceNumberRange.StartingSequenceNumber {
			t.Fatalf("shard %d: ListShards %+v, DescribeStream %+v", i, sh, d)
		}
	}

	t.Run("MaxResultsPaging", func(t *testing.T) {
		var got []types.Shard
		in := &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(3)}
		for page := 0; ; page++ {
			out, err := e.c.ListShards(e.ctx, in)
			noErr(t, err, "ListShards")
			got = append(got, out.Shards...)
			if wantMore := page < 2; (out.NextToken != nil) != wantMore {
				t.Fatalf("page %d: NextToken %v", page, out.NextToken)
			}
			if out.NextToken == nil {
				break
			}
			if len(out.Shards) != 3 {
				t.Fatalf("page %d holds %d shards", page, len(out.Shards))
			}
			in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(3)}
		}
		if shardIDs(got) != "0,1,2,3,4,5,6" {
			t.Fatalf("paged %s", shardIDs(got))
		}
	})

	t.Run("ExactPage", func(t *testing.T) {
		// A page that ends on the last shard has no NextToken.
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(7)})
		noErr(t, err, "ListShards")
		if len(out.Shards) != 7 || out.NextToken != nil {
			t.Fatalf("%d shards, token %v", len(out.Shards), out.NextToken)
		}
	})

	t.Run("ExclusiveStartShardId", func(t *testing.T) {
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String(shardID(3))})
		noErr(t, err, "ListShards")
		if shardIDs(out.Shards) != "4,5,6" {
			t.Fatalf("after shard 3: %s", shardIDs(out.Shards))
		}
		out, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String(shardID(6))})
		noErr(t, err, "ListShards")
		if len(out.Shards) != 0 || out.NextToken != nil {
			t.Fatalf("after the last shard: %s", shardIDs(out.Shards))
		}
	})

	t.Run("ShardFilters", func(t *testing.T) {
		ts := created.Add(30 * time.Minute)
		before := created.Add(-24 * time.Hour)
		future := created.Add(24 * time.Hour)
		for _, tc := range []struct {
			filter types.ShardFilter
			want   string
		}{
			{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(4))}, "5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(6))}, ""},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, "0,1,2,3,4,5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, "0,1,2,3,4,5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, "0,1,2,3,4,5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &ts}, "0,1,2,3,4,5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: &ts}, "0,1,2,3,4,5,6"},
			// A timestamp before the stream existed finds its first shards
			// (a KCL consumer starting AT_TIMESTAMP in the past lists so).
			{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &before}, "0,1,2,3,4,5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: &before}, "0,1,2,3,4,5,6"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &future}, "0,1,2,3,4,5,6"},
		} {
			t.Run(string(tc.filter.Type), func(t *testing.T) {
				f := tc.filter
				out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &f})
				noErr(t, err, "ListShards")
				if got := shardIDs(out.Shards); got != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			})
		}
	})

	t.Run("FilterCarriedByNextToken", func(t *testing.T) {
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(2),
			ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(2))}})
		noErr(t, err, "ListShards")
		got := shardIDs(out.Shards)
		for out.NextToken != nil {
			out, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(2)})
			noErr(t, err, "ListShards")
			got += ";" + shardIDs(out.Shards)
		}
		if got != "3,4;5,6" {
			t.Fatalf("paged filter: %s", got)
		}
	})

	t.Run("StreamCreationTimestamp", func(t *testing.T) {
		_, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), StreamCreationTimestamp: aws.Time(created)})
		noErr(t, err, "ListShards with the right creation time")
		_, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), StreamCreationTimestamp: aws.Time(created.Add(-time.Hour))})
		wantErr[types.ResourceNotFoundException](t, err)
	})

	t.Run("InvalidArgument", func(t *testing.T) {
		first, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(1)})
		noErr(t, err, "ListShards")
		ts := created.Add(time.Minute)
		for _, tc := range []struct {
			name string
			in   kinesis.ListShardsInput
		}{
			{"NextTokenWithStreamName", kinesis.ListShardsInput{NextToken: first.NextToken, StreamName: aws.String("s")}},
			{"NextTokenWithStreamARN", kinesis.ListShardsInput{NextToken: first.NextToken, StreamARN: aws.String(arn("s"))}},
			{"NextTokenWithExclusiveStart", kinesis.ListShardsInput{NextToken: first.NextToken, ExclusiveStartShardId: aws.String(shardID(1))}},
			{"NextTokenWithFilter", kinesis.ListShardsInput{NextToken: first.NextToken, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}},
			{"NextTokenWithCreationTime", kinesis.ListShardsInput{NextToken: first.NextToken, StreamCreationTimestamp: aws.Time(created)}},
			{"GarbageToken", kinesis.ListShardsInput{NextToken: aws.String("garbage")}},
			{"TamperedToken", kinesis.ListShardsInput{NextToken: aws.String(flip(*first.NextToken))}},
			{"Neither", kinesis.ListShardsInput{}},
			{"AfterShardIDWithoutShardID", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}}},
			{"AtTimestampWithoutTimestamp", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp}}},
			{"FromTimestampWithoutTimestamp", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp}}},
			{"ShardIDWithOtherType", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest, ShardId: aws.String(shardID(1))}}},
			{"TimestampWithOtherType", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon, Timestamp: &ts}}},
			{"ExclusiveStartWithFilter", kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String(shardID(1)), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.c.ListShards(e.ctx, &tc.in)
				wantErr[types.InvalidArgumentException](t, err)
			})
		}
		// A ListStreams token is not a ListShards token.
		e.createStream("t", 1)
		ls, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
		noErr(t, err, "ListStreams")
		_, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{NextToken: ls.NextToken})
		wantErr[types.InvalidArgumentException](t, err)
	})

	t.Run("Validation", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   kinesis.ListShardsInput
		}{
			{"MaxResultsZero", kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(0)}},
			{"MaxResultsHigh", kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(10001)}},
			{"BadFilterType", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: "AT_SOMETIME"}}},
			{"BadExclusiveStart", kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String("shard 1")}},
			{"BadFilterShardID", kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("")}}},
			{"BadName", kinesis.ListShardsInput{StreamName: aws.String("s s")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.c.ListShards(e.ctx, &tc.in)
				wantErr[types.ValidationException](t, err)
			})
		}
		// The SDK refuses a ShardFilter without Type; the server must too.
		wantRawError(t, rawCall(t, e.srv.Endpoint, "ListShards", `{"StreamName":"s","ShardFilter":{}}`), "ValidationException")
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("nope")})
		wantErr[types.ResourceNotFoundException](t, err)
		// A token of a stream deleted and re-created since.
		e.createStream("gone", 3)
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("gone"), MaxResults: aws.Int32(1)})
		noErr(t, err, "ListShards")
		_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("gone")})
		noErr(t, err, "DeleteStream")
		_, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{NextToken: out.NextToken})
		wantErr[types.ResourceNotFoundException](t, err)
		e.createStream("gone", 3)
		_, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{NextToken: out.NextToken})
		wantErr[types.ResourceNotFoundException](t, err)
	})

	t.Run("ExpiredNextToken", func(t *testing.T) {
		out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(2)})
		noErr(t, err, "ListShards")
		clock.Advance(5 * time.Minute)
		out2, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{NextToken: out.NextToken})
		noErr(t, err, "ListShards with a 300 s old token")
		if shardIDs(out2.Shards) != "2,3,4,5,6" {
			t.Fatalf("second page %s", shardIDs(out2.Shards))
		}
		clock.Advance(time.Second)
		_, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{NextToken: out.NextToken})
		wantErr[types.ExpiredNextTokenException](t, err)
	})
}
