package server

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/shoalstream/shoal/internal/wire"
)

// mutateStream applies change to an ACTIVE stream (or, with anyStatus, a
// stream in any status but DELETING) and persists the metadata. change runs
// with st.mu held for writing and returns an error to refuse the change; undo
// reverts it if the metadata cannot be saved.
func (s *Server) mutateStream(st *stream, anyStatus bool, change func() (undo func(), err error)) error {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	st.mu.Lock()
	if s.current(st.name) != st || st.status == statusDeleting {
		st.mu.Unlock()
		return s.notFound(st.name)
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

func (s *Server) increaseRetention(_ context.Context, in *wire.RetentionInput) (*wire.Empty, error) {
	return s.changeRetention(in, true)
}

func (s *Server) decreaseRetention(_ context.Context, in *wire.RetentionInput) (*wire.Empty, error) {
	return s.changeRetention(in, false)
}

func (s *Server) changeRetention(in *wire.RetentionInput, increase bool) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if v.required("retentionPeriodHours", in.RetentionPeriodHours != nil) {
		v.intRange("retentionPeriodHours", in.RetentionPeriodHours, 1, 1<<31-1)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
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

// ---- tags ----

// taggable is a resource that carries tags: a stream, or one of its
// enhanced fan-out consumers. Its tags live in the stream's metadata and
// change under st.mu.
type taggable struct {
	st *stream
	c  *consumer // nil: the stream itself
}

// tagsLocked returns the resource's tag map, creating it if needed. st.mu
// is held.
func (r taggable) tagsLocked() *map[string]string {
	m := &r.st.tags
	if r.c != nil {
		m = &r.c.tags
	}
	if *m == nil {
		*m = map[string]string{}
	}
	return m
}

func (r taggable) String() string {
	if r.c != nil {
		return "consumer " + r.c.name + " of stream " + r.st.name
	}
	return "stream " + r.st.name
}

func (s *Server) addTags(r taggable, tags map[string]string) error {
	return s.mutateStream(r.st, true, func() (func(), error) {
		m := r.tagsLocked()
		added := 0
		for k := range tags {
			if _, ok := (*m)[k]; !ok {
				added++
			}
		}
		if len(*m)+added > maxTagsPerStream {
			return nil, ErrLimitExceeded.With("Failed to add tags to %s under account %s because a given resource cannot have more than %d tags.", r, s.cfg.AccountID, maxTagsPerStream)
		}
		old := cloneTags(*m)
		for k, val := range tags {
			(*m)[k] = val
		}
		return func() { *m = old }, nil
	})
}

func (s *Server) removeTags(r taggable, keys []string) error {
	return s.mutateStream(r.st, true, func() (func(), error) {
		m := r.tagsLocked()
		old := cloneTags(*m)
		for _, k := range keys {
			delete(*m, k)
		}
		return func() { *m = old }, nil
	})
}

func cloneTags(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (v *validator) tagMap(member string, tags map[string]string, present bool) {
	if v.required(member, present) {
		if len(tags) < 1 {
			v.add("{}", member, "Member must have length greater than or equal to 1")
		}
		if len(tags) > 200 {
			v.add(fmt.Sprintf("'[%d tags]'", len(tags)), member, "Member must have length less than or equal to 200")
		}
		v.tags(member, tags)
	}
}

func (v *validator) tagKeys(member string, keys []string) {
	if v.required(member, keys != nil) {
		if len(keys) < 1 || len(keys) > 50 {
			v.add(fmt.Sprintf("'[%d keys]'", len(keys)), member, "Member must have length between 1 and 50")
		}
		for i := range keys {
			v.str(fmt.Sprintf("%s.%d.member", member, i+1), &keys[i], 1, tagKeyMaxLen, nil)
		}
	}
}

func (s *Server) addTagsToStream(_ context.Context, in *wire.AddTagsToStreamInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.tagMap("tags", in.Tags, in.Tags != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(in.Tags) > 10 {
		return nil, ErrInvalidArgument.With("Failed to add tags to stream %s under account %s because more than 10 tags were given in one request.", deref(in.StreamName), s.cfg.AccountID)
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	if err := s.addTags(taggable{st: st}, in.Tags); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) removeTagsFromStream(_ context.Context, in *wire.RemoveTagsFromStreamInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.tagKeys("tagKeys", in.TagKeys)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	if err := s.removeTags(taggable{st: st}, in.TagKeys); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func sortedTags(m map[string]string) []wire.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]wire.Tag, 0, len(keys))
	for _, k := range keys {
		val := m[k]
		tags = append(tags, wire.Tag{Key: k, Value: &val})
	}
	return tags
}

func (s *Server) listTagsForStream(_ context.Context, in *wire.ListTagsForStreamInput) (*wire.ListTagsForStreamOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.str("exclusiveStartTagKey", in.ExclusiveStartTagKey, 1, tagKeyMaxLen, nil)
	v.intRange("limit", in.Limit, 1, 50)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	limit := 50
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	st.mu.RLock()
	all := sortedTags(st.tags)
	st.mu.RUnlock()
	out := &wire.ListTagsForStreamOutput{Tags: []wire.Tag{}}
	for _, t := range all {
		if in.ExclusiveStartTagKey != nil && t.Key <= *in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}

// resourceOf resolves a ResourceARN: a stream ARN, or a consumer ARN
// (stream/<name>/consumer/<name>:<seconds>).
func (s *Server) resourceOf(arn *string) (taggable, error) {
	var v validator
	v.reqStr("resourceARN", arn, 1, maxStreamARNLen, resourceARNRE)
	if err := v.err(); err != nil {
		return taggable{}, err
	}
	if strings.Contains(*arn, "/consumer/") {
		st, c, err := s.resolveConsumer(&wire.ConsumerRef{ConsumerARN: arn})
		if err != nil {
			return taggable{}, err
		}
		return taggable{st: st, c: c}, nil
	}
	if !strings.Contains(*arn, ":stream/") {
		return taggable{}, ErrInvalidArgument.With("Resource ARN %s is not a stream or consumer ARN.", *arn)
	}
	st, err := s.lookup(nil, arn)
	if err != nil {
		return taggable{}, err
	}
	return taggable{st: st}, nil
}

func (s *Server) tagResource(_ context.Context, in *wire.TagResourceInput) (*wire.Empty, error) {
	var v validator
	v.tagMap("tags", in.Tags, in.Tags != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.resourceOf(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.addTags(r, in.Tags); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) untagResource(_ context.Context, in *wire.UntagResourceInput) (*wire.Empty, error) {
	var v validator
	v.tagKeys("tagKeys", in.TagKeys)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.resourceOf(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.removeTags(r, in.TagKeys); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) listTagsForResource(_ context.Context, in *wire.ListTagsForResourceInput) (*wire.ListTagsForResourceOutput, error) {
	r, err := s.resourceOf(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	r.st.mu.RLock()
	defer r.st.mu.RUnlock()
	tags := r.st.tags
	if r.c != nil {
		tags = r.c.tags
	}
	return &wire.ListTagsForResourceOutput{Tags: sortedTags(tags)}, nil
}

// ---- limits, modes and account settings ----

func (s *Server) describeLimits(_ context.Context, _ *wire.Empty) (*wire.DescribeLimitsOutput, error) {
	open, onDemand := s.counts(nil)
	return &wire.DescribeLimitsOutput{
		ShardLimit: s.cfg.ShardLimit, OpenShardCount: int32(open),
		OnDemandStreamCount: int32(onDemand), OnDemandStreamCountLimit: s.cfg.OnDemandStreamLimit,
	}, nil
}

func (s *Server) updateStreamMode(_ context.Context, in *wire.UpdateStreamModeInput) (*wire.Empty, error) {
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
	st, err := s.lookup(nil, in.StreamARN)
	if err != nil {
		return nil, err
	}
	mode := in.StreamModeDetails.StreamMode
	if in.WarmThroughputMiBps != nil && mode != modeOnDemand {
		return nil, ErrInvalidArgument.With("WarmThroughputMiBps is only supported for streams in ON_DEMAND mode.")
	}
	_, otherOnDemand := s.counts(st) // before st.mu: namesMu is taken first
	err = s.mutateStream(st, false, func() (func(), error) {
		if st.mode == mode {
			return nil, ErrInvalidArgument.With("Stream %s under account %s is already in %s mode.", st.name, s.cfg.AccountID, mode)
		}
		if mode == modeOnDemand {
			onDemand := otherOnDemand
			if onDemand+1 > int(s.cfg.OnDemandStreamLimit) {
				return nil, ErrLimitExceeded.With("This request would exceed the limit of %d on-demand streams for the account %s.", s.cfg.OnDemandStreamLimit, s.cfg.AccountID)
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

func (s *Server) updateMaxRecordSize(_ context.Context, in *wire.UpdateMaxRecordSizeInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	if v.required("maxRecordSizeInKiB", in.MaxRecordSizeInKiB != nil) {
		v.intRange("maxRecordSizeInKiB", in.MaxRecordSizeInKiB, minMaxRecordKiB, maxMaxRecordKiB)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookup(nil, in.StreamARN)
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

func (s *Server) updateStreamWarmThroughput(_ context.Context, in *wire.UpdateStreamWarmThroughputInput) (*wire.UpdateStreamWarmThroughputOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if v.required("warmThroughputMiBps", in.WarmThroughputMiBps != nil) {
		v.intRange("warmThroughputMiBps", in.WarmThroughputMiBps, 0, 1<<31-1)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
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

func (s *Server) updateStreamRecordDistributionStrategy(_ context.Context, in *wire.UpdateStreamRecordDistributionStrategyInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	if v.required("recordDistributionStrategy", in.RecordDistributionStrategy != nil) {
		v.enum("recordDistributionStrategy", in.RecordDistributionStrategy, distributionUserKey, distributionAuto)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookup(nil, in.StreamARN)
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
