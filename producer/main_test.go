package producer

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests. goleak
// (go.uber.org/goleak, a test-only dependency) is what the style guide asks
// for (11.4): it checks every goroutine, with its stack in the report,
// which a goroutine count cannot. The HTTP client's idle connections are
// not the producer's; they end when the test servers shut down, which
// goleak waits for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
