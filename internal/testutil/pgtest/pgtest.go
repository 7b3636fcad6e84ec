// Package pgtest gives tests a real PostgreSQL database, isolated per test.
//
// The database comes from DATABASE_URL (default URL's value). Each New call
// creates a fresh schema and drops it, CASCADE, when the test ends. When the
// database cannot be reached the test is skipped, except under CI=true,
// where it fails: CI must not pass by skipping the database tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the database used when DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns DATABASE_URL, or DefaultURL when it is unset.
func URL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// timeout bounds each setup and cleanup step.
const timeout = 30 * time.Second

// unreachable skips the test, or fails it under CI=true.
func unreachable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: PostgreSQL at %s unreachable (CI=true, so this fails rather than skips): %v", URL(), err)
	}
	t.Skipf("pgtest: PostgreSQL at %s unreachable, skipping (set DATABASE_URL): %v", URL(), err)
}

// New creates a schema of its own for the test ("t_" and 12 random hex
// digits) and returns a pool whose connections use it as their search_path
// and carry the schema's name as application_name (so that Terminate can
// target them), and the schema's name. Cleanup closes the pool and drops the
// schema with everything in it.
func New(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	schema := "t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	admin, err := pgx.Connect(ctx, URL())
	if err != nil {
		unreachable(t, err)
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return Pool(t, Config(t, schema)), schema
}

// Config returns a pool configuration for URL() whose connections use
// schema as search_path and application_name; change it before passing it
// to Pool.
func Config(t testing.TB, schema string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(URL())
	if err != nil {
		t.Fatalf("pgtest: parse DATABASE_URL: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = schema
	return cfg
}

// Pool opens another pool, independent of the others (its own connections:
// a second worker, say); cfg comes from Config. It is closed when the test
// ends, before the schema is dropped.
func Pool(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		unreachable(t, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		unreachable(t, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Terminate ends, from the server's side, every backend connection whose
// application_name is name (Config sets it to the schema's name), as a
// crash or a failover would, and returns how many it ended.
func Terminate(t testing.TB, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		t.Fatalf("pgtest: terminate %s: %v", name, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`, name).Scan(&n); err != nil {
		t.Fatalf("pgtest: terminate %s: %v", name, err)
	}
	return n
}
