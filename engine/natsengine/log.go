package natsengine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
)

// This file holds what an Engine knows of one log (logState: known
// sequences, arrival times, the oldest batch SeekTime answers from, sealed
// and dead), how it learns it, and the handle type with its small methods.

// logState is what this Engine knows of one log, shared by all its
// handles.
type logState struct {
	e       *Engine
	id      engine.LogID
	name    string // the JetStream stream
	subject string // the subject of its batches
	notice  string // the subject of its change notices

	// pubMu orders this process's publishes to the log: an appender holds
	// it while it stamps the batch's arrival time and writes the message to
	// the connection, so that the stream stores the batches of one process
	// in the order of their arrival times. Taken before mu.
	pubMu sync.Mutex

	// mu guards the fields below; held briefly, never while calling NATS.
	mu    sync.Mutex
	seen  uint64 // highest sequence known stored (acked, noticed or reported by the leader)
	first uint64 // lowest sequence known retained: reads skip the ones below
	// stampMs is the newest arrival stamped or read here: the next batch
	// arrives at no earlier time. arrivalKnown is set once it also covers
	// the batches stored before this process first used the log.
	stampMs      int64
	arrivalKnown bool
	newestSeq    uint64 // the highest sequence whose arrival is known...
	newestMs     int64  // ...and that arrival
	// oldSeq is the oldest batch known retained and oldMs its arrival (0:
	// unknown): SeekTime answers a cutoff at or before oldMs with it and no
	// request, the common case of the server's trim horizon on every read.
	// A purge only removes batches that arrived before its cutoff, so the
	// batch stays while cutoffs stay at or before its arrival; a purge this
	// process learns of (first beyond it) forgets it.
	oldSeq uint64
	oldMs  int64
	// missingSince is when JetStream first answered "stream not found" for
	// the log since its last successful operation (zero: not missing).
	missingSince time.Time
	sealed       bool
	dead         bool          // deleted, or the engine closed
	changed      chan struct{} // closed and cleared on a change; nil until asked for
}

func (e *Engine) newLogState(id engine.LogID) *logState {
	return &logState{e: e, id: id, name: e.streamName(id), subject: e.dataSubject(id), notice: e.noticeSubject(id)}
}

// kill marks the log dead: its handles fail from now on and its waiters
// wake.
func (ls *logState) kill() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.dead = true
	ls.notifyLocked()
}

// observeSeq records that sequence seq is stored, waking waiters if it is
// news.
func (ls *logState) observeSeq(seq uint64) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.foundLocked()
	if seq > ls.seen {
		ls.seen = seq
		ls.notifyLocked()
	}
}

// observeSealed records that the stream is sealed, waking waiters if it is
// news.
func (ls *logState) observeSealed() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !ls.sealed {
		ls.sealed = true
		ls.notifyLocked()
	}
}

// observeInfo records what the stream leader reported.
func (ls *logState) observeInfo(si *jetstream.StreamInfo) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.foundLocked()
	changed := false
	if si.State.LastSeq > ls.seen {
		ls.seen = si.State.LastSeq
		changed = true
	}
	ls.first = max(ls.first, si.State.FirstSeq)
	ls.forgetOldestLocked()
	if si.Config.Sealed && !ls.sealed {
		ls.sealed = true
		changed = true
	}
	if changed {
		ls.notifyLocked()
	}
}

// observeArrival records the arrival time of the batch at seq.
func (ls *logState) observeArrival(seq uint64, ms int64) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if seq >= ls.newestSeq {
		ls.newestSeq, ls.newestMs = seq, ms
	}
	ls.stampMs = max(ls.stampMs, ms)
}

// observeFirst records that sequences below first are gone.
func (ls *logState) observeFirst(first uint64) {
	ls.mu.Lock()
	ls.first = max(ls.first, first)
	ls.forgetOldestLocked()
	ls.mu.Unlock()
}

// observeOldest records that the batch at seq, which arrived at ms, is the
// oldest retained.
func (ls *logState) observeOldest(seq uint64, ms int64) {
	ls.mu.Lock()
	if seq >= ls.first {
		ls.oldSeq, ls.oldMs = seq, ms
	}
	ls.mu.Unlock()
}

// forgetOldestLocked drops oldSeq once a purge went past it. The caller
// holds ls.mu.
func (ls *logState) forgetOldestLocked() {
	if ls.oldSeq != 0 && ls.oldSeq < ls.first {
		ls.oldSeq, ls.oldMs = 0, 0
	}
}

// seekOldest answers SeekTime(ms) without a request when the oldest batch
// is known and arrived at or after ms.
func (ls *logState) seekOldest(ms int64) (uint64, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.oldSeq == 0 || ls.dead || ls.oldMs < ms {
		return 0, false
	}
	return ls.oldSeq, true
}

func (ls *logState) snapshot() (seen, first uint64, sealed bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.seen, ls.first, ls.sealed
}

// info asks the stream leader for the stream's state and records it.
func (ls *logState) info(ctx context.Context, op string) (*jetstream.StreamInfo, error) {
	var si *jetstream.StreamInfo
	err := ls.e.retry(ctx, func(ctx context.Context) error {
		var err error
		si, err = ls.e.streamInfo(ctx, ls.name)
		return err
	})
	if err != nil {
		return nil, ls.lost(op, err)
	}
	ls.observeInfo(si)
	return si, nil
}

// handle is an engine.Log: one opening of a log.
type handle struct {
	ls     *logState
	closed atomic.Bool
}

var _ engine.Log = (*handle)(nil)

// check fails with ErrClosed on a closed handle, a dead log or a closed
// engine.
func (h *handle) check(op string) error {
	ls := h.ls
	ls.mu.Lock()
	dead := ls.dead
	ls.mu.Unlock()
	if dead || h.closed.Load() || ls.e.closed.Load() {
		return errClosed(op + " " + ls.id.String())
	}
	return nil
}

// Sync does nothing: JetStream acknowledged every append once a quorum of
// replicas stored it (durably, with sync_interval: always).
func (h *handle) Sync(context.Context) error { return h.check("sync") }

// Close releases the handle; the log remains. Closing again does nothing.
func (h *handle) Close() error {
	h.closed.Store(true)
	return nil
}
