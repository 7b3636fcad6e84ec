package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
)

// shardInfo is what the worker keeps of a listed shard.
type shardInfo struct {
	id       string
	parents  []string // ParentShardId, AdjacentParentShardId; only those set
	startKey string   // hash key range, decimal
	endKey   string
	closed   bool // it has an EndingSequenceNumber
}

func shardInfoOf(s types.Shard) shardInfo {
	si := shardInfo{id: aws.ToString(s.ShardId)}
	for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
		if p != nil && *p != "" {
			si.parents = append(si.parents, *p)
		}
	}
	if r := s.HashKeyRange; r != nil {
		si.startKey, si.endKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
	}
	si.closed = s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil
	return si
}

// listShards lists every shard of the stream, following NextToken. The
// listing is complete when the error is nil.
func (w *Worker) listShards(ctx context.Context) ([]shardInfo, error) {
	var (
		out   []shardInfo
		token *string
	)
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName, in.StreamARN = w.streamName, w.streamARN
		}
		res, err := w.client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		for _, s := range res.Shards {
			out = append(out, shardInfoOf(s))
		}
		if res.NextToken == nil || *res.NextToken == "" {
			return out, nil
		}
		token = res.NextToken
	}
}

// parentsPending returns the parents of l whose records are not all
// processed yet: l may be processed only when it returns none. This is the
// KCL's BlockOnParentShardTask rule, with one more case. A parent is done
//
//   - when it has no lease: it was consumed and its lease deleted, or it
//     was never to be consumed (it predates the application's initial
//     position); the KCL does not block on it either (a merge child is not
//     created before both its parents have leases, see withOtherParents);
//   - when its lease is checkpointed at SHARD_END;
//   - when it was trimmed away: its lease is not at SHARD_END, but the last
//     complete shard listing (listed, nil if there is none yet) has the
//     child and not the parent. A listing that has a child was made after
//     the child was created, when the parent still existed; if the parent
//     is missing from it, its records expired and nothing is left to read.
//     (A parent missing from a listing that lacks the child too proves
//     nothing: the listing may predate the reshard.)
//
// Otherwise the child waits. A merge has two parents, and both must be
// done.
func parentsPending(l checkpoint.Lease, leases map[string]checkpoint.Lease, listed map[string]bool) []string {
	var pending []string
	for _, p := range l.ParentShardIDs {
		pl, ok := leases[p]
		switch {
		case !ok:
		case pl.Checkpoint.IsShardEnd():
		case listed[l.ShardID] && !listed[p]:
		default:
			pending = append(pending, p)
		}
	}
	return pending
}

// activeLeases returns the leases that are to be processed now: not
// finished, and with every parent done unless catchUp (Config.CatchUp)
// says not to wait for parents.
func activeLeases(leases []checkpoint.Lease, listed map[string]bool, catchUp bool) []checkpoint.Lease {
	byID := make(map[string]checkpoint.Lease, len(leases))
	for _, l := range leases {
		byID[l.ShardID] = l
	}
	var out []checkpoint.Lease
	for _, l := range leases {
		if !l.Checkpoint.IsShardEnd() && (catchUp || len(parentsPending(l, byID, listed)) == 0) {
			out = append(out, l)
		}
	}
	return out
}

// syncPlan is what a shard sync changes in the lease table.
type syncPlan struct {
	create []checkpoint.Lease
	remove []string // shard IDs whose leases to delete
}

// planSync decides, from a complete shard listing and the application's
// leases, which leases to create and which to delete, as the KCL's
// HierarchicalShardSyncer and lease cleanup do.
//
// A listed shard without a lease gets one, with its parents and hash key
// range recorded, unless it is closed and the initial position is LATEST
// and none of its parents has a lease (LATEST starts at the open shards,
// as in the KCL). Its checkpoint is
//
//   - TRIM_HORIZON if a parent has (or gets) a lease: a child is read from
//     its first record, so that nothing put after its parent closed is
//     missed (AT_TIMESTAMP for an AtTimestamp application, as in the KCL);
//   - else the initial position.
//
// A lease whose shard is no longer listed and that is checkpointed at
// SHARD_END (fully consumed) is deleted. A lease that is not listed but not
// finished is kept: its owner finds the shard gone and ends it.
func planSync(shards []shardInfo, leases []checkpoint.Lease, app string, pos InitialPosition) syncPlan {
	var p syncPlan
	have := make(map[string]bool, len(leases))
	for _, l := range leases {
		have[l.ShardID] = true
	}
	byID := make(map[string]shardInfo, len(shards))
	for _, s := range shards {
		byID[s.id] = s
	}
	// decided memoizes whether a shard has or gets a lease; visiting
	// parents first creates them first.
	decided := map[string]bool{}
	var visit func(id string, depth int) bool
	visit = func(id string, depth int) bool {
		if have[id] {
			return true
		}
		if v, ok := decided[id]; ok {
			return v
		}
		s, ok := byID[id]
		if !ok || depth > len(shards) { // not listed, or a cycle in a corrupt listing
			return false
		}
		decided[id] = false // guards against cycles while visiting
		descendant := false
		for _, par := range s.parents {
			if visit(par, depth+1) {
				descendant = true
			}
		}
		cp := initialCheckpoint(pos)
		switch {
		case descendant && pos == AtTimestamp:
		case descendant:
			cp = checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}
		case pos == Latest && s.closed:
			return false
		}
		p.create = append(p.create, checkpoint.Lease{
			Application: app, ShardID: s.id, Checkpoint: cp,
			ParentShardIDs: s.parents, StartingHashKey: s.startKey, EndingHashKey: s.endKey,
		})
		decided[id] = true
		return true
	}
	for _, s := range shards {
		visit(s.id, 0)
	}
	for _, l := range leases {
		if _, listed := byID[l.ShardID]; !listed && l.Checkpoint.IsShardEnd() {
			p.remove = append(p.remove, l.ShardID)
		}
	}
	return p
}

// initialCheckpoint is the sentinel checkpoint of a new root lease.
func initialCheckpoint(pos InitialPosition) checkpoint.Checkpoint {
	switch pos {
	case TrimHorizon:
		return checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}
	case AtTimestamp:
		return checkpoint.Checkpoint{SequenceNumber: checkpoint.AtTimestamp}
	}
	return checkpoint.Checkpoint{SequenceNumber: checkpoint.Latest}
}

// childLeases returns the leases of a shard's children from a GetRecords
// result's ChildShards.
func childLeases(app string, children []types.ChildShard) []checkpoint.Lease {
	out := make([]checkpoint.Lease, 0, len(children))
	for _, c := range children {
		l := checkpoint.Lease{
			Application: app, ShardID: aws.ToString(c.ShardId),
			Checkpoint:     checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon},
			ParentShardIDs: slices.Clone(c.ParentShards),
		}
		if r := c.HashKeyRange; r != nil {
			l.StartingHashKey, l.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		}
		if l.ShardID != "" {
			out = append(out, l)
		}
	}
	return out
}

// childLeasesFromListing returns the leases of the listed children of
// parent.
func childLeasesFromListing(app, parent string, shards []shardInfo) []checkpoint.Lease {
	var out []checkpoint.Lease
	for _, s := range shards {
		if slices.Contains(s.parents, parent) {
			out = append(out, checkpoint.Lease{
				Application: app, ShardID: s.id,
				Checkpoint:     checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon},
				ParentShardIDs: s.parents, StartingHashKey: s.startKey, EndingHashKey: s.endKey,
			})
		}
	}
	return out
}

// syncLoop lists the shards and brings the lease table in line, at start
// and then every ShardSyncInterval (with jitter), or when asked
// (w.syncNow). It hands each complete listing to the coordinator.
func (w *Worker) syncLoop(ctx context.Context) {
	b := w.newBackoff()
	wait := time.Duration(0)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.syncNow:
			t.Stop()
		case <-t.C:
		}
		err := w.syncShards(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = b.NextBackOff()
			w.log.Warn("shard sync failed", zap.Duration("retry_in", wait), zap.Error(err))
		default:
			b.Reset()
			wait = jitter(w.cfg.ShardSyncInterval)
		}
	}
}

// syncShards is one shard sync. Kinesis errors are returned to be retried;
// a Store error that is not one of its sentinels fails the worker.
func (w *Worker) syncShards(ctx context.Context) error {
	shards, err := w.listShards(ctx)
	if err != nil {
		return err
	}
	leases, err := ownStream(w.store.ListLeases(ctx, w.cfg.ApplicationName))
	if err != nil {
		w.storeFailed(ctx, err)
		return err
	}
	plan := planSync(shards, leases, w.cfg.ApplicationName, w.cfg.InitialPosition)
	for _, l := range plan.create {
		created, err := w.store.CreateLease(ctx, l)
		if err != nil {
			w.storeFailed(ctx, err)
			return err
		}
		if created {
			w.log.Info("lease created", zap.String("shard_id", l.ShardID),
				zap.Stringer("checkpoint", l.Checkpoint), zap.Strings("parents", l.ParentShardIDs))
		}
	}
	for _, id := range plan.remove {
		err := w.store.DeleteLease(ctx, w.cfg.ApplicationName, id)
		if err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
			w.storeFailed(ctx, err)
			return err
		}
		w.log.Info("lease of a consumed shard that is gone deleted", zap.String("shard_id", id))
	}
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[s.id] = true
	}
	w.setListing(shards, listed)
	w.kick()
	return nil
}
