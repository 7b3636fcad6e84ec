package checkpoint

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Defaults and limits of PGConfig.
const (
	// DefaultSchema is PGConfig.Schema's default: it exists in every
	// database, so the store needs no CREATE privilege on the database.
	DefaultSchema = "public"
	// DefaultTable is PGConfig.Table's default.
	DefaultTable = "shoal_leases"
	// DefaultFailoverTime is PGConfig.FailoverTime's default, the KCL's
	// failoverTimeMillis (10000).
	DefaultFailoverTime = 10 * time.Second
	// DefaultMaxRetryTime is PGConfig.MaxRetryTime's default.
	DefaultMaxRetryTime = 30 * time.Second
	// DefaultEventBuffer is PGConfig.EventBuffer's default.
	DefaultEventBuffer = 256

	// MaxTableNameBytes bounds PGConfig.Table so that the names derived
	// from it (table + "_schema_version", table + "_notify") fit in
	// PostgreSQL's 63-byte identifiers.
	MaxTableNameBytes = 47
	// maxIdentifierBytes is PostgreSQL's NAMEDATALEN - 1.
	maxIdentifierBytes = 63
	// minFailoverTime keeps the expiry watcher from spinning.
	minFailoverTime = 10 * time.Millisecond
)

// PGConfig configures a PGStore. The zero value is valid: every zero field
// takes the default shown.
type PGConfig struct {
	// Schema is the PostgreSQL schema holding the lease table; it is
	// created if missing. Zero means "public".
	Schema string
	// Table is the lease table's name (at most 47 bytes). Several
	// applications can share one table: leases are keyed by application and
	// shard. Zero means "shoal_leases".
	Table string
	// FailoverTime is how long a take, renewal or checkpoint keeps the
	// lease owned without another renewal, judged by the database's clock.
	// Renew well within it (the KCL renews every FailoverTime/3). It is
	// stored on each lease when written, so workers configured differently
	// still agree on when a lease expires. Zero means 10s. KCL:
	// failoverTimeMillis.
	FailoverTime time.Duration
	// MaxRetryTime bounds how long one call retries transient database
	// errors (lost connections, timeouts, serialization failures, server
	// shutdown) with exponential back-off; the call's ctx can end it sooner.
	// Zero means 30s.
	MaxRetryTime time.Duration
	// EventBuffer is the capacity of each Listen channel. When it is full,
	// events are dropped and an EventResync follows. Zero means 256.
	EventBuffer int
	// Logger receives retries, listener reconnects and migrations. Nil
	// means zap.NewNop().
	Logger *zap.Logger
}

func (c PGConfig) withDefaults() PGConfig {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.FailoverTime == 0 {
		c.FailoverTime = DefaultFailoverTime
	}
	if c.MaxRetryTime == 0 {
		c.MaxRetryTime = DefaultMaxRetryTime
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// validate returns every problem of a config that went through withDefaults.
func (c PGConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("checkpoint config: "+format+": %w", append(args, ErrInvalid)...))
	}
	if len(c.Schema) > maxIdentifierBytes {
		bad("Schema %q longer than %d bytes", c.Schema, maxIdentifierBytes)
	}
	if len(c.Table) > MaxTableNameBytes {
		bad("Table %q longer than %d bytes", c.Table, MaxTableNameBytes)
	}
	if c.FailoverTime < minFailoverTime {
		bad("FailoverTime %v below %v", c.FailoverTime, minFailoverTime)
	}
	if c.MaxRetryTime < 0 {
		bad("negative MaxRetryTime %v", c.MaxRetryTime)
	}
	if c.EventBuffer < 0 {
		bad("negative EventBuffer %d", c.EventBuffer)
	}
	return errors.Join(errs...)
}
