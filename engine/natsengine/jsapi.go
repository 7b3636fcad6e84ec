package natsengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
)

// This file holds the JetStream protocol the jetstream package does not
// cover the way the engine needs: publishes whose outcome must become known
// (retried with their Nats-Msg-Id), batched Direct Gets, leader reads, and
// purges that report their count; and the retry policy of API calls.

// JetStream API error codes the engine acts on.
const (
	codeClusterIncomplete  = 10004
	codeNoPeers            = 10005
	codeClusterNotActive   = 10006
	codeClusterNotAssigned = 10007
	codeClusterNotAvail    = 10008
	codeClusterNotLeader   = 10009
	codeMsgNotFound        = 10037
	codeStreamNotFound     = 10059
	codeWrongLastSeq       = 10071
	codeStreamOffline      = 10118
	codeDupConflict        = 10158
	codeWrongLastSeqR      = 10164
	codeStreamOfflineWhy   = 10194
	codeSealed             = 10109
)

// apiCode returns the JetStream API error code of err, or 0.
func apiCode(err error) int {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return int(ae.ErrorCode)
	}
	return 0
}

// transient reports whether a failed call may succeed when retried: a
// timeout, no responders (no stream leader yet), a reconnect in progress, or
// JetStream reporting the cluster busy electing.
func transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrStaleConnection):
		return true
	}
	switch apiCode(err) {
	case codeClusterIncomplete, codeNoPeers, codeClusterNotActive, codeClusterNotAssigned, codeClusterNotAvail,
		codeClusterNotLeader, codeStreamOffline, codeStreamOfflineWhy, codeDupConflict:
		return true
	}
	return false
}

// retryBudget is how long an operation retries transient failures before
// it gives up (a leader election takes a few seconds).
func (e *Engine) retryBudget() time.Duration { return 4 * e.cfg.RequestTimeout }

// retry calls op, each call bounded by RequestTimeout, until it succeeds,
// fails for good, ctx ends or the retry budget is spent. It returns op's
// last error.
func (e *Engine) retry(ctx context.Context, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(e.retryBudget())
	delay := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		err := op(actx)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		if err := e.sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, time.Second)
	}
}

// sleep waits d, or fails when ctx ends or the engine closes.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.ctx.Done():
		return engine.ErrClosed
	}
}

// streamInfo asks the stream leader for the stream's configuration, state
// and cluster (one attempt).
func (e *Engine) streamInfo(ctx context.Context, name string) (*jetstream.StreamInfo, error) {
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// apiRequest sends a JetStream API request (JSON) and decodes the JSON
// reply into resp (one attempt, bounded by ctx).
func (e *Engine) apiRequest(ctx context.Context, subj string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	m, err := e.nc.RequestWithContext(ctx, subj, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, resp); err != nil {
		return fmt.Errorf("JetStream reply to %s: %w", subj, err)
	}
	return nil
}

// msgGetRequest is the body of STREAM.MSG.GET and DIRECT.GET requests.
type msgGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	LastFor  string `json:"last_by_subj,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// storedMsg is one stream message as the STREAM.MSG.GET API returns it.
type storedMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	RawHdr  []byte `json:"hdrs,omitempty"`
	Data    []byte `json:"data,omitempty"`
}

// header decodes the message's headers (nil when it has none).
func (m *storedMsg) header() nats.Header {
	if len(m.RawHdr) == 0 {
		return nil
	}
	h, err := nats.DecodeHeadersMsg(m.RawHdr)
	if err != nil {
		return nil
	}
	return h
}

// leaderGet reads one message through the stream leader (the
// STREAM.MSG.GET API, which followers do not answer), so it sees every
// acknowledged write. It returns nil when there is no such message.
func (e *Engine) leaderGet(ctx context.Context, stream string, req msgGetRequest) (*storedMsg, error) {
	var resp struct {
		Message *storedMsg          `json:"message"`
		Error   *jetstream.APIError `json:"error"`
	}
	err := e.retry(ctx, func(ctx context.Context) error {
		resp.Message, resp.Error = nil, nil
		if err := e.apiRequest(ctx, "$JS.API.STREAM.MSG.GET."+stream, req, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return resp.Error
		}
		return nil
	})
	switch apiCode(err) {
	case codeMsgNotFound:
		return nil, nil
	case codeStreamNotFound:
		return nil, jetstream.ErrStreamNotFound
	}
	if err != nil {
		return nil, err
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("JetStream message get on %s: empty reply", stream)
	}
	return resp.Message, nil
}

// directMsg is one message of a Direct Get reply.
type directMsg struct {
	seq  uint64
	data []byte
	hdr  nats.Header
}

// directBatch asks any replica of stream (the nearest answers) for up to
// batch messages of subject from sequence seq on, stopping after maxBytes.
// It returns the messages and whether the replica had more (false when the
// replica reached its end: it may lag the leader). A stream with no
// replica answering yet is retried like other transient failures.
func (e *Engine) directBatch(ctx context.Context, stream, subject string, seq uint64, batch, maxBytes int) (msgs []directMsg, more bool, err error) {
	err = e.retry(ctx, func(ctx context.Context) error {
		msgs, more = msgs[:0], false
		reply, ch, release := e.newReply(batch + 4)
		defer release()
		body, err := json.Marshal(msgGetRequest{Seq: seq, NextFor: subject, Batch: batch, MaxBytes: maxBytes})
		if err != nil {
			return err
		}
		if err := e.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, reply, body); err != nil {
			return err
		}
		for {
			var m *nats.Msg
			select {
			case m = <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			switch st := m.Header.Get("Status"); st {
			case "":
				s, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
				if err != nil {
					return fmt.Errorf("direct get of %s: reply without a sequence", stream)
				}
				msgs = append(msgs, directMsg{seq: s, data: m.Data, hdr: m.Header})
				if len(msgs) > batch {
					return fmt.Errorf("direct get of %s: more than %d messages", stream, batch)
				}
			case "204": // end of batch
				pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				more = pending > 0
				return nil
			case "404": // nothing at or after seq on this replica
				return nil
			case "503":
				// No replica answers: the stream is gone, or has no
				// leader yet.
				if _, err := e.streamInfo(ctx, stream); errors.Is(err, jetstream.ErrStreamNotFound) {
					return err
				}
				return nats.ErrNoResponders
			default:
				return fmt.Errorf("direct get of %s: status %s %s", stream, st, m.Header.Get("Description"))
			}
		}
	})
	return msgs, more, err
}

// purge removes the messages of stream below seq and returns how many.
func (e *Engine) purge(ctx context.Context, stream string, seq uint64) (uint64, error) {
	var resp struct {
		Success bool                `json:"success"`
		Purged  uint64              `json:"purged"`
		Error   *jetstream.APIError `json:"error"`
	}
	err := e.retry(ctx, func(ctx context.Context) error {
		resp.Error = nil
		if err := e.apiRequest(ctx, "$JS.API.STREAM.PURGE."+stream, struct {
			Seq uint64 `json:"seq"`
		}{seq}, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return resp.Error
		}
		return nil
	})
	if apiCode(err) == codeStreamNotFound {
		return 0, jetstream.ErrStreamNotFound
	}
	return resp.Purged, err
}

// pubAck is a JetStream publish reply.
type pubAck struct {
	Stream    string              `json:"stream"`
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate,omitempty"`
	Error     *jetstream.APIError `json:"error,omitempty"`
}

// errUnknownOutcome wraps the failure of a publish whose outcome could not
// be learned: it may or may not have been stored.
var errUnknownOutcome = errors.New("outcome unknown")

// awaitAck waits for the reply to msg, which was sent once (sendErr is the
// send's error) with a Nats-Msg-Id and reply subject whose replies arrive on
// ch. On a timeout, no responders (no leader) or a connection error it
// sends the same message again, so that the stream stores it at most once
// and the duplicate's ack tells where, until an answer, ctx's end, the
// engine's close or the retry budget. It returns the ack, the number of
// sends, and the stream's rejection (an *APIError) or an error wrapping
// errUnknownOutcome. gone, if not nil, is called with the last failure
// before each resend: a non-nil result ends the wait with it.
func (e *Engine) awaitAck(ctx context.Context, msg *nats.Msg, ch <-chan *nats.Msg, sendErr error, gone func(last error) error) (pubAck, int, error) {
	deadline := time.Now().Add(e.retryBudget())
	delay := 20 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		if sendErr == nil {
			t := time.NewTimer(e.cfg.RequestTimeout)
			var m *nats.Msg
			select {
			case m = <-ch:
			case <-t.C:
				last = nats.ErrTimeout
			case <-ctx.Done():
				t.Stop()
				return pubAck{}, attempt, fmt.Errorf("%w: %w", errUnknownOutcome, ctx.Err())
			case <-e.ctx.Done():
				t.Stop()
				return pubAck{}, attempt, errClosed("publish")
			}
			t.Stop()
			if m != nil {
				if m.Header.Get("Status") == "503" {
					last = nats.ErrNoResponders
				} else {
					var ack pubAck
					if err := json.Unmarshal(m.Data, &ack); err != nil {
						last = fmt.Errorf("invalid JetStream ack: %w", err)
					} else if ack.Error != nil {
						if !transient(ack.Error) {
							return ack, attempt, ack.Error
						}
						last = ack.Error
					} else {
						return ack, attempt, nil
					}
				}
			}
		} else {
			switch {
			case errors.Is(sendErr, nats.ErrConnectionClosed), errors.Is(sendErr, nats.ErrConnectionDraining):
				if e.closed.Load() {
					return pubAck{}, attempt, errClosed("publish")
				}
				return pubAck{}, attempt, fmt.Errorf("%w: %w", errUnknownOutcome, sendErr)
			case errors.Is(sendErr, nats.ErrMaxPayload):
				return pubAck{}, attempt, fmt.Errorf("natsengine: %w: %w", engine.ErrInvalidBatch, sendErr)
			}
			last = sendErr
		}
		if gone != nil {
			if err := gone(last); err != nil {
				return pubAck{}, attempt, err
			}
		}
		if time.Now().After(deadline) {
			return pubAck{}, attempt, fmt.Errorf("%w after %d attempts: %w", errUnknownOutcome, attempt, last)
		}
		if err := e.sleep(ctx, delay); err != nil {
			if errors.Is(err, engine.ErrClosed) {
				return pubAck{}, attempt, errClosed("publish")
			}
			return pubAck{}, attempt, fmt.Errorf("%w: %w (%w)", errUnknownOutcome, err, last)
		}
		delay = min(2*delay, 500*time.Millisecond)
		e.resends.Add(1)
		sendErr = e.nc.PublishMsg(msg)
	}
}

// publish sends msg (which carries a Nats-Msg-Id) to JetStream and waits
// for its ack as awaitAck does.
func (e *Engine) publish(ctx context.Context, msg *nats.Msg) (pubAck, int, error) {
	reply, ch, release := e.newReply(16)
	defer release()
	msg.Reply = reply
	return e.awaitAck(ctx, msg, ch, e.nc.PublishMsg(msg), nil)
}
