package natsengine

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// This file holds the append path: Nats-Msg-Id values, the arrival time of a
// log's first append, Append with its resends, and the search for an earlier
// send after a seal.

// newMsgID returns a Nats-Msg-Id no other publish uses.
func (e *Engine) newMsgID() string {
	return e.idBase + "-" + strconv.FormatUint(e.idSeq.Add(1), 36)
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
