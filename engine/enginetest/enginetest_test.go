package enginetest_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/enginetest"
	"github.com/shoalstream/shoal/engine/memengine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestSuiteWithReopen runs the whole suite, durability tests included,
// against the memory engine with a Reopen that hands back the same open
// engine. It proves nothing about durability; it checks that the
// durability tests themselves pass on an engine that keeps its data, so
// that their failures on a durable engine are the engine's.
func TestSuiteWithReopen(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T, now func() time.Time) engine.Engine {
			e := memengine.New(memengine.Config{Now: now})
			t.Cleanup(func() { e.Close() })
			return e
		},
		Reopen: func(t *testing.T, e engine.Engine) engine.Engine { return e },
	})
}
