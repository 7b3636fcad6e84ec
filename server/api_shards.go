package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/shoalstream/shoal/internal/wire"
)

// ShardFilter types of ListShards.
const (
	filterAfterShardID    = "AFTER_SHARD_ID"
	filterAtTrimHorizon   = "AT_TRIM_HORIZON"
	filterFromTrimHorizon = "FROM_TRIM_HORIZON"
	filterAtLatest        = "AT_LATEST"
	filterAtTimestamp     = "AT_TIMESTAMP"
	filterFromTimestamp   = "FROM_TIMESTAMP"
)

type shardFilter struct {
	typ     string
	shardID string
	ts      int64
}

func (f shardFilter) encode() string {
	return fmt.Sprintf("%s|%s|%d", f.typ, f.shardID, f.ts)
}

func decodeShardFilter(s string) (shardFilter, bool) {
	parts := strings.SplitN(s, "|", 3)
	if len(parts) != 3 {
		return shardFilter{}, false
	}
	var ts int64
	if _, err := fmt.Sscan(parts[2], &ts); err != nil {
		return shardFilter{}, false
	}
	return shardFilter{typ: parts[0], shardID: parts[1], ts: ts}, true
}

// keep reports whether the filter lets a shard through. trimMs is the
// retention cutoff: records older than it are gone.
func (f shardFilter) keep(sh *shard, trimMs int64) bool {
	open := sh.closedMs == 0
	switch f.typ {
	case filterAfterShardID:
		return sh.id > f.shardID
	case filterAtLatest:
		return open
	case filterAtTrimHorizon:
		// Shards open at the trim horizon: not closed before it.
		return open || sh.closedMs >= trimMs
	case filterFromTrimHorizon:
		return true // every shard still listed holds data at or after the trim horizon
	case filterAtTimestamp:
		// A shard without parents holds its hash keys from the stream's
		// beginning: a timestamp before the stream was created finds it.
		initial := sh.parent == "" && sh.adjParent == ""
		return (initial || sh.createdMs <= f.ts) && (open || sh.closedMs > f.ts)
	case filterFromTimestamp:
		return open || sh.closedMs > f.ts
	}
	return true
}

func (s *Server) listShards(ctx context.Context, in *wire.ListShardsInput) (*wire.ListShardsOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.str("nextToken", in.NextToken, 1, maxNextTokenLen, nil)
	v.str("exclusiveStartShardId", in.ExclusiveStartShardID, 1, maxShardIDLen, shardIDRE)
	v.intRange("maxResults", in.MaxResults, 1, 10000)
	if in.ShardFilter != nil {
		v.required("shardFilter.type", in.ShardFilter.Type != nil)
		v.enum("shardFilter.type", in.ShardFilter.Type, filterAfterShardID, filterAtTrimHorizon, filterFromTrimHorizon,
			filterAtLatest, filterAtTimestamp, filterFromTimestamp)
		v.str("shardFilter.shardId", in.ShardFilter.ShardID, 1, maxShardIDLen, shardIDRE)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	limit := 1000
	if in.MaxResults != nil && int(*in.MaxResults) < limit {
		limit = int(*in.MaxResults)
	}

	var (
		st     *stream
		after  string
		filter shardFilter
		err    error
	)
	if in.NextToken != nil {
		if in.StreamName != nil || in.StreamARN != nil || in.ExclusiveStartShardID != nil || in.ShardFilter != nil || in.StreamCreationTimestamp != nil {
			return nil, ErrInvalidArgument.With("NextToken cannot be provided together with StreamName, StreamARN, ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp.")
		}
		t, err := s.decodeListToken(*in.NextToken)
		var ok bool
		if err == nil {
			filter, ok = decodeShardFilter(t.filter)
		}
		if err != nil || !ok || t.stream == "" {
			return nil, ErrInvalidArgument.With("Invalid NextToken.")
		}
		if err := s.checkTokenAge(t); err != nil {
			return nil, err
		}
		ref := s.refOfKey(t.stream)
		if st, err = s.lookupName(ctx, ref); err != nil {
			return nil, err
		}
		if st.id != t.streamID {
			return nil, ErrResourceNotFound.With("Stream %s under account %s was deleted since the NextToken was issued.", ref.name, ref.account)
		}
		after = t.after
	} else {
		if st, err = s.lookupRef(ctx, in.StreamRef); err != nil {
			return nil, err
		}
		if in.StreamCreationTimestamp != nil && in.StreamCreationTimestamp.Millis()/1000 != st.created/1000 {
			return nil, ErrResourceNotFound.With("Stream %s under account %s with creation timestamp %d not found.", st.name, st.account, in.StreamCreationTimestamp.Millis()/1000)
		}
		if in.ExclusiveStartShardID != nil {
			if in.ShardFilter != nil {
				return nil, ErrInvalidArgument.With("ExclusiveStartShardId and ShardFilter cannot be provided together.")
			}
			after = *in.ExclusiveStartShardID
		}
		if f := in.ShardFilter; f != nil {
			filter.typ = *f.Type
			switch filter.typ {
			case filterAfterShardID:
				if f.ShardID == nil {
					return nil, ErrInvalidArgument.With("ShardFilter of type AFTER_SHARD_ID requires a ShardId.")
				}
				filter.shardID = *f.ShardID
			case filterAtTimestamp, filterFromTimestamp:
				if f.Timestamp == nil {
					return nil, ErrInvalidArgument.With("ShardFilter of type %s requires a Timestamp.", filter.typ)
				}
				filter.ts = f.Timestamp.Millis()
			}
			if f.ShardID != nil && filter.typ != filterAfterShardID {
				return nil, ErrInvalidArgument.With("ShardId may only be set for ShardFilter type AFTER_SHARD_ID.")
			}
			if f.Timestamp != nil && filter.typ != filterAtTimestamp && filter.typ != filterFromTimestamp {
				return nil, ErrInvalidArgument.With("Timestamp may only be set for ShardFilter types AT_TIMESTAMP and FROM_TIMESTAMP.")
			}
		}
	}

	st.mu.RLock()
	status := st.status
	trimMs := st.retentionCutoff(s.cfg.Now())
	out := &wire.ListShardsOutput{Shards: []wire.Shard{}}
	more := false
	for _, sh := range st.shards {
		if after != "" && sh.id <= after {
			continue
		}
		if !filter.keep(sh, trimMs) {
			continue
		}
		if len(out.Shards) == limit {
			more = true
			break
		}
		out.Shards = append(out.Shards, describeShard(st, sh))
	}
	st.mu.RUnlock()
	if status == statusCreating {
		return nil, s.notActive(st, status)
	}
	if more {
		tok := s.encodeListToken(listToken{
			issuedMs: s.cfg.Now().UnixMilli(), after: out.Shards[len(out.Shards)-1].ShardID,
			streamID: st.id, stream: st.key, filter: filter.encode(),
		})
		out.NextToken = &tok
	}
	return out, nil
}
