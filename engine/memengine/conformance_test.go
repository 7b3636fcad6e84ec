package memengine_test

import (
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/enginetest"
	"github.com/shoalstream/shoal/engine/memengine"
)

// TestConformance runs the engine conformance suite; the memory engine is
// not durable, so Reopen is nil.
func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T, now func() time.Time) engine.Engine {
			e := memengine.New(memengine.Config{Now: now})
			t.Cleanup(func() {
				if err := e.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return e
		},
	})
}
