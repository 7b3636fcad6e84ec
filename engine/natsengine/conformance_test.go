package natsengine

import (
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/enginetest"
)

// TestConformance runs the engine conformance suite, durability tests
// included, against engines on the shared 3-node cluster, each test under
// its own prefix with R3 streams. Reopen closes the engine and opens another
// on the same prefix: the data is in NATS. JetStream's seal cannot be
// undone, so the suite runs with IrreversibleSeal.
func TestConformance(t *testing.T) {
	type opened struct {
		prefix string
		now    func() time.Time
	}
	var mu sync.Mutex
	engines := map[engine.Engine]opened{}
	open := func(t *testing.T, o opened) engine.Engine {
		e := openTest(t, Config{Prefix: o.prefix, Now: o.now, Replicas: 3})
		mu.Lock()
		engines[e] = o
		mu.Unlock()
		return e
	}
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T, now func() time.Time) engine.Engine {
			return open(t, opened{newPrefix(t), now})
		},
		Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
			mu.Lock()
			o := engines[e]
			mu.Unlock()
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, o)
		},
		IrreversibleSeal: true,
	})
}
