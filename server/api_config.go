package server

import (
	"context"
	"fmt"

	"github.com/shoalstream/shoal/internal/wire"
)

// Changes to a stream's configuration: the mutateStream core they share
// (also with retention and tags), the capacity mode, the record size limit,
// the warm throughput and the record distribution strategy.

// mutateStream applies change to an ACTIVE stream (or, with anyStatus, a
// stream in any status but DELETING) and persists the metadata. change runs
// with st.mu held for writing and returns an error to refuse the change; undo
// reverts it if the metadata cannot be saved.
func (s *Server) mutateStream(st *stream, anyStatus bool, change func() (undo func(), err error)) error {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	st.mu.Lock()
	if s.current(st.key) != st || st.status == statusDeleting {
		st.mu.Unlock()
		return st.missing()
	}
	if !anyStatus && st.status != statusActive {
		status := st.status
		st.mu.Unlock()
		return s.notActive(st, status)
	}
	undo, err := change()
	st.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.persist(bgContext(), st); err != nil {
		if undo != nil {
			st.mu.Lock()
			undo()
			st.mu.Unlock()
		}
		return fmt.Errorf("save metadata: %w", err)
	}
	return nil
}

func (s *Server) updateStreamMode(ctx context.Context, in *wire.UpdateStreamModeInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	if v.required("streamModeDetails", in.StreamModeDetails != nil) {
		m := in.StreamModeDetails.StreamMode
		v.enum("streamModeDetails.streamMode", &m, modeProvisioned, modeOnDemand)
	}
	v.intRange("warmThroughputMiBps", in.WarmThroughputMiBps, 0, 1<<31-1)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookup(ctx, nil, in.StreamARN)
	if err != nil {
		return nil, err
	}
	mode := in.StreamModeDetails.StreamMode
	if in.WarmThroughputMiBps != nil && mode != modeOnDemand {
		return nil, ErrInvalidArgument.With("WarmThroughputMiBps is only supported for streams in ON_DEMAND mode.")
	}
	_, otherOnDemand := s.counts(st.account, st) // before st.mu: namesMu is taken first
	err = s.mutateStream(st, false, func() (func(), error) {
		if st.mode == mode {
			return nil, ErrInvalidArgument.With("Stream %s under account %s is already in %s mode.", st.name, st.account, mode)
		}
		if mode == modeOnDemand {
			onDemand := otherOnDemand
			if onDemand+1 > int(s.cfg.OnDemandStreamLimit) {
				return nil, ErrLimitExceeded.With("This request would exceed the limit of %d on-demand streams for the account %s.", s.cfg.OnDemandStreamLimit, st.account)
			}
		}
		oldMode, oldWarm, oldDist := st.mode, st.warmMiBps, st.distribution
		st.setMode(mode)
		if mode == modeOnDemand {
			st.warmMiBps = in.WarmThroughputMiBps
		} else {
			st.warmMiBps = nil
			st.distribution = distributionUserKey // AUTO exists only on on-demand streams
		}
		if s.cfg.UpdateDelay > 0 {
			st.status = statusUpdating
		}
		return func() {
			st.setMode(oldMode)
			st.warmMiBps, st.distribution, st.status = oldWarm, oldDist, statusActive
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if s.cfg.UpdateDelay > 0 {
		s.afterDelay(st, s.cfg.UpdateDelay, statusUpdating, statusActive)
	}
	return &wire.Empty{}, nil
}

func (s *Server) updateMaxRecordSize(ctx context.Context, in *wire.UpdateMaxRecordSizeInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	if v.required("maxRecordSizeInKiB", in.MaxRecordSizeInKiB != nil) {
		v.intRange("maxRecordSizeInKiB", in.MaxRecordSizeInKiB, minMaxRecordKiB, maxMaxRecordKiB)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookup(ctx, nil, in.StreamARN)
	if err != nil {
		return nil, err
	}
	err = s.mutateStream(st, false, func() (func(), error) {
		old := st.maxRecordKiB
		st.maxRecordKiB = *in.MaxRecordSizeInKiB
		return func() { st.maxRecordKiB = old }, nil
	})
	if err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) updateStreamWarmThroughput(ctx context.Context, in *wire.UpdateStreamWarmThroughputInput) (*wire.UpdateStreamWarmThroughputOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		if v.required("warmThroughputMiBps", in.WarmThroughputMiBps != nil) {
			v.intRange("warmThroughputMiBps", in.WarmThroughputMiBps, 0, 1<<31-1)
		}
		return v
	})
	if err != nil {
		return nil, err
	}
	var out *wire.UpdateStreamWarmThroughputOutput
	err = s.mutateStream(st, false, func() (func(), error) {
		if st.mode != modeOnDemand {
			return nil, ErrInvalidArgument.With("Warm throughput can only be set on streams in ON_DEMAND mode; stream %s is %s.", st.name, st.mode)
		}
		old := st.warmMiBps
		w := *in.WarmThroughputMiBps
		st.warmMiBps = &w
		out = &wire.UpdateStreamWarmThroughputOutput{StreamARN: st.arn, StreamName: st.name, WarmThroughput: *st.warmThroughput()}
		return func() { st.warmMiBps = old }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) updateStreamRecordDistributionStrategy(ctx context.Context, in *wire.UpdateStreamRecordDistributionStrategyInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	if v.required("recordDistributionStrategy", in.RecordDistributionStrategy != nil) {
		v.enum("recordDistributionStrategy", in.RecordDistributionStrategy, distributionUserKey, distributionAuto)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookup(ctx, nil, in.StreamARN)
	if err != nil {
		return nil, err
	}
	want := *in.RecordDistributionStrategy
	err = s.mutateStream(st, false, func() (func(), error) {
		if want == distributionAuto && st.mode != modeOnDemand {
			return nil, ErrInvalidArgument.With("RecordDistributionStrategy AUTO is only supported for streams in ON_DEMAND mode; stream %s is %s.", st.name, st.mode)
		}
		old := st.distribution
		st.distribution = want
		return func() { st.distribution = old }, nil
	})
	if err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}
