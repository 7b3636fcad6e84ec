package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

var _ Admin = (*PGStore)(nil)

// adminQueries are the statements of Admin, with the quoted table name.
type adminQueries struct {
	reset, tokenRows, forceRelease, deleteApp string
}

func newAdminQueries(table string) adminQueries {
	// $1 application, $2 shard IDs (empty: all), then the statement's own.
	which := ` WHERE application = $1 AND (cardinality($2::text[]) = 0 OR lease_key = ANY($2::text[]))`
	return adminQueries{
		// $3 checkpoint, $4 sub-sequence, $5 timestamp or NULL, $6 token.
		// Run after set_config('shoal.lease_op', 'reset', true) in the
		// same transaction, so that the trigger announces a reset.
		reset: `UPDATE ` + table + ` SET checkpoint_seq = $3, checkpoint_subseq = $4, checkpoint_timestamp = $5,
	pending_checkpoint_seq = NULL, pending_checkpoint_subseq = NULL, owner_switches_since_checkpoint = 0,
	lease_owner = NULL, expires_at = NULL, handoff_to = NULL, handoff_expires_at = NULL,
	lease_counter = lease_counter + 1, op_token = $6, updated_at = now()` + which + ` RETURNING ` + leaseColumns,
		// $3 token: the rows an earlier attempt of the call wrote.
		tokenRows: `SELECT ` + leaseColumns + ` FROM ` + table + which + ` AND op_token = $3`,
		// $3 token.
		forceRelease: `UPDATE ` + table + ` SET lease_owner = NULL, expires_at = NULL, handoff_to = NULL, handoff_expires_at = NULL,
	lease_counter = lease_counter + 1, op_token = $3, updated_at = now()
WHERE application = $1 AND lease_key = $2 AND lease_owner IS NOT NULL RETURNING ` + leaseColumns,
		deleteApp: `DELETE FROM ` + table + ` WHERE application = $1`,
	}
}

// validateReset checks ResetLeases's arguments and returns the shard IDs
// without duplicates.
func validateReset(application string, keys []string, cp Checkpoint) ([]string, error) {
	if application == "" || len(application) > maxIDBytes {
		return nil, fmt.Errorf("application name must be 1 to %d bytes: %w", maxIDBytes, ErrInvalid)
	}
	var ids []string
	for _, id := range keys {
		if err := validateIDs(application, id); err != nil {
			return nil, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch err := cp.Validate(); {
	case err != nil:
		return nil, err
	case cp.IsShardEnd():
		return nil, fmt.Errorf("%s is no position to resume from: %w", ShardEnd, ErrInvalid)
	case !cp.IsSentinel() && len(ids) != 1:
		return nil, fmt.Errorf("sequence number %s for %d shards: a sequence number belongs to one shard: %w", cp, len(ids), ErrInvalid)
	}
	return ids, nil
}

// ResetLeases sets the checkpoint of the application's leases. See Admin.
func (s *PGStore) ResetLeases(ctx context.Context, application string, keys []string, cp Checkpoint) ([]Lease, error) {
	op := "reset leases of " + application
	ids, err := validateReset(application, keys, cp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	q := newAdminQueries(s.n.table)
	tok := newToken()
	var out []Lease
	err = s.retry(ctx, op, func(ctx context.Context, attempt int) error {
		out = out[:0]
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			if attempt > 1 {
				// The transaction is all or nothing: a row still carrying
				// the token says an earlier attempt committed and only its
				// reply was lost.
				done, err := collectLeases(tx.Query(ctx, q.tokenRows, application, nonNil(ids), tok))
				if err != nil || len(done) > 0 {
					out = done
					return err
				}
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('shoal.lease_op', 'reset', true)`); err != nil {
				return err
			}
			got, err := collectLeases(tx.Query(ctx, q.reset, application, nonNil(ids), cp.SequenceNumber, cp.SubSequenceNumber, timeParam(cp), tok))
			if err != nil {
				return err
			}
			if len(got) == 0 || (len(ids) > 0 && len(got) < len(ids)) {
				return fmt.Errorf("%d of the leases to reset found: %w", len(got), ErrNotFound)
			}
			out = got
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Lease) int {
		if c := cmpString(a.Stream, b.Stream); c != 0 {
			return c
		}
		return cmpString(a.ShardID, b.ShardID)
	})
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// collectLeases reads the rows of a query returning leaseColumns.
func collectLeases(rows pgx.Rows, err error) ([]Lease, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		l, _, err := scanLease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ForceRelease makes a lease unowned, whoever holds it. See Admin.
func (s *PGStore) ForceRelease(ctx context.Context, application, lkey string) (Lease, error) {
	key := leaseKey(application, lkey)
	op := "force release of " + key
	if err := validateIDs(application, lkey); err != nil {
		return Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	q := newAdminQueries(s.n.table)
	tok := newToken()
	var out Lease
	err := s.retry(ctx, op, func(ctx context.Context, _ int) error {
		got, _, err := scanLease(s.pool.QueryRow(ctx, q.forceRelease, application, lkey, tok))
		if err == nil {
			out = got
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Unowned already (maybe by an earlier attempt of this call), or
		// missing.
		out, _, err = s.get(ctx, application, lkey)
		return err
	})
	return out, err
}

// DeleteApplication deletes every lease of the application. See Admin.
func (s *PGStore) DeleteApplication(ctx context.Context, application string) (int, error) {
	if application == "" || len(application) > maxIDBytes {
		return 0, fmt.Errorf("delete application: name must be 1 to %d bytes: %w", maxIDBytes, ErrInvalid)
	}
	q := newAdminQueries(s.n.table)
	var n int
	err := s.retry(ctx, "delete application "+application, func(ctx context.Context, _ int) error {
		tag, err := s.pool.Exec(ctx, q.deleteApp, application)
		if err != nil {
			return err
		}
		// After a lost reply, a later attempt finds fewer (or none).
		n += int(tag.RowsAffected())
		return nil
	})
	return n, err
}
