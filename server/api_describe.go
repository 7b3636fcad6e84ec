package server

import (
	"context"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/wire"
)

// DescribeStream and DescribeStreamSummary.

func (s *Server) describeStream(ctx context.Context, in *wire.DescribeStreamInput) (*wire.DescribeStreamOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.intRange("limit", in.Limit, 1, 10000)
		v.str("exclusiveStartShardId", in.ExclusiveStartShardID, 1, maxShardIDLen, shardIDRE)
		return v
	})
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := wire.StreamDescription{
		StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
		StreamModeDetails:       &wire.StreamModeDetails{StreamMode: st.mode},
		RetentionPeriodHours:    st.retentionHours,
		StreamCreationTimestamp: wire.Timestamp(st.created),
		EnhancedMonitoring:      []wire.EnhancedMetrics{{ShardLevelMetrics: nonNil(st.metrics)}},
		EncryptionType:          encryptionType(st.encKeyID != ""),
		Shards:                  []wire.Shard{},
	}
	if st.encKeyID != "" {
		k := st.encKeyID
		d.KeyID = &k
	}
	for _, sh := range st.shards {
		if in.ExclusiveStartShardID != nil && sh.id <= *in.ExclusiveStartShardID {
			continue
		}
		if len(d.Shards) == limit {
			d.HasMoreShards = true
			break
		}
		d.Shards = append(d.Shards, describeShard(st, sh))
	}
	return &wire.DescribeStreamOutput{StreamDescription: d}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func describeShard(st *stream, sh *shard) wire.Shard {
	w := wire.Shard{
		ShardID:             sh.id,
		HashKeyRange:        wire.HashKeyRange{StartingHashKey: sh.start.String(), EndingHashKey: sh.end.String()},
		SequenceNumberRange: wire.SequenceNumberRange{StartingSequenceNumber: st.seq(sh, engine.Position{})},
	}
	if sh.parent != "" {
		p := sh.parent
		w.ParentShardID = &p
	}
	if sh.adjParent != "" {
		p := sh.adjParent
		w.AdjacentParentShardID = &p
	}
	if sh.endSeq != "" {
		e := sh.endSeq
		w.SequenceNumberRange.EndingSequenceNumber = &e
	}
	return w
}

func (s *Server) describeStreamSummary(ctx context.Context, in *wire.DescribeStreamSummaryInput) (*wire.DescribeStreamSummaryOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, nil)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := wire.StreamDescriptionSummary{
		StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
		StreamModeDetails:          &wire.StreamModeDetails{StreamMode: st.mode},
		RetentionPeriodHours:       st.retentionHours,
		StreamCreationTimestamp:    wire.Timestamp(st.created),
		EnhancedMonitoring:         []wire.EnhancedMetrics{{ShardLevelMetrics: nonNil(st.metrics)}},
		EncryptionType:             encryptionType(st.encKeyID != ""),
		OpenShardCount:             int32(len(st.open)),
		ConsumerCount:              int32(len(st.consumers)),
		MaxRecordSizeInKiB:         st.maxRecordKiB,
		RecordDistributionStrategy: st.distribution,
	}
	if st.encKeyID != "" {
		k := st.encKeyID
		d.KeyID = &k
	}
	if st.mode == modeOnDemand {
		d.WarmThroughput = st.warmThroughput()
	}
	return &wire.DescribeStreamSummaryOutput{StreamDescriptionSummary: d}, nil
}

// warmThroughput reports the warm throughput of an on-demand stream: its
// target, and the 4 MiB/s an on-demand stream starts with (or the target,
// once reached, which shoal does at once).
func (st *stream) warmThroughput() *wire.WarmThroughput {
	cur := int32(onDemandShardCount)
	w := &wire.WarmThroughput{CurrentMiBps: &cur}
	if st.warmMiBps != nil {
		t := *st.warmMiBps
		w.TargetMiBps = &t
		if t > cur {
			w.CurrentMiBps = &t
		}
	}
	return w
}
