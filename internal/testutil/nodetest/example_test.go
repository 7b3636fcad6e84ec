package nodetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/testutil/nodetest"
)

// A test installs a pinned npm package once, then runs a script that
// requires it. Without node or npm the test is skipped (it fails in CI).
// The example is not run: it needs a *testing.T and the npm registry.
func Example() {
	_ = func(t *testing.T) {
		node := nodetest.Node(t, 20)
		dir := nodetest.Install(t, "aws-kinesis-agg", "4.2.8")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out := nodetest.Run(ctx, t, node, dir, "testdata/script.js", "arg")
		t.Logf("script printed %s", out)
	}
}
