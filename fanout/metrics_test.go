package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// recMetrics records the subscription metrics SubscribeShard reports, in
// order. SubscribeShard calls it from one goroutine.
type recMetrics struct {
	NopMetrics
	calls []string
	resub []time.Duration
}

func (m *recMetrics) SubscribeToShard(shard string, _ time.Duration, code string) {
	m.calls = append(m.calls, fmt.Sprintf("subscribe %s %q", shard, code))
}

func (m *recMetrics) SubscriptionEnded(shard, reason string) {
	m.calls = append(m.calls, fmt.Sprintf("ended %s %s", shard, reason))
}

func (m *recMetrics) Resubscribed(shard string, d time.Duration) {
	m.calls = append(m.calls, "resubscribed "+shard)
	m.resub = append(m.resub, d)
}

func (m *recMetrics) ShardShutdown(shard, reason string) {
	m.calls = append(m.calls, fmt.Sprintf("shutdown %s %s", shard, reason))
}

func (m *recMetrics) MillisBehindLatest(shard string, ms int64) {
	m.calls = append(m.calls, fmt.Sprintf("behind %s %d", shard, ms))
}

// TestSubscribeShardMetrics: every SubscribeToShard call is observed with
// its outcome, every subscription that started ends once with its reason,
// and the gap between subscriptions is measured on the bubble's clock.
func TestSubscribeShardMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		behind := ev("2", 1, 2)
		behind.MillisBehindLatest = aws.Int64(1500)
		o := &fakeOpener{sessions: []session{
			{events: []types.SubscribeToShardEvent{behind, ev("3", 3)}},                                    // Kinesis ends it
			{openErr: &types.ResourceInUseException{Message: aws.String("within 5s")}},                     // refused
			{events: []types.SubscribeToShardEvent{ev("4", 4)}, endErr: &types.InternalFailureException{}}, // breaks
			{hang: true}, // goes silent
			{openErr: errors.New("connection refused")},         // no AWS code
			{events: []types.SubscribeToShardEvent{endEv("c")}}, // the shard ends
		}}
		m := &recMetrics{}
		opts := fastOpts(t)
		opts.Metrics = m
		start := time.Now()
		if _, err := subscribeShard(t.Context(), o.open, ShardSubscription{
			ConsumerARN: "arn", ShardID: "s", Position: TrimHorizon(), Options: opts,
			Handler: func(context.Context, Event) error { return nil },
		}); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`subscribe s ""`, "behind s 1500", "behind s 0", "ended s Completed",
			`subscribe s "ResourceInUseException"`,
			`subscribe s ""`, "resubscribed s", "behind s 0", "ended s InternalFailureException",
			`subscribe s ""`, "resubscribed s", "ended s Idle",
			`subscribe s "Transport"`,
			`subscribe s ""`, "resubscribed s", "behind s 0", "ended s ShardEnded",
			"shutdown s ShardEnded",
		}
		if !slices.Equal(m.calls, want) {
			t.Errorf("calls\n%q\nwant\n%q", m.calls, want)
		}
		// The gaps: a back-off after the refusal; a back-off after the
		// break; after the silent one, a back-off, the failed call and
		// another back-off. Back-offs are jittered within Max (5ms).
		most := opts.Backoff.Max
		if len(m.resub) != 3 || m.resub[0] <= 0 || m.resub[0] > most || m.resub[1] <= 0 || m.resub[1] > most ||
			m.resub[2] <= 0 || m.resub[2] > 2*most {
			t.Errorf("resubscribe gaps %v, want 3, each within the back-offs", m.resub)
		}
		// The silent subscription cost IdleTimeout; nothing else took time
		// but back-offs.
		if d := time.Since(start); d < defaultIdleTimeout || d > defaultIdleTimeout+4*most {
			t.Errorf("took %v, want IdleTimeout %v plus back-offs", d, defaultIdleTimeout)
		}
	})
}

// TestSubscribeShardMetricsFinalReasons: a subscription ended by the
// handler or by ctx, and a shard given up on an error retrying cannot fix,
// report why.
func TestSubscribeShardMetricsFinalReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &recMetrics{}
		opts := fastOpts(t)
		opts.Metrics = m
		o := &fakeOpener{sessions: []session{{events: []types.SubscribeToShardEvent{ev("1", 1)}}}}
		_, err := subscribeShard(t.Context(), o.open, ShardSubscription{
			ConsumerARN: "arn", ShardID: "h", Options: opts,
			Handler: func(context.Context, Event) error { return errors.New("boom") },
		})
		if err == nil {
			t.Fatal("no error from a failing handler")
		}
		ctx, cancel := context.WithCancel(t.Context())
		o = &fakeOpener{sessions: []session{{hang: true}}}
		errc := make(chan error, 1)
		go func() {
			_, err := subscribeShard(ctx, o.open, ShardSubscription{
				ConsumerARN: "arn", ShardID: "c", Options: opts,
				Handler: func(context.Context, Event) error { return nil },
			})
			errc <- err
		}()
		synctest.Wait() // subscribed, waiting for an event
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		o = &fakeOpener{sessions: []session{{openErr: &types.ResourceNotFoundException{Message: aws.String("no consumer")}}}}
		if _, err := subscribeShard(t.Context(), o.open, ShardSubscription{
			ConsumerARN: "arn", ShardID: "f", Options: opts,
			Handler: func(context.Context, Event) error { return nil },
		}); err == nil {
			t.Fatal("no error from a missing consumer")
		}
		want := []string{
			`subscribe h ""`, "behind h 0", "ended h HandlerError", "shutdown h HandlerError",
			`subscribe c ""`, "ended c Canceled", "shutdown c Canceled",
			`subscribe f "ResourceNotFoundException"`, "shutdown f ResourceNotFoundException",
		}
		if !slices.Equal(m.calls, want) {
			t.Errorf("calls %q, want %q", m.calls, want)
		}
	})
}

func TestErrorCode(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{context.Background(), nil, ""},
		{context.Background(), fmt.Errorf("%w (subscribing)", errIdle), ReasonIdle},
		{context.Background(), &HandlerError{ShardID: "s", Err: errors.New("x")}, ReasonHandlerError},
		{context.Background(), fmt.Errorf("subscribe: %w", &types.LimitExceededException{}), "LimitExceededException"},
		{context.Background(), &smithy.GenericAPIError{Code: "KMSThrottlingException"}, "KMSThrottlingException"},
		{context.Background(), errors.New("unexpected EOF"), ReasonTransport},
		{context.Background(), fmt.Errorf("read: %w", context.Canceled), ReasonCanceled},
		{canceled, errors.New("use of closed network connection"), ReasonCanceled},
	} {
		if got := errorCode(c.ctx, c.err); got != c.want {
			t.Errorf("errorCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
