package server_test

// No process-wide lock on the data path: while a control-plane call on
// stream A is stuck inside its catalog write (the fault engine holds its
// PutStream), data-plane calls and other streams' control-plane calls go
// on. The bound of every call is a 30 s context; nothing sleeps.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

func TestStreamBlockedInCatalogWriteDoesNotBlockOthers(t *testing.T) {
	cases := []struct {
		name  string
		call  func(ctx context.Context, r *rig) error
		check func(t *testing.T, r *rig)
	}{
		{
			name: "AddTagsToStream",
			call: func(ctx context.Context, r *rig) error {
				_, err := r.c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("A"), Tags: map[string]string{"k": "v"}})
				return err
			},
			check: func(t *testing.T, r *rig) {
				out, err := r.c.ListTagsForStream(context.Background(), &kinesis.ListTagsForStreamInput{StreamName: aws.String("A")})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Tags) != 1 || aws.ToString(out.Tags[0].Key) != "k" {
					t.Fatalf("tags of A after AddTagsToStream: %+v", out.Tags)
				}
			},
		},
		{
			name: "SplitShard",
			call: func(ctx context.Context, r *rig) error {
				s0 := sigOfList(r, "A", shardID(0))
				_, err := r.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("A"), ShardToSplit: aws.String(shardID(0)), NewStartingHashKey: aws.String(midKey(s0))})
				return err
			},
			check: func(t *testing.T, r *rig) {
				if n := len(listShardSigs(t, r.c, "A")); n != 4 {
					t.Fatalf("A has %d shards after the split, want 4", n)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, "", server.Config{})
			ctx := context.Background()
			for _, name := range []string{"A", "B"} {
				if _, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
					t.Fatal(err)
				}
			}
			l := &ledger{tag: "b"}
			l.mustPut(t, r.c, "B", 100)

			entered := make(chan struct{})
			release := make(chan struct{})
			var enterOnce, releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			defer unblock() // a failing test must not leave the server stuck
			r.fe.setHook(func(c faultCall) error {
				if c.Op == opPutStream && c.Meta.Name == "A" {
					enterOnce.Do(func() { close(entered) })
					<-release
				}
				return nil
			})
			bound, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.call(bound, r) }()
			select {
			case <-entered:
			case err := <-done:
				t.Fatalf("%s on A returned before its catalog write: %v", tc.name, err)
			case <-bound.Done():
				t.Fatalf("%s on A never reached its catalog write", tc.name)
			}

			// A's call is blocked inside PutStream, holding A's locks.
			steps := []struct {
				what string
				fn   func(ctx context.Context) error
			}{
				{"PutRecords B", func(ctx context.Context) error {
					_, err := l.put(ctx, r.c, "B", 100)
					return err
				}},
				{"GetShardIterator+GetRecords B", func(ctx context.Context) error {
					it, err := r.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("B"), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
					if err != nil {
						return err
					}
					out, err := r.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
					if err == nil && len(out.Records) == 0 {
						err = fmt.Errorf("no records in B/%s", shardID(0))
					}
					return err
				}},
				{"DescribeStreamSummary B", func(ctx context.Context) error {
					_, err := r.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("B")})
					return err
				}},
				{"ListStreams", func(ctx context.Context) error {
					out, err := r.c.ListStreams(ctx, &kinesis.ListStreamsInput{})
					if err == nil && len(out.StreamNames) < 2 {
						err = fmt.Errorf("ListStreams = %v", out.StreamNames)
					}
					return err
				}},
				{"CreateStream C", func(ctx context.Context) error {
					_, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("C"), ShardCount: aws.Int32(1)})
					return err
				}},
				{"AddTagsToStream B", func(ctx context.Context) error {
					_, err := r.c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("B"), Tags: map[string]string{"b": "1"}})
					return err
				}},
				{"DescribeStreamSummary A", func(ctx context.Context) error {
					_, err := r.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("A")})
					return err
				}},
				{"ListShards A", func(ctx context.Context) error {
					_, err := r.c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("A")})
					return err
				}},
			}
			for _, s := range steps {
				if err := s.fn(bound); err != nil {
					t.Fatalf("%s while %s on A is blocked in its catalog write: %v", s.what, tc.name, err)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("%s on A returned while its PutStream was still blocked: %v", tc.name, err)
			default:
			}
			unblock()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s on A: %v", tc.name, err)
				}
			case <-bound.Done():
				t.Fatalf("%s on A did not finish once unblocked", tc.name)
			}
			r.fe.setHook(nil)
			tc.check(t, r)
			checkAcked(t, r.c, "B", l.all())
		})
	}
}
