package server

import (
	"context"

	"github.com/shoalstream/shoal/internal/wire"
)

// IncreaseRetentionPeriod and DecreaseRetentionPeriod.

func (s *Server) increaseRetention(ctx context.Context, in *wire.RetentionInput) (*wire.Empty, error) {
	return s.changeRetention(ctx, in, true)
}

func (s *Server) decreaseRetention(ctx context.Context, in *wire.RetentionInput) (*wire.Empty, error) {
	return s.changeRetention(ctx, in, false)
}

func (s *Server) changeRetention(ctx context.Context, in *wire.RetentionInput, increase bool) (*wire.Empty, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		if v.required("retentionPeriodHours", in.RetentionPeriodHours != nil) {
			v.intRange("retentionPeriodHours", in.RetentionPeriodHours, 1, 1<<31-1)
		}
		return v
	})
	if err != nil {
		return nil, err
	}
	h := *in.RetentionPeriodHours
	if h < minRetentionHours {
		return nil, ErrInvalidArgument.With("Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", minRetentionHours, h)
	}
	if h > maxRetentionHours {
		return nil, ErrInvalidArgument.With("Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", maxRetentionHours, h)
	}
	err = s.mutateStream(st, false, func() (func(), error) {
		old := st.retentionHours
		if increase && h < old {
			return nil, ErrInvalidArgument.With("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, st.name, old)
		}
		if !increase && h > old {
			return nil, ErrInvalidArgument.With("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, st.name, old)
		}
		oldFloor := st.trimFloorMs
		// Pin what has expired under the old period, so a longer period
		// does not resurrect it.
		st.trimFloorMs = st.retentionCutoff(s.cfg.Now())
		st.retentionHours = h
		return func() { st.retentionHours, st.trimFloorMs = old, oldFloor }, nil
	})
	if err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}
