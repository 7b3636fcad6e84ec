package enginetest_test

import (
	"context"
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
			t.Cleanup(func() {
				if err := e.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return e
		},
		Reopen: func(t *testing.T, e engine.Engine) engine.Engine { return e },
	})
}

// TestSuiteIrreversibleSeal runs the suite with Harness.IrreversibleSeal
// against the memory engine wrapped so that Unseal always fails with
// ErrIrreversible and changes nothing, as on NATS JetStream: the tests
// that unseal must accept that and check that the log stays sealed.
func TestSuiteIrreversibleSeal(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T, now func() time.Time) engine.Engine {
			e := memengine.New(memengine.Config{Now: now})
			t.Cleanup(func() { _ = e.Close() })
			return irreversibleEngine{e}
		},
		IrreversibleSeal: true,
	})
}

// irreversibleEngine hands out logs whose seal cannot be undone.
type irreversibleEngine struct{ engine.Engine }

func (e irreversibleEngine) CreateLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	l, err := e.Engine.CreateLog(ctx, id)
	if err != nil {
		return nil, err
	}
	return irreversibleLog{l}, nil
}

func (e irreversibleEngine) OpenLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	l, err := e.Engine.OpenLog(ctx, id)
	if err != nil {
		return nil, err
	}
	return irreversibleLog{l}, nil
}

type irreversibleLog struct{ engine.Log }

// Unseal fails with ErrIrreversible on an open handle (and with ErrClosed,
// which Sync reports, on a closed one).
func (l irreversibleLog) Unseal(ctx context.Context) error {
	if err := l.Sync(ctx); err != nil {
		return err
	}
	return engine.ErrIrreversible
}
