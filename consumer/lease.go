package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
)

// leaseState is this worker's copy of one lease it holds. The Store's
// fenced calls each take the latest copy and return the next one, so the
// renewer and the checkpointer, which run on different goroutines, take
// turns through mu.
//
// mu is held across the Store call it serializes; no other lock is ever
// held with it (see LOCKS.md).
type leaseState struct {
	w     *Worker
	shard string

	mu       sync.Mutex // guards the following
	lease    checkpoint.Lease
	released bool // released (or abandoned) by this worker: no more calls

	// counter mirrors lease.Counter, for readers that must not wait for mu
	// (the coordinator comparing it with lease events).
	counter atomic.Int64

	// confirmed is when (monoNow) the last successful fenced write on the
	// lease began: each one extends the lease's expiry by FailoverTime from
	// a moment after that, so until confirmed+FailoverTime by this
	// process's clock no other worker can have taken it.
	confirmed atomic.Int64

	lostOnce sync.Once
	lost     atomic.Bool // another worker has it; set once, by markLost
	onLost   func()      // cancels the shard's processing; called once, by markLost

	// lettingGo is set before this worker releases the lease or hands it
	// over: the event of its own change, which may arrive before the call
	// returns, must not read as the lease moving away.
	lettingGo atomic.Bool
}

// copyLease returns the current copy.
func (s *leaseState) copyLease() checkpoint.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

// markLost records that the lease is lost and stops the shard's
// processing. Safe to call any number of times from any goroutine.
// It takes no lock, so that the coordinator never waits for a Store call in
// flight on the lease.
func (s *leaseState) markLost(why error) {
	s.lostOnce.Do(func() {
		s.lost.Store(true)
		s.w.log.Info("lease lost", zap.String("shard_id", s.shard), zap.Error(why))
		s.w.metrics.LeaseLost(s.shard)
		s.onLost()
	})
}

// movedAway marks the lease lost if ev (a take, release or reset) shows it
// moved away from this worker by someone else's change: another worker took
// it, or an operator released or reset it. The event of this worker's own
// release or hand-off is not that.
func (s *leaseState) movedAway(ev checkpoint.Event) {
	if ev.Owner != s.w.id && ev.Counter > s.counter.Load() && !s.lettingGo.Load() {
		s.markLost(fmt.Errorf("%s: owner %q at counter %d: %w", ev.Type, ev.Owner, ev.Counter, checkpoint.ErrLeaseLost))
	}
}

// errLost is the error calls get once the lease is lost.
func (s *leaseState) errLost() error {
	return fmt.Errorf("lease %s: %w", s.shard, checkpoint.ErrLeaseLost)
}

// lostTo reports whether err says the lease is not ours any more: lost to
// another worker, or deleted.
func lostTo(err error) bool {
	return errors.Is(err, checkpoint.ErrLeaseLost) || errors.Is(err, checkpoint.ErrNotFound)
}

// fenced runs one fenced Store call on the current copy and adopts the
// copy it returns. It handles the outcomes every call shares: a lost lease
// marks the lease lost; an error that leaves unknown whether the write
// committed (ctx ended mid-call) re-reads the lease so that the next call
// carries the right counter; an unrecoverable Store error fails the worker.
//
// A last call (a release or hand-off) marks the lease released as soon as
// it succeeds, under mu: no renewal may follow with the copy it returns,
// which is no longer this worker's.
func (s *leaseState) fenced(ctx context.Context, op string, last bool, call func(checkpoint.Lease) (checkpoint.Lease, error)) error {
	if s.lost.Load() {
		return s.errLost()
	}
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return s.errLost()
	}
	began := monoNow()
	l, err := call(s.lease)
	if err == nil {
		s.setLocked(l)
		s.confirmed.Store(began)
		s.released = s.released || last
		s.mu.Unlock()
		return nil
	}
	if ctx.Err() != nil && !lostTo(err) {
		// The write may have committed although the reply was lost.
		s.resyncLocked()
	}
	s.mu.Unlock()
	switch {
	case lostTo(err):
		s.markLost(err)
		return s.errLost()
	case errors.Is(err, checkpoint.ErrCheckpointBackwards), errors.Is(err, checkpoint.ErrInvalid), ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", op, s.shard, err)
	}
	s.w.storeFailed(ctx, err)
	return fmt.Errorf("%s %s: %w", op, s.shard, err)
}

// resyncLocked re-reads the lease after a call whose outcome is unknown:
// if this worker still owns it, the copy takes the stored counter (owning
// it means nobody took it since, so that is safe); otherwise the next call
// finds it lost. s.mu is held.
func (s *leaseState) resyncLocked() {
	ctx, cancel := context.WithTimeout(s.w.hardCtx, s.w.cfg.FailoverTime)
	defer cancel()
	cur, err := s.w.store.GetLease(ctx, s.lease.Application, s.lease.ShardID)
	if err == nil && cur.Owner == s.lease.Owner {
		s.setLocked(cur)
	}
}

// setLocked adopts a new copy. s.mu is held (or s is not shared yet).
func (s *leaseState) setLocked(l checkpoint.Lease) {
	s.lease = l
	s.counter.Store(l.Counter)
}

// age is how long ago the last confirmation of the lease began: beyond
// FailoverTime the lease may have expired and been taken by another worker
// (after this process was paused, say, or cut off from the Store).
func (s *leaseState) age() time.Duration {
	return time.Duration(monoNow() - s.confirmed.Load())
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow reads the monotonic clock, as nanoseconds since monoBase, so that
// lease ages are immune to wall-clock steps.
func monoNow() int64 { return int64(time.Since(monoBase)) }

// renew extends the lease. ctx bounds it.
func (s *leaseState) renew(ctx context.Context) error {
	return s.fenced(ctx, "renew lease", false, func(l checkpoint.Lease) (checkpoint.Lease, error) {
		start := time.Now()
		nl, err := s.w.store.RenewLease(ctx, l)
		s.w.metrics.RenewLease(s.shard, time.Since(start), err)
		return nl, err
	})
}

// checkpoint records cp and reports the latency.
func (s *leaseState) checkpoint(ctx context.Context, cp checkpoint.Checkpoint) error {
	if s.w.crashed.Load() {
		return errCrashed
	}
	start := time.Now()
	err := s.fenced(ctx, "checkpoint", false, func(l checkpoint.Lease) (checkpoint.Lease, error) {
		return s.w.store.Checkpoint(ctx, l, cp)
	})
	s.w.metrics.Checkpoint(s.shard, time.Since(start), err)
	return err
}

// prepare records cp as the pending checkpoint.
func (s *leaseState) prepare(ctx context.Context, cp checkpoint.Checkpoint) error {
	if s.w.crashed.Load() {
		return errCrashed
	}
	return s.fenced(ctx, "prepare checkpoint", false, func(l checkpoint.Lease) (checkpoint.Lease, error) {
		return s.w.store.PrepareCheckpoint(ctx, l, cp)
	})
}

// release gives the lease up, after which every call fails.
func (s *leaseState) release(ctx context.Context) error {
	s.lettingGo.Store(true)
	err := s.fenced(ctx, "release lease", true, func(l checkpoint.Lease) (checkpoint.Lease, error) {
		return s.w.store.ReleaseLease(ctx, l)
	})
	s.abandon()
	return err
}

// handOff gives the lease to the worker that asked for it (or releases it
// if no request is on it any more), after which every call fails. It
// returns the lease as handed over.
func (s *leaseState) handOff(ctx context.Context) (checkpoint.Lease, error) {
	s.lettingGo.Store(true)
	err := s.fenced(ctx, "hand off lease", true, func(l checkpoint.Lease) (checkpoint.Lease, error) {
		return s.w.handoff.HandOffLease(ctx, l)
	})
	l := s.copyLease()
	s.abandon()
	return l, err
}

// abandon stops every later call without touching the Store.
func (s *leaseState) abandon() {
	s.mu.Lock()
	s.released = true
	s.mu.Unlock()
}

// renewLoop renews every held lease every FailoverTime/3, as the KCL's
// lease renewer does, so that a renewal can fail twice before the lease
// expires.
func (w *Worker) renewLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.FailoverTime / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, sc := range w.heldConsumers() {
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, w.cfg.FailoverTime)
				defer cancel()
				if err := sc.lease.renew(rctx); err != nil && !lostTo(err) && ctx.Err() == nil {
					w.log.Warn("lease renewal failed", zap.String("shard_id", sc.shard), zap.Error(err))
				}
			})
		}
		wg.Wait()
	}
}

// ownStream keeps, of the leases ListLeases returned, those of the
// application's only stream (checkpoint.Lease.Stream ""), the ones a
// worker reads: leases of named streams belong to a multi-stream
// application's workers, whose shards this worker does not know.
func ownStream(leases []checkpoint.Lease, err error) ([]checkpoint.Lease, error) {
	if err != nil {
		return nil, err
	}
	out := leases[:0:0]
	for _, l := range leases {
		if l.Stream == "" {
			out = append(out, l)
		}
	}
	return out, nil
}
