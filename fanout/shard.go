package fanout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"go.uber.org/zap"
)

// Position is where a subscription to a shard starts: a StartingPosition
// of SubscribeToShard. The zero value is LATEST.
type Position struct {
	// Type is TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER or
	// AFTER_SEQUENCE_NUMBER. Empty means LATEST.
	Type types.ShardIteratorType
	// SequenceNumber is the record of AT_ and AFTER_SEQUENCE_NUMBER.
	SequenceNumber string
	// Timestamp is the arrival time of AT_TIMESTAMP.
	Timestamp time.Time
}

// TrimHorizon is the position of the oldest record the shard holds.
func TrimHorizon() Position { return Position{Type: types.ShardIteratorTypeTrimHorizon} }

// Latest is the position just after the newest record.
func Latest() Position { return Position{Type: types.ShardIteratorTypeLatest} }

// AtTimestamp is the position of the first record that arrived at or after t.
func AtTimestamp(t time.Time) Position {
	return Position{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: t}
}

// AtSequenceNumber is the position of the record seq.
func AtSequenceNumber(seq string) Position {
	return Position{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: seq}
}

// AfterSequenceNumber is the position just after the record seq: where a
// subscription resumes from an event's ContinuationSequenceNumber.
func AfterSequenceNumber(seq string) Position {
	return Position{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: seq}
}

// String returns the type, and the sequence number or time it needs.
func (p Position) String() string {
	switch p.kind() {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		return string(p.Type) + " " + p.SequenceNumber
	case types.ShardIteratorTypeAtTimestamp:
		return string(p.Type) + " " + p.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return string(p.kind())
}

func (p Position) kind() types.ShardIteratorType {
	if p.Type == "" {
		return types.ShardIteratorTypeLatest
	}
	return p.Type
}

// validate reports a Position SubscribeToShard would refuse.
func (p Position) validate() error {
	switch p.kind() {
	case types.ShardIteratorTypeTrimHorizon, types.ShardIteratorTypeLatest:
	case types.ShardIteratorTypeAtTimestamp:
		if p.Timestamp.IsZero() {
			return errors.New("AT_TIMESTAMP position without a Timestamp")
		}
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		if p.SequenceNumber == "" {
			return fmt.Errorf("%s position without a SequenceNumber", p.Type)
		}
	default:
		return fmt.Errorf("unknown position type %q", p.Type)
	}
	return nil
}

func (p Position) input() *types.StartingPosition {
	sp := &types.StartingPosition{Type: p.kind()}
	switch sp.Type {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		sp.SequenceNumber = aws.String(p.SequenceNumber)
	case types.ShardIteratorTypeAtTimestamp:
		sp.Timestamp = aws.Time(p.Timestamp)
	}
	return sp
}

// Event is one SubscribeToShardEvent of a shard, as SubscribeShard hands it
// to its handler: the Kinesis records as received (not de-aggregated).
type Event struct {
	// ShardID is the shard the event comes from.
	ShardID string
	// Records are the event's Kinesis records, in sequence number order.
	// A record a re-subscription delivers again (at or before the last
	// record handed over) is left out. It may be empty: Kinesis sends
	// events without records to report progress.
	Records []types.Record
	// ContinuationSequenceNumber is where a later subscription resumes
	// (AFTER_SEQUENCE_NUMBER): the position to checkpoint. Empty at the
	// end of the shard.
	ContinuationSequenceNumber string
	// MillisBehindLatest is how far the event is behind the shard's
	// newest record; 0 when caught up.
	MillisBehindLatest int64
	// ChildShards are the shard's children, set only on the event that
	// ends the shard.
	ChildShards []types.ChildShard
}

// ShardEnded reports whether this is the shard's last event: it has
// ended (split or merged) and every record has been delivered.
func (e Event) ShardEnded() bool {
	return len(e.ChildShards) > 0 || e.ContinuationSequenceNumber == ""
}

// Options tunes SubscribeShard and a Subscriber. The zero value gives the
// defaults each field names.
type Options struct {
	// Backoff is the wait before a failed subscription is tried again.
	Backoff Backoff
	// IdleTimeout ends a subscription that delivered no event for this
	// long (Kinesis sends one at least every ~5s), or whose
	// SubscribeToShard call got no response for this long, and subscribes
	// again from the last position. It does not count the time the handler
	// takes. Zero means 30s.
	IdleTimeout time.Duration
	// Logger receives re-subscriptions at debug level and failures at
	// warn. Nil means zap.NewNop().
	Logger *zap.Logger
	// OnSubscribe, if set, is called before each SubscribeToShard call
	// with the shard and the position asked for; for metrics and tests.
	// It must not block.
	OnSubscribe func(shardID string, pos Position)
	// Metrics receives counters and timings (fanout/prommetrics for
	// Prometheus). Nil means none are recorded.
	Metrics Metrics
}

func (o Options) withDefaults() Options {
	o.Backoff = o.Backoff.withDefaults()
	if o.Metrics == nil {
		o.Metrics = NopMetrics{}
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// ShardSubscription says what SubscribeShard reads and where it delivers.
type ShardSubscription struct {
	// ConsumerARN is the registered consumer to read as. Required.
	ConsumerARN string
	// ShardID is the shard to read. Required.
	ShardID string
	// Position is where reading starts. Zero means LATEST.
	Position Position
	// Handler receives the shard's events, one call at a time, in order.
	// Required. While it runs, no more is read from the subscription: a
	// slow handler slows the subscription down (Kinesis buffers), it
	// never makes SubscribeShard buffer events. The position advances past
	// an event only when Handler returns nil; an error ends SubscribeShard
	// with a *HandlerError. ctx is SubscribeShard's.
	Handler func(ctx context.Context, ev Event) error
	Options
}

// SubscribeShard reads one shard through SubscribeToShard subscriptions as
// the consumer ConsumerARN, from Position to the end of the shard, and hands
// each event to Handler. When a subscription ends (Kinesis ends each after
// 5 minutes) it subscribes again at once from the last event's
// ContinuationSequenceNumber (AFTER_SEQUENCE_NUMBER); when one breaks
// (connection lost, ResourceInUseException, InternalFailure, throttling, an
// idle subscription) it does the same after a back-off. No event is handed
// over twice and none is skipped.
//
// It returns the shard's children and nil after the shard's last event
// (ShardEnded) was handled; ctx.Err() when ctx ends; a *HandlerError when
// Handler fails; and the Kinesis error, wrapped, on one that retrying
// cannot fix: ResourceNotFoundException (no such consumer or shard, or the
// shard's records are past retention), InvalidArgumentException (a sequence
// number the shard does not hold), AccessDenied, ValidationException.
//
// Every goroutine it starts (the SDK's event stream readers) has stopped
// when it returns.
func SubscribeShard(ctx context.Context, client SubscribeAPI, s ShardSubscription) ([]types.ChildShard, error) {
	switch {
	case client == nil:
		return nil, errors.New("fanout: nil client")
	case s.ConsumerARN == "":
		return nil, errors.New("fanout: ShardSubscription.ConsumerARN is required")
	case s.ShardID == "":
		return nil, errors.New("fanout: ShardSubscription.ShardID is required")
	case s.Handler == nil:
		return nil, errors.New("fanout: ShardSubscription.Handler is required")
	}
	if err := s.Position.validate(); err != nil {
		return nil, fmt.Errorf("fanout: %s: %w", s.ShardID, err)
	}
	return subscribeShard(ctx, func(ctx context.Context, in *kinesis.SubscribeToShardInput) (eventStream, error) {
		out, err := client.SubscribeToShard(ctx, in, ownProtocol)
		if err != nil {
			return nil, err
		}
		return out.GetStream(), nil
	}, s)
}

// ownProtocol gives one SubscribeToShard call a protocol of its own.
//
// Why: a *kinesis.Client holds one awsjson.Protocol, and that protocol one
// event stream codec whose decoder and payload buffer every event stream of
// the client uses (smithy-go v1.28.9, internal/eventstream.Codec: payloadBuf,
// decoder). Two subscriptions read concurrently through one client race on
// them (the race detector reports it at once with two shards) and can decode
// one shard's bytes into another's event. A protocol per subscription
// shares nothing; it costs a few small allocations per subscription. The
// defect is aws/smithy-go#714 (fix proposed in aws/smithy-go#716); drop this
// once a fixed smithy-go is required.
func ownProtocol(o *kinesis.Options) {
	o.Protocol = awsjson.New11(schemas.Kinesis_20131202)
}

// eventStream is what SubscribeShard reads of *kinesis.SubscribeToShardEventStream.
type eventStream interface {
	Events() <-chan types.SubscribeToShardEventStream
	Err() error
	Close() error
}

// opener starts one subscription.
type opener func(ctx context.Context, in *kinesis.SubscribeToShardInput) (eventStream, error)

func subscribeShard(ctx context.Context, open opener, s ShardSubscription) ([]types.ChildShard, error) {
	r := &shardReader{open: open, sub: s, opts: s.Options.withDefaults(), pos: s.Position}
	r.log = r.opts.Logger.With(zap.String("shard_id", s.ShardID))
	children, err := r.run(ctx)
	reason := ReasonShardEnded
	if err != nil {
		reason = errorCode(ctx, err)
	}
	r.opts.Metrics.ShardShutdown(s.ShardID, reason)
	return children, err
}

// shardReader is SubscribeShard's state; one goroutine owns it.
type shardReader struct {
	open opener
	sub  ShardSubscription
	opts Options
	log  *zap.Logger

	pos     Position  // where the next subscription starts
	lastSeq string    // the newest record handed over
	endedAt time.Time // when the last subscription ended; zero before the first
}

func (r *shardReader) run(ctx context.Context) ([]types.ChildShard, error) {
	b := r.opts.Backoff.newBackOff()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		events, children, ended, err := r.subscribeOnce(ctx)
		switch {
		case ended:
			return children, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err == nil && events > 0:
			// The subscription expired: go on at once.
			b.Reset()
			r.log.Debug("subscription ended; subscribing again", zap.Stringer("position", r.pos))
			continue
		case err != nil:
			var he *HandlerError
			if errors.As(err, &he) {
				return nil, err
			}
			if !retryable(err) {
				return nil, fmt.Errorf("fanout: subscribe to %s at %v: %w", r.sub.ShardID, r.pos, err)
			}
			if events > 0 {
				b.Reset()
			}
		}
		// A break, or a subscription that ended without an event: wait,
		// so that a server closing every subscription at once is not
		// called in a tight loop.
		wait := b.NextBackOff()
		logAt := r.log.Warn
		var inUse *types.ResourceInUseException
		if err == nil || errors.As(err, &inUse) {
			logAt = r.log.Debug // routine: a takeover, or a re-subscription within Kinesis's 5s window
		}
		logAt("subscription broke; subscribing again", zap.Stringer("position", r.pos),
			zap.Duration("retry_in", wait), zap.Error(err))
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// errIdle ends a subscription that went silent.
var errIdle = errors.New("fanout: no event within the idle timeout")

// subscribeOnce runs one subscription. It reports how many events were
// handled, and the children and true once the shard's last event was.
func (r *shardReader) subscribeOnce(ctx context.Context) (events int, children []types.ChildShard, ended bool, err error) {
	// Its own ctx, so that returning always tears the connection down.
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.opts.OnSubscribe != nil {
		r.opts.OnSubscribe(r.sub.ShardID, r.pos)
	}
	// The call itself is bounded by IdleTimeout too: on a connection that
	// went silent (a pooled one the transport reuses) it would otherwise
	// wait for the HTTP client's timeouts, if any.
	openTimer := time.AfterFunc(r.opts.IdleTimeout, cancel)
	began := time.Now()
	stream, err := r.open(subCtx, &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String(r.sub.ConsumerARN), ShardId: aws.String(r.sub.ShardID), StartingPosition: r.pos.input(),
	})
	if !openTimer.Stop() && ctx.Err() == nil {
		// Timed out (whether or not open noticed): the subscription's
		// ctx is cancelled, so it is of no use.
		if err == nil {
			_ = stream.Close()
		}
		err = fmt.Errorf("%w (subscribing)", errIdle)
	}
	r.opts.Metrics.SubscribeToShard(r.sub.ShardID, time.Since(began), errorCode(ctx, err))
	if err != nil {
		return 0, nil, false, err
	}
	if !r.endedAt.IsZero() {
		r.opts.Metrics.Resubscribed(r.sub.ShardID, time.Since(r.endedAt))
	}
	defer func() {
		cancel()
		_ = stream.Close() // the reason we stopped is already known
		r.endedAt = time.Now()
		reason := ReasonCompleted
		switch {
		case ended:
			reason = ReasonShardEnded
		case err != nil:
			reason = errorCode(ctx, err)
		}
		r.opts.Metrics.SubscriptionEnded(r.sub.ShardID, reason)
	}()
	idle := time.NewTimer(r.opts.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return events, nil, false, ctx.Err()
		case <-idle.C:
			return events, nil, false, errIdle
		case ev, ok := <-stream.Events():
			if !ok {
				// A clean end (the subscription's 5 minutes are over) or an
				// in-stream exception / broken connection.
				return events, nil, false, stream.Err()
			}
			e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !isEvent {
				r.log.Debug("unknown event stream member skipped", zap.String("type", fmt.Sprintf("%T", ev)))
				break
			}
			end, err := r.handle(ctx, e.Value)
			if err != nil {
				return events, nil, false, err
			}
			events++
			if end {
				return events, e.Value.ChildShards, true, nil
			}
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(r.opts.IdleTimeout)
	}
}

// handle hands one event to the handler and advances the position; it
// reports whether the event ended the shard.
func (r *shardReader) handle(ctx context.Context, v types.SubscribeToShardEvent) (bool, error) {
	recs := v.Records
	if r.lastSeq != "" {
		// A server that resumes a little early must not make the handler
		// see a record twice.
		i := 0
		for i < len(recs) && compareSeq(aws.ToString(recs[i].SequenceNumber), r.lastSeq) <= 0 {
			i++
		}
		if i > 0 {
			r.log.Debug("records delivered again dropped", zap.Int("records", i))
			recs = recs[i:]
		}
	}
	ev := Event{
		ShardID: r.sub.ShardID, Records: recs, ContinuationSequenceNumber: aws.ToString(v.ContinuationSequenceNumber),
		MillisBehindLatest: aws.ToInt64(v.MillisBehindLatest), ChildShards: v.ChildShards,
	}
	r.opts.Metrics.MillisBehindLatest(r.sub.ShardID, ev.MillisBehindLatest)
	if err := r.sub.Handler(ctx, ev); err != nil {
		return false, &HandlerError{ShardID: r.sub.ShardID, Err: err}
	}
	if len(recs) > 0 {
		r.lastSeq = aws.ToString(recs[len(recs)-1].SequenceNumber)
	}
	switch {
	case ev.ShardEnded():
		return true, nil
	case ev.ContinuationSequenceNumber != "":
		r.pos = AfterSequenceNumber(ev.ContinuationSequenceNumber)
	}
	return false, nil
}

// compareSeq compares two decimal sequence numbers numerically.
func compareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
