package server

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/seqnum"
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

// maxScalingsPerDay is how many UpdateShardCount calls that change the shard
// count a stream takes per rolling 24 hours ("ten times", API reference).
const maxScalingsPerDay = 10

// recentScalings returns the times (unix ms) of the stream's scalings within
// the 24 hours before now, oldest first.
func (st *stream) recentScalings(now time.Time) []int64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	cutoff := now.Add(-24 * time.Hour).UnixMilli()
	var out []int64
	for _, t := range st.scaleTimes {
		if t > cutoff {
			out = append(out, t)
		}
	}
	return out
}

// reshardPlan is a reshard being prepared: the existing open shards it
// closes and the shards it creates (of which some may already be closed by
// a later step of the same plan, as UpdateShardCount's intermediate shards
// are). Nothing of it is visible until commit publishes it.
type reshardPlan struct {
	st     *stream
	now    int64
	next   uint32          // index of the next shard the plan creates
	closes []*shard        // existing open shards the plan closes
	made   []*shard        // new shards, in index order
	closed map[*shard]bool // every shard, existing or new, the plan closes
	fresh  map[*shard]bool // the shards in made
	status string          // the stream's status after the plan ("" = unchanged)
	scales []int64         // the stream's scaleTimes after the plan (nil = unchanged)
}

// newPlan starts a reshard of st. The caller holds st.ctl, so nobody else
// changes st's shards until the plan is committed or dropped.
func (s *Server) newPlan(st *stream) *reshardPlan {
	st.mu.RLock()
	next := st.nextIndex
	st.mu.RUnlock()
	return &reshardPlan{st: st, now: s.cfg.Now().UnixMilli(), next: next, closed: map[*shard]bool{}, fresh: map[*shard]bool{}}
}

// retire marks sh closed by the plan.
func (p *reshardPlan) retire(sh *shard) {
	p.closed[sh] = true
	if p.fresh[sh] {
		sh.endSeq = endSeqOf(p.st, sh)
		sh.closedMs = p.now
		sh.closed.Store(true)
		return
	}
	p.closes = append(p.closes, sh)
}

// child adds a new shard to the plan.
func (p *reshardPlan) child(start, end hashkey.Key, parent, adjParent string) *shard {
	sh := &shard{index: p.next, id: shardIDOf(p.next), start: start, end: end, parent: parent, adjParent: adjParent, createdMs: p.now}
	p.next++
	p.made = append(p.made, sh)
	p.fresh[sh] = true
	return sh
}

// split closes sh and creates its two children, the upper one starting at key.
func (p *reshardPlan) split(sh *shard, key hashkey.Key) (lo, hi *shard) {
	below, _ := key.Sub(hashkey.Key{Lo: 1})
	p.retire(sh)
	return p.child(sh.start, below, sh.id, ""), p.child(key, sh.end, sh.id, "")
}

// merge closes a and b (adjacent, a first in hash key order or not) and
// creates the shard covering both.
func (p *reshardPlan) merge(a, b *shard) *shard {
	lo, hi := a, b
	if b.start.Cmp(a.start) < 0 {
		lo, hi = b, a
	}
	p.retire(a)
	p.retire(b)
	return p.child(lo.start, hi.end, a.id, b.id)
}

// openDelta is how many open shards the plan adds (negative: removes).
func (p *reshardPlan) openDelta() int {
	n := -len(p.closes)
	for _, sh := range p.made {
		if !p.closed[sh] {
			n++
		}
	}
	return n
}

// endSeqOf is the EndingSequenceNumber a shard gets when it closes: the
// largest number the shard could ever hand out (offset MaxOffset-1, index
// 0xFFFF). It is >= every record's sequence number regardless of how much
// the shard held, and the sealed log takes no append after it.
func endSeqOf(st *stream, sh *shard) string {
	return seqnum.Number{Shard: sh.index, Offset: seqnum.MaxOffset - 1, Index: ^uint16(0), Epoch: st.epoch}.String()
}

// commit carries out a plan, durable before visible: it creates the new
// shards' logs, fences the shards it closes (their appendMu, then the
// engine's seal), writes the stream's new catalog record, and only then
// publishes the new shards. If any step fails it undoes the others (unseals,
// deletes the new logs) and the reshard did not happen. The caller holds
// st.ctl.
func (s *Server) commit(ctx context.Context, p *reshardPlan) (err error) {
	st := p.st
	release, err := s.reserveShards(st.account, p.openDelta())
	if err != nil {
		return err
	}
	defer release()
	var created []*shard
	defer func() {
		if err != nil {
			for _, sh := range created {
				_ = sh.log.Close()
				if derr := s.eng.DeleteLog(bgContext(), st.logID(sh.index)); derr != nil {
					s.log.Error("remove the log of a reshard that failed", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(derr))
				}
			}
		}
	}()
	for _, sh := range p.made {
		if err := s.newShardKeys(st, sh); err != nil {
			return err
		}
		if sh.log, err = s.createLog(ctx, st, sh.index); err != nil {
			return fmt.Errorf("reshard %s: %w", st.name, err)
		}
		created = append(created, sh)
		s.attachLimits(sh)
		if p.closed[sh] {
			if _, err := sh.log.Seal(ctx); err != nil {
				return fmt.Errorf("reshard %s: seal %s: %w", st.name, sh.id, err)
			}
		}
	}
	// Fence the shards to close: no append is in flight or starts on them
	// until they are published closed (appenders then re-route) or the
	// plan is dropped.
	for _, sh := range p.closes {
		sh.appendMu.Lock()
		defer sh.appendMu.Unlock()
	}
	st.mu.RLock()
	gone := s.current(st.key) != st || st.status == statusDeleting
	var already *shard
	for _, sh := range p.closes {
		if sh.closed.Load() {
			already = sh
		}
	}
	st.mu.RUnlock()
	if gone {
		return st.missing()
	}
	if already != nil {
		return ErrInvalidArgument.With("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", already.id, st.name, st.account)
	}
	var sealed []*shard
	defer func() {
		if err != nil {
			for _, sh := range sealed {
				if uerr := sh.log.Unseal(bgContext()); uerr != nil {
					s.log.Error("unseal a shard after a failed reshard", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(uerr))
				}
			}
		}
	}()
	for _, sh := range p.closes {
		if _, err := sh.log.Seal(ctx); err != nil {
			return fmt.Errorf("reshard %s: seal %s: %w", st.name, sh.id, err)
		}
		sealed = append(sealed, sh)
	}
	st.mu.RLock()
	m := st.metaLocked()
	st.mu.RUnlock()
	for i := range m.Shards {
		for _, sh := range p.closes {
			if m.Shards[i].Index == sh.index {
				m.Shards[i].EndSeq, m.Shards[i].ClosedMs = endSeqOf(st, sh), p.now
			}
		}
	}
	for _, sh := range p.made {
		m.Shards = append(m.Shards, sh.meta())
	}
	m.NextIndex = p.next
	if p.status != "" {
		m.Status = p.status
	}
	if p.scales != nil {
		m.ScaleTimes = p.scales
	}
	if err := s.persistMeta(ctx, st, m); err != nil {
		irreversible := s.unseal(st, sealed)
		sealed = nil
		if !irreversible {
			return err
		}
		// The engine cannot unseal the parents: the reshard must finish.
		return s.rollForward(st, p, err)
	}
	// Durable: publish.
	st.mu.Lock()
	for _, sh := range p.closes {
		sh.endSeq, sh.closedMs = endSeqOf(st, sh), p.now
		sh.closed.Store(true)
	}
	st.shards = append(st.shards, p.made...)
	st.nextIndex = p.next
	if p.status != "" {
		st.status = p.status
	}
	if p.scales != nil {
		st.scaleTimes = p.scales
	}
	st.rebuildOpen()
	st.mu.Unlock()
	for _, sh := range p.closes {
		sh.signal() // its subscribers finish with ChildShards
	}
	return nil
}

// reshardTargets checks that st is a provisioned ACTIVE stream and resolves
// the shard ids given. The caller holds st.ctl.
func (s *Server) reshardTargets(st *stream, ids ...string) ([]*shard, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if s.current(st.key) != st || st.status == statusDeleting {
		return nil, st.missing()
	}
	if st.status != statusActive {
		return nil, s.notActive(st, st.status)
	}
	if st.mode != modeProvisioned {
		// AWS documents ValidationException for exactly this case: "you tried
		// to invoke this API for a data stream with the on-demand capacity mode".
		return nil, ErrValidation.With("Stream %s under account %s is in ON_DEMAND mode. This API is only supported for data streams with the provisioned capacity mode.", st.name, st.account)
	}
	out := make([]*shard, len(ids))
	for i, id := range ids {
		if out[i] = st.shardByID(id); out[i] == nil {
			return nil, ErrResourceNotFound.With("Could not find shard %s in stream %s under account %s.", id, st.name, st.account)
		}
		if out[i].closed.Load() {
			return nil, ErrInvalidArgument.With("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, st.name, st.account)
		}
	}
	return out, nil
}

// updating prepares the UPDATING period of a reshard called through the API.
func (s *Server) updating(p *reshardPlan) {
	if s.cfg.UpdateDelay > 0 {
		p.status = statusUpdating
	}
}

// finishReshard starts the UPDATING period after a committed reshard.
func (s *Server) finishReshard(st *stream) {
	if s.cfg.UpdateDelay > 0 {
		s.afterDelay(st, s.cfg.UpdateDelay, statusUpdating, statusActive)
	}
}

func (s *Server) splitShard(ctx context.Context, in *wire.SplitShardInput) (*wire.Empty, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.reqStr("shardToSplit", in.ShardToSplit, 1, maxShardIDLen, shardIDRE)
		v.reqStr("newStartingHashKey", in.NewStartingHashKey, 0, 0, hashKeyRE)
		return v
	})
	if err != nil {
		return nil, err
	}
	key, err := hashkey.Parse(*in.NewStartingHashKey)
	if err != nil {
		return nil, ErrInvalidArgument.With("NewStartingHashKey %s is not a valid hash key: it must be in the range [0, 2^128-1].", *in.NewStartingHashKey)
	}
	st.ctl.Lock()
	defer st.ctl.Unlock()
	sh, err := s.reshardTargets(st, *in.ShardToSplit)
	if err != nil {
		return nil, err
	}
	p := sh[0]
	if key.Cmp(p.start) <= 0 || key.Cmp(p.end) > 0 {
		return nil, ErrInvalidArgument.With("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
			key, p.id, st.name, st.account, p.start, p.end)
	}
	plan := s.newPlan(st)
	plan.split(p, key)
	s.updating(plan)
	if err := s.commit(ctx, plan); err != nil {
		return nil, err
	}
	s.finishReshard(st)
	s.log.Info("shard split", zap.String("stream", st.name), zap.String("shard", p.id))
	s.cfg.Metrics.Reshard(st.name, "split")
	return &wire.Empty{}, nil
}

func (s *Server) mergeShards(ctx context.Context, in *wire.MergeShardsInput) (*wire.Empty, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.reqStr("shardToMerge", in.ShardToMerge, 1, maxShardIDLen, shardIDRE)
		v.reqStr("adjacentShardToMerge", in.AdjacentShardToMerge, 1, maxShardIDLen, shardIDRE)
		return v
	})
	if err != nil {
		return nil, err
	}
	st.ctl.Lock()
	defer st.ctl.Unlock()
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
		return nil, ErrInvalidArgument.With("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", a.id, b.id, st.name, st.account)
	}
	plan := s.newPlan(st)
	plan.merge(a, b)
	s.updating(plan)
	if err := s.commit(ctx, plan); err != nil {
		return nil, err
	}
	s.finishReshard(st)
	s.log.Info("shards merged", zap.String("stream", st.name), zap.String("shard", a.id), zap.String("adjacent", b.id))
	s.cfg.Metrics.Reshard(st.name, "merge")
	return &wire.Empty{}, nil
}

func (s *Server) updateShardCount(ctx context.Context, in *wire.UpdateShardCountInput) (*wire.UpdateShardCountOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		if v.required("targetShardCount", in.TargetShardCount != nil) {
			v.intRange("targetShardCount", in.TargetShardCount, 1, 1<<31-1)
		}
		if v.required("scalingType", in.ScalingType != nil) {
			v.enum("scalingType", in.ScalingType, scalingUniform)
		}
		return v
	})
	if err != nil {
		return nil, err
	}
	target := int(*in.TargetShardCount)
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if _, err := s.reshardTargets(st); err != nil {
		return nil, err
	}
	st.mu.RLock()
	open := append([]*shard(nil), st.open...)
	st.mu.RUnlock()
	cur := len(open)
	now := s.cfg.Now()
	recent := st.recentScalings(now)
	switch perStream := int(s.cfg.StreamShardLimit); {
	case target > 2*cur:
		return nil, ErrLimitExceeded.With("UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: %d Target shard count: %d", cur, target)
	case 2*target < cur:
		return nil, ErrLimitExceeded.With("UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: %d Target shard count: %d", cur, target)
	case target > perStream && (target > cur || cur > perStream):
		// Scaling up past the per-stream limit, or scaling a stream already
		// above it down to a count still above it.
		return nil, ErrLimitExceeded.With("Target shard count %d exceeds the limit of %d shards per stream. Current open shard count: %d", target, perStream, cur)
	case target > int(s.cfg.ShardLimit):
		return nil, ErrLimitExceeded.With("Target shard count %d exceeds the shard limit %d of account %s.", target, s.cfg.ShardLimit, s.cfg.AccountID)
	case target != cur && len(recent) >= maxScalingsPerDay:
		return nil, ErrLimitExceeded.With("UpdateShardCount cannot scale stream %s under account %s more than %d times per rolling 24-hour period; it can scale again after %s.",
			st.name, st.account, maxScalingsPerDay, time.UnixMilli(recent[0]).Add(24*time.Hour).UTC().Format(time.RFC3339))
	}
	if target != cur {
		// One plan, one catalog write: the whole rescale happens or none of it.
		plan := s.newPlan(st)
		plan.scales = append(recent, now.UnixMilli())
		if err := plan.rescale(open, target); err != nil {
			return nil, err
		}
		s.updating(plan)
		if err := s.commit(ctx, plan); err != nil {
			return nil, err
		}
		s.finishReshard(st)
	}
	s.log.Info("shard count updated", zap.String("stream", st.name), zap.Int("from", cur), zap.Int("to", target))
	s.cfg.Metrics.Reshard(st.name, "scale")
	return &wire.UpdateShardCountOutput{CurrentShardCount: int32(cur), TargetShardCount: int32(target), StreamARN: st.arn, StreamName: st.name}, nil
}

// rescale plans turning the open shards (sorted by starting hash key) into
// target shards of even ranges: first it splits every shard at each target
// boundary inside it, so that each open shard lies within one target range,
// then it merges the pieces of each target range from left to right. Every
// child has one parent (split) or two (merge).
func (p *reshardPlan) rescale(open []*shard, target int) error {
	starts, ends := hashkey.SplitEvenly(target)
	// Splits.
	var pieces []*shard
	for _, sh := range open {
		cur := sh
		for _, b := range starts[1:] {
			if b.Cmp(cur.start) <= 0 || b.Cmp(cur.end) > 0 {
				continue
			}
			lo, hi := p.split(cur, b)
			pieces = append(pieces, lo)
			cur = hi
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
			acc = p.merge(acc, pieces[j])
			j++
		}
		if acc.start.Cmp(starts[i]) != 0 || acc.end.Cmp(ends[i]) != 0 {
			return fmt.Errorf("rescale %s: shard %s covers [%s, %s], want [%s, %s]", p.st.name, acc.id, acc.start, acc.end, starts[i], ends[i])
		}
	}
	return nil
}
