package checkpoint

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// pgNames are the SQL names a PGStore uses, derived once from its config.
// Every identifier is quoted with pgx.Identifier.Sanitize, so user-chosen
// names never reach SQL text raw.
type pgNames struct {
	schemaName string // raw, for the catalog lookup
	schema     string // "schema"
	table      string // "schema"."table"
	version    string // "schema"."table_schema_version"
	notifyFn   string // "schema"."table_notify"
	trigger    string // "table_notify" (trigger names are per table, never qualified)
	expiryIdx  string // "table_expiry" (an index lives in its table's schema)
	keyIdx     string // "table_key"
	// channel is the LISTEN/NOTIFY channel: "shoal_" and 16 hex digits of a
	// hash of schema and table, so it is a plain identifier whatever the
	// names, and tables in different schemas do not share a channel.
	channel string
	// schemaLock and tableLock are the pg_advisory_xact_lock keys that
	// serialize migrations: of the schema (creating it) and of the table.
	schemaLock, tableLock int64
}

func newPGNames(schema, table string) pgNames {
	h := func(s string) uint64 {
		f := fnv.New64a()
		f.Write([]byte(s))
		return f.Sum64()
	}
	// NUL separates schema and table: it cannot occur in an identifier.
	tableHash := h("shoal/checkpoint\x00" + schema + "\x00" + table)
	return pgNames{
		schemaName: schema,
		schema:     pgx.Identifier{schema}.Sanitize(),
		table:      pgx.Identifier{schema, table}.Sanitize(),
		version:    pgx.Identifier{schema, table + "_schema_version"}.Sanitize(),
		notifyFn:   pgx.Identifier{schema, table + "_notify"}.Sanitize(),
		trigger:    pgx.Identifier{table + "_notify"}.Sanitize(),
		expiryIdx:  pgx.Identifier{table + "_expiry"}.Sanitize(),
		keyIdx:     pgx.Identifier{table + "_key"}.Sanitize(),
		channel:    fmt.Sprintf("shoal_%016x", tableHash),
		schemaLock: int64(h("shoal/checkpoint/schema\x00" + schema)), //nolint:gosec // a hash, reinterpreted as a lock key
		tableLock:  int64(tableHash),                                 //nolint:gosec // idem
	}
}

// migration is one step of the lease table's schema. Steps are applied in
// order, each once, inside the migrating transaction. Steps only ever add
// (columns with defaults, indexes, functions), so that workers still running
// the previous version keep working during a rolling upgrade.
type migration struct {
	version int
	stmts   func(n pgNames) []string
}

// migrations is the lease table's history. Append; never edit a step that
// has shipped.
var migrations = []migration{
	{version: 1, stmts: func(n pgNames) []string {
		return []string{
			// checkpoint_seq holds what the KCL's checkpoint attribute
			// holds: a sentinel or the decimal sequence number, verbatim.
			// checkpoint_num is the same number as NUMERIC (NULL for a
			// sentinel), so "never backwards" is a SQL condition on
			// 129-digit numbers.
			`CREATE TABLE ` + n.table + ` (
	application                     text        NOT NULL,
	shard_id                        text        NOT NULL,
	lease_owner                     text,
	lease_counter                   bigint      NOT NULL DEFAULT 0,
	checkpoint_seq                  text        NOT NULL,
	checkpoint_subseq               bigint      NOT NULL DEFAULT 0,
	checkpoint_num                  numeric     GENERATED ALWAYS AS
		(CASE WHEN checkpoint_seq ~ '^[0-9]+$' THEN checkpoint_seq::numeric END) STORED,
	pending_checkpoint_seq          text,
	pending_checkpoint_subseq       bigint,
	owner_switches_since_checkpoint bigint      NOT NULL DEFAULT 0,
	parent_shard_ids                text[]      NOT NULL DEFAULT '{}',
	child_shard_ids                 text[]      NOT NULL DEFAULT '{}',
	starting_hash_key               text        NOT NULL DEFAULT '',
	ending_hash_key                 text        NOT NULL DEFAULT '',
	expires_at                      timestamptz,
	op_token                        bigint,
	created_at                      timestamptz NOT NULL DEFAULT now(),
	updated_at                      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (application, shard_id),
	CHECK (checkpoint_seq IN ('TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP', 'SHARD_END')
		OR checkpoint_seq ~ '^(0|[1-9][0-9]{0,128})$'),
	CHECK (checkpoint_subseq >= 0),
	CHECK (pending_checkpoint_seq IS NULL
		OR pending_checkpoint_seq IN ('TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP', 'SHARD_END')
		OR pending_checkpoint_seq ~ '^(0|[1-9][0-9]{0,128})$'),
	CHECK ((lease_owner IS NULL) = (expires_at IS NULL))
)`,
			// The listener's expiry watcher asks for the next expiry.
			`CREATE INDEX ` + n.expiryIdx + ` ON ` + n.table + ` (application, expires_at) WHERE lease_owner IS NOT NULL`,
			// Every change that makes a lease worth acting on is announced
			// on the table's channel, whoever makes it (a worker, or an
			// operator with psql). Renewals are not: they change nothing a
			// listener acts on, and are the bulk of the writes.
			`CREATE FUNCTION ` + n.notifyFn + `() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
	ev text;
	r  record;
BEGIN
	IF TG_OP = 'DELETE' THEN
		r := OLD; ev := 'deleted';
	ELSE
		r := NEW;
		IF TG_OP = 'INSERT' THEN
			ev := 'created';
		ELSIF NEW.checkpoint_seq = 'SHARD_END' AND OLD.checkpoint_seq <> 'SHARD_END' THEN
			ev := 'shard_ended';
		ELSIF NEW.lease_owner IS NULL AND OLD.lease_owner IS NOT NULL THEN
			ev := 'released';
		ELSIF NEW.lease_owner IS DISTINCT FROM OLD.lease_owner THEN
			ev := 'taken';
		END IF;
	END IF;
	IF ev IS NOT NULL THEN
		PERFORM pg_notify('` + n.channel + `', json_build_object(
			'type', ev, 'application', r.application, 'shard_id', r.shard_id,
			'owner', coalesce(r.lease_owner, ''), 'counter', r.lease_counter)::text);
	END IF;
	RETURN NULL;
END
$fn$`,
			`CREATE TRIGGER ` + n.trigger + ` AFTER INSERT OR UPDATE OR DELETE ON ` + n.table +
				` FOR EACH ROW EXECUTE FUNCTION ` + n.notifyFn + `()`,
		}
	}},
	{version: 2, stmts: func(n pgNames) []string {
		return []string{
			// Graceful hand-off: the worker that asked for the lease, and
			// when its request lapses (both NULL without a request). A
			// worker of version 1 never sets them, and its takes and
			// releases leave them: a request outliving its owner is
			// ignored once it lapses.
			//
			// checkpoint_timestamp is the time an AT_TIMESTAMP checkpoint
			// starts at (set by a reset to a time), read only while
			// checkpoint_seq is AT_TIMESTAMP: a worker of version 1 that
			// checkpoints leaves it behind, harmlessly. No CHECK ties the
			// columns together, for the same reason.
			`ALTER TABLE ` + n.table + ` ADD COLUMN handoff_to text, ADD COLUMN handoff_expires_at timestamptz,
	ADD COLUMN checkpoint_timestamp timestamptz`,
			// The trigger announces hand-off requests and resets (an
			// update made in a transaction that set shoal.lease_op to
			// 'reset'), and sends the requester with every event.
			`CREATE OR REPLACE FUNCTION ` + n.notifyFn + `() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
	ev text;
	r  record;
BEGIN
	IF TG_OP = 'DELETE' THEN
		r := OLD; ev := 'deleted';
	ELSE
		r := NEW;
		IF TG_OP = 'INSERT' THEN
			ev := 'created';
		ELSIF current_setting('shoal.lease_op', true) = 'reset' THEN
			ev := 'reset';
		ELSIF NEW.checkpoint_seq = 'SHARD_END' AND OLD.checkpoint_seq <> 'SHARD_END' THEN
			ev := 'shard_ended';
		ELSIF NEW.lease_owner IS NULL AND OLD.lease_owner IS NOT NULL THEN
			ev := 'released';
		ELSIF NEW.lease_owner IS DISTINCT FROM OLD.lease_owner THEN
			ev := 'taken';
		ELSIF NEW.handoff_to IS NOT NULL AND NEW.handoff_expires_at IS DISTINCT FROM OLD.handoff_expires_at THEN
			ev := 'handoff_requested';
		END IF;
	END IF;
	IF ev IS NOT NULL THEN
		PERFORM pg_notify('` + n.channel + `', json_build_object(
			'type', ev, 'application', r.application, 'shard_id', r.shard_id,
			'owner', coalesce(r.lease_owner, ''), 'counter', r.lease_counter,
			'handoff_to', coalesce(r.handoff_to, ''))::text);
	END IF;
	RETURN NULL;
END
$fn$`,
		}
	}},
	{version: 3, stmts: func(n pgNames) []string {
		tableLit := "'" + strings.ReplaceAll(n.table, "'", "''") + "'"
		return []string{
			// Multi-stream applications: a lease belongs to a stream,
			// named by identity (checkpoint.StreamIdentity); '' is the
			// application's only stream, which every row written before
			// this version belongs to. lease_key is the key the Store's
			// methods name a lease by (checkpoint.LeaseKey).
			`ALTER TABLE ` + n.table + ` ADD COLUMN stream text NOT NULL DEFAULT '',
	ADD COLUMN lease_key text GENERATED ALWAYS AS
		(CASE WHEN stream = '' THEN shard_id ELSE stream || ':' || shard_id END) STORED`,
			// The primary key becomes (application, stream, shard_id).
			// A worker of version 2 still running keeps renewing and
			// checkpointing its leases (of stream ''), but its lease
			// creation (ON CONFLICT (application, shard_id)) fails from
			// now on: upgrade every worker before resharding.
			`DO $do$
DECLARE c text;
BEGIN
	SELECT conname INTO c FROM pg_constraint WHERE conrelid = ` + tableLit + `::regclass AND contype = 'p';
	EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', ` + tableLit + `, c);
END
$do$`,
			`ALTER TABLE ` + n.table + ` ADD PRIMARY KEY (application, stream, shard_id)`,
			`CREATE UNIQUE INDEX ` + n.keyIdx + ` ON ` + n.table + ` (application, lease_key)`,
			// The trigger sends the stream with every event.
			`CREATE OR REPLACE FUNCTION ` + n.notifyFn + `() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
	ev text;
	r  record;
BEGIN
	IF TG_OP = 'DELETE' THEN
		r := OLD; ev := 'deleted';
	ELSE
		r := NEW;
		IF TG_OP = 'INSERT' THEN
			ev := 'created';
		ELSIF current_setting('shoal.lease_op', true) = 'reset' THEN
			ev := 'reset';
		ELSIF NEW.checkpoint_seq = 'SHARD_END' AND OLD.checkpoint_seq <> 'SHARD_END' THEN
			ev := 'shard_ended';
		ELSIF NEW.lease_owner IS NULL AND OLD.lease_owner IS NOT NULL THEN
			ev := 'released';
		ELSIF NEW.lease_owner IS DISTINCT FROM OLD.lease_owner THEN
			ev := 'taken';
		ELSIF NEW.handoff_to IS NOT NULL AND NEW.handoff_expires_at IS DISTINCT FROM OLD.handoff_expires_at THEN
			ev := 'handoff_requested';
		END IF;
	END IF;
	IF ev IS NOT NULL THEN
		PERFORM pg_notify('` + n.channel + `', json_build_object(
			'type', ev, 'application', r.application, 'stream', r.stream, 'shard_id', r.shard_id,
			'owner', coalesce(r.lease_owner, ''), 'counter', r.lease_counter,
			'handoff_to', coalesce(r.handoff_to, ''))::text);
	END IF;
	RETURN NULL;
END
$fn$`,
		}
	}},
}

// latestVersion is the schema version this library writes.
func latestVersion() int { return migrations[len(migrations)-1].version }

// schemaVersion returns the lease table's schema version, 0 if it has none.
func (s *PGStore) schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
},
) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.n.version).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s.n.version).Scan(&v)
	return v, err
}

// migrate brings the lease table to latestVersion. It is safe when many
// workers start at once: the work happens in one transaction holding
// advisory locks on the schema and the table, so one worker migrates and the
// others then find the work done. A worker whose table is already current
// takes no lock and needs no privilege beyond reading the version table.
func (s *PGStore) migrate(ctx context.Context) error { return s.migrateTo(ctx, latestVersion()) }

// migrateTo brings the lease table to version latest (tests stop short of
// the newest to test a migration from an older schema).
func (s *PGStore) migrateTo(ctx context.Context, latest int) error {
	return s.retry(ctx, "migrate", func(ctx context.Context, _ int) error {
		v, err := s.schemaVersion(ctx, s.pool)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > latest {
			return fmt.Errorf("table %s is at version %d, this library knows %d: %w", s.n.table, v, latest, ErrSchemaVersion)
		}
		if v == latest {
			return nil
		}
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			// Lock order: schema, then table, always.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)`, s.n.schemaLock, s.n.tableLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
			// when the schema exists, so look first.
			var schemaExists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.n.schemaName).Scan(&schemaExists); err != nil {
				return fmt.Errorf("look up schema: %w", err)
			}
			if !schemaExists {
				if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.n.schema); err != nil {
					return fmt.Errorf("create schema: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.n.version+` (
	version    integer     PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
				return fmt.Errorf("create version table: %w", err)
			}
			cur, err := s.schemaVersion(ctx, tx)
			if err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if cur > latest {
				return fmt.Errorf("table %s is at version %d, this library knows %d: %w", s.n.table, cur, latest, ErrSchemaVersion)
			}
			for _, m := range migrations {
				if m.version <= cur || m.version > latest {
					continue
				}
				for _, stmt := range m.stmts(s.n) {
					if _, err := tx.Exec(ctx, stmt); err != nil {
						return fmt.Errorf("migration %d: %w", m.version, err)
					}
				}
				if _, err := tx.Exec(ctx, `INSERT INTO `+s.n.version+` (version) VALUES ($1)`, m.version); err != nil {
					return fmt.Errorf("record migration %d: %w", m.version, err)
				}
				s.log.Info("migrated lease table", zap.String("table", s.n.table), zap.Int("version", m.version))
			}
			return nil
		})
	})
}
