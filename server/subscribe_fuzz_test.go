package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/internal/wire"
)

// FuzzSubscribeEvent checks the event-stream frames the server writes for
// SubscribeToShard against the real aws-sdk-go-v2 decoder: whatever the
// record bytes, partition key, sequence numbers, timestamps and child
// shards, the SDK reads back exactly the event the server encoded, after an
// initial-response, and then a clean end of the stream.
func FuzzSubscribeEvent(f *testing.F) {
	var (
		mu  sync.Mutex
		cur *wire.SubscribeToShardEvent
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ev := cur
		mu.Unlock()
		out := &eventWriter{w: w, rc: http.NewResponseController(w), c: jsonCodec{}, enc: eventstream.NewEncoder()}
		w.Header().Set("Content-Type", contentTypeEventStream)
		w.WriteHeader(http.StatusOK)
		if err := out.initialResponse(); err != nil {
			return
		}
		_ = out.event(ev)
	}))
	f.Cleanup(ts.Close)
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(ts.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		// sdkhttp hides the request body's WriteTo (aws-sdk-go-v2 #1825,
		// #2737), which otherwise rarely closes the connection under the
		// event stream.
		HTTPClient: sdkhttp.NewStreamingClient(2),
	})

	f.Add([]byte("hello"), "key", "49590338271490256608559692538361571095921575989136588898", int64(1_700_000_000_123), int64(0), "49590338271490256608559692538361571095921575989136588899", false)
	f.Add([]byte{}, "k", "1", int64(0), int64(86_400_000), "", true)
	f.Add([]byte{0, 0xff, '"', '\\', '\n'}, "ключ \"quoted\" \u2028", "2", int64(1), int64(5), "3", true)
	f.Fuzz(func(t *testing.T, data []byte, key, seq string, arrivalMs, behind int64, cont string, child bool) {
		if !utf8.ValidString(key) || !utf8.ValidString(seq) || !utf8.ValidString(cont) || key == "" || seq == "" {
			t.Skip("the server sends only valid, non-empty UTF-8 keys and sequence numbers")
		}
		// Kinesis arrival times are epoch milliseconds of this era; keep
		// them where a float64 of seconds holds every millisecond.
		arrivalMs = arrivalMs % (1 << 45)
		if arrivalMs < 0 {
			arrivalMs = -arrivalMs
		}
		if behind < 0 {
			behind = -(behind + 1)
		}
		want := &wire.SubscribeToShardEvent{
			Records: []wire.Record{{
				SequenceNumber:              seq,
				ApproximateArrivalTimestamp: wire.Timestamp(arrivalMs),
				Data:                        data,
				PartitionKey:                key,
			}},
			MillisBehindLatest: behind,
		}
		if child {
			want.ChildShards = []wire.ChildShard{{
				ShardID:      "shardId-000000000002",
				ParentShards: []string{"shardId-000000000000", "shardId-000000000001"},
				HashKeyRange: wire.HashKeyRange{StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455"},
			}}
		} else {
			want.ContinuationSequenceNumber = &cont
		}
		mu.Lock()
		cur = want
		mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := client.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
			ConsumerARN:      aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1"),
			ShardId:          aws.String("shardId-000000000000"),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon},
		})
		if err != nil {
			t.Fatalf("SubscribeToShard: %v", err)
		}
		stream := out.GetStream()
		defer func() { _ = stream.Close() }() // drained below; its Err is checked
		var got []types.SubscribeToShardEvent
		for e := range stream.Events() {
			v, ok := e.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !ok {
				t.Fatalf("unexpected event %T", e)
			}
			got = append(got, v.Value)
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream error: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("got %d events, want 1", len(got))
		}
		g := got[0]
		if len(g.Records) != 1 {
			t.Fatalf("got %d records, want 1", len(g.Records))
		}
		r := g.Records[0]
		switch {
		case !bytes.Equal(r.Data, data):
			t.Errorf("data %q, want %q", r.Data, data)
		case aws.ToString(r.PartitionKey) != key:
			t.Errorf("partition key %q, want %q", aws.ToString(r.PartitionKey), key)
		case aws.ToString(r.SequenceNumber) != seq:
			t.Errorf("sequence number %q, want %q", aws.ToString(r.SequenceNumber), seq)
		case r.ApproximateArrivalTimestamp == nil || r.ApproximateArrivalTimestamp.UnixMilli() != arrivalMs:
			t.Errorf("arrival %v, want %d ms", r.ApproximateArrivalTimestamp, arrivalMs)
		case aws.ToInt64(g.MillisBehindLatest) != behind:
			t.Errorf("MillisBehindLatest %d, want %d", aws.ToInt64(g.MillisBehindLatest), behind)
		}
		if child {
			if g.ContinuationSequenceNumber != nil || len(g.ChildShards) != 1 ||
				aws.ToString(g.ChildShards[0].ShardId) != "shardId-000000000002" || len(g.ChildShards[0].ParentShards) != 2 ||
				aws.ToString(g.ChildShards[0].HashKeyRange.EndingHashKey) != "340282366920938463463374607431768211455" {
				t.Errorf("child shards %+v, continuation %v", g.ChildShards, g.ContinuationSequenceNumber)
			}
		} else if aws.ToString(g.ContinuationSequenceNumber) != cont || len(g.ChildShards) != 0 {
			t.Errorf("continuation %q, want %q (children %d)", aws.ToString(g.ContinuationSequenceNumber), cont, len(g.ChildShards))
		}
	})
}
