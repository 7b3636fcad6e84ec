package natsengine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// Read sizes: one Direct Get asks for at most maxDirectBatch messages and
// about maxReadChunk bytes; a Read that wants more asks again.
const (
	maxDirectBatch = 1000
	maxReadChunk   = 8 << 20
)

// settleInterval is the spacing of the two stream states Seal compares to
// decide that the publishes accepted before the seal have all committed.
const settleInterval = 50 * time.Millisecond

// closedChan is the Changed channel of dead logs.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

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

// notifyLocked wakes the waiters on Changed.
func (ls *logState) notifyLocked() {
	if ls.changed != nil {
		close(ls.changed)
		ls.changed = nil
	}
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

// hasWaiter reports whether somebody holds a Changed channel of the log.
func (ls *logState) hasWaiter() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.changed != nil && !ls.dead
}

// missingGrace is how long JetStream must keep answering "stream not
// found" for a log this process knew before the log counts as deleted
// without a deletion notice. A cluster restarting answers so for streams it
// has not recovered yet; a real deletion by another process is normally
// learned at once from its notice (or the process's own DeleteLog).
const missingGrace = 30 * time.Second

// notFound records a "stream not found" answer and reports whether the log
// now counts as deleted: the answer has held for missingGrace.
func (ls *logState) notFound() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now := time.Now()
	if ls.missingSince.IsZero() {
		ls.missingSince = now
	}
	return now.Sub(ls.missingSince) >= missingGrace
}

// foundLocked clears notFound's record after a successful operation. The
// caller holds ls.mu.
func (ls *logState) foundLocked() { ls.missingSince = time.Time{} }

// lost turns the failure of an operation on the log into the error to
// return: a stream that JetStream has reported missing for missingGrace was
// deleted, so the log is dead and the error wraps ErrClosed; before that
// the error is an ordinary (retryable) one.
func (ls *logState) lost(op string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || apiCode(err) == codeStreamNotFound {
		if !ls.notFound() {
			return fmt.Errorf("natsengine: %s %v: stream not found (a recovering cluster, or deleted): %w", op, ls.id, err)
		}
		ls.kill()
		ls.e.forget(ls)
		return errClosed(op + " " + ls.id.String() + ": stream deleted")
	}
	if errors.Is(err, engine.ErrClosed) || errors.Is(err, engine.ErrInvalidBatch) {
		return err
	}
	return fmt.Errorf("natsengine: %s %v: %w", op, ls.id, err)
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

// loadArrival makes stampMs cover the batches stored before this process
// first appended to the log, reading the newest batch's arrival once.
func (ls *logState) loadArrival(ctx context.Context) error {
	ls.mu.Lock()
	known := ls.arrivalKnown
	ls.mu.Unlock()
	if known {
		return nil
	}
	si, err := ls.info(ctx, "append to")
	if err != nil {
		return err
	}
	if si.State.Msgs > 0 {
		if _, err := ls.arrivalAt(ctx, si.State.LastSeq); err != nil {
			return ls.lost("append to", err)
		}
	}
	ls.mu.Lock()
	ls.arrivalKnown = true
	ls.mu.Unlock()
	return nil
}

// arrivalAt returns the arrival time of the batch at seq (0 if there is
// none), reading it through the leader unless it is the newest known.
func (ls *logState) arrivalAt(ctx context.Context, seq uint64) (int64, error) {
	ls.mu.Lock()
	if seq != 0 && seq == ls.newestSeq {
		ms := ls.newestMs
		ls.mu.Unlock()
		return ms, nil
	}
	ls.mu.Unlock()
	m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: seq})
	if err != nil || m == nil {
		return 0, err
	}
	ms, _, err := ls.decode(m.Seq, m.Data)
	return ms, err
}

// decode decodes the batch stored at seq and records its arrival.
func (ls *logState) decode(seq uint64, data []byte) (int64, []engine.Record, error) {
	ms, recs, err := storage.DecodeBatch(data)
	if err != nil {
		return 0, nil, fmt.Errorf("natsengine: log %v, sequence %d: %w: %w", ls.id, seq, engine.ErrCorrupt, err)
	}
	ls.observeArrival(seq, ms)
	return ms, recs, nil
}

// goneCheck ends an append's retries once the log is known to be gone: a
// publish without responders may be a deleted stream.
func (ls *logState) goneCheck(last error) error {
	ls.mu.Lock()
	dead := ls.dead
	ls.mu.Unlock()
	if dead {
		return errClosed("append to " + ls.id.String())
	}
	if errors.Is(last, nats.ErrNoResponders) {
		ctx, cancel := context.WithTimeout(ls.e.ctx, ls.e.cfg.RequestTimeout)
		defer cancel()
		if _, err := ls.e.streamInfo(ctx, ls.name); errors.Is(err, jetstream.ErrStreamNotFound) {
			return ls.lost("append to", err)
		}
	}
	return nil
}

// Append publishes recs as one message (the checksummed batch encoding)
// and returns its stream sequence once JetStream acknowledged it; see the
// package documentation for retries, arrival times and notices.
func (h *handle) Append(ctx context.Context, recs []engine.Record) (engine.Position, int64, error) {
	ls := h.ls
	e := ls.e
	if len(recs) == 0 || len(recs) > engine.MaxBatchRecords {
		return engine.Position{}, 0, fmt.Errorf("natsengine: append to %v: %w: %d records", ls.id, engine.ErrInvalidBatch, len(recs))
	}
	if err := h.check("append to"); err != nil {
		return engine.Position{}, 0, err
	}
	if _, _, sealed := ls.snapshot(); sealed {
		return engine.Position{}, 0, fmt.Errorf("natsengine: append to %v: %w", ls.id, engine.ErrSealed)
	}
	// The message carries two headers; allow for them.
	limit := int(e.nc.MaxPayload()) - 128 - len(ls.name)
	if size := storage.BatchSize(recs); size > limit {
		return engine.Position{}, 0, fmt.Errorf("natsengine: append to %v: %w: the batch encodes to %d bytes, more than the %d a NATS message may carry here (server max_payload %d)",
			ls.id, engine.ErrInvalidBatch, size, limit, e.nc.MaxPayload())
	}
	if err := ls.loadArrival(ctx); err != nil {
		return engine.Position{}, 0, err
	}
	id := e.newMsgID()
	reply, ch, release := e.newReply(16)
	defer release()
	msg := &nats.Msg{Subject: ls.subject, Reply: reply, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(jetstream.ExpectedStreamHeader, ls.name)

	ls.pubMu.Lock()
	now := e.cfg.Now().UnixMilli()
	ls.mu.Lock()
	seenBefore := ls.seen
	ms := max(now, ls.stampMs)
	ls.stampMs = ms
	ls.mu.Unlock()
	msg.Data = storage.EncodeBatch(recs, ms)
	sendErr := e.nc.PublishMsg(msg)
	ls.pubMu.Unlock()

	ack, attempts, err := e.awaitAck(ctx, msg, ch, sendErr, ls.goneCheck)
	if apiCode(err) == codeSealed {
		ls.observeSealed()
		if attempts == 1 {
			return engine.Position{}, 0, fmt.Errorf("natsengine: append to %v: %w", ls.id, engine.ErrSealed)
		}
		// An earlier send, whose reply was lost, may have been stored
		// before the seal: look for it.
		seq, ferr := ls.findMsgID(ctx, seenBefore+1, id)
		if ferr != nil {
			return engine.Position{}, 0, ls.lost("append to", fmt.Errorf("%w: sealed while an earlier send's outcome was unknown: %w", errUnknownOutcome, ferr))
		}
		if seq == 0 {
			return engine.Position{}, 0, fmt.Errorf("natsengine: append to %v: %w", ls.id, engine.ErrSealed)
		}
		ack = pubAck{Stream: ls.name, Seq: seq}
		err = nil
	}
	if err != nil {
		return engine.Position{}, 0, ls.lost("append to", err)
	}
	if ack.Stream != ls.name || ack.Seq == 0 || ack.Seq >= 1<<56 {
		return engine.Position{}, 0, fmt.Errorf("natsengine: append to %v: unexpected ack: stream %q, sequence %d", ls.id, ack.Stream, ack.Seq)
	}
	ls.observeArrival(ack.Seq, ms)
	ls.observeSeq(ack.Seq)
	_ = e.nc.Publish(ls.notice, []byte(noticeAppend+strconv.FormatUint(ack.Seq, 10)))
	return engine.Position{Offset: ack.Seq}, ms, nil
}

// findMsgID returns the sequence of the message with Nats-Msg-Id id at or
// after from in the sealed stream, or 0. It waits for the seal to settle.
func (ls *logState) findMsgID(ctx context.Context, from uint64, id string) (uint64, error) {
	if _, err := ls.settle(ctx); err != nil {
		return 0, err
	}
	for seq := max(from, 1); ; {
		m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: seq, NextFor: ls.subject})
		if err != nil {
			return 0, err
		}
		if m == nil {
			return 0, nil
		}
		if m.header().Get(jetstream.MsgIDHeader) == id {
			return m.Seq, nil
		}
		seq = m.Seq + 1
	}
}

// fetch returns messages from seq on: a Direct Get batch from the nearest
// replica and, when that replica ended before what this process knows to
// be stored (a follower may lag the leader by a few messages), the rest up
// to that through the leader. more reports that it stopped at a limit.
func (ls *logState) fetch(ctx context.Context, seq uint64, batch, maxBytes int) (msgs []directMsg, more bool, err error) {
	msgs, more, err = ls.e.directBatch(ctx, ls.name, ls.subject, seq, batch, maxBytes)
	if err != nil || more {
		return msgs, more, err
	}
	next, size := seq, 0
	for _, m := range msgs {
		size += len(m.data)
	}
	if len(msgs) > 0 {
		next = msgs[len(msgs)-1].seq + 1
	}
	seen, _, _ := ls.snapshot()
	for next <= seen && len(msgs) < batch && size < maxBytes {
		m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: next, NextFor: ls.subject})
		if err != nil {
			return nil, false, err
		}
		if m == nil {
			break
		}
		msgs = append(msgs, directMsg{seq: m.Seq, data: m.Data})
		size += len(m.Data)
		next = m.Seq + 1
		ls.e.fallbacks.Add(1)
	}
	return msgs, next <= seen, nil
}

// Read reads batches with Direct Get from the first at or after from; see
// the package documentation.
func (h *handle) Read(ctx context.Context, from engine.Position, maxRecords, maxBytes int) ([]engine.Entry, engine.Position, error) {
	if maxRecords <= 0 {
		maxRecords = math.MaxInt
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	if err := h.check("read"); err != nil {
		return nil, from, err
	}
	ls := h.ls
	_, first, _ := ls.snapshot()
	start := max(from.Offset, first, 1)
	var entries []engine.Entry
	used := 0
	next := from
	for len(entries) < maxRecords {
		batch := min(maxRecords-len(entries), maxDirectBatch)
		chunk := max(min(maxBytes-used, maxReadChunk), 1) + 64*batch // allow for headers and framing
		msgs, more, err := ls.fetch(ctx, start, batch, chunk)
		if err != nil {
			return nil, from, ls.lost("read", err)
		}
		for _, m := range msgs {
			ms, recs, err := ls.decode(m.seq, m.data)
			if err != nil {
				return nil, from, err
			}
			for i, r := range recs {
				if m.seq == from.Offset && i < int(from.Index) {
					continue
				}
				sz := len(r.PartitionKey) + len(r.Data)
				if len(entries) >= maxRecords || len(entries) > 0 && sz > maxBytes-used {
					return entries, engine.Position{Offset: m.seq, Index: uint16(i)}, nil
				}
				entries = append(entries, engine.Entry{
					Pos:           engine.Position{Offset: m.seq, Index: uint16(i)},
					ArrivalMillis: ms,
					PartitionKey:  r.PartitionKey,
					Data:          r.Data,
				})
				used += sz
			}
			next = engine.Position{Offset: m.seq + 1}
		}
		if len(msgs) == 0 || !more {
			break
		}
		start = msgs[len(msgs)-1].seq + 1
	}
	if len(entries) == 0 && !from.Less(next) {
		return nil, from, nil
	}
	return entries, next, nil
}

// seekSeq returns the first sequence in [first, last] whose batch arrived
// at or after ms, or 0 if none did. It binary-searches with reads through
// the leader (arrival times never decrease within a log, as this process
// stamps them; see the package documentation).
func (ls *logState) seekSeq(ctx context.Context, ms int64, first, last uint64) (uint64, error) {
	// probe returns the first message at or after seq and its arrival.
	probe := func(seq uint64) (uint64, int64, error) {
		m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: seq, NextFor: ls.subject})
		if err != nil || m == nil {
			return 0, 0, err
		}
		a, _, err := ls.decode(m.Seq, m.Data)
		return m.Seq, a, err
	}
	s, a, err := probe(first)
	if err == nil && s != 0 {
		ls.observeOldest(s, a)
	}
	if err != nil || s == 0 || a >= ms {
		return s, err // the common case: nothing older than ms is left
	}
	la, err := ls.arrivalAt(ctx, last)
	if err != nil || la < ms {
		return 0, err
	}
	// The batch at or after lo arrived before ms; the one at or after hi
	// (it is hiSeq) did not.
	lo, hi, hiSeq := s, last, last
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		s, a, err := probe(mid)
		if err != nil {
			return 0, err
		}
		if s == 0 || a >= ms {
			hi, hiSeq = mid, max(s, mid)
		} else {
			lo = s
		}
	}
	return hiSeq, nil
}

// SeekTime returns the position of the first batch that arrived at or
// after ms: it checks the oldest batch first, then binary-searches.
func (h *handle) SeekTime(ctx context.Context, ms int64) (engine.Position, error) {
	if err := h.check("seek"); err != nil {
		return engine.Position{}, err
	}
	ls := h.ls
	if seq, ok := ls.seekOldest(ms); ok {
		return engine.Position{Offset: seq}, nil
	}
	si, err := ls.info(ctx, "seek")
	if err != nil {
		return engine.Position{}, err
	}
	end := engine.Position{Offset: si.State.LastSeq + 1}
	if si.State.Msgs == 0 {
		return end, nil
	}
	seq, err := ls.seekSeq(ctx, ms, si.State.FirstSeq, si.State.LastSeq)
	if err != nil {
		return engine.Position{}, ls.lost("seek", err)
	}
	if seq == 0 {
		return end, nil
	}
	return engine.Position{Offset: seq}, nil
}

// Info reports the stream leader's first and last sequences and the
// newest batch's arrival time.
func (h *handle) Info(ctx context.Context) (engine.Info, error) {
	if err := h.check("info"); err != nil {
		return engine.Info{}, err
	}
	ls := h.ls
	si, err := ls.info(ctx, "info")
	if err != nil {
		return engine.Info{}, err
	}
	end := engine.Position{Offset: si.State.LastSeq + 1}
	in := engine.Info{Oldest: end, End: end}
	if si.State.Msgs > 0 {
		in.Oldest = engine.Position{Offset: si.State.FirstSeq}
	}
	if si.State.LastSeq > 0 {
		if in.LastArrivalMillis, err = ls.arrivalAt(ctx, si.State.LastSeq); err != nil {
			return engine.Info{}, ls.lost("info", err)
		}
	}
	return in, nil
}

// TrimBefore purges the batches before the first that arrived at or after
// ms, never the newest one, and returns how many it removed. A sealed
// stream refuses purges: TrimBefore removes nothing from it.
func (h *handle) TrimBefore(ctx context.Context, ms int64) (int, error) {
	if err := h.check("trim"); err != nil {
		return 0, err
	}
	ls := h.ls
	si, err := ls.info(ctx, "trim")
	if err != nil {
		return 0, err
	}
	if si.Config.Sealed || si.State.Msgs <= 1 {
		return 0, nil
	}
	first, last := si.State.FirstSeq, si.State.LastSeq
	cut, err := ls.seekSeq(ctx, ms, first, last)
	if err != nil {
		return 0, ls.lost("trim", err)
	}
	if cut == 0 || cut > last {
		cut = last // keep the newest batch: it carries the log's last arrival
	}
	if cut <= first {
		return 0, nil
	}
	n, err := ls.e.purge(ctx, ls.name, cut)
	if apiCode(err) == codeSealed {
		ls.observeSealed()
		return 0, nil
	}
	if err != nil {
		return 0, ls.lost("trim", err)
	}
	ls.observeFirst(cut)
	return int(n), nil
}

// Changed returns a channel closed at the next change this process sees:
// its own append, seal or deletion, another process's notice of one, or the
// poll that finds one.
func (h *handle) Changed() <-chan struct{} {
	ls := h.ls
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.dead || h.closed.Load() {
		return closedChan
	}
	if ls.changed == nil {
		ls.changed = make(chan struct{})
	}
	return ls.changed
}

// Seal seals the JetStream stream (irreversibly), waits until the stream
// has settled, and returns the end after its last batch.
func (h *handle) Seal(ctx context.Context) (engine.Position, error) {
	if err := h.check("seal"); err != nil {
		return engine.Position{}, err
	}
	ls := h.ls
	e := ls.e
	si, err := ls.info(ctx, "seal")
	if err != nil {
		return engine.Position{}, err
	}
	deadline := time.Now().Add(e.retryBudget())
	for delay := 20 * time.Millisecond; !si.Config.Sealed; delay = min(2*delay, time.Second) {
		cfg := si.Config
		cfg.Sealed = true
		uctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		_, uerr := e.js.UpdateStream(uctx, cfg)
		cancel()
		if uerr == nil {
			break
		}
		if errors.Is(uerr, jetstream.ErrStreamNotFound) {
			return engine.Position{}, ls.lost("seal", uerr)
		}
		// The update may have been applied although its reply was lost (a
		// retry with the old config is then refused): read the stream's
		// actual config before trying again.
		if si, err = ls.info(ctx, "seal"); err != nil {
			return engine.Position{}, err
		}
		if si.Config.Sealed {
			break
		}
		if !transient(uerr) || ctx.Err() != nil || time.Now().After(deadline) {
			return engine.Position{}, ls.lost("seal", uerr)
		}
		if err := e.sleep(ctx, delay); err != nil {
			return engine.Position{}, ls.lost("seal", err)
		}
	}
	ls.observeSealed()
	end, err := ls.settle(ctx)
	if err != nil {
		return engine.Position{}, err
	}
	_ = e.nc.Publish(ls.notice, []byte(noticeSeal+strconv.FormatUint(end.Offset, 10)))
	return end, nil
}

// settle waits until the sealed stream's state is final: publishes the
// leader accepted just before the seal may still be committing when the
// seal's update returns. It asks the leader until two answers
// settleInterval apart agree on the last sequence and the leader, with
// every online replica current (after the retry budget it gives up waiting
// for lagging replicas). It returns the end after the last batch.
func (ls *logState) settle(ctx context.Context) (engine.Position, error) {
	deadline := time.Now().Add(ls.e.retryBudget())
	var prev *jetstream.StreamInfo
	for {
		si, err := ls.info(ctx, "seal")
		if err != nil {
			return engine.Position{}, err
		}
		if prev != nil && si.State.LastSeq == prev.State.LastSeq && leaderOf(si) == leaderOf(prev) &&
			(replicasCurrent(si) || time.Now().After(deadline)) {
			return engine.Position{Offset: si.State.LastSeq + 1}, nil
		}
		prev = si
		if err := ls.e.sleep(ctx, settleInterval); err != nil {
			return engine.Position{}, ls.lost("seal", err)
		}
	}
}

func leaderOf(si *jetstream.StreamInfo) string {
	if si.Cluster == nil {
		return ""
	}
	return si.Cluster.Leader
}

// replicasCurrent reports whether the stream has a leader and every online
// replica has all of the leader's log.
func replicasCurrent(si *jetstream.StreamInfo) bool {
	if si.Cluster == nil {
		return true
	}
	if si.Cluster.Leader == "" {
		return false
	}
	for _, r := range si.Cluster.Replicas {
		if r != nil && !r.Offline && (!r.Current || r.Lag > 0) {
			return false
		}
	}
	return true
}

// Unseal fails: a sealed JetStream stream stays sealed.
func (h *handle) Unseal(context.Context) error {
	if err := h.check("unseal"); err != nil {
		return err
	}
	return fmt.Errorf("natsengine: unseal %v: %w", h.ls.id, engine.ErrIrreversible)
}

// Sync does nothing: JetStream acknowledged every append once a quorum of
// replicas stored it (durably, with sync_interval: always).
func (h *handle) Sync(context.Context) error { return h.check("sync") }

// Close releases the handle; the log remains. Closing again does nothing.
func (h *handle) Close() error {
	h.closed.Store(true)
	return nil
}
