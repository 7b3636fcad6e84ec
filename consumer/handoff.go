package consumer

import (
	"context"

	"go.uber.org/zap"
)

// Graceful hand-off (Config.NoGracefulHandoff, checkpoint.HandoffStore).
//
// A worker below its share asks the owner of a lease for it (askFor, from
// the take round) instead of stealing it. The owner hears the request (the
// Store's EventHandoffRequested, or the next take round) and stops the
// shard as on a graceful shutdown: the ProcessRecords call in progress
// finishes, ShutdownRequested may checkpoint, and the lease is handed over
// (HandOffLease: the worker that asked becomes the owner). That worker
// hears of the take (EventTaken naming it) and takes the lease at once
// (planBalance gives it the leases it owns but does not hold), from the
// checkpoint the owner left. If the request lapses (the Store's failover
// time) before the owner hands over, the take round at the lapse steals the
// lease, as without hand-off.

// handOff starts the hand-off of the shard's lease to the worker to that
// asked for it: the shard stops as on a graceful shutdown, and its lease
// passes to that worker. A shard that has ended ignores it (it releases its
// lease on its own), as does one already handing over.
func (sc *shardConsumer) handOff(to string) {
	if sc.ended.Load() || !sc.handoffTo.CompareAndSwap(nil, &to) {
		return
	}
	sc.log.Info("lease asked for by another worker; handing it over after the batch in hand", zap.String("to", to))
	sc.stop()
}

// handOffLease hands the lease over, after ShutdownRequested.
func (sc *shardConsumer) handOffLease() {
	ctx, cancel := context.WithTimeout(sc.w.hardCtx, sc.w.cfg.FailoverTime)
	defer cancel()
	l, err := sc.lease.handOff(ctx)
	if err != nil {
		sc.log.Warn("lease hand-off failed", zap.Error(err))
		return
	}
	if l.Owner == "" {
		sc.log.Info("lease released (the hand-off request was withdrawn)")
		return
	}
	sc.w.metrics.LeaseHandoff(sc.shard, HandoffHanded)
	sc.log.Info("lease handed over", zap.String("to", l.Owner), zap.Stringer("checkpoint", l.Checkpoint))
}

// releaseUnheld releases, at the end of a graceful shutdown, the leases
// this worker owns but no longer processes: those handed over to it after
// its coordinator stopped taking leases. Others take them at once instead
// of after they expire.
func (w *Worker) releaseUnheld() {
	if w.handoff == nil || w.hardCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(w.hardCtx, w.cfg.FailoverTime)
	defer cancel()
	leases, err := ownStream(w.store.ListLeases(ctx, w.cfg.ApplicationName))
	if err != nil {
		w.log.Warn("list leases at shutdown failed", zap.Error(err))
		return
	}
	for _, l := range leases {
		if l.Owner != w.id || w.consumerOf(l.ShardID) != nil {
			continue
		}
		if _, err := w.store.ReleaseLease(ctx, l); err != nil {
			w.log.Warn("release of a lease handed over during the shutdown failed", zap.String("shard_id", l.ShardID), zap.Error(err))
			continue
		}
		w.log.Info("lease handed over during the shutdown released", zap.String("shard_id", l.ShardID))
	}
}
