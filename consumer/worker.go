package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
)

// Worker consumes a Kinesis stream as one member of a consumer application:
// the KCL's Scheduler. It holds leases on some of the stream's shards
// (shared with the application's other workers through a checkpoint.Store),
// runs one goroutine per held lease that reads the shard with GetRecords and
// hands the records to that lease's Processor, renews its leases, takes the
// leases of workers that stopped, steals leases toward an even share, and
// keeps the leases in line with the stream's shards.
//
// Make one with New and call Run.
type Worker struct {
	client  KinesisAPI
	store   checkpoint.Store
	handoff checkpoint.HandoffStore // store, when it can hand leases over and hand-off is on; else nil
	factory ProcessorFactory
	cfg     Config
	log     *zap.Logger
	metrics Metrics
	id      string

	streamName, streamARN *string
	retriever             retriever

	ran atomic.Bool

	// Set by Run before it starts any goroutine.
	//
	// hardCtx ends every goroutine and every call: after a crash, a
	// failure, the ShutdownTimeout, or when Run returns. Run's own ctx only
	// starts a graceful shutdown.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	wg         sync.WaitGroup // the syncer and renewer
	shardWG    sync.WaitGroup // the shard goroutines

	crashed atomic.Bool
	crashCh chan struct{} // closed by crash

	failOnce sync.Once
	failErr  error         // written once, before failed is closed
	failed   chan struct{} // closed by fail

	haltOnce sync.Once
	haltErr  error         // written once, before halted is closed
	halted   chan struct{} // closed by halt

	kickCh  chan struct{} // (capacity 1) run a take round soon
	syncNow chan struct{} // (capacity 1) sync shards soon

	rnd          *rand.Rand // used by the coordinator only
	failoverWarn sync.Once

	mu      sync.Mutex // guards the following
	shards  map[string]*shardConsumer
	listed  map[string]bool // shard IDs of the last complete listing; nil before the first
	listing []shardInfo
}

// New returns a Worker that reads with client, keeps leases in store and
// makes a Processor for each lease with factory. It checks cfg and returns
// every problem found. The store stays the caller's to close, after Run
// returns.
func New(client KinesisAPI, store checkpoint.Store, factory ProcessorFactory, cfg Config) (*Worker, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("consumer: nil Kinesis client"))
	}
	if store == nil {
		errs = append(errs, errors.New("consumer: nil Store"))
	}
	if factory == nil {
		errs = append(errs, errors.New("consumer: nil ProcessorFactory"))
	}
	cfg = cfg.withDefaults(store)
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	var ret retriever = polling{}
	if cfg.Retrieval == FanOut && client != nil {
		fc, ok := client.(FanOutAPI)
		if !ok {
			errs = append(errs, fmt.Errorf("consumer: Retrieval %v needs a client with SubscribeToShard and the consumer operations (FanOutAPI); %T has not", cfg.Retrieval, client))
		} else {
			ret = &fanOut{client: fc, consumerARN: cfg.ConsumerARN}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Worker{
		client: client, store: store, factory: factory, cfg: cfg,
		metrics: cfg.Metrics, id: cfg.WorkerID,
		log:       cfg.Logger.With(zap.String("application", cfg.ApplicationName), zap.String("worker_id", cfg.WorkerID)),
		crashCh:   make(chan struct{}),
		failed:    make(chan struct{}),
		halted:    make(chan struct{}),
		kickCh:    make(chan struct{}, 1),
		syncNow:   make(chan struct{}, 1),
		rnd:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		shards:    map[string]*shardConsumer{},
		retriever: ret,
	}
	if h, ok := store.(checkpoint.HandoffStore); ok && !cfg.NoGracefulHandoff {
		w.handoff = h
	}
	if cfg.StreamName != "" {
		w.streamName = aws.String(cfg.StreamName)
	}
	if cfg.StreamARN != "" {
		w.streamARN = aws.String(cfg.StreamARN)
	}
	return w, nil
}

// ID returns the worker's ID, the owner name of its leases.
func (w *Worker) ID() string { return w.id }

// Config returns the worker's configuration, defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// HeldShards returns the IDs of the shards whose leases the worker holds
// now, sorted.
func (w *Worker) HeldShards() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.shards))
	for id := range w.shards {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Run consumes the stream until ctx ends, then shuts down gracefully and
// returns nil: each shard's current ProcessRecords call finishes, its
// Processor's ShutdownRequested is called (and may checkpoint), and its
// lease is released, so that another worker takes it at once. The shutdown
// is bounded by Config.ShutdownTimeout; leases still held then are left to
// expire.
//
// Run returns an error, after stopping every goroutine it started, when the
// Store fails in a way it cannot recover from (an error matching none of
// the checkpoint sentinels, after the Store's own retries; or the Store was
// closed): the worker can no longer prove it holds its leases, so each
// Processor gets LeaseLost. Kinesis errors are retried, with back-off,
// forever. With the failure policy StopWorker, a batch that ProcessRecords
// keeps failing on shuts the worker down gracefully, as when ctx ends, and
// Run returns a *BatchError wrapping the processor's error. With FanOut
// retrieval, Run first registers (or finds) the stream consumer and waits
// until it is ACTIVE; if that fails (other than by ctx ending, which
// returns nil) Run returns the error before taking any lease.
// A Worker runs once; a second Run returns ErrClosed.
func (w *Worker) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return ErrClosed
	}
	// Calls made during a graceful shutdown must outlive ctx.
	w.hardCtx, w.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer w.hardCancel()

	if f, ok := w.retriever.(*fanOut); ok {
		if err := w.setupFanOut(ctx, f); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it started
			}
			return err
		}
	}

	listenCtx, stopListen := context.WithCancel(w.hardCtx)
	defer stopListen()
	events, err := w.store.Listen(listenCtx, w.cfg.ApplicationName)
	if err != nil {
		return fmt.Errorf("consumer: listen for lease events: %w", err)
	}
	w.log.Info("worker started", zap.String("stream", w.cfg.StreamName), zap.Duration("failover_time", w.cfg.FailoverTime))

	syncCtx, stopSync := context.WithCancel(w.hardCtx)
	defer stopSync()
	renewCtx, stopRenew := context.WithCancel(w.hardCtx)
	defer stopRenew()
	w.wg.Go(func() { w.syncLoop(syncCtx) })
	w.wg.Go(func() { w.renewLoop(renewCtx) })
	if w.cfg.StallTimeout > 0 {
		w.wg.Go(func() { w.watchdogLoop(renewCtx) })
	}

	err = w.coordinate(ctx, events)
	stopSync()

	switch {
	case errors.Is(err, errCrashed):
		// Die: no callback, no checkpoint, no release.
		w.hardCancel()
		w.shardWG.Wait()
	case err != nil:
		w.log.Error("worker failed; stopping", zap.Error(err))
		for _, sc := range w.heldConsumers() {
			sc.abort()
		}
		w.waitShards()
	default:
		w.log.Info("worker shutting down", zap.Int("leases", len(w.HeldShards())))
		for _, sc := range w.heldConsumers() {
			sc.stop()
		}
		w.waitShards()
		w.releaseUnheld()
		switch {
		case isClosed(w.failed):
			err = w.failErr // the Store failed during the shutdown
		case isClosed(w.halted):
			err = w.haltErr
		}
	}
	stopRenew()
	stopListen()
	for range events {
		// The listener closes the channel when it has stopped.
	}
	w.wg.Wait()
	w.metrics.LeasesHeld(0)
	w.log.Info("worker stopped", zap.Error(err))
	return err
}

// waitShards waits for the shard goroutines, at most ShutdownTimeout; then
// it abandons those still running (their leases will expire).
func (w *Worker) waitShards() {
	done := make(chan struct{})
	go func() {
		w.shardWG.Wait()
		close(done)
	}()
	t := time.NewTimer(w.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	w.log.Warn("shutdown timed out; abandoning the leases still held", zap.Strings("shards", w.HeldShards()))
	w.hardCancel()
	<-done
}

// crash stops the worker as if its process died: no processor callback, no
// checkpoint, no lease release. For tests.
func (w *Worker) crash() {
	if w.crashed.CompareAndSwap(false, true) {
		close(w.crashCh)
	}
}

// fail stops the worker with err (the first one wins).
func (w *Worker) fail(err error) {
	w.failOnce.Do(func() {
		w.failErr = err
		close(w.failed)
	})
}

// storeFailed fails the worker on a Store error that is not one of the
// outcomes callers handle (lost lease, not found, backwards, invalid), and
// not the end of a ctx (ctx, or the worker's own).
func (w *Worker) storeFailed(ctx context.Context, err error) {
	switch {
	case err == nil, ctx.Err() != nil, w.hardCtx.Err() != nil,
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		lostTo(err), errors.Is(err, checkpoint.ErrCheckpointBackwards), errors.Is(err, checkpoint.ErrInvalid):
		return
	}
	w.fail(fmt.Errorf("consumer: store: %w", err))
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// kick asks the coordinator for a take round.
func (w *Worker) kick() {
	select {
	case w.kickCh <- struct{}{}:
	default:
	}
}

// requestSync asks the syncer for a shard sync.
func (w *Worker) requestSync() {
	select {
	case w.syncNow <- struct{}{}:
	default:
	}
}

func (w *Worker) setListing(shards []shardInfo, listed map[string]bool) {
	w.mu.Lock()
	w.listing, w.listed = shards, listed
	w.mu.Unlock()
}

func (w *Worker) heldConsumers() []*shardConsumer {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*shardConsumer, 0, len(w.shards))
	for _, sc := range w.shards {
		out = append(out, sc)
	}
	return out
}

func (w *Worker) consumerOf(shard string) *shardConsumer {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.shards[shard]
}

// coordinate is the worker's main loop: it runs a take round at start, on
// lease events that may make a lease available or ready, on kicks, and
// every TakeInterval. It returns nil when ctx ends or after halt,
// errCrashed after crash, and the failure after fail.
func (w *Worker) coordinate(ctx context.Context, events <-chan checkpoint.Event) error {
	ticker := time.NewTicker(w.cfg.TakeInterval)
	defer ticker.Stop()
	// After a steal, the next round comes after a renewal period rather
	// than a whole TakeInterval: the victim has heard of the steal by then,
	// and a joining worker reaches its share in a few seconds instead of a
	// few TakeIntervals, still one bounded steal at a time.
	stealAgain := time.NewTimer(time.Hour)
	stealAgain.Stop()
	defer stealAgain.Stop()
	// After a request for a lease (graceful hand-off), a round when it
	// lapses takes the lease if its owner did not hand it over. lapses are
	// the moments the requests made lapse, in order; the timer is set to
	// the first.
	lapsed := time.NewTimer(time.Hour)
	lapsed.Stop()
	defer lapsed.Stop()
	var lapses []time.Time
	round := true
	for {
		if round && ctx.Err() == nil && !w.crashed.Load() && !isClosed(w.failed) && !isClosed(w.halted) {
			round = false
			r := w.takeRound(ctx)
			if r.again {
				w.kick() // look again soon
			}
			if r.moved {
				stealAgain.Reset(w.cfg.FailoverTime / 3)
			}
			if r.lapse > 0 {
				if lapses = append(lapses, time.Now().Add(r.lapse)); len(lapses) == 1 {
					lapsed.Reset(r.lapse)
				}
			}
		}
		select {
		case <-ctx.Done():
			if w.crashed.Load() {
				// Crashed, then cancelled, before this loop looked: select
				// picks among ready cases at random, and a crash must not
				// read as a graceful stop.
				return errCrashed
			}
			return nil
		case <-w.crashCh:
			return errCrashed
		case <-w.failed:
			return w.failErr
		case <-w.halted:
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				if ctx.Err() == nil {
					w.fail(fmt.Errorf("consumer: lease events stopped: %w", checkpoint.ErrClosed))
				}
				continue
			}
			round = w.handleEvent(ev) || round
		drain:
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						break drain // seen by the outer select next time
					}
					round = w.handleEvent(ev) || round
				default:
					break drain
				}
			}
		case <-ticker.C:
			round = true
		case <-stealAgain.C:
			round = true
		case <-lapsed.C:
			round = true
			now := time.Now()
			for len(lapses) > 0 && !lapses[0].After(now) {
				lapses = lapses[1:]
			}
			if len(lapses) > 0 {
				lapsed.Reset(lapses[0].Sub(now))
			}
		case <-w.kickCh:
			round = true
		}
	}
}

// handleEvent acts on a lease event and reports whether a take round is
// due: the event may have made a lease available (released, expired,
// created, deleted), ready (a parent ended or was deleted), handed over to
// this worker, or events were missed (resync). A take, release or reset by
// someone else of a lease this worker holds means it moved (stolen, or an
// operator's forced release or reset): processing stops at once rather than
// at the next renewal. A hand-off request for a lease this worker holds
// starts the hand-off.
func (w *Worker) handleEvent(ev checkpoint.Event) bool {
	if ev.Stream != "" {
		// A lease of a multi-stream application's named stream: not this
		// worker's (see ownStream).
		return false
	}
	var sc *shardConsumer
	if ev.ShardID != "" {
		sc = w.consumerOf(ev.ShardID)
	}
	switch ev.Type {
	case checkpoint.EventTaken:
		if sc != nil {
			sc.lease.movedAway(ev)
		}
		// A lease handed over to this worker: take it at once.
		return sc == nil && ev.Owner == w.id
	case checkpoint.EventReleased, checkpoint.EventReset:
		if sc != nil {
			sc.lease.movedAway(ev)
		}
	case checkpoint.EventDeleted:
		if sc != nil {
			sc.lease.markLost(fmt.Errorf("lease deleted: %w", checkpoint.ErrNotFound))
		}
	case checkpoint.EventHandoffRequested:
		if sc != nil && ev.Owner == w.id && ev.HandoffTo != w.id && w.handoff != nil {
			sc.handOff(ev.HandoffTo)
		}
		return false
	}
	return true
}

// startShard starts the goroutine that processes a lease just taken by a
// TakeLease call that began at taken (monoNow).
func (w *Worker) startShard(l checkpoint.Lease, taken int64) {
	proc := w.factory(l.ShardID)
	if proc == nil {
		w.fail(fmt.Errorf("consumer: ProcessorFactory returned nil for %s", l.ShardID))
		return
	}
	sc := newShardConsumer(w, l, proc)
	sc.lease.confirmed.Store(taken)
	w.mu.Lock()
	w.shards[l.ShardID] = sc
	n := len(w.shards)
	w.mu.Unlock()
	w.metrics.LeasesHeld(n)
	w.shardWG.Go(sc.run)
}

// shardExited forgets a shard whose goroutine is returning.
func (w *Worker) shardExited(sc *shardConsumer) {
	w.mu.Lock()
	if w.shards[sc.shard] == sc {
		delete(w.shards, sc.shard)
	}
	n := len(w.shards)
	w.mu.Unlock()
	w.metrics.LeasesHeld(n)
	w.kick()
}

// newBackoff returns the back-off of failed calls: TaskBackoff doubling to
// MaxBackoff, with jitter, forever.
func (w *Worker) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = w.cfg.TaskBackoff
	b.MaxInterval = w.cfg.MaxBackoff
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// jitter returns d ± 10%, so that workers started together spread their
// periodic work.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/10 + rand.N(d/5+1)
}
