package tail_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/tail"
	"github.com/shoalstream/shoal/server"
)

// TestStop: cancelling the context ends Run with nil, in every phase; the
// package's TestMain checks that no goroutine is left behind.
func TestStop(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("s", 4)
	want := e.putRound("s", "r", 2, 0, 2, 4, 6)

	t.Run("reading", func(t *testing.T) {
		out := newSink()
		r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Format: tail.JSON, Out: out})
		out.wait(t, "the records", hasData(t, want))
		if err := r.stop(t); err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	})
	t.Run("waiting", func(t *testing.T) {
		// Default intervals: each reader is in a 1s wait when cancelled.
		out := newSink()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- tail.Run(ctx, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Format: tail.JSON, Out: out})
		}()
		out.wait(t, "the records", hasData(t, want))
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}
		case <-time.After(waitFor):
			t.Fatal("Run did not return")
		}
	})
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := tail.Run(ctx, tail.Config{Client: e.c, Stream: "s", Out: newSink()}); err != nil {
			t.Fatalf("Run with a done context = %v, want nil", err)
		}
	})
}

func TestErrors(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	e.putRound("s", "r", 1, 0)
	for _, tc := range []struct {
		name string
		cfg  tail.Config
		want string
	}{
		{"no client", tail.Config{Stream: "s", Out: newSink()}, "no Client"},
		{"no stream", tail.Config{Client: e.c, Out: newSink()}, "no Stream"},
		{"no out", tail.Config{Client: e.c, Stream: "s"}, "no Out"},
		{"bad format", tail.Config{Client: e.c, Stream: "s", Out: newSink(), Format: 7}, "unknown Format(7)"},
		{"bad sequence", tail.Config{Client: e.c, Stream: "s", Out: newSink(), From: tail.From{Kind: tail.AtSequence, Sequence: "x"}}, `From.Sequence "x"`},
		{"no such stream", tail.Config{Client: e.c, Stream: "nope", Out: newSink()}, "ResourceNotFoundException"},
		{"write fails", tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Out: failWriter{}}, "tail: write: disk full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := start(t, tc.cfg).wait(t); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestThroughput runs against a server that enforces 5 GetRecords calls
// per second and shard: with the default CallInterval no call is
// throttled; without one, calls are throttled, backed off and retried, and
// every record is still printed once.
func TestThroughput(t *testing.T) {
	e := newEnv(t, server.Config{EnforceThroughput: true})
	e.createStream("s", 1)
	t.Run("paced", func(t *testing.T) {
		api := &counting{API: e.c, changed: make(chan struct{}, 1)}
		r := start(t, tail.Config{Client: api, Stream: "s", CallInterval: tail.DefaultCallInterval, PollInterval: time.Millisecond, Out: newSink()})
		waitCalls(t, api, 8) // 1.4s at 5 calls/s; an unpaced reader would make 8 calls in a few ms
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if _, errs := api.snapshot(); len(errs) > 0 {
			t.Fatalf("failed calls: %v", errs)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		api := &counting{API: e.c}
		out := newSink()
		r := start(t, tail.Config{Client: api, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, PollInterval: time.Millisecond, MaxBackoff: 200 * time.Millisecond, Format: tail.JSON, Out: out})
		var want []put
		for i := range 4 {
			want = append(want, e.putRound("s", "r"+string(rune('a'+i)), 3, 0)...)
			// Wait for this round's records, so that the next is read
			// after throttled calls.
			out.wait(t, "the round", hasData(t, want))
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		check(t, parseJSON(t, out.lines()), want, nil)
		if _, errs := api.snapshot(); errs["ProvisionedThroughputExceededException"] == 0 {
			t.Errorf("no call throttled: %v", errs)
		}
	})
}

// waitCalls waits until api counted n successful GetRecords calls.
func waitCalls(t *testing.T, api *counting, n int) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		if got, _ := api.snapshot(); got >= n {
			return
		}
		select {
		case <-api.changed:
		case <-deadline:
			t.Fatalf("fewer than %d GetRecords calls", n)
		}
	}
}
