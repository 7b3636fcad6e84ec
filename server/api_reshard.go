package server

import (
	"context"
	"fmt"
	"sort"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/seqnum"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/wire"
)

// Resharding: SplitShard, MergeShards and UpdateShardCount.
//
// Closing a shard fixes its EndingSequenceNumber at the largest number the
// shard could ever hand out (offset MaxOffset-1, index 0xFFFF): it is >= every
// record's sequence number regardless of how much the shard held, and no
// record can be appended after it because the shard's appendMu is held for
// writing while the shard is marked closed (see shard.appendMu): an appender
// that finds its shard closed routes the record again to the open children.

const scalingUniform = "UNIFORM_SCALING"

// childSpec describes a shard a reshard creates.
type childSpec struct {
	start, end        hashkey.Key
	parent, adjParent string
}

// reshardLocked closes parents and creates children in one step. The caller
// holds s.mu; reshardLocked takes the parents' appendMu (waiting for the
// appends in flight) and then st.mu itself.
func (s *Server) reshardLocked(st *stream, parents []*shard, kids []childSpec) ([]*shard, error) {
	for _, p := range parents {
		p.appendMu.Lock()
	}
	defer func() {
		for _, p := range parents {
			p.appendMu.Unlock()
		}
	}()
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.streams[st.name] != st || st.status == statusDeleting {
		return nil, s.notFound(st.name)
	}
	for _, p := range parents {
		if p.closed.Load() {
			return nil, ErrInvalidArgument.With("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", p.id, st.name, s.cfg.AccountID)
		}
	}
	now := s.cfg.Now().UnixMilli()
	var made []*shard
	for _, k := range kids {
		sh := &shard{index: st.nextIndex, start: k.start, end: k.end, parent: k.parent, adjParent: k.adjParent, createdMs: now}
		sh.id = shardIDOf(sh.index)
		var err error
		if sh.log, err = storage.Open(s.shardDir(st, sh.index), s.logOptions()); err != nil {
			for _, m := range made {
				_ = m.log.Remove()
			}
			return nil, fmt.Errorf("reshard %s: %w", st.name, err)
		}
		st.nextIndex++
		s.attachLimits(sh)
		made = append(made, sh)
	}
	for _, p := range parents {
		p.endSeq = seqnum.Number{Shard: p.index, Offset: seqnum.MaxOffset - 1, Index: ^uint16(0), Epoch: st.epoch}.String()
		p.closedMs = now
		p.closed.Store(true)
		p.signal() // its subscribers finish with ChildShards
	}
	st.shards = append(st.shards, made...)
	st.rebuildOpen()
	return made, nil
}

// reshardTargets checks that st is a provisioned ACTIVE stream and resolves
// the shard ids given. The caller holds s.mu.
func (s *Server) reshardTargets(st *stream, ids ...string) ([]*shard, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if s.streams[st.name] != st || st.status == statusDeleting {
		return nil, s.notFound(st.name)
	}
	if st.status != statusActive {
		return nil, s.notActive(st, st.status)
	}
	if st.mode != modeProvisioned {
		return nil, ErrInvalidArgument.With("Stream %s under account %s is in ON_DEMAND mode; resharding is only supported for PROVISIONED streams.", st.name, s.cfg.AccountID)
	}
	out := make([]*shard, len(ids))
	for i, id := range ids {
		if out[i] = st.shardByID(id); out[i] == nil {
			return nil, ErrResourceNotFound.With("Could not find shard %s in stream %s under account %s.", id, st.name, s.cfg.AccountID)
		}
		if out[i].closed.Load() {
			return nil, ErrInvalidArgument.With("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, st.name, s.cfg.AccountID)
		}
	}
	return out, nil
}

// finishReshardLocked persists the metadata and starts the UPDATING period.
// The caller holds s.mu.
func (s *Server) finishReshardLocked(st *stream) error {
	if s.cfg.UpdateDelay > 0 {
		st.mu.Lock()
		st.status = statusUpdating
		st.mu.Unlock()
	}
	if err := s.saveLocked(); err != nil {
		return fmt.Errorf("save metadata: %w", err)
	}
	if s.cfg.UpdateDelay > 0 {
		s.afterDelay(st, s.cfg.UpdateDelay, statusUpdating, statusActive)
	}
	return nil
}

func (s *Server) shardLimitCheck(extra int) error {
	open, _ := s.countsLocked()
	if open+extra > int(s.cfg.ShardLimit) {
		return ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			s.cfg.AccountID, s.cfg.Region, s.cfg.ShardLimit, extra)
	}
	return nil
}

func (s *Server) splitShard(_ context.Context, in *wire.SplitShardInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.reqStr("shardToSplit", in.ShardToSplit, 1, maxShardIDLen, shardIDRE)
	v.reqStr("newStartingHashKey", in.NewStartingHashKey, 0, 0, hashKeyRE)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	key, err := hashkey.Parse(*in.NewStartingHashKey)
	if err != nil {
		return nil, ErrInvalidArgument.With("NewStartingHashKey %s is not a valid hash key: it must be in the range [0, 2^128-1].", *in.NewStartingHashKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, err := s.reshardTargets(st, *in.ShardToSplit)
	if err != nil {
		return nil, err
	}
	p := sh[0]
	if key.Cmp(p.start) <= 0 || key.Cmp(p.end) > 0 {
		return nil, ErrInvalidArgument.With("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
			key, p.id, st.name, s.cfg.AccountID, p.start, p.end)
	}
	if err := s.shardLimitCheck(1); err != nil {
		return nil, err
	}
	below, _ := key.Sub(hashkey.Key{Lo: 1})
	kids := []childSpec{{start: p.start, end: below, parent: p.id}, {start: key, end: p.end, parent: p.id}}
	if _, err := s.reshardLocked(st, sh, kids); err != nil {
		return nil, err
	}
	if err := s.finishReshardLocked(st); err != nil {
		return nil, err
	}
	s.log.Info("shard split", zap.String("stream", st.name), zap.String("shard", p.id))
	return &wire.Empty{}, nil
}

func (s *Server) mergeShards(_ context.Context, in *wire.MergeShardsInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.reqStr("shardToMerge", in.ShardToMerge, 1, maxShardIDLen, shardIDRE)
	v.reqStr("adjacentShardToMerge", in.AdjacentShardToMerge, 1, maxShardIDLen, shardIDRE)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, err := s.reshardTargets(st, *in.ShardToMerge, *in.AdjacentShardToMerge)
	if err != nil {
		return nil, err
	}
	a, b := sh[0], sh[1]
	lo, hi := a, b
	if b.start.Cmp(a.start) < 0 {
		lo, hi = b, a
	}
	if next, over := lo.end.Add(hashkey.Key{Lo: 1}); a == b || over || next.Cmp(hi.start) != 0 {
		return nil, ErrInvalidArgument.With("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", a.id, b.id, st.name, s.cfg.AccountID)
	}
	kids := []childSpec{{start: lo.start, end: hi.end, parent: a.id, adjParent: b.id}}
	if _, err := s.reshardLocked(st, sh, kids); err != nil {
		return nil, err
	}
	if err := s.finishReshardLocked(st); err != nil {
		return nil, err
	}
	s.log.Info("shards merged", zap.String("stream", st.name), zap.String("shard", a.id), zap.String("adjacent", b.id))
	return &wire.Empty{}, nil
}

func (s *Server) updateShardCount(_ context.Context, in *wire.UpdateShardCountInput) (*wire.UpdateShardCountOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if v.required("targetShardCount", in.TargetShardCount != nil) {
		v.intRange("targetShardCount", in.TargetShardCount, 1, 1<<31-1)
	}
	if v.required("scalingType", in.ScalingType != nil) {
		v.enum("scalingType", in.ScalingType, scalingUniform)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	target := int(*in.TargetShardCount)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.reshardTargets(st); err != nil {
		return nil, err
	}
	st.mu.RLock()
	open := append([]*shard(nil), st.open...)
	st.mu.RUnlock()
	cur := len(open)
	switch {
	case target > 2*cur:
		return nil, ErrInvalidArgument.With("UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: %d Target shard count: %d", cur, target)
	case 2*target < cur:
		return nil, ErrInvalidArgument.With("UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: %d Target shard count: %d", cur, target)
	case target > int(s.cfg.ShardLimit):
		return nil, ErrLimitExceeded.With("Target shard count %d exceeds the shard limit %d of account %s.", target, s.cfg.ShardLimit, s.cfg.AccountID)
	}
	if target > cur {
		if err := s.shardLimitCheck(target - cur); err != nil {
			return nil, err
		}
	}
	if target != cur {
		if err := s.rescaleLocked(st, open, target); err != nil {
			// Persist the steps that did happen, so disk matches memory.
			if serr := s.finishReshardLocked(st); serr != nil {
				s.log.Error("save metadata after a failed rescale", zap.Error(serr))
			}
			return nil, err
		}
		if err := s.finishReshardLocked(st); err != nil {
			return nil, err
		}
	}
	s.log.Info("shard count updated", zap.String("stream", st.name), zap.Int("from", cur), zap.Int("to", target))
	return &wire.UpdateShardCountOutput{CurrentShardCount: int32(cur), TargetShardCount: int32(target), StreamARN: st.arn, StreamName: st.name}, nil
}

// rescaleLocked turns the open shards (sorted by starting hash key) into
// target shards of even ranges: first it splits every shard at each target
// boundary inside it, so that each open shard lies within one target range,
// then it merges the pieces of each target range from left to right. Every
// child has one parent (split) or two (merge). The caller holds s.mu.
func (s *Server) rescaleLocked(st *stream, open []*shard, target int) error {
	starts, ends := hashkey.SplitEvenly(target)
	// Splits.
	var pieces []*shard
	for _, sh := range open {
		cur := sh
		for _, b := range starts[1:] {
			if b.Cmp(cur.start) <= 0 || b.Cmp(cur.end) > 0 {
				continue
			}
			below, _ := b.Sub(hashkey.Key{Lo: 1})
			kids, err := s.reshardLocked(st, []*shard{cur}, []childSpec{
				{start: cur.start, end: below, parent: cur.id},
				{start: b, end: cur.end, parent: cur.id},
			})
			if err != nil {
				return err
			}
			pieces = append(pieces, kids[0])
			cur = kids[1]
		}
		pieces = append(pieces, cur)
	}
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].start.Cmp(pieces[j].start) < 0 })
	// Merges.
	j := 0
	for i := range target {
		acc := pieces[j]
		j++
		for j < len(pieces) && pieces[j].end.Cmp(ends[i]) <= 0 {
			next := pieces[j]
			j++
			kids, err := s.reshardLocked(st, []*shard{acc, next}, []childSpec{
				{start: acc.start, end: next.end, parent: acc.id, adjParent: next.id},
			})
			if err != nil {
				return err
			}
			acc = kids[0]
		}
		if acc.start.Cmp(starts[i]) != 0 || acc.end.Cmp(ends[i]) != 0 {
			return fmt.Errorf("rescale %s: shard %s covers [%s, %s], want [%s, %s]", st.name, acc.id, acc.start, acc.end, starts[i], ends[i])
		}
	}
	return nil
}
