// Package wait polls for conditions in tests, so that tests wait for what
// they need instead of sleeping for a guessed time.
package wait

import (
	"testing"
	"time"
)

// Eventually calls cond every 10 ms until it returns nil, and fails the test
// with cond's last error once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
