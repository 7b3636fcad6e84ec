package server

import (
	"context"
	"fmt"

	"github.com/shoalstream/shoal/internal/wire"
)

// Account-wide limits and settings: DescribeLimits, DescribeAccountSettings
// and UpdateAccountSettings.

func (s *Server) describeLimits(ctx context.Context, _ *wire.Empty) (*wire.DescribeLimitsOutput, error) {
	open, onDemand := s.counts(s.callerAccount(ctx), nil)
	return &wire.DescribeLimitsOutput{
		ShardLimit: s.cfg.ShardLimit, OpenShardCount: int32(open),
		OnDemandStreamCount: int32(onDemand), OnDemandStreamCountLimit: s.cfg.OnDemandStreamLimit,
	}, nil
}

// Minimum throughput billing commitment statuses.
const (
	commitmentEnabled          = "ENABLED"
	commitmentDisabled         = "DISABLED"
	commitmentEnabledUntilEnd  = "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
	commitmentMinimumDaysMilli = int64(365) * 24 * 3600 * 1000
)

// currentAccount returns the account settings as of now: a commitment
// ENABLED_UNTIL_EARLIEST_ALLOWED_END is over (DISABLED) once its end has passed.
func currentAccount(a accountSettings, now int64) accountSettings {
	if a.CommitmentStatus == commitmentEnabledUntilEnd && now >= a.CommitmentEnd {
		a.CommitmentStatus = commitmentDisabled
	}
	return a
}

func (s *Server) accountOutput() *wire.AccountSettingsOutput {
	a := currentAccount(s.account, s.cfg.Now().UnixMilli())
	o := &wire.MinimumThroughputBillingCommitmentOutput{Status: commitmentDisabled}
	if a.CommitmentStatus != "" {
		o.Status = a.CommitmentStatus
	}
	if a.CommitmentStart != 0 {
		start := wire.Timestamp(a.CommitmentStart)
		earliest := wire.Timestamp(a.CommitmentStart + commitmentMinimumDaysMilli)
		o.StartedAt, o.EarliestAllowedEndAt = &start, &earliest
	}
	if a.CommitmentEnd != 0 {
		end := wire.Timestamp(a.CommitmentEnd)
		o.EndedAt = &end
	}
	return &wire.AccountSettingsOutput{MinimumThroughputBillingCommitment: o}
}

func (s *Server) describeAccountSettings(_ context.Context, _ *wire.Empty) (*wire.AccountSettingsOutput, error) {
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	return s.accountOutput(), nil
}

// updateAccountSettings turns the minimum throughput billing commitment on or
// off. As in Kinesis, a commitment runs for at least a year: turning it off
// earlier leaves it ENABLED_UNTIL_EARLIEST_ALLOWED_END.
func (s *Server) updateAccountSettings(ctx context.Context, in *wire.UpdateAccountSettingsInput) (*wire.AccountSettingsOutput, error) {
	var v validator
	if v.required("minimumThroughputBillingCommitment", in.MinimumThroughputBillingCommitment != nil) {
		st := in.MinimumThroughputBillingCommitment.Status
		if v.required("minimumThroughputBillingCommitment.status", st != nil) {
			v.enum("minimumThroughputBillingCommitment.status", st, commitmentEnabled, commitmentDisabled)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	want := *in.MinimumThroughputBillingCommitment.Status
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	old := s.account
	now := s.cfg.Now().UnixMilli()
	s.account = currentAccount(s.account, now)
	switch want {
	case commitmentEnabled:
		if s.account.CommitmentStatus != commitmentEnabled {
			s.account = accountSettings{CommitmentStatus: commitmentEnabled, CommitmentStart: now}
		}
	case commitmentDisabled:
		switch s.account.CommitmentStatus {
		case "", commitmentDisabled:
			s.account = old
			return nil, ErrInvalidArgument.With("The minimum throughput billing commitment is not enabled.")
		default:
			if now < s.account.CommitmentStart+commitmentMinimumDaysMilli {
				s.account.CommitmentStatus = commitmentEnabledUntilEnd
				s.account.CommitmentEnd = s.account.CommitmentStart + commitmentMinimumDaysMilli
			} else {
				s.account.CommitmentStatus = commitmentDisabled
				s.account.CommitmentEnd = now
			}
		}
	}
	if err := s.persistAccount(ctx); err != nil {
		s.account = old
		return nil, fmt.Errorf("save metadata: %w", err)
	}
	return s.accountOutput(), nil
}
