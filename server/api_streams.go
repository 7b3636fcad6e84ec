package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/kms"
	"github.com/shoalstream/shoal/internal/wire"
)

func (s *Server) createStream(ctx context.Context, in *wire.CreateStreamInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamName", in.StreamName, 1, maxStreamNameLen, streamNameRE)
	v.intRange("shardCount", in.ShardCount, 1, 100000)
	v.intRange("maxRecordSizeInKiB", in.MaxRecordSizeInKiB, minMaxRecordKiB, maxMaxRecordKiB)
	v.intRange("warmThroughputMiBps", in.WarmThroughputMiBps, 0, 1<<31-1)
	if in.StreamModeDetails != nil {
		m := in.StreamModeDetails.StreamMode
		v.enum("streamModeDetails.streamMode", &m, modeProvisioned, modeOnDemand)
	}
	v.enum("recordDistributionStrategy", in.RecordDistributionStrategy, distributionUserKey, distributionAuto)
	v.tags("tags", in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	mode := modeProvisioned
	if in.StreamModeDetails != nil {
		mode = in.StreamModeDetails.StreamMode
	}
	var count int
	switch {
	case mode == modeOnDemand:
		count = onDemandShardCount
	case in.ShardCount == nil:
		return nil, ErrInvalidArgument.With("ShardCount is required for a stream in PROVISIONED mode.")
	default:
		count = int(*in.ShardCount)
	}
	distribution := distributionUserKey
	if in.RecordDistributionStrategy != nil {
		distribution = *in.RecordDistributionStrategy
	}
	if distribution == distributionAuto && mode != modeOnDemand {
		return nil, ErrInvalidArgument.With("RecordDistributionStrategy AUTO is only supported for streams in ON_DEMAND mode.")
	}
	if in.WarmThroughputMiBps != nil && mode != modeOnDemand {
		return nil, ErrInvalidArgument.With("WarmThroughputMiBps is only supported for streams in ON_DEMAND mode.")
	}
	if len(in.Tags) > maxTagsPerStream {
		return nil, ErrInvalidArgument.With("A stream can have at most %d tags.", maxTagsPerStream)
	}
	maxKiB := int32(defaultMaxRecordKiB)
	if in.MaxRecordSizeInKiB != nil {
		maxKiB = *in.MaxRecordSizeInKiB
	}

	name := *in.StreamName
	ref := streamRef{account: s.callerAccount(ctx), name: name}
	if err := s.authorizeCreate(ctx, ref, len(in.Tags) > 0); err != nil {
		return nil, err
	}
	if err := s.reserveName(ref, count, mode == modeOnDemand); err != nil {
		return nil, err
	}
	defer s.releaseName(ref)
	id, err := newStreamID()
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	now := s.cfg.Now().UnixMilli()
	st := &stream{
		name: name, account: ref.account, catAccount: s.catalogAccount(ref.account), key: s.key(ref), id: id, epoch: epochOf(id), arn: s.streamARN(ref.account, name), created: now,
		status: statusCreating, retentionHours: defaultRetentionHours,
		tags: map[string]string{}, maxRecordKiB: maxKiB, warmMiBps: in.WarmThroughputMiBps,
		distribution: distribution, consumers: map[string]*consumer{},
	}
	st.setMode(mode)
	if s.cfg.EncryptAll {
		st.encKeyID = kms.DefaultAlias
	}
	for k, val := range in.Tags {
		st.tags[k] = val
	}
	if s.cfg.CreateDelay == 0 {
		st.status = statusActive
	}
	// Durable before visible: the logs, then the catalog record, then the
	// stream is published. A failure on the way removes what was made.
	starts, ends := hashkey.SplitEvenly(count)
	for i := 0; i < count; i++ {
		sh := &shard{index: uint32(i), id: shardIDOf(uint32(i)), start: starts[i], end: ends[i], createdMs: now}
		if err := s.newShardKeys(st, sh); err != nil {
			s.discard(st)
			return nil, err
		}
		if sh.log, err = s.createLog(ctx, st, sh.index); err != nil {
			s.discard(st)
			return nil, fmt.Errorf("create stream %s: %w", name, err)
		}
		s.attachLimits(sh)
		st.shards = append(st.shards, sh)
	}
	st.rebuildOpen()
	st.nextIndex = uint32(count)
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if err := s.persist(ctx, st); err != nil {
		s.discard(st)
		if errors.Is(err, engine.ErrExists) {
			// Another server sharing the catalog created it first.
			return nil, ErrResourceInUse.With("Stream %s under account %s already exists.", name, ref.account)
		}
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	s.namesMu.Lock()
	s.publishLocked(st.key, st)
	s.namesMu.Unlock()
	if s.cfg.CreateDelay > 0 {
		s.afterDelay(st, s.cfg.CreateDelay, statusCreating, statusActive)
	}
	s.log.Info("stream created", zap.String("stream", name), zap.Int("shards", count), zap.String("mode", mode))
	return &wire.Empty{}, nil
}

// createLog makes the engine log of a new shard. A log left under the same
// id by a crash that the catalog never named (load removes those, so this
// is a safety net) is deleted first: its records were never acknowledged as
// part of this shard.
func (s *Server) createLog(ctx context.Context, st *stream, index uint32) (engine.Log, error) {
	ctx = engine.WithLabels(ctx, engine.Labels{StreamName: st.name, ShardID: shardIDOf(index)})
	l, err := s.eng.CreateLog(ctx, st.logID(index))
	if errors.Is(err, engine.ErrExists) && s.shared() {
		// Another server made it: its reshard of this stream got there
		// first, and this server's view is stale.
		return nil, s.staleError(st)
	}
	if errors.Is(err, engine.ErrExists) {
		s.log.Warn("removing orphaned shard data before reusing its id", zap.String("stream", st.name), zap.String("shard", shardIDOf(index)))
		if err := s.eng.DeleteLog(ctx, st.logID(index)); err != nil {
			return nil, err
		}
		l, err = s.eng.CreateLog(ctx, st.logID(index))
	}
	return l, err
}

// discard deletes a stream's shard logs (after its record left the catalog,
// or when it never reached it).
func (s *Server) discard(st *stream) {
	ctx := bgContext()
	for _, sh := range st.shards {
		_ = sh.log.Close()
		if err := s.eng.DeleteLog(ctx, st.logID(sh.index)); err != nil {
			s.log.Error("remove shard log", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
		}
	}
}

// afterDelay moves st from one status to another after d, unless the stream
// changed in between. The timer is stopped by Shutdown.
func (s *Server) afterDelay(st *stream, d time.Duration, from, to string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.statusTimer.stop()
	st.statusTimer = s.after(d, func() {
		if to == "" {
			s.finishDelete(st)
			return
		}
		s.changeAndSave(st, func() bool {
			if st.status != from {
				return false
			}
			st.status = to
			return true
		})
	})
}

// changeAndSave runs change with st.ctl and st.mu held and, if it reports a
// change, persists it (undoing it if that fails). It is for timers, which
// have nobody to return an error to: a failed save is logged.
func (s *Server) changeAndSave(st *stream, change func() bool) {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if s.current(st.key) != st {
		return
	}
	st.mu.Lock()
	saved := st.metaLocked()
	changed := change()
	st.mu.Unlock()
	if !changed {
		return
	}
	if err := s.persist(bgContext(), st); err != nil {
		s.log.Error("save metadata", zap.String("stream", st.name), zap.Error(err))
		st.mu.Lock()
		st.restoreLocked(saved)
		st.mu.Unlock()
	}
}

func (s *Server) deleteStream(ctx context.Context, in *wire.DeleteStreamInput) (*wire.Empty, error) {
	st, err := s.validStream(ctx, in.StreamRef, nil)
	if err != nil {
		return nil, err
	}
	st.ctl.Lock()
	st.mu.Lock()
	status := st.status
	if s.current(st.key) != st || status == statusDeleting {
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, st.missing()
	}
	if status == statusCreating {
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, s.notActive(st, status)
	}
	if len(st.consumers) > 0 && (in.EnforceConsumerDeletion == nil || !*in.EnforceConsumerDeletion) {
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, ErrResourceInUse.With("Stream %s under account %s has registered consumers; set EnforceConsumerDeletion to delete it with them.", st.name, st.account)
	}
	saved := st.metaLocked()
	st.status = statusDeleting
	for _, c := range st.consumers {
		c.status = statusDeleting
		c.timer.stop()
	}
	st.mu.Unlock()
	if err := s.persist(ctx, st); err != nil {
		st.mu.Lock()
		st.restoreLocked(saved)
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, fmt.Errorf("delete stream %s: %w", st.name, err)
	}
	st.ctl.Unlock()
	// Subscriptions end with ResourceNotFoundException now, not when the
	// DELETING period is over.
	s.endSubscriptions(st.arn+"/consumer/", ErrResourceNotFound.With("Stream %s under account %s is being deleted.", st.name, st.account))
	if s.cfg.DeleteDelay == 0 {
		s.finishDelete(st)
	} else {
		s.afterDelay(st, s.cfg.DeleteDelay, statusDeleting, "")
	}
	return &wire.Empty{}, nil
}

// finishDelete forgets a DELETING stream and removes its data: first its
// catalog record (a crash after that leaves only logs no record names, which
// the next start removes), then the snapshot entry, then the logs.
func (s *Server) finishDelete(st *stream) {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if s.current(st.key) != st {
		return
	}
	err := s.cat.DeleteStream(bgContext(), st.key, st.version)
	if s.shared() && (errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrConflict)) {
		// Another server finished the deletion first (or the record changed
		// under this one's view: refresh decides).
		s.goBackground(func() { s.refresh(bgContext(), st.name) })
		return
	}
	if err != nil {
		// The stream stays DELETING in the catalog and is removed at the next start.
		s.log.Error("delete stream metadata", zap.String("stream", st.name), zap.Error(err))
	}
	s.namesMu.Lock()
	s.publishLocked(st.key, nil)
	s.namesMu.Unlock()
	st.mu.RLock()
	shards := st.shards
	st.mu.RUnlock()
	s.discard(st)
	for _, sh := range shards {
		sh.signal()
	}
	s.log.Info("stream deleted", zap.String("stream", st.name))
	s.cfg.Metrics.StreamDeleted(st.name)
}
