package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/wire"
)

// SubscribeToShard: enhanced fan-out delivery.
//
// The request is an ordinary JSON (or CBOR) POST. Everything that can go
// wrong before delivery starts (validation, unknown consumer or shard, a
// consumer that is not ACTIVE, a bad starting position, a subscription
// already in use) is answered as an ordinary error response. Otherwise the
// response is 200 with Content-Type application/vnd.amazon.eventstream, and
// its body is a sequence of event-stream messages (encoded by aws-sdk-go-v2's
// eventstream package): first an initial-response, flushed at once because
// the Go SDK blocks in SubscribeToShard until it has it; then
// SubscribeToShardEvent events; then either a clean end (the subscription's
// lifetime is over, the client went away, the server shuts down, or the
// shard is closed and its last event carried ChildShards) or an exception
// message (the consumer was deregistered or the stream deleted:
// ResourceNotFoundException; another subscription took over:
// ResourceInUseException; a read failed: InternalFailureException).
//
// Delivery is pushed. Each subscription runs in its own request goroutine
// with its own cursor into the shard log. It reads from the log until it has
// caught up, then waits on the shard's notification channel (shard.changed),
// which every durable append closes. A subscription's buffer is the one
// event it is writing: a client that stops reading blocks only its own
// goroutine (in Write, under TCP or HTTP/2 flow control), never the
// appenders nor the other subscriptions, and it resumes from the log where it
// stopped.

// Subscription bounds.
const (
	// maxEventRecords and maxEventBytes bound one SubscribeToShardEvent (an
	// event carries at least one record, however large).
	maxEventRecords = 10000
	maxEventBytes   = 1 << 20
	// takeoverAfter is how old a subscription must be for a new one on the
	// same consumer and shard to take over instead of failing.
	takeoverAfter = 5 * time.Second
	// endGrace is how long an ended subscription may still write its last
	// message before its writes are cut off.
	endGrace = time.Second
	// subscribeBytesPerSec is the per consumer, per shard read limit of
	// enhanced fan-out, enforced with Config.EnforceThroughput.
	subscribeBytesPerSec = 2 << 20
)

const (
	// subscribeCallInterval is the least time between two SubscribeToShard
	// calls for one consumer and shard when throughput is enforced.
	subscribeCallInterval = time.Second

	contentTypeEventStream = "application/vnd.amazon.eventstream"
	eventTypeSubscribe     = "SubscribeToShardEvent"
)

// subKey identifies a subscription: one per consumer and shard.
type subKey struct {
	consumerARN string
	shardID     string
}

// subscription is a running SubscribeToShard. It is owned by the goroutine
// serving its request; others end it through cancel, whose cause (an
// *APIError, or nil for a clean end) decides the stream's last message.
type subscription struct {
	key     subKey
	started time.Time
	cancel  context.CancelCauseFunc
}

// subscriptions is the registry of running subscriptions.
type subscriptions struct {
	mu     sync.Mutex // guards the fields below
	m      map[subKey]*subscription
	closed bool // set by Shutdown: no new subscriptions
	// calls holds when each consumer and shard was last subscribed to,
	// for the one-call-per-second limit (Config.EnforceThroughput).
	calls map[subKey]time.Time
}

// errEndClean is the cancel cause that ends a subscription without an
// exception message.
var errEndClean = errors.New("subscription ended")

// startSubscription registers a new subscription, failing with
// ResourceInUseException if one younger than takeoverAfter exists for the
// same consumer and shard, and ending an older one with that exception.
func (s *Server) startSubscription(key subKey, cancel context.CancelCauseFunc) (*subscription, error) {
	now := s.cfg.Now()
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	if s.subs.closed {
		return nil, ErrInternalFailure.With("The server is shutting down.")
	}
	if s.cfg.EnforceThroughput {
		if err := s.subs.limitCallLocked(key, now); err != nil {
			return nil, err
		}
	}
	if old := s.subs.m[key]; old != nil {
		if now.Sub(old.started) < takeoverAfter {
			return nil, ErrResourceInUse.With("Another active subscription exists for consumer %s and shard %s.", key.consumerARN, key.shardID)
		}
		old.cancel(ErrResourceInUse.With("A newer subscription for consumer %s and shard %s took over.", key.consumerARN, key.shardID))
	}
	if s.subs.m == nil {
		s.subs.m = make(map[subKey]*subscription)
	}
	sub := &subscription{key: key, started: now, cancel: cancel}
	s.subs.m[key] = sub
	s.cfg.Metrics.OpenSubscriptions(len(s.subs.m))
	return sub, nil
}

// limitCallLocked enforces Kinesis's limit of one SubscribeToShard call per
// second per consumer and shard, recording the call if it is allowed.
// subs.mu is held.
func (subs *subscriptions) limitCallLocked(key subKey, now time.Time) error {
	if last, ok := subs.calls[key]; ok && now.Sub(last) < subscribeCallInterval {
		return ErrLimitExceeded.With("Rate exceeded for consumer %s and shard %s: at most one SubscribeToShard call per second.", key.consumerARN, key.shardID)
	}
	if subs.calls == nil {
		subs.calls = make(map[subKey]time.Time)
	}
	if len(subs.calls) >= 4096 {
		for k, t := range subs.calls {
			if now.Sub(t) >= subscribeCallInterval {
				delete(subs.calls, k)
			}
		}
	}
	subs.calls[key] = now
	return nil
}

func (s *Server) endSubscription(sub *subscription) {
	s.subs.mu.Lock()
	if s.subs.m[sub.key] == sub {
		delete(s.subs.m, sub.key)
		s.cfg.Metrics.OpenSubscriptions(len(s.subs.m))
	}
	s.subs.mu.Unlock()
}

// endSubscriptions ends every subscription whose consumer ARN starts with
// prefix (a consumer's ARN, or a stream ARN followed by "/consumer/") with
// cause.
func (s *Server) endSubscriptions(prefix string, cause error) {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	for k, sub := range s.subs.m {
		if len(k.consumerARN) >= len(prefix) && k.consumerARN[:len(prefix)] == prefix {
			sub.cancel(cause)
		}
	}
}

// closeSubscriptions ends every subscription cleanly and refuses new ones.
// Shutdown calls it so that it need not wait for their lifetimes.
func (s *Server) closeSubscriptions() {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	s.subs.closed = true
	for _, sub := range s.subs.m {
		sub.cancel(errEndClean)
	}
}

// subscribeTarget is what a valid SubscribeToShard request resolves to.
type subscribeTarget struct {
	st  *stream
	sh  *shard
	key subKey
	pos engine.Position
}

// resolveSubscribe validates a SubscribeToShard request and resolves its
// consumer, shard and starting position.
func (s *Server) resolveSubscribe(ctx context.Context, in *wire.SubscribeToShardInput) (subscribeTarget, error) {
	var v validator
	v.reqStr("consumerARN", in.ConsumerARN, 1, maxStreamARNLen, consumerARNRE)
	v.reqStr("shardId", in.ShardID, 1, maxShardIDLen, shardIDRE)
	if v.required("startingPosition", in.StartingPosition != nil) {
		p := in.StartingPosition
		if v.required("startingPosition.type", p.Type != nil) {
			v.enum("startingPosition.type", p.Type, iterAtSequenceNumber, iterAfterSequenceNumber, iterTrimHorizon, iterLatest, iterAtTimestamp)
		}
		v.str("startingPosition.sequenceNumber", p.SequenceNumber, 0, 0, sequenceNumberRE)
	}
	if err := v.err(); err != nil {
		return subscribeTarget{}, err
	}
	ref := wire.ConsumerRef{ConsumerARN: in.ConsumerARN}
	st, c, err := s.resolveConsumer(ctx, &ref)
	if err != nil {
		return subscribeTarget{}, err
	}
	if err := s.readable(st); err != nil {
		return subscribeTarget{}, err
	}
	st.mu.RLock()
	status, arn := c.status, c.arn
	sh := st.shardByID(*in.ShardID)
	st.mu.RUnlock()
	if status != statusActive {
		return subscribeTarget{}, ErrResourceInUse.With("Consumer %s under account %s is not ACTIVE, instead in state %s.", arn, s.cfg.AccountID, status)
	}
	if sh == nil {
		return subscribeTarget{}, ErrResourceNotFound.With("Shard %s in stream %s under account %s does not exist", *in.ShardID, st.name, st.account)
	}
	p := in.StartingPosition
	typ := *p.Type
	bySeq := typ == iterAtSequenceNumber || typ == iterAfterSequenceNumber
	switch {
	case bySeq && p.SequenceNumber == nil:
		return subscribeTarget{}, ErrInvalidArgument.With("Must specify SequenceNumber for StartingPosition type %s.", typ)
	case !bySeq && p.SequenceNumber != nil:
		return subscribeTarget{}, ErrInvalidArgument.With("StartingPosition specified SequenceNumber, but its type is %s; SequenceNumber is only valid for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.", typ)
	case typ == iterAtTimestamp && p.Timestamp == nil:
		return subscribeTarget{}, ErrInvalidArgument.With("Must specify Timestamp for StartingPosition type AT_TIMESTAMP.")
	case typ != iterAtTimestamp && p.Timestamp != nil:
		return subscribeTarget{}, ErrInvalidArgument.With("StartingPosition specified Timestamp, but its type is %s; Timestamp is only valid for AT_TIMESTAMP.", typ)
	}
	var ts *int64
	if p.Timestamp != nil {
		ms := p.Timestamp.Millis()
		ts = &ms
	}
	pos, err := s.startPosition(context.Background(), st, sh, typ, p.SequenceNumber, ts, "SubscribeToShard")
	if err != nil {
		return subscribeTarget{}, err
	}
	return subscribeTarget{st: st, sh: sh, key: subKey{consumerARN: arn, shardID: sh.id}, pos: pos}, nil
}

// subscribeToShard serves one SubscribeToShard request from its start to the
// end of its event stream.
// It returns the error it answered the call with (nil once the event stream
// started), for the audit log.
func (s *Server) subscribeToShard(w http.ResponseWriter, r *http.Request, c codec, body []byte) error {
	in := new(wire.SubscribeToShardInput)
	cl := callerFrom(r.Context())
	if err := c.decode(body, in); err != nil {
		err := ErrSerialization.With("%s", serializationMessage(err))
		s.writeError(w, c, err)
		s.observeCall(cl, err)
		return err
	}
	if cl != nil {
		cl.input = in
	}
	t, err := s.resolveSubscribe(r.Context(), in)
	if err == nil && in.DryRun != nil && *in.DryRun {
		err = s.dryRun()
	}
	if err != nil {
		if ae, ok := asAPIError(err); !ok || ae.Fault == FaultServer {
			s.log.Warn("request failed", zap.String("operation", "SubscribeToShard"), zap.Error(err))
		}
		s.writeError(w, c, err)
		s.observeCall(cl, err)
		return err
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	consumer := consumerNameOf(t.key.consumerARN)
	sub, err := s.startSubscription(t.key, cancel)
	if err != nil {
		s.writeError(w, c, err)
		s.observeCall(cl, err)
		s.cfg.Metrics.Subscription(t.st.name, consumer, subscriptionResult(err))
		return err
	}
	defer s.endSubscription(sub)
	ctx, cancelLife := context.WithTimeoutCause(ctx, s.cfg.SubscriptionLifetime, errEndClean)
	defer cancelLife()

	rc := http.NewResponseController(w)
	// Once the subscription has ended for any reason, a write blocked on a
	// client that stopped reading must not hold the goroutine (and Shutdown)
	// any longer than it takes to write a last message to a live client.
	// The cutoff must not touch the ResponseWriter once the handler has
	// returned (net/http's HTTP/2 writer forgets its stream then): the
	// handler's last deferred call sets finished under cutoffMu, so the
	// callback either runs entirely before that or does nothing.
	var (
		cutoffMu sync.Mutex
		finished bool
	)
	context.AfterFunc(ctx, func() {
		cutoffMu.Lock()
		defer cutoffMu.Unlock()
		if !finished {
			_ = rc.SetWriteDeadline(time.Now().Add(endGrace)) //nolint:forbidigo // a socket deadline is wall-clock time
		}
	})
	defer func() {
		cutoffMu.Lock()
		finished = true
		cutoffMu.Unlock()
	}()

	out := &eventWriter{w: w, rc: rc, c: c, enc: eventstream.NewEncoder()}
	h := w.Header()
	h.Set("Content-Type", contentTypeEventStream)
	w.WriteHeader(http.StatusOK)
	s.observeCall(cl, nil)
	s.cfg.Metrics.Subscription(t.st.name, consumer, "ok")
	if err := out.initialResponse(); err != nil {
		s.log.Debug("subscription: initial response", zap.Error(err))
		return nil
	}
	log := s.log.With(zap.String("stream", t.st.name), zap.String("shard", t.sh.id), zap.String("consumer", t.key.consumerARN))
	log.Debug("subscription started", zap.String("proto", r.Proto), zap.Stringer("position", t.pos))
	err = s.deliver(ctx, t, out)
	if ae, ok := asAPIError(err); err != nil && ok {
		if werr := out.exception(ae); werr != nil {
			log.Debug("subscription: exception event", zap.Error(werr))
		}
	}
	log.Debug("subscription ended", zap.Error(err))
	return nil
}

// deliver sends events from t.pos on until the subscription ends. It returns
// nil for a clean end, an *APIError to report as the stream's last message,
// or an error of the connection.
func (s *Server) deliver(ctx context.Context, t subscribeTarget, out *eventWriter) error {
	st, sh, pos := t.st, t.sh, t.pos
	keepAlive := time.NewTimer(s.cfg.SubscriptionKeepAlive)
	defer keepAlive.Stop()
	var pace *pacer
	if s.cfg.EnforceThroughput {
		pace = newPacer(subscribeBytesPerSec, s.cfg.Now())
	}
	// A fault injection rule may cut the subscription after some events
	// (an InternalFailureException message ends it).
	cut, events := s.subscriptionCut(st.name), 0
	ended := func() error {
		switch cause := context.Cause(ctx); {
		case errors.As(cause, new(*APIError)):
			return cause
		case errors.Is(cause, errEndClean), errors.Is(cause, context.Canceled):
			return nil // lifetime over, shutdown, or the client went away
		default:
			return cause
		}
	}
	for {
		if ctx.Err() != nil {
			return ended()
		}
		if cut != nil && events >= cut.AfterEvents {
			s.injected(cut, "SubscribeToShard")
			return ErrInternalFailure.With("Internal service failure.")
		}
		changed, lifecycle := sh.log.Changed(), sh.lifecycle()
		// Observed before the read: once closed, the shard takes no more
		// appends, so a read that comes back empty has seen all of it.
		closed := sh.closed.Load()
		entries, next, info, err := s.readFrom(ctx, st, sh, &pos)
		if errors.Is(err, engine.ErrClosed) {
			return st.missing()
		}
		if err != nil {
			if ctx.Err() != nil {
				return ended()
			}
			s.log.Error("subscription read", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
			return ErrInternalFailure.With("Internal service failure.")
		}
		if len(entries) > 0 {
			recs, bytes, err := s.wireRecords(st, sh, entries)
			if err != nil {
				return s.openError(st, sh, err)
			}
			ev := wire.SubscribeToShardEvent{Records: recs}
			s.observeRead(st, sh, consumerNameOf(t.key.consumerARN), recs, entries)
			last := ev.Records[len(ev.Records)-1].SequenceNumber
			ev.ContinuationSequenceNumber = &last
			if next.Less(info.End) {
				ev.MillisBehindLatest = max(0, info.LastArrivalMillis-entries[len(entries)-1].ArrivalMillis)
			}
			if pace != nil {
				if d := pace.delay(s.cfg.Now(), bytes); d > 0 {
					wait := time.NewTimer(d)
					select {
					case <-wait.C:
					case <-ctx.Done():
						wait.Stop()
						return ended()
					}
				}
			}
			if err := out.event(&ev); err != nil {
				return err
			}
			events++
			pos = next
			keepAlive.Reset(s.cfg.SubscriptionKeepAlive)
			continue
		}
		if closed {
			// The end of a closed shard: no continuation, the children.
			ev := wire.SubscribeToShardEvent{Records: []wire.Record{}, ChildShards: childShards(st, sh)}
			return out.event(&ev)
		}
		select {
		case <-changed:
		case <-lifecycle:
		case <-keepAlive.C:
			seq := st.seq(sh, continuation(pos))
			if err := out.event(&wire.SubscribeToShardEvent{Records: []wire.Record{}, ContinuationSequenceNumber: &seq}); err != nil {
				return err
			}
			events++
			keepAlive.Reset(s.cfg.SubscriptionKeepAlive)
		case <-ctx.Done():
			return ended()
		}
	}
}

// readFrom reads the next event's records from *pos, first moving *pos up
// to the trim horizon, and reports the log's extent after the read.
func (s *Server) readFrom(ctx context.Context, st *stream, sh *shard, pos *engine.Position) (entries []engine.Entry, next engine.Position, info engine.Info, err error) {
	th, err := s.trimHorizon(ctx, st, sh)
	if err != nil {
		return nil, next, info, err
	}
	if pos.Less(th) {
		*pos = th
	}
	if entries, next, err = sh.log.Read(ctx, *pos, maxEventRecords, maxEventBytes); err != nil {
		return nil, next, info, err
	}
	info, err = sh.log.Info(ctx)
	return entries, next, info, err
}

// eventWriter writes the messages of one event stream and flushes each.
type eventWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	c   codec
	enc *eventstream.Encoder
	buf bytes.Buffer
}

func (e *eventWriter) payloadType() string {
	if _, ok := e.c.(cborCodec); ok {
		return "application/cbor"
	}
	return "application/json"
}

func (e *eventWriter) write(msg eventstream.Message) error {
	if err := e.enc.Encode(e.w, msg); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := e.rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

func (e *eventWriter) initialResponse() error {
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Headers.Set(":event-type", eventstream.StringValue("initial-response"))
	msg.Headers.Set(":content-type", eventstream.StringValue(e.payloadType()))
	e.buf.Reset()
	if err := e.c.encode(&e.buf, struct{}{}); err != nil {
		return fmt.Errorf("encode initial response: %w", err)
	}
	msg.Payload = e.buf.Bytes()
	return e.write(msg)
}

func (e *eventWriter) event(ev *wire.SubscribeToShardEvent) error {
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Headers.Set(":event-type", eventstream.StringValue(eventTypeSubscribe))
	msg.Headers.Set(":content-type", eventstream.StringValue(e.payloadType()))
	e.buf.Reset()
	if err := e.c.encode(&e.buf, ev); err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	msg.Payload = e.buf.Bytes()
	return e.write(msg)
}

// exception writes an exception message. InternalFailure is modeled on the
// event stream as InternalFailureException.
func (e *eventWriter) exception(ae *APIError) error {
	code := ae.Code
	if code == ErrInternalFailure.Code {
		code = "InternalFailureException"
	}
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
	msg.Headers.Set(":exception-type", eventstream.StringValue(code))
	msg.Headers.Set(":content-type", eventstream.StringValue(e.payloadType()))
	e.buf.Reset()
	body := struct {
		Message string `json:"message"`
	}{ae.Message}
	if err := e.c.encode(&e.buf, body); err != nil {
		return fmt.Errorf("encode exception: %w", err)
	}
	msg.Payload = e.buf.Bytes()
	return e.write(msg)
}

// consumerNameOf is the consumer name in a consumer ARN
// (…/consumer/<name>:<seconds>).
func consumerNameOf(arn string) string {
	_, rest, _ := strings.Cut(arn, "/consumer/")
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// subscriptionResult names the outcome of a SubscribeToShard call refused
// when it started, for Metrics.Subscription.
func subscriptionResult(err error) string {
	switch {
	case errors.Is(err, ErrLimitExceeded):
		return "rate_exceeded"
	case errors.Is(err, ErrResourceInUse):
		return "in_use"
	}
	ae, _ := asAPIError(err)
	return ae.Code
}
