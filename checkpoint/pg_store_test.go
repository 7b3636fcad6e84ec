package checkpoint_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/checkpoint/checkpointtest"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
)

const testFailover = 300 * time.Millisecond

// newPGStore opens a PGStore on a pool of its own to schema's lease table.
func newPGStore(t *testing.T, schema string, cfg checkpoint.PGConfig) (*checkpoint.PGStore, string) {
	t.Helper()
	pcfg := pgtest.Config(t, schema)
	pool := pgtest.Pool(t, pcfg)
	if cfg.Schema == "" {
		cfg.Schema = schema
	}
	if cfg.Table == "" {
		cfg.Table = "leases"
	}
	if cfg.FailoverTime == 0 {
		cfg.FailoverTime = testFailover
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := checkpoint.NewPGStore(ctx, pool, cfg)
	if err != nil {
		t.Fatalf("NewPGStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, pcfg.ConnConfig.RuntimeParams["application_name"]
}

func TestPGStoreConformance(t *testing.T) {
	var (
		mu      sync.Mutex
		schemas = map[*testing.T]string{}
	)
	checkpointtest.RunStoreTests(t, func(t *testing.T) checkpoint.Store {
		mu.Lock()
		schema, ok := schemas[t]
		if !ok {
			_, schema = pgtest.New(t)
			schemas[t] = schema
		}
		mu.Unlock()
		s, _ := newPGStore(t, schema, checkpoint.PGConfig{})
		return s
	})
}

// TestPGMigrationsConcurrent starts 8 stores at once, each with its own
// pool, on a schema that does not exist yet: one creates the schema and the
// table, the others wait for it and find the work done.
func TestPGMigrationsConcurrent(t *testing.T) {
	_, base := pgtest.New(t)
	schema := base + "_m" // created by the stores; dropped below
	ctx := t.Context()
	admin := pgtest.Pool(t, pgtest.Config(t, base))
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
	})

	const workers = 8
	pools := make([]*pgxpool.Pool, workers)
	for i := range pools {
		pools[i] = pgtest.Pool(t, pgtest.Config(t, base))
	}
	tables := []string{"leases", "other_leases"}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			<-start
			// Two tables in the one new schema: their migrations share the
			// schema's creation.
			s, err := checkpoint.NewPGStore(ctx, pools[i], checkpoint.PGConfig{Schema: schema, Table: tables[i%2], Logger: zaptest.NewLogger(t)})
			if err == nil {
				_, err = s.CreateLease(ctx, checkpoint.Lease{Application: "app", ShardID: "shardId-000000000000"})
				_ = s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
	for _, table := range tables {
		var n, version int
		if err := admin.QueryRow(ctx, `SELECT count(*), max(version) FROM `+pgx.Identifier{schema, table + "_schema_version"}.Sanitize()).Scan(&n, &version); err != nil {
			t.Fatal(err)
		}
		if n != version || version < 2 {
			t.Fatalf("%s_schema_version has %d rows, max %d; want one row per version, at least 2", table, n, version)
		}
		var leases int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, table}.Sanitize()).Scan(&leases); err != nil || leases != 1 {
			t.Fatalf("%s: %d leases, %v", table, leases, err)
		}
	}

	// A table migrated by a newer library is refused.
	if _, err := admin.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "leases_schema_version"}.Sanitize()+` (version) VALUES (1000)`); err != nil {
		t.Fatal(err)
	}
	_, err := checkpoint.NewPGStore(ctx, admin, checkpoint.PGConfig{Schema: schema, Table: "leases"})
	if !errors.Is(err, checkpoint.ErrSchemaVersion) {
		t.Fatalf("NewPGStore on a newer schema: %v, want ErrSchemaVersion", err)
	}
}

// TestPGConnectionLoss terminates the store's backend connections, as a
// database restart or failover would: calls retry on a new connection and
// succeed, and the listener reconnects, says it may have missed events, and
// delivers the ones that follow.
func TestPGConnectionLoss(t *testing.T) {
	_, schema := pgtest.New(t)
	s, appName := newPGStore(t, schema, checkpoint.PGConfig{FailoverTime: 5 * time.Second})
	other, _ := newPGStore(t, schema, checkpoint.PGConfig{Table: "leases"})
	ctx := t.Context()
	const app, shard = "app", "shardId-000000000000"
	if _, err := s.CreateLease(ctx, checkpoint.Lease{Application: app, ShardID: shard}); err != nil {
		t.Fatal(err)
	}
	events, err := s.Listen(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.GetLease(ctx, app, shard)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = s.TakeLease(ctx, l, "w1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, events, checkpoint.EventTaken)

	for round := range 3 {
		// The pool holds idle connections and the listener its own; all of
		// them go. (Both stores' pools share the application name, so the
		// other store loses its connections too.)
		if n := pgtest.Terminate(t, appName); n < 2 {
			t.Fatalf("round %d: terminated %d backends, want the pool's and the listener's", round, n)
		}
		if l, err = s.RenewLease(ctx, l); err != nil {
			t.Fatalf("round %d: renew after the connections were killed: %v", round, err)
		}
		if l, err = s.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: strconv.Itoa(100 + round)}); err != nil {
			t.Fatalf("round %d: checkpoint after the connections were killed: %v", round, err)
		}
		waitFor(t, events, checkpoint.EventResync)
		// Events after the reconnect arrive.
		if l, err = s.ReleaseLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		// A terminated backend can be noticed late, so the listener may
		// reconnect once more and say resync instead: then the lease itself
		// must show the change.
		if !waitForOrResync(t, events, checkpoint.EventReleased) {
			if got, err := s.GetLease(ctx, app, shard); err != nil || got.Owner != "" {
				t.Fatalf("round %d: after resync the lease is %+v, %v; want it released", round, got, err)
			}
		}
		if l, err = other.TakeLease(ctx, l, "w1"); err != nil {
			t.Fatal(err)
		}
		if !waitForOrResync(t, events, checkpoint.EventTaken) {
			if got, err := s.GetLease(ctx, app, shard); err != nil || got.Owner != "w1" {
				t.Fatalf("round %d: after resync the lease is %+v, %v; want it taken by w1", round, got, err)
			}
		}
	}
	got, err := other.GetLease(ctx, app, shard)
	if err != nil || got.Counter != l.Counter || got.Checkpoint.SequenceNumber != "102" {
		t.Fatalf("lease %+v, %v; want counter %d at checkpoint 102", got, err, l.Counter)
	}
}

func waitFor(t *testing.T, events <-chan checkpoint.Event, typ checkpoint.EventType) {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event channel closed")
			}
			if e.Type == typ {
				return
			}
		case <-timer.C:
			t.Fatalf("no %s event within 10s", typ)
		}
	}
}

// waitForOrResync waits for an event of type typ and reports true, or for a
// resync (the listener reconnected and may have missed it) and reports false.
func waitForOrResync(t *testing.T, events <-chan checkpoint.Event, typ checkpoint.EventType) bool {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event channel closed")
			}
			switch e.Type {
			case typ:
				return true
			case checkpoint.EventResync:
				return false
			}
		case <-timer.C:
			t.Fatalf("no %s or resync event within 10s", typ)
		}
	}
}

// TestPGNames uses schema and table names that need quoting.
func TestPGNames(t *testing.T) {
	_, schema := pgtest.New(t)
	weird := schema + `_Odd "Name"; DROP`
	admin := pgtest.Pool(t, pgtest.Config(t, schema))
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{weird}.Sanitize()+" CASCADE")
	})
	s, _ := newPGStore(t, schema, checkpoint.PGConfig{Schema: weird, Table: `Le'a"ses`})
	ctx := t.Context()
	events, err := s.Listen(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateLease(ctx, checkpoint.Lease{Application: "app", ShardID: "s"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, events, checkpoint.EventCreated)
	if list, err := s.ListLeases(ctx, "app"); err != nil || len(list) != 1 {
		t.Fatalf("ListLeases = %v, %v", list, err)
	}
}

func TestPGConfigValidation(t *testing.T) {
	_, schema := pgtest.New(t)
	pool := pgtest.Pool(t, pgtest.Config(t, schema))
	ctx := t.Context()
	for name, cfg := range map[string]checkpoint.PGConfig{
		"long table":      {Table: strings.Repeat("t", checkpoint.MaxTableNameBytes+1)},
		"long schema":     {Schema: strings.Repeat("s", 64)},
		"tiny failover":   {FailoverTime: time.Millisecond},
		"negative retry":  {MaxRetryTime: -time.Second},
		"negative buffer": {EventBuffer: -1},
	} {
		if _, err := checkpoint.NewPGStore(ctx, pool, cfg); !errors.Is(err, checkpoint.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	if _, err := checkpoint.NewPGStore(ctx, nil, checkpoint.PGConfig{}); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Errorf("nil pool: error %v, want ErrInvalid", err)
	}
}
