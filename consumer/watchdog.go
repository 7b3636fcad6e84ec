package consumer

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
)

// The shard watchdog (Config.StallTimeout) finds shards whose processing
// makes no progress while records wait, the way KCL users find them today
// with a daily restart: a ProcessRecords call that never returns, a
// GetRecords call or subscription that hangs, a reader that keeps failing
// while the shard is behind.
//
// Each shard keeps a stall clock (shardConsumer.stallSince, under its mu):
// the moment since which records have been waiting without progress, or 0
// when none wait. Progress is a batch handed to ProcessRecords, a
// ProcessRecords call that returns, or a read that brings records. Records
// wait while a ProcessRecords call runs on a batch, and while the last read
// said the shard is behind (MillisBehindLatest > 0). So the clock is
//
//   - started (set to now) when a batch is handed over, and when a call
//     returns or a read brings records while the shard is behind;
//   - started, if it was not running, by a read that brings nothing while
//     the shard is behind;
//   - stopped (0) when a read or a call finds the shard caught up (an idle
//     shard), while the failure policy waits out its back-off (a failing
//     batch is the policy's to count, not the watchdog's), before the
//     first read and once the shard has ended.
//
// The watchdog goroutine (one per worker) looks at every held shard every
// StallTimeout/4; a clock running for StallTimeout or more fires: the stall
// is logged and counted, the clock restarts (a shard still stuck fires
// again after another StallTimeout), and the shard's goroutine is asked to
// restart its reader: the restart flag is set, and the ctx of the read and
// of the ProcessRecords call in progress are cancelled. The shard's
// goroutine sees the flag (why returns exitRestart) as soon as the call
// returns (a call that ignores its ctx is waited for), drops its iterator
// or subscription and reads again from its first record not processed:
// the first record after the shard's checkpoint of the batch in hand if its
// call failed or was cut short, else the record after the last one read.
// The processor is kept; it sees again only the records of a batch whose
// call did not succeed, as after any failure.

// watch starts the watchdog's watch over the reader: the shard's goroutine
// calls it when it starts reading.
func (sc *shardConsumer) watch() {
	sc.mu.Lock()
	sc.watched = true
	sc.mu.Unlock()
}

// unwatch ends the watch (the shard ended, or its goroutine is returning):
// a restart asked for meanwhile is dropped, and readCtx replaced if the
// watchdog cancelled it, so that the waits after it still wait.
func (sc *shardConsumer) unwatch() {
	sc.mu.Lock()
	sc.watched, sc.stallSince = false, 0
	restart := sc.restart.Swap(false)
	var cancel context.CancelFunc
	if restart {
		cancel = sc.readCancel
		sc.readCtx, sc.readCancel = context.WithCancel(sc.fetchCtx)
	}
	sc.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Stall clock changes.
type progress int

const (
	progressWaiting progress = iota // progress, and records still wait: restart the clock
	progressIdle                    // nothing waits: stop the clock
	stillWaiting                    // no progress, records wait: start the clock unless it runs
)

// progressed moves the stall clock.
func (sc *shardConsumer) progressed(p progress) {
	if sc.w.cfg.StallTimeout <= 0 {
		return
	}
	now := monoNow()
	sc.mu.Lock()
	switch p {
	case progressWaiting:
		sc.stallSince = now
	case progressIdle:
		sc.stallSince = 0
	case stillWaiting:
		if sc.stallSince == 0 {
			sc.stallSince = now
		}
	}
	sc.mu.Unlock()
}

// callContext returns the ctx of a ProcessRecords call (with done, to call
// when it returns): with the watchdog on, one the watchdog can cancel.
func (sc *shardConsumer) callContext() (ctx context.Context, done func()) {
	if sc.w.cfg.StallTimeout <= 0 {
		return sc.procCtx, func() {}
	}
	ctx, cancel := context.WithCancel(sc.procCtx)
	sc.mu.Lock()
	sc.callCancel = cancel
	sc.mu.Unlock()
	return ctx, func() {
		sc.mu.Lock()
		sc.callCancel = nil
		sc.mu.Unlock()
		cancel()
	}
}

// checkStall fires the watchdog on sc if its stall clock has run for limit
// at now (monoNow).
func (sc *shardConsumer) checkStall(now int64, limit time.Duration) {
	sc.mu.Lock()
	since := sc.stallSince
	if !sc.watched || since == 0 || time.Duration(now-since) < limit {
		sc.mu.Unlock()
		return
	}
	sc.stallSince = now
	sc.restart.Store(true)
	readCancel, callCancel := sc.readCancel, sc.callCancel
	sc.mu.Unlock()
	where := "reading"
	if callCancel != nil {
		where = "in ProcessRecords"
	}
	sc.log.Warn("shard made no progress while records wait; restarting its reader",
		zap.Duration("stalled_for", time.Duration(now-since)), zap.String("where", where))
	sc.w.metrics.ShardStalled(sc.shard)
	if callCancel != nil {
		callCancel()
	}
	readCancel()
}

// restartReader restarts the reader after the watchdog fired: a new
// readCtx, no iterator, and the position of the first record not processed.
// Called by the shard's goroutine only.
func (sc *shardConsumer) restartReader() {
	sc.mu.Lock()
	sc.restart.Store(false)
	old := sc.readCancel
	sc.readCtx, sc.readCancel = context.WithCancel(sc.fetchCtx)
	sc.mu.Unlock()
	old()
	sc.iterator = nil
	if p := sc.resume; p != nil {
		// Read the batch in hand again from its first record not
		// processed: at its Kinesis record, skipping the user records of
		// its aggregate before it.
		sc.resume = nil
		sc.lastSeq, sc.contSeq, sc.after, sc.atSeq = "", "", checkpoint.Checkpoint{}, ""
		if p.SubSequenceNumber > 0 {
			sc.after = checkpoint.Checkpoint{SequenceNumber: p.SequenceNumber, SubSequenceNumber: p.SubSequenceNumber - 1}
		} else {
			sc.atSeq = p.SequenceNumber
		}
		sc.log.Info("reader restarted", zap.Stringer("from", *p))
		return
	}
	sc.log.Info("reader restarted", zap.String("after", sc.lastSeq))
}

// watchdogLoop runs the watchdog until ctx ends.
func (w *Worker) watchdogLoop(ctx context.Context) {
	limit := w.cfg.StallTimeout
	t := time.NewTicker(max(limit/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := monoNow()
		for _, sc := range w.heldConsumers() {
			sc.checkStall(now, limit)
		}
	}
}
