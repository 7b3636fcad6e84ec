package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// exitReason is why a shard's goroutine stops consuming.
type exitReason int

const (
	exitNone    exitReason = iota // keep going
	exitStopped                   // graceful shutdown: ShutdownRequested, release
	exitLost                      // lease lost, or the worker failed: LeaseLost
	exitCrashed                   // test crash: nothing
	exitEnded                     // shard ended, SHARD_END checkpointed, released
	exitRestart                   // the watchdog restarts the reader: read again from the first record not processed
)

// shardConsumer processes one held lease. Its goroutine (run) owns the
// iterator, the Processor and the read cursor; the lease copy is shared
// with the renewer through leaseState, delivered with Checkpointers
// through mu, and the stall clock with the watchdog through mu too.
type shardConsumer struct {
	w     *Worker
	shard string
	proc  Processor
	lease *leaseState
	log   *zap.Logger
	rng   hashkey.Range

	// procCtx is given to the Processor: it ends when the lease is lost,
	// the worker fails or crashes, or the shutdown times out. fetchCtx
	// (its child) also ends on a graceful stop. readCtx (fetchCtx's
	// child, made again by each restart of the reader and written only by
	// run) bounds the reader's Kinesis calls and waits; the watchdog
	// cancels it to restart the reader.
	procCtx     context.Context
	procCancel  context.CancelFunc
	fetchCtx    context.Context
	fetchCancel context.CancelFunc
	readCtx     context.Context
	stopping    atomic.Bool            // graceful stop asked
	aborted     atomic.Bool            // the worker failed
	ended       atomic.Bool            // the shard ended: SHARD_END may be checkpointed
	restart     atomic.Bool            // the watchdog asked for a restart of the reader; set under mu
	handoffTo   atomic.Pointer[string] // a worker asked for the lease: hand it over at the graceful stop

	mu        sync.Mutex            // guards the following
	delivered checkpoint.Checkpoint // last record handed to ProcessRecords
	// The watchdog's view (see watchdog.go).
	watched    bool               // reading: the watchdog may restart the reader
	stallSince int64              // monoNow since when records wait without progress; 0: none wait
	readCancel context.CancelFunc // cancels readCtx
	callCancel context.CancelFunc // cancels the ctx of the ProcessRecords call in progress, if watched

	// Owned by run.
	start       checkpoint.Checkpoint // the lease's checkpoint when taken
	initialized bool                  // Initialize returned nil
	iterator    *string
	lastSeq     string                 // sequence number of the last Kinesis record read
	contSeq     string                 // fan-out: the last event's ContinuationSequenceNumber
	after       checkpoint.Checkpoint  // skip user records at or before this (resume inside an aggregate)
	atSeq       string                 // else read from this Kinesis record on (a restart before an aggregate's first user record)
	resume      *checkpoint.Checkpoint // for a restart: the first record of the batch in hand not processed
	processed   checkpoint.Checkpoint  // last record of the last batch ProcessRecords returned nil for (or the failure policy checkpointed past)
	subBuf      []aggregation.SubRecord
	b           *backoff.ExponentialBackOff
}

func newShardConsumer(w *Worker, l checkpoint.Lease, proc Processor) *shardConsumer {
	sc := &shardConsumer{
		w: w, shard: l.ShardID, proc: proc,
		log:   w.log.With(zap.String("shard_id", l.ShardID)),
		rng:   hashkey.ParseRange(l.StartingHashKey, l.EndingHashKey),
		start: l.Checkpoint,
		b:     w.newBackoff(),
	}
	sc.procCtx, sc.procCancel = context.WithCancel(w.hardCtx)
	sc.fetchCtx, sc.fetchCancel = context.WithCancel(sc.procCtx)
	sc.readCtx, sc.readCancel = context.WithCancel(sc.fetchCtx)
	sc.lease = &leaseState{w: w, shard: l.ShardID, onLost: sc.procCancel}
	sc.lease.setLocked(l)
	return sc
}

// stop asks for a graceful stop: the current Processor call finishes, the
// read in flight is abandoned.
func (sc *shardConsumer) stop() {
	sc.stopping.Store(true)
	sc.fetchCancel()
}

// abort stops the shard because the worker failed.
func (sc *shardConsumer) abort() {
	sc.aborted.Store(true)
	sc.procCancel()
}

// why reports whether, and why, the goroutine must stop.
func (sc *shardConsumer) why() exitReason {
	switch {
	case sc.w.crashed.Load():
		return exitCrashed
	case sc.lease.lost.Load(), sc.aborted.Load(), sc.procCtx.Err() != nil:
		return exitLost
	case sc.stopping.Load():
		return exitStopped
	case sc.restart.Load():
		return exitRestart
	}
	return exitNone
}

func (sc *shardConsumer) setDelivered(cp checkpoint.Checkpoint) {
	sc.mu.Lock()
	if cp.Compare(sc.delivered) > 0 || sc.delivered == (checkpoint.Checkpoint{}) {
		sc.delivered = cp
	}
	sc.mu.Unlock()
}

func (sc *shardConsumer) deliveredPos() checkpoint.Checkpoint {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.delivered
}

// sleep waits d, or until a stop or a restart of the reader; it reports
// whether it waited all of d.
func (sc *shardConsumer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sc.readCtx.Done():
		return false
	}
}

// run is the shard's goroutine.
func (sc *shardConsumer) run() {
	defer sc.w.shardExited(sc)
	defer sc.procCancel()
	r := sc.consume()
	sc.unwatch()
	switch r {
	case exitCrashed:
		sc.lease.abandon() // a dead process reports nothing
	case exitLost:
		sc.lease.abandon()
		if sc.initialized {
			ctx, cancel := context.WithTimeout(sc.w.hardCtx, sc.w.cfg.ShutdownTimeout)
			sc.proc.LeaseLost(ctx, LeaseLostInput{ShardID: sc.shard})
			cancel()
		}
		sc.w.metrics.ShardShutdown(sc.shard, ShutdownLeaseLost)
	case exitStopped:
		sc.shutdown()
		sc.w.metrics.ShardShutdown(sc.shard, ShutdownRequested)
	case exitEnded, exitNone:
		// Released by endShard.
		sc.w.metrics.ShardShutdown(sc.shard, ShutdownShardEnd)
	}
}

// consume initializes the processor and reads the shard until it ends or
// the goroutine must stop.
func (sc *shardConsumer) consume() exitReason {
	l := sc.lease.copyLease()
	if l.Checkpoint.IsShardEnd() {
		// Taken in a race with its end: nothing left to do.
		sc.releaseLease()
		return exitEnded
	}
	in := InitializeInput{
		ShardID: sc.shard, Checkpoint: l.Checkpoint, PendingCheckpoint: l.PendingCheckpoint,
		StartingHashKey: l.StartingHashKey, EndingHashKey: l.EndingHashKey, ParentShardIDs: l.ParentShardIDs,
	}
	for {
		if r := sc.why(); r != exitNone {
			return r
		}
		err := sc.proc.Initialize(sc.procCtx, in)
		if err == nil {
			break
		}
		if r := sc.why(); r != exitNone {
			return r
		}
		wait := sc.b.NextBackOff()
		sc.log.Warn("processor Initialize failed", zap.Duration("retry_in", wait), zap.Error(err))
		sc.sleep(wait)
	}
	sc.initialized = true
	sc.b.Reset()
	if !l.Checkpoint.IsSentinel() {
		sc.after = l.Checkpoint
	}
	sc.watch()
	for {
		r := sc.w.retriever.read(sc)
		if r != exitRestart {
			return r
		}
		sc.restartReader()
	}
}

// retriever is how a shard's records are read: with GetRecords polling or
// through an enhanced fan-out subscription. Both hand each batch of Kinesis
// records to deliver, and end with endShard at the end of the shard, so
// that checkpoints, de-aggregation, hash-range filtering, SHARD_END and
// parent-before-child ordering are the same in both modes.
type retriever interface {
	// read reads sc's shard from its position (lastSeq, else after, else
	// atSeq, else start) until it ends (returning endShard's result) or
	// the goroutine must stop or restart the reader (returning why).
	read(sc *shardConsumer) exitReason
}

// polling reads with GetShardIterator and GetRecords.
type polling struct{}

func (polling) read(sc *shardConsumer) exitReason {
	for {
		if r := sc.why(); r != exitNone {
			return r
		}
		if sc.iterator == nil {
			switch sc.newIterator() {
			case iterEnded:
				return sc.endShard(nil)
			case iterRetry:
				continue
			}
		}
		started := time.Now()
		out, err := sc.w.client.GetRecords(sc.readCtx, &kinesis.GetRecordsInput{
			ShardIterator: sc.iterator, Limit: aws.Int32(int32(sc.w.cfg.MaxRecords)), StreamARN: sc.w.streamARN,
		})
		n := 0
		if err == nil {
			n = len(out.Records)
		}
		sc.w.metrics.GetRecords(sc.shard, time.Since(started), n, err)
		if err != nil {
			kind := classify(sc.readCtx, err)
			switch kind {
			case kindCanceled:
				continue
			case kindExpiredIterator:
				sc.log.Debug("shard iterator expired; getting a new one", zap.String("after", sc.lastSeq))
				sc.iterator = nil
				continue
			case kindNotFound:
				if sc.shardGone() {
					return sc.endShard(nil)
				}
				sc.iterator = nil
			case kindInvalidArgument:
				sc.iterator = nil
			}
			wait := sc.b.NextBackOff()
			logAt := sc.log.Warn
			if kind == kindThrottled {
				logAt = sc.log.Debug // routine: Kinesis allows 5 reads/s per shard, shared by every application
			}
			logAt("GetRecords failed; backing off", zap.Duration("retry_in", wait), zap.Error(err))
			sc.sleep(wait)
			continue
		}
		sc.b.Reset()
		behind := aws.ToInt64(out.MillisBehindLatest)
		sc.w.metrics.MillisBehindLatest(sc.shard, behind)
		if len(out.Records) > 0 {
			sc.lastSeq = aws.ToString(out.Records[len(out.Records)-1].SequenceNumber)
		}
		if r := sc.deliver(out.Records, behind); r != exitNone {
			return r
		}
		if out.NextShardIterator == nil {
			return sc.endShard(out.ChildShards)
		}
		sc.iterator = out.NextShardIterator
		if len(out.Records) == 0 || behind == 0 {
			sc.sleep(sc.w.cfg.IdleTimeBetweenReads)
		}
	}
}

// iterResult is what newIterator found.
type iterResult int

const (
	iterOK    iterResult = iota
	iterRetry            // try again (after a back-off already waited, or at once)
	iterEnded            // the shard is gone
)

// newIterator gets a shard iterator: after the last record read, or else at
// the lease's checkpoint (AT_SEQUENCE_NUMBER, the records up to the
// checkpoint being skipped by deliver), or at the record a restart of the
// reader resumes from, or at its initial position.
func (sc *shardConsumer) newIterator() iterResult {
	in := &kinesis.GetShardIteratorInput{StreamName: sc.w.streamName, StreamARN: sc.w.streamARN, ShardId: aws.String(sc.shard)}
	switch {
	case sc.lastSeq != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(sc.lastSeq)
	case sc.after != (checkpoint.Checkpoint{}):
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(sc.after.SequenceNumber)
	case sc.atSeq != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(sc.atSeq)
	default:
		switch sc.start.SequenceNumber {
		case checkpoint.TrimHorizon:
			in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
		case checkpoint.AtTimestamp:
			in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(sc.startTime())
		default:
			in.ShardIteratorType = types.ShardIteratorTypeLatest
		}
	}
	out, err := sc.w.client.GetShardIterator(sc.readCtx, in)
	if err == nil {
		sc.iterator = out.ShardIterator
		return iterOK
	}
	wait := sc.b.NextBackOff()
	kind := classify(sc.readCtx, err)
	switch kind {
	case kindCanceled:
		return iterRetry
	case kindNotFound:
		if sc.shardGone() {
			return iterEnded
		}
	case kindInvalidArgument:
		// The shard does not hold the checkpoint's sequence number: it
		// most likely comes from an earlier stream of the same name.
		// Neither skipping to the newest record nor reading everything
		// again is safe to decide here: stall, loudly, until an operator
		// deletes the application's leases.
		sc.log.Error("cannot read from the checkpoint; the shard does not hold it (was the stream re-created?)",
			zap.String("type", string(in.ShardIteratorType)), zap.String("sequence_number", aws.ToString(in.StartingSequenceNumber)),
			zap.Duration("retry_in", wait), zap.Error(err))
		sc.sleep(wait)
		return iterRetry
	}
	logAt := sc.log.Warn
	if kind == kindThrottled {
		logAt = sc.log.Debug
	}
	logAt("GetShardIterator failed; backing off", zap.Duration("retry_in", wait), zap.Error(err))
	sc.sleep(wait)
	return iterRetry
}

// startTime is where an AT_TIMESTAMP lease starts: at its own time (a
// lease reset to a time), else at Config.InitialTimestamp.
func (sc *shardConsumer) startTime() time.Time {
	if t := sc.start.Timestamp; !t.IsZero() {
		return t
	}
	return sc.w.cfg.InitialTimestamp
}

// shardGone reports whether a complete shard listing no longer has the
// shard (Kinesis answered ResourceNotFound for it).
func (sc *shardConsumer) shardGone() bool {
	shards, err := sc.w.listShards(sc.readCtx)
	if err != nil {
		return false
	}
	for _, s := range shards {
		if s.id == sc.shard {
			return false
		}
	}
	sc.log.Warn("shard no longer exists; ending it")
	return true
}

// endShard handles a shard that has ended: it creates the children's
// leases (in one transaction, before the parent is marked ended, so that a
// crash between the two cannot lose them), has the processor checkpoint
// SHARD_END, and releases the lease.
func (sc *shardConsumer) endShard(children []types.ChildShard) exitReason {
	sc.ended.Store(true)
	sc.unwatch() // no record waits any more
	app := sc.w.cfg.ApplicationName
	var kids []checkpoint.Lease
	if len(children) > 0 {
		kids = childLeases(app, children)
	} else if shards, err := sc.w.listShards(sc.fetchCtx); err == nil {
		kids = childLeasesFromListing(app, sc.shard, shards)
	} else {
		// The shard sync creates them later.
		sc.log.Warn("shard ended; could not list its children", zap.Error(err))
		sc.w.requestSync()
	}
	kids = sc.withOtherParents(kids)
	if len(kids) > 0 {
		if err := sc.w.store.CreateChildLeases(sc.procCtx, app, sc.shard, kids); err != nil {
			if r := sc.why(); r != exitNone {
				return r
			}
			if errors.Is(err, checkpoint.ErrNotFound) {
				sc.lease.markLost(err)
				return exitLost
			}
			sc.w.storeFailed(sc.procCtx, err)
			return exitLost
		}
	}
	ids := make([]string, len(kids))
	for i, k := range kids {
		ids[i] = k.ShardID
	}
	for {
		if r := sc.why(); r != exitNone {
			return r
		}
		err := sc.proc.ShardEnded(sc.procCtx, ShardEndedInput{
			ShardID: sc.shard, ChildShardIDs: ids,
			Checkpointer: &Checkpointer{sc: sc, at: checkpoint.Checkpoint{SequenceNumber: checkpoint.ShardEnd}},
		})
		if sc.lease.copyLease().Checkpoint.IsShardEnd() {
			if err != nil {
				sc.log.Warn("processor ShardEnded failed after checkpointing SHARD_END", zap.Error(err))
			}
			break
		}
		if r := sc.why(); r != exitNone {
			return r
		}
		if err == nil {
			err = errors.New("returned without checkpointing SHARD_END")
		}
		wait := sc.b.NextBackOff()
		sc.log.Error("processor ShardEnded must checkpoint SHARD_END; calling it again",
			zap.Duration("retry_in", wait), zap.Error(err))
		sc.sleep(wait)
	}
	sc.log.Info("shard ended", zap.Strings("children", ids))
	sc.releaseLease()
	return exitEnded
}

// withOtherParents drops the merge children whose other parent has no
// lease yet. Such a child would not wait for that parent (a parent without
// a lease does not block, see parentsPending), whose records may still be
// unprocessed: the other parent (itself a child whose lease is not created
// yet) creates the merge child when it ends, and a shard sync creates both
// in order meanwhile, so one is asked for. The KCL's ShutdownTask checks the
// same.
func (sc *shardConsumer) withOtherParents(kids []checkpoint.Lease) []checkpoint.Lease {
	out := kids[:0:0]
	for _, k := range kids {
		ok := true
		for _, p := range k.ParentShardIDs {
			if p == sc.shard {
				continue
			}
			_, err := sc.w.store.GetLease(sc.procCtx, sc.w.cfg.ApplicationName, p)
			if err != nil {
				ok = false
				if errors.Is(err, checkpoint.ErrNotFound) {
					sc.log.Info("merge child left for its other parent to create", zap.String("child", k.ShardID), zap.String("other_parent", p))
					sc.w.requestSync()
				} else {
					sc.w.storeFailed(sc.procCtx, err)
				}
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

// shutdown is the graceful stop: ShutdownRequested, then release, or the
// hand-off to the worker that asked for the lease.
func (sc *shardConsumer) shutdown() {
	to := sc.handoffTo.Load()
	if sc.initialized {
		in := ShutdownRequestedInput{ShardID: sc.shard, Checkpointer: &Checkpointer{sc: sc, at: sc.processed}}
		if to != nil {
			in.HandoffTo = *to
		}
		if err := sc.proc.ShutdownRequested(sc.procCtx, in); err != nil {
			sc.log.Warn("processor ShutdownRequested failed", zap.Error(err))
		}
	}
	switch {
	case sc.lease.lost.Load() || sc.w.hardCtx.Err() != nil:
		sc.lease.abandon()
	case to != nil:
		sc.handOffLease()
	default:
		sc.releaseLease()
	}
}

// releaseLease gives the lease back so that another worker takes it at
// once.
func (sc *shardConsumer) releaseLease() {
	ctx, cancel := context.WithTimeout(sc.w.hardCtx, sc.w.cfg.FailoverTime)
	defer cancel()
	if err := sc.lease.release(ctx); err != nil {
		sc.log.Warn("lease release failed; it will expire", zap.Error(err))
		return
	}
	sc.log.Info("lease released")
}
