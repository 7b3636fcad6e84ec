// Package background runs the code under test (a worker's or a
// subscriber's Run) in a goroutine of its own for the length of a test.
package background

import (
	"context"
	"testing"
	"time"
)

// Run calls run with a context derived from ctx in a goroutine of its own
// and returns stop, which cancels that context and returns run's error; it
// fails t if run has not returned within 30s. stop may be called more than
// once (each call returns the same error), and is called at t's cleanup.
func Run(t testing.TB, ctx context.Context, run func(context.Context) error) (stop func() error) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			done <- err // for the next call
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of its ctx ending")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}
