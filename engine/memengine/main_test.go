package memengine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests (style
// guide 11.4).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
