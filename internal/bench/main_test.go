package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
)

// TestMain cuts the tests off from the machine's AWS setup: the clients
// sign with the placeholder credentials unless a test sets others.
func TestMain(m *testing.M) {
	cleanup, err := awscredstest.IsolateProcess()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}
