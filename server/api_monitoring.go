package server

import (
	"context"
	"fmt"
	"slices"

	"github.com/shoalstream/shoal/internal/wire"
)

// EnableEnhancedMonitoring and DisableEnhancedMonitoring: the shard-level
// metrics of a stream, kept in its catalog record and shown by
// DescribeStream(Summary); the metrics adapter exports per-shard series only
// for the metrics a stream enables.

// shardLevelMetrics are the shard-level metrics Kinesis defines, in its
// order; "ALL" stands for every one of them.
var shardLevelMetrics = []string{
	"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds",
}

const allShardLevelMetrics = "ALL"

func (s *Server) enableEnhancedMonitoring(ctx context.Context, in *wire.EnhancedMonitoringInput) (*wire.EnhancedMonitoringOutput, error) {
	return s.changeMonitoring(ctx, in, true)
}

func (s *Server) disableEnhancedMonitoring(ctx context.Context, in *wire.EnhancedMonitoringInput) (*wire.EnhancedMonitoringOutput, error) {
	return s.changeMonitoring(ctx, in, false)
}

func (s *Server) changeMonitoring(ctx context.Context, in *wire.EnhancedMonitoringInput, enable bool) (*wire.EnhancedMonitoringOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		if v.required("shardLevelMetrics", in.ShardLevelMetrics != nil) {
			if n := len(in.ShardLevelMetrics); n < 1 || n > 7 {
				v.add(fmt.Sprintf("'[%d metrics]'", n), "shardLevelMetrics", "Member must have length between 1 and 7")
			}
			for i := range in.ShardLevelMetrics {
				v.enum(fmt.Sprintf("shardLevelMetrics.%d.member", i+1), &in.ShardLevelMetrics[i], append(shardLevelMetrics, allShardLevelMetrics)...)
			}
		}
		return v
	})
	if err != nil {
		return nil, err
	}
	asked := map[string]bool{}
	for _, m := range in.ShardLevelMetrics {
		if m == allShardLevelMetrics {
			for _, x := range shardLevelMetrics {
				asked[x] = true
			}
			continue
		}
		asked[m] = true
	}
	var current, desired []string
	err = s.mutateStream(st, false, func() (func(), error) {
		old := st.metrics
		current = slices.Clone(old)
		have := map[string]bool{}
		for _, m := range old {
			have[m] = true
		}
		desired = nil
		for _, m := range shardLevelMetrics { // Kinesis's order
			if enable && (have[m] || asked[m]) || !enable && have[m] && !asked[m] {
				desired = append(desired, m)
			}
		}
		st.setMetricsLocked(desired)
		return func() { st.setMetricsLocked(old) }, nil
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Metrics.ShardMonitoring(st.name, desired)
	return &wire.EnhancedMonitoringOutput{
		StreamName: st.name, StreamARN: st.arn,
		CurrentShardLevelMetrics: nonNil(current), DesiredShardLevelMetrics: nonNil(desired),
	}, nil
}

// setMetricsLocked sets the shard-level metrics of st. The caller holds
// st.mu.
func (st *stream) setMetricsLocked(ms []string) {
	st.metrics = ms
	var bits uint32
	for i, m := range shardLevelMetrics {
		if slices.Contains(ms, m) {
			bits |= 1 << i
		}
	}
	st.monitored.Store(bits)
}

// Indexes of shardLevelMetrics, for stream.monitors.
const (
	smIncomingBytes = iota
	smIncomingRecords
	smOutgoingBytes
	smOutgoingRecords
	smWriteThrottled
	smReadThrottled
	smIteratorAge
)

// shardMetric reports v for shard-level metric i of sh when st enabled it.
func (s *Server) shardMetric(st *stream, sh *shard, i int, v int64) {
	if st.monitored.Load()&(1<<i) != 0 {
		s.cfg.Metrics.Shard(st.name, sh.id, shardLevelMetrics[i], v)
	}
}
