package console

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// shardJSON is API.md's Shard.
type shardJSON struct {
	ID                     string   `json:"id"`
	Parent                 string   `json:"parent"`
	AdjacentParent         string   `json:"adjacentParent"`
	StartingHashKey        string   `json:"startingHashKey"`
	EndingHashKey          string   `json:"endingHashKey"`
	StartingSequenceNumber string   `json:"startingSequenceNumber"`
	EndingSequenceNumber   string   `json:"endingSequenceNumber"`
	Open                   bool     `json:"open"`
	Children               []string `json:"children"`
}

// allShards lists every shard of the stream (every page, closed shards
// included), ordered by shard ID.
func allShards(ctx context.Context, client *sdkClient, name string) ([]types.Shard, error) {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	slices.SortFunc(shards, func(a, b types.Shard) int { return strings.Compare(aws.ToString(a.ShardId), aws.ToString(b.ShardId)) })
	return shards, nil
}

// shardMap answers the stream's shards, with each one's children.
func shardMap(ctx context.Context, client *sdkClient, name string) (any, error) {
	shards, err := allShards(ctx, client, name)
	if err != nil {
		return nil, err
	}
	children := map[string][]string{}
	for _, s := range shards {
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil && *p != "" {
				children[*p] = append(children[*p], aws.ToString(s.ShardId))
			}
		}
	}
	out := make([]shardJSON, 0, len(shards))
	for _, s := range shards {
		j := shardJSON{
			ID:             aws.ToString(s.ShardId),
			Parent:         aws.ToString(s.ParentShardId),
			AdjacentParent: aws.ToString(s.AdjacentParentShardId),
			Children:       children[aws.ToString(s.ShardId)],
		}
		if j.Children == nil {
			j.Children = []string{}
		}
		if r := s.HashKeyRange; r != nil {
			j.StartingHashKey, j.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		}
		if r := s.SequenceNumberRange; r != nil {
			j.StartingSequenceNumber, j.EndingSequenceNumber = aws.ToString(r.StartingSequenceNumber), aws.ToString(r.EndingSequenceNumber)
		}
		j.Open = j.EndingSequenceNumber == ""
		out = append(out, j)
	}
	return map[string]any{"shards": out}, nil
}

func (c *Console) listShards(cl *call) (any, error) {
	return shardMap(cl.ctx, cl.client, cl.param("name"))
}

type splitInput struct {
	ShardID            string `json:"shardId"`
	NewStartingHashKey string `json:"newStartingHashKey"`
}

func (c *Console) splitShard(cl *call) (any, error) {
	var in splitInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	_, err := cl.client.SplitShard(cl.ctx, &kinesis.SplitShardInput{StreamName: aws.String(cl.param("name")), ShardToSplit: aws.String(in.ShardID), NewStartingHashKey: aws.String(in.NewStartingHashKey)})
	if err != nil {
		return nil, err
	}
	return shardMap(cl.ctx, cl.client, cl.param("name"))
}

type mergeInput struct {
	ShardID         string `json:"shardId"`
	AdjacentShardID string `json:"adjacentShardId"`
}

func (c *Console) mergeShards(cl *call) (any, error) {
	var in mergeInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	_, err := cl.client.MergeShards(cl.ctx, &kinesis.MergeShardsInput{StreamName: aws.String(cl.param("name")), ShardToMerge: aws.String(in.ShardID), AdjacentShardToMerge: aws.String(in.AdjacentShardID)})
	if err != nil {
		return nil, err
	}
	return shardMap(cl.ctx, cl.client, cl.param("name"))
}
