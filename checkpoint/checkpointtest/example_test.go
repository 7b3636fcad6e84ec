package checkpointtest_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/checkpoint/checkpointtest"
)

// A Store implementation runs the suite from one of its tests. Here the
// Store is a PGStore: every call of newStore opens one on a pool of its own,
// as another worker would; the Stores of one test share a lease table and
// other tests get another; the failover time is short, as the expiry tests
// need. RunStoreTests needs the *testing.T of a running test and a database,
// so this example is compiled but not run.
func ExampleRunStoreTests() {
	var t *testing.T // in real use, the parameter of func TestConformance(t *testing.T)

	var (
		mu     sync.Mutex
		tables = map[*testing.T]string{}
		run    = time.Now().UnixNano() // tables of earlier runs hold leases: use new ones
	)
	checkpointtest.RunStoreTests(t, func(t *testing.T) checkpoint.Store {
		mu.Lock()
		table, ok := tables[t]
		if !ok {
			table = fmt.Sprintf("conformance_%d_%d", run, len(tables))
			tables[t] = table
		}
		mu.Unlock()

		pool, err := pgxpool.New(t.Context(), os.Getenv("DATABASE_URL"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s, err := checkpoint.NewPGStore(t.Context(), pool, checkpoint.PGConfig{
			Table:        table,
			FailoverTime: 300 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() }) // Close of a PGStore is always nil
		return s
	})
}
