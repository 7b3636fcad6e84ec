package memstore_test

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/checkpoint/checkpointtest"
	"github.com/shoalstream/shoal/checkpoint/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance: the in-memory store passes the suite the PostgreSQL
// store passes (on the real clock, with a 300ms failover); the Stores of
// one test share a Table, as workers share a lease table.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	tables := map[*testing.T]*memstore.Table{}
	checkpointtest.RunStoreTests(t, func(t *testing.T) checkpoint.Store {
		mu.Lock()
		tab := tables[t]
		if tab == nil {
			tab = memstore.NewTable()
			tables[t] = tab
		}
		mu.Unlock()
		s := tab.Store(300 * time.Millisecond)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestDefaultFailoverTime(t *testing.T) {
	s := memstore.New(0)
	defer func() { _ = s.Close() }()
	if got := s.FailoverTime(); got != memstore.DefaultFailoverTime {
		t.Fatalf("FailoverTime() = %v, want %v", got, memstore.DefaultFailoverTime)
	}
}
