package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
)

// roundResult is what a take round did, for the coordinator.
type roundResult struct {
	// again: a take lost a race; another round should follow soon.
	again bool
	// moved: the round stole a lease or asked for one; the next round
	// comes after a renewal period, to go on toward the share.
	moved bool
	// lapse, if not zero, is when (from now) the last request made lapses:
	// a round then takes the lease if its owner did not hand it over.
	lapse time.Duration
}

// takeRound reads the leases and takes, steals or asks for what
// planBalance says.
func (w *Worker) takeRound(ctx context.Context) roundResult {
	var r roundResult
	// Store calls use the worker's context, not ctx: a take whose reply
	// is cut short by a shutdown would leave a lease owned and unprocessed.
	sctx, cancel := context.WithTimeout(w.hardCtx, w.cfg.FailoverTime)
	defer cancel()
	leases, err := ownStream(w.store.ListLeases(sctx, w.cfg.ApplicationName))
	if err != nil {
		w.storeFailed(sctx, err)
		if ctx.Err() == nil && w.hardCtx.Err() == nil {
			w.log.Warn("list leases failed", zap.Error(err))
		}
		return r
	}
	w.mu.Lock()
	listed := w.listed
	held := make(map[string]bool, len(w.shards))
	for id := range w.shards {
		held[id] = true
	}
	w.mu.Unlock()

	// A lease held here that the table shows moved (taken by another
	// worker, released or reset by an operator) or deleted was lost
	// without this worker hearing of it yet; one that carries another
	// worker's request is handed over (the request's event was missed).
	byID := make(map[string]checkpoint.Lease, len(leases))
	for _, l := range leases {
		byID[l.ShardID] = l
	}
	for id := range held {
		sc := w.consumerOf(id)
		if sc == nil {
			continue
		}
		l, ok := byID[id]
		switch {
		case !ok:
			sc.lease.markLost(fmt.Errorf("lease deleted: %w", checkpoint.ErrNotFound))
		case l.Owner != w.id && l.Counter > sc.lease.counter.Load() && !sc.lease.lettingGo.Load():
			sc.lease.markLost(fmt.Errorf("owned by %q at counter %d: %w", l.Owner, l.Counter, checkpoint.ErrLeaseLost))
		case l.Owner == w.id && l.HandoffPending() && w.handoff != nil:
			sc.handOff(l.HandoffTo)
		}
	}

	active := activeLeases(leases, listed, w.cfg.CatchUp)
	plan := planBalance(balanceInput{
		self: w.id, active: active, held: held,
		maxLeases: w.cfg.MaxLeasesForWorker, maxSteal: w.cfg.MaxLeasesToStealAtOneTime,
	}, w.rnd)
	w.metrics.LeaseBalance(len(active), plan.workers)
	for _, l := range plan.take {
		lostRace, _ := w.take(ctx, l, false)
		r.again = r.again || lostRace
	}
	for _, l := range plan.steal {
		if w.handoff != nil && (l.HandoffTo != w.id || !l.HandoffExpired) {
			lostRace, lapse := w.askFor(ctx, l)
			r.again, r.moved = r.again || lostRace, r.moved || lapse > 0
			r.lapse = max(r.lapse, lapse)
			continue
		}
		lostRace, took := w.take(ctx, l, true)
		r.again, r.moved = r.again || lostRace, r.moved || took
	}
	return r
}

// take takes (or steals) l and starts processing it. It reports whether
// another worker got there first, and whether it took the lease.
func (w *Worker) take(ctx context.Context, l checkpoint.Lease, steal bool) (lostRace, took bool) {
	if ctx.Err() != nil || w.hardCtx.Err() != nil {
		return false, false
	}
	sctx, cancel := context.WithTimeout(w.hardCtx, w.cfg.FailoverTime)
	defer cancel()
	began := monoNow()
	nl, err := w.store.TakeLease(sctx, l, w.id)
	switch {
	case lostTo(err):
		w.log.Debug("lease taken by another worker first", zap.String("shard_id", l.ShardID))
		return true, false
	case err != nil:
		w.storeFailed(sctx, err)
		return false, false
	}
	w.metrics.LeaseTaken(l.ShardID, steal)
	w.checkFailover(nl)
	fields := []zap.Field{zap.String("shard_id", l.ShardID), zap.Stringer("checkpoint", nl.Checkpoint)}
	switch {
	case steal && l.HandoffTo == w.id:
		w.metrics.LeaseHandoff(l.ShardID, HandoffForced)
		w.log.Warn("lease owner did not hand the lease over in time; lease stolen", append(fields, zap.String("from", l.Owner))...)
	case steal:
		w.log.Info("lease stolen", append(fields, zap.String("from", l.Owner))...)
	case l.Owner == w.id && !l.Expired:
		w.log.Info("lease handed over taken", fields...)
	case l.Owner != "" && l.Owner != w.id:
		w.log.Info("expired lease taken", append(fields, zap.String("from", l.Owner))...)
	default:
		w.log.Info("lease taken", fields...)
	}
	w.startShard(nl, began)
	return false, true
}

// askFor asks the owner of l to hand it over (graceful hand-off). It
// reports whether another worker got there first (or the lease moved), and
// when, from now, the request lapses (zero if it was not made).
func (w *Worker) askFor(ctx context.Context, l checkpoint.Lease) (lostRace bool, lapse time.Duration) {
	if ctx.Err() != nil || w.hardCtx.Err() != nil {
		return false, 0
	}
	sctx, cancel := context.WithTimeout(w.hardCtx, w.cfg.FailoverTime)
	defer cancel()
	nl, err := w.handoff.RequestHandoff(sctx, l, w.id)
	switch {
	case lostTo(err):
		w.log.Debug("lease moved before it was asked for", zap.String("shard_id", l.ShardID), zap.Error(err))
		return true, 0
	case errors.Is(err, checkpoint.ErrInvalid):
		w.log.Warn("lease hand-off request refused", zap.String("shard_id", l.ShardID), zap.Error(err))
		return false, 0
	case err != nil:
		w.storeFailed(sctx, err)
		return false, 0
	}
	w.metrics.LeaseHandoff(l.ShardID, HandoffRequested)
	w.log.Info("lease asked for", zap.String("shard_id", l.ShardID), zap.String("from", l.Owner))
	// By the database's clock; a little later here, so that the round
	// finds the request lapsed.
	return false, nl.HandoffExpiresAt.Sub(nl.UpdatedAt) + max(w.cfg.FailoverTime/50, time.Millisecond)
}

// checkFailover warns, once, when the Store's failover time (the expiry a
// take set, by the database's clock) is shorter than Config.FailoverTime:
// renewals every FailoverTime/3 would then come too late, and the leases
// would expire and be taken by other workers between them.
func (w *Worker) checkFailover(l checkpoint.Lease) {
	store := l.ExpiresAt.Sub(l.UpdatedAt)
	if store <= 0 || store >= w.cfg.FailoverTime*9/10 {
		return
	}
	w.failoverWarn.Do(func() {
		w.log.Warn("Config.FailoverTime is longer than the Store's; leases may expire between renewals",
			zap.Duration("config", w.cfg.FailoverTime), zap.Duration("store", store))
	})
}
