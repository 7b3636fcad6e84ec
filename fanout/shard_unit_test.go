package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"
)

// Narrow unit tests of the re-subscription logic, against a scripted
// event stream. The behaviour against the real server is tested in
// subscriber_test.go.
//
// Each runs in a synctest bubble: the scripted streams are goroutines and
// channels of the bubble, and the idle timeouts and back-offs run on its
// fake clock, so neither a slow machine nor a fast one changes what
// happens, and "nothing more happened" is checked with synctest.Wait (every
// goroutine of the bubble blocked) rather than after a guessed sleep.

// session is one scripted subscription: the events it sends, then the
// error it ends with (nil: a clean end); or openErr, the SubscribeToShard
// call's own error; or hang: it sends nothing and never ends.
type session struct {
	openErr error
	events  []types.SubscribeToShardEvent
	endErr  error
	hang    bool
}

type fakeStream struct {
	ch     chan types.SubscribeToShardEventStream
	done   chan struct{}
	closed sync.Once
	err    error
	sent   *atomic.Int64
	wg     sync.WaitGroup
}

func (f *fakeStream) Events() <-chan types.SubscribeToShardEventStream { return f.ch }
func (f *fakeStream) Err() error                                       { return f.err }
func (f *fakeStream) Close() error {
	f.closed.Do(func() { close(f.done) })
	f.wg.Wait()
	return nil
}

// fakeOpener plays sessions in order and records the positions asked for.
type fakeOpener struct {
	mu        sync.Mutex
	sessions  []session
	positions []string
	sent      atomic.Int64
}

func (o *fakeOpener) open(ctx context.Context, in *kinesis.SubscribeToShardInput) (eventStream, error) {
	o.mu.Lock()
	p := in.StartingPosition
	o.positions = append(o.positions, string(p.Type)+" "+aws.ToString(p.SequenceNumber))
	if len(o.sessions) == 0 {
		o.mu.Unlock()
		return nil, errors.New("script exhausted")
	}
	s := o.sessions[0]
	o.sessions = o.sessions[1:]
	o.mu.Unlock()
	if s.openErr != nil {
		return nil, s.openErr
	}
	f := &fakeStream{ch: make(chan types.SubscribeToShardEventStream), done: make(chan struct{}), sent: &o.sent}
	f.wg.Go(func() {
		defer close(f.ch)
		if s.hang {
			<-f.done
			return
		}
		for _, ev := range s.events {
			select {
			case f.ch <- &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: ev}:
				f.sent.Add(1)
			case <-f.done:
				return
			case <-ctx.Done():
				return
			}
		}
		f.err = s.endErr
	})
	return f, nil
}

func (o *fakeOpener) asked() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.positions...)
}

func ev(cont string, seqs ...int) types.SubscribeToShardEvent {
	e := types.SubscribeToShardEvent{MillisBehindLatest: aws.Int64(0)}
	if cont != "" {
		e.ContinuationSequenceNumber = aws.String(cont)
	}
	for _, s := range seqs {
		e.Records = append(e.Records, types.Record{SequenceNumber: aws.String(fmt.Sprint(s)), PartitionKey: aws.String("k"), Data: []byte{byte(s)}})
	}
	return e
}

func endEv(children ...string) types.SubscribeToShardEvent {
	e := types.SubscribeToShardEvent{MillisBehindLatest: aws.Int64(0)}
	for _, c := range children {
		e.ChildShards = append(e.ChildShards, types.ChildShard{ShardId: aws.String(c), ParentShards: []string{"s"}})
	}
	return e
}

func fastOpts(t *testing.T) Options {
	return Options{Backoff: Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Logger: zaptest.NewLogger(t)}
}

func TestSubscribeShardResumesAfterContinuation(t *testing.T) {
	synctest.Test(t, testSubscribeShardResumesAfterContinuation)
}

func testSubscribeShardResumesAfterContinuation(t *testing.T) {
	o := &fakeOpener{sessions: []session{
		{events: []types.SubscribeToShardEvent{ev("2", 1, 2), ev("3", 3)}}, // expires cleanly
		{openErr: &types.ResourceInUseException{Message: aws.String("within 5s")}},
		// Resumes a little early: 3 again must not reach the handler.
		{events: []types.SubscribeToShardEvent{ev("5", 3, 4, 5)}, endErr: &types.InternalFailureException{Message: aws.String("boom")}},
		{events: []types.SubscribeToShardEvent{ev("5"), ev("7", 6, 7), endEv("c1", "c2")}},
	}}
	var got []string
	var conts []string
	children, err := subscribeShard(t.Context(), o.open, ShardSubscription{
		ConsumerARN: "arn", ShardID: "s", Position: TrimHorizon(), Options: fastOpts(t),
		Handler: func(_ context.Context, e Event) error {
			for _, r := range e.Records {
				got = append(got, aws.ToString(r.SequenceNumber))
			}
			conts = append(conts, e.ContinuationSequenceNumber)
			return nil
		},
	})
	if err != nil {
		t.Fatalf("SubscribeShard: %v", err)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Errorf("records %v, want 1..7 once each in order", got)
	}
	if len(children) != 2 || aws.ToString(children[0].ShardId) != "c1" {
		t.Errorf("children %v", children)
	}
	want := []string{"TRIM_HORIZON ", "AFTER_SEQUENCE_NUMBER 3", "AFTER_SEQUENCE_NUMBER 3", "AFTER_SEQUENCE_NUMBER 5"}
	if fmt.Sprint(o.asked()) != fmt.Sprint(want) {
		t.Errorf("positions asked %q, want %q", o.asked(), want)
	}
	if conts[len(conts)-1] != "" {
		t.Errorf("last event continuation %q, want empty at shard end", conts[len(conts)-1])
	}
}

func TestSubscribeShardFatalErrors(t *testing.T) {
	synctest.Test(t, testSubscribeShardFatalErrors)
}

func testSubscribeShardFatalErrors(t *testing.T) {
	for _, fatal := range []error{
		&types.ResourceNotFoundException{Message: aws.String("no consumer")},
		&types.InvalidArgumentException{Message: aws.String("bad seq")},
	} {
		o := &fakeOpener{sessions: []session{{events: []types.SubscribeToShardEvent{ev("1", 1)}, endErr: fatal}}}
		_, err := subscribeShard(t.Context(), o.open, ShardSubscription{
			ConsumerARN: "arn", ShardID: "s", Options: fastOpts(t),
			Handler: func(context.Context, Event) error { return nil },
		})
		if !errors.As(err, new(interface{ ErrorCode() string })) || !errors.Is(err, fatal) {
			t.Errorf("err %v, want it to wrap %T", err, fatal)
		}
		if n := len(o.asked()); n != 1 {
			t.Errorf("%T: %d subscriptions, want 1 (no retry)", fatal, n)
		}
	}
}

func TestSubscribeShardHandlerErrorKeepsPosition(t *testing.T) {
	synctest.Test(t, testSubscribeShardHandlerErrorKeepsPosition)
}

func testSubscribeShardHandlerErrorKeepsPosition(t *testing.T) {
	o := &fakeOpener{sessions: []session{{events: []types.SubscribeToShardEvent{ev("1", 1), ev("2", 2)}}}}
	boom := errors.New("boom")
	calls := 0
	_, err := subscribeShard(t.Context(), o.open, ShardSubscription{
		ConsumerARN: "arn", ShardID: "s", Options: fastOpts(t),
		Handler: func(_ context.Context, e Event) error {
			calls++
			if aws.ToString(e.Records[0].SequenceNumber) == "2" {
				return boom
			}
			return nil
		},
	})
	var he *HandlerError
	if !errors.As(err, &he) || he.ShardID != "s" || !errors.Is(err, boom) {
		t.Fatalf("err %v, want a *HandlerError for s wrapping boom", err)
	}
	if calls != 2 {
		t.Errorf("handler called %d times, want 2", calls)
	}
}

// TestSubscribeShardIdleTimeoutResubscribes: a subscription that opened but
// sends nothing is given up after exactly IdleTimeout (the default, 30s, on
// the bubble's clock) and replaced; one that delivered its events and ended
// cleanly is not mistaken for an idle one, however long the handler or the
// scheduler takes.
func TestSubscribeShardIdleTimeoutResubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &fakeOpener{sessions: []session{
			{events: []types.SubscribeToShardEvent{ev("1", 1)}},
			{hang: true},
			{events: []types.SubscribeToShardEvent{endEv("c")}},
		}}
		opts := fastOpts(t) // IdleTimeout: the default
		var opened []time.Time
		opts.OnSubscribe = func(string, Position) { opened = append(opened, time.Now()) }
		children, err := subscribeShard(t.Context(), o.open, ShardSubscription{
			ConsumerARN: "arn", ShardID: "s", Options: opts,
			Handler: func(context.Context, Event) error { return nil },
		})
		if err != nil || len(children) != 1 {
			t.Fatalf("children %v, err %v", children, err)
		}
		if n := len(o.asked()); n != 3 {
			t.Fatalf("%d subscriptions, want 3 (the idle one replaced)", n)
		}
		// The first ended cleanly after an event: the next one at once.
		if d := opened[1].Sub(opened[0]); d != 0 {
			t.Errorf("second subscription %v after the first ended cleanly, want at once", d)
		}
		// The silent one is given up after IdleTimeout, then the back-off.
		idle, b := defaultIdleTimeout, opts.Backoff
		if d := opened[2].Sub(opened[1]); d < idle || d > idle+b.Max {
			t.Errorf("silent subscription replaced after %v, want IdleTimeout %v plus at most the back-off %v", d, idle, b.Max)
		}
	})
}

// TestSubscribeShardBackPressure: while the handler holds an event, nothing
// more is read from the subscription.
func TestSubscribeShardBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs []types.SubscribeToShardEvent
		for i := 1; i <= 50; i++ {
			evs = append(evs, ev(fmt.Sprint(i), i))
		}
		o := &fakeOpener{sessions: []session{{events: append(evs, endEv("c"))}}}
		release := make(chan struct{})
		entered := make(chan struct{})
		var once sync.Once
		errc := make(chan error, 1)
		go func() {
			_, err := subscribeShard(t.Context(), o.open, ShardSubscription{
				ConsumerARN: "arn", ShardID: "s", Options: fastOpts(t),
				Handler: func(context.Context, Event) error {
					once.Do(func() { close(entered) })
					<-release
					return nil
				},
			})
			errc <- err
		}()
		<-entered
		// Every goroutine is blocked now: a reader that buffered would have
		// run ahead of the handler by then.
		synctest.Wait()
		if n := o.sent.Load(); n != 1 {
			t.Errorf("%d events read while the handler held the first, want 1", n)
		}
		close(release)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if n := o.sent.Load(); n != 51 {
			t.Errorf("%d events sent, want 51", n)
		}
	})
}

// TestSubscribeShardStopsOnCancel: cancelling ctx ends a subscription that
// is waiting for events.
func TestSubscribeShardStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &fakeOpener{sessions: []session{{hang: true}}}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := subscribeShard(ctx, o.open, ShardSubscription{
				ConsumerARN: "arn", ShardID: "s", Options: fastOpts(t),
				Handler: func(context.Context, Event) error { return nil },
			})
			errc <- err
		}()
		synctest.Wait() // subscribed, and waiting for an event
		if n := len(o.asked()); n != 1 {
			t.Fatalf("%d subscriptions before the cancel, want 1", n)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if n := len(o.asked()); n != 1 {
			t.Errorf("%d subscriptions, want 1", n)
		}
	})
}

func TestPositionValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Position
		ok bool
	}{
		{Position{}, true},
		{TrimHorizon(), true},
		{AtTimestamp(time.Unix(1, 0)), true},
		{Position{Type: types.ShardIteratorTypeAtTimestamp}, false},
		{AfterSequenceNumber("12"), true},
		{Position{Type: types.ShardIteratorTypeAtSequenceNumber}, false},
		{Position{Type: "SOMEWHERE"}, false},
	} {
		if err := tc.p.validate(); (err == nil) != tc.ok {
			t.Errorf("%v: validate %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}
