package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

var _ HandoffStore = (*PGStore)(nil)

// maxIDBytes bounds application names, shard IDs and owners, so that a
// NOTIFY payload (at most 8000 bytes) always has room for them.
const maxIDBytes = 1024

// PGStore is the PostgreSQL Store: one row per lease in a table the library
// creates and migrates. It is safe for concurrent use; many PGStores (one
// per worker, in as many processes as wanted) share one table.
type PGStore struct {
	pool *pgxpool.Pool
	cfg  PGConfig
	log  *zap.Logger
	n    pgNames
	q    pgQueries

	life  context.Context // cancelled by Close; ends listeners
	close context.CancelFunc
	wg    sync.WaitGroup // listener goroutines

	mu     sync.Mutex // guards closed, and orders wg.Add before Close's wg.Wait
	closed bool

	// afterAttempt, if set (by tests), runs after each successful attempt
	// of a retried operation; a non-nil result is treated as that attempt's
	// error, which simulates a reply lost after the commit.
	afterAttempt func(op string, attempt int) error
}

// NewPGStore returns a Store keeping leases in the table cfg names, creating
// the schema and the table, or migrating them, as needed. It uses pool for
// every query and for one dedicated connection per Listen call; the pool
// stays the caller's to close, after the Store. ctx bounds the migration.
func NewPGStore(ctx context.Context, pool *pgxpool.Pool, cfg PGConfig) (*PGStore, error) {
	if pool == nil {
		return nil, fmt.Errorf("checkpoint: nil pool: %w", ErrInvalid)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &PGStore{pool: pool, cfg: cfg, log: cfg.Logger, n: newPGNames(cfg.Schema, cfg.Table)}
	s.q = newPGQueries(s.n.table)
	s.life, s.close = context.WithCancel(context.Background())
	if err := s.migrate(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return s, nil
}

// Close stops the Store's listeners and waits until their goroutines have
// returned and their connections are closed. Later calls fail with
// ErrClosed. It does not close the pool. Close is idempotent and always
// returns nil.
func (s *PGStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.close()
	s.wg.Wait()
	return nil
}

// leaseColumns is what every query returns, in scanLease's order. expired is
// judged here, by the database's clock.
const leaseColumns = `application, stream, shard_id, coalesce(lease_owner, ''), lease_counter,
	checkpoint_seq, checkpoint_subseq, pending_checkpoint_seq, pending_checkpoint_subseq,
	owner_switches_since_checkpoint, parent_shard_ids, child_shard_ids,
	starting_hash_key, ending_hash_key, expires_at,
	(lease_owner IS NOT NULL AND expires_at <= now()), coalesce(op_token, 0), created_at, updated_at,
	coalesce(handoff_to, ''), handoff_expires_at, (handoff_to IS NOT NULL AND handoff_expires_at <= now()),
	CASE WHEN checkpoint_seq = 'AT_TIMESTAMP' THEN checkpoint_timestamp END`

// orderCondition is true when the checkpoint given as $7 (text), $8 (its
// sub-sequence number) and $9 (its NUMERIC value, NULL for ShardEnd) does not
// move the lease's checkpoint back: anything may be followed by ShardEnd;
// nothing but ShardEnd may follow ShardEnd; a sequence number must not be
// below the current one (numerically, then by sub-sequence number).
const orderCondition = `($9::numeric IS NULL OR (checkpoint_seq <> 'SHARD_END' AND
	(checkpoint_num IS NULL OR ($9::numeric, $8::bigint) >= (checkpoint_num, checkpoint_subseq))))`

// pgQueries are the store's statements, built once with the quoted table
// name. Parameters are named in the comments by number.
type pgQueries struct {
	get, list, create, take, renew, release, checkpoint, prepare, del string
	lockParent, addChildren                                           string
	requestHandoff, handOff                                           string
}

func newPGQueries(table string) pgQueries {
	// Fenced statements: $1 application, $2 lease key (LeaseKey), $3 owner, $4 expected
	// counter, $5 op token, then $6 failover seconds where the statement
	// extends the expiry, and the statement's own parameters.
	fence := ` WHERE application = $1 AND lease_key = $2 AND lease_owner = $3 AND lease_counter = $4`
	bump := `lease_counter = lease_counter + 1, expires_at = now() + make_interval(secs => $6), op_token = $5, updated_at = now()`
	// A change of owner (take, release, hand-off) ends any hand-off
	// request.
	noHandoff := `handoff_to = NULL, handoff_expires_at = NULL`
	return pgQueries{
		get:  `SELECT ` + leaseColumns + ` FROM ` + table + ` WHERE application = $1 AND lease_key = $2`,
		list: `SELECT ` + leaseColumns + ` FROM ` + table + ` WHERE application = $1 ORDER BY stream, shard_id`,
		// $3 checkpoint, $4 sub-sequence, $5 parents, $6 start hash, $7 end hash, $8 token,
		// $9 the checkpoint's timestamp (AT_TIMESTAMP) or NULL, $10 stream;
		// here $2 is the shard ID.
		create: `INSERT INTO ` + table + ` (application, shard_id, checkpoint_seq, checkpoint_subseq,
	parent_shard_ids, starting_hash_key, ending_hash_key, op_token, checkpoint_timestamp, stream)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (application, stream, shard_id) DO NOTHING`,
		// Take is conditional on the counter alone, as in the KCL: taking
		// an owned lease is stealing it. An owner switch is counted when
		// the owner changes, from nobody too.
		take: `UPDATE ` + table + ` SET lease_owner = $3,
	owner_switches_since_checkpoint = owner_switches_since_checkpoint + (lease_owner IS DISTINCT FROM $3)::int,
	` + noHandoff + `, ` + bump + `
WHERE application = $1 AND lease_key = $2 AND lease_counter = $4 RETURNING ` + leaseColumns,
		renew: `UPDATE ` + table + ` SET ` + bump + fence + ` RETURNING ` + leaseColumns,
		release: `UPDATE ` + table + ` SET lease_owner = NULL, expires_at = NULL, ` + noHandoff + `,
	lease_counter = lease_counter + 1, op_token = $5, updated_at = now()` + fence + ` RETURNING ` + leaseColumns,
		// $3 requester, $4 the owner asked, $5 token, $6 failover seconds.
		// Not fenced by the counter, and not moving it: the owner's copy
		// stays good. The owner must still hold the lease (not expired),
		// and no other worker's request may be pending.
		requestHandoff: `UPDATE ` + table + ` SET handoff_to = $3, handoff_expires_at = now() + make_interval(secs => $6),
	op_token = $5, updated_at = now()
WHERE application = $1 AND lease_key = $2 AND lease_owner = $4 AND lease_owner <> $3 AND expires_at > now()
	AND (handoff_to IS NULL OR handoff_to = $3 OR handoff_expires_at <= now()) RETURNING ` + leaseColumns,
		// The requester becomes the owner; without a request, a release.
		handOff: `UPDATE ` + table + ` SET lease_owner = handoff_to,
	expires_at = CASE WHEN handoff_to IS NULL THEN NULL ELSE now() + make_interval(secs => $6) END,
	owner_switches_since_checkpoint = owner_switches_since_checkpoint + (handoff_to IS NOT NULL)::int,
	` + noHandoff + `, lease_counter = lease_counter + 1, op_token = $5, updated_at = now()` + fence + ` RETURNING ` + leaseColumns,
		// $7 checkpoint, $8 sub-sequence, $9 NUMERIC value or NULL
		checkpoint: `UPDATE ` + table + ` SET checkpoint_seq = $7, checkpoint_subseq = $8, checkpoint_timestamp = NULL,
	pending_checkpoint_seq = NULL, pending_checkpoint_subseq = NULL, owner_switches_since_checkpoint = 0,
	` + bump + fence + ` AND ` + orderCondition + ` RETURNING ` + leaseColumns,
		prepare: `UPDATE ` + table + ` SET pending_checkpoint_seq = $7, pending_checkpoint_subseq = $8,
	` + bump + fence + ` AND ` + orderCondition + ` RETURNING ` + leaseColumns,
		del:        `DELETE FROM ` + table + ` WHERE application = $1 AND lease_key = $2`,
		lockParent: `SELECT 1 FROM ` + table + ` WHERE application = $1 AND lease_key = $2 FOR UPDATE`,
		// Recording children is metadata, not a change of ownership: the
		// counter stays, so the owner's copy of the lease stays valid (as
		// the KCL's childShardIds update).
		addChildren: `UPDATE ` + table + ` SET child_shard_ids = child_shard_ids ||
	ARRAY(SELECT c FROM unnest($3::text[]) WITH ORDINALITY AS u(c, i) WHERE c <> ALL (child_shard_ids) ORDER BY i),
	updated_at = now()
WHERE application = $1 AND lease_key = $2 AND NOT ($3::text[] <@ child_shard_ids)`,
	}
}

// scanLease reads one row of leaseColumns, returning also the token of the
// operation that last wrote it.
func scanLease(row pgx.Row) (Lease, int64, error) {
	var (
		l          Lease
		pendSeq    *string
		pendSub    *int64
		expiresAt  *time.Time
		handoffExp *time.Time
		cpTime     *time.Time
		opToken    int64
		parentsArr []string
		childArr   []string
	)
	err := row.Scan(&l.Application, &l.Stream, &l.ShardID, &l.Owner, &l.Counter,
		&l.Checkpoint.SequenceNumber, &l.Checkpoint.SubSequenceNumber, &pendSeq, &pendSub,
		&l.OwnerSwitchesSinceCheckpoint, &parentsArr, &childArr,
		&l.StartingHashKey, &l.EndingHashKey, &expiresAt,
		&l.Expired, &opToken, &l.CreatedAt, &l.UpdatedAt,
		&l.HandoffTo, &handoffExp, &l.HandoffExpired, &cpTime)
	if err != nil {
		return Lease{}, 0, err
	}
	if pendSeq != nil {
		l.PendingCheckpoint = &Checkpoint{SequenceNumber: *pendSeq}
		if pendSub != nil {
			l.PendingCheckpoint.SubSequenceNumber = *pendSub
		}
	}
	if expiresAt != nil {
		l.ExpiresAt = *expiresAt
	}
	if handoffExp != nil {
		l.HandoffExpiresAt = *handoffExp
	}
	if cpTime != nil {
		l.Checkpoint.Timestamp = cpTime.UTC()
	}
	if len(parentsArr) > 0 {
		l.ParentShardIDs = parentsArr
	}
	if len(childArr) > 0 {
		l.ChildShardIDs = childArr
	}
	return l, opToken, nil
}

// newToken returns the token that marks the rows one call writes. After a
// failure that leaves unknown whether the write committed (the reply was
// lost), the retry finds the row carrying its token and knows that it did.
// Tokens are random, never 0 (which stands for "none").
func newToken() int64 {
	for {
		if t := rand.Int64(); t != 0 {
			return t
		}
	}
}

// GetLease reads one lease, named by its key (LeaseKey). It fails with
// ErrNotFound if there is none.
func (s *PGStore) GetLease(ctx context.Context, application, key string) (Lease, error) {
	if err := validateIDs(application, key); err != nil {
		return Lease{}, fmt.Errorf("get lease: %w", err)
	}
	var l Lease
	err := s.retry(ctx, "get lease "+leaseKey(application, key), func(ctx context.Context, _ int) error {
		var err error
		l, _, err = s.get(ctx, application, key)
		return err
	})
	return l, err
}

// get is one attempt of GetLease.
func (s *PGStore) get(ctx context.Context, application, key string) (Lease, int64, error) {
	l, tok, err := scanLease(s.pool.QueryRow(ctx, s.q.get, application, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, 0, ErrNotFound
	}
	return l, tok, err
}

// ListLeases reads every lease of the application, ordered by stream and
// shard ID.
// Each lease's Expired is judged by the database's clock at the read.
func (s *PGStore) ListLeases(ctx context.Context, application string) ([]Lease, error) {
	if application == "" {
		return nil, fmt.Errorf("list leases: empty application name: %w", ErrInvalid)
	}
	var out []Lease
	err := s.retry(ctx, "list leases "+application, func(ctx context.Context, _ int) error {
		rows, err := s.pool.Query(ctx, s.q.list, application)
		if err != nil {
			return err
		}
		out = out[:0]
		for rows.Next() {
			l, _, err := scanLease(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// initialCheckpoint is the checkpoint a new lease starts at: cp, or
// TrimHorizon for the zero Checkpoint.
func initialCheckpoint(cp Checkpoint) (Checkpoint, error) {
	if cp == (Checkpoint{}) {
		return Checkpoint{SequenceNumber: TrimHorizon}, nil
	}
	return cp, cp.Validate()
}

// CreateLease creates l's lease, unowned and with Counter 0, unless one
// exists. The zero Checkpoint means TrimHorizon. It uses l's Application,
// ShardID, Checkpoint, ParentShardIDs and hash key range, and ignores the
// rest.
func (s *PGStore) CreateLease(ctx context.Context, l Lease) (bool, error) {
	key := leaseKey(l.Application, l.Key())
	cp, err := initialCheckpoint(l.Checkpoint)
	if err == nil {
		err = validateIDs(l.Application, l.ShardID)
	}
	if err == nil {
		err = ValidateStreamAndShard(l.Stream, l.ShardID)
	}
	if err != nil {
		return false, fmt.Errorf("create lease %s: %w", key, err)
	}
	tok := newToken()
	var created bool
	err = s.retry(ctx, "create lease "+key, func(ctx context.Context, _ int) error {
		tag, err := s.pool.Exec(ctx, s.q.create, l.Application, l.ShardID, cp.SequenceNumber, cp.SubSequenceNumber,
			nonNil(l.ParentShardIDs), l.StartingHashKey, l.EndingHashKey, tok, timeParam(cp), l.Stream)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			created = true
			return nil
		}
		// It exists: created by us in an attempt whose reply was lost,
		// or by someone else (as long as nobody changed it since).
		_, got, err := s.get(ctx, l.Application, l.Key())
		if errors.Is(err, ErrNotFound) {
			// Deleted between the two statements: try again.
			return errConflict
		}
		created = err == nil && got == tok
		return err
	})
	return created, err
}

// errConflict is a retryable internal outcome: a concurrent change got in the
// way of a multi-statement attempt, which starts over.
var errConflict = &retryableError{"concurrent change"}

type retryableError struct{ msg string }

func (e *retryableError) Error() string     { return e.msg }
func (e *retryableError) SafeToRetry() bool { return true }

// timeParam is the checkpoint_timestamp parameter of cp: its Timestamp, or
// NULL.
func timeParam(cp Checkpoint) *time.Time {
	if cp.Timestamp.IsZero() {
		return nil
	}
	return &cp.Timestamp
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateChildLeases creates the children of a shard that reached its end and
// records them on the parent, in one transaction. See Store.
func (s *PGStore) CreateChildLeases(ctx context.Context, application, parentKey string, children []Lease) error {
	key := leaseKey(application, parentKey)
	if err := validateIDs(application, parentKey); err != nil {
		return fmt.Errorf("create child leases of %s: %w", key, err)
	}
	stream, parentID := SplitLeaseKey(parentKey)
	type child struct {
		l  Lease
		cp Checkpoint
	}
	kids := make([]child, 0, len(children))
	var ids []string
	for _, c := range children {
		if c.Application == "" {
			c.Application = application
		}
		if c.Stream == "" {
			c.Stream = stream
		}
		cp, err := initialCheckpoint(c.Checkpoint)
		if err == nil {
			err = validateIDs(c.Application, c.ShardID)
		}
		if err == nil {
			err = ValidateStreamAndShard(c.Stream, c.ShardID)
		}
		if err == nil && c.Application != application {
			err = fmt.Errorf("child %s belongs to application %q: %w", c.ShardID, c.Application, ErrInvalid)
		}
		if err == nil && c.Stream != stream {
			err = fmt.Errorf("child %s belongs to stream %q, its parent to %q: %w", c.ShardID, c.Stream, stream, ErrInvalid)
		}
		if err != nil {
			return fmt.Errorf("create child leases of %s: %w", key, err)
		}
		if len(c.ParentShardIDs) == 0 {
			c.ParentShardIDs = []string{parentID}
		}
		if !slices.Contains(ids, c.ShardID) {
			ids = append(ids, c.ShardID)
			kids = append(kids, child{c, cp})
		}
	}
	tok := newToken()
	return s.retry(ctx, "create child leases of "+key, func(ctx context.Context, _ int) error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			// Lock the parent first, so that concurrent creators of the
			// same family (the owner's shutdown and a shard syncer)
			// serialize instead of deadlocking on the children's keys.
			var one int
			if err := tx.QueryRow(ctx, s.q.lockParent, application, parentKey).Scan(&one); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return ErrNotFound
				}
				return err
			}
			for _, c := range kids {
				if _, err := tx.Exec(ctx, s.q.create, application, c.l.ShardID, c.cp.SequenceNumber, c.cp.SubSequenceNumber,
					c.l.ParentShardIDs, c.l.StartingHashKey, c.l.EndingHashKey, tok, timeParam(c.cp), stream); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, s.q.addChildren, application, parentKey, nonNil(ids))
			return err
		})
	})
}

// fenced runs one of the fenced UPDATE statements (the first five parameters
// shared, then extra; see newPGQueries), retrying transient errors. When the update
// matches no row it reads the lease to say why: whyNot returns the error for
// the lease as it is now.
func (s *PGStore) fenced(ctx context.Context, op string, l Lease, query string, whyNot func(cur Lease) error, extra ...any) (Lease, error) {
	key := leaseKey(l.Application, l.Key())
	op = op + " " + key
	if err := validateIDs(l.Application, l.Key()); err != nil {
		return Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if l.Owner == "" {
		return Lease{}, fmt.Errorf("%s: lease copy has no owner: %w", op, ErrInvalid)
	}
	tok := newToken()
	args := append([]any{l.Application, l.Key(), l.Owner, l.Counter, tok}, extra...)
	var out Lease
	err := s.retry(ctx, op, func(ctx context.Context, _ int) error {
		got, _, err := scanLease(s.pool.QueryRow(ctx, query, args...))
		if err == nil {
			out = got
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		cur, curTok, err := s.get(ctx, l.Application, l.Key())
		switch {
		case err != nil:
			return err
		case curTok == tok:
			// An earlier attempt of this call committed; only its reply
			// was lost.
			out = cur
			return nil
		}
		return whyNot(cur)
	})
	return out, err
}

// lostError is the ErrLeaseLost for a copy l of a lease that is now cur.
func lostError(l, cur Lease) error {
	return fmt.Errorf("held by %q at counter %d, copy says %q at %d: %w", cur.Owner, cur.Counter, l.Owner, l.Counter, ErrLeaseLost)
}

// fenceError explains why a fenced update of copy l found no row, given the
// lease as it is now. Counters only grow, so if cur still matches l the
// fence held when the update ran too, and the failure was the update's own
// condition (cond).
func fenceError(l, cur Lease, cond func() error) error {
	if cur.Owner != l.Owner || cur.Counter != l.Counter {
		return lostError(l, cur)
	}
	if cond != nil {
		if err := cond(); err != nil {
			return err
		}
	}
	// Unreachable unless the lease was deleted and re-created between the
	// two statements; from the caller's side that is a lost lease.
	return lostError(l, cur)
}

// TakeLease makes owner the lease's owner provided its counter still is
// l.Counter, and starts an expiry period of FailoverTime. Taking a lease
// that someone else holds steals it. If the counter moved on since l was
// read, it fails with ErrLeaseLost: another worker got there first.
func (s *PGStore) TakeLease(ctx context.Context, l Lease, owner string) (Lease, error) {
	if owner == "" || len(owner) > maxIDBytes {
		return Lease{}, fmt.Errorf("take lease %s: owner must be 1 to %d bytes: %w", leaseKey(l.Application, l.Key()), maxIDBytes, ErrInvalid)
	}
	// The fence checks owner too; take's statement ignores it ($3 is the
	// new owner), so pass the copy with the new owner.
	want := l
	want.Owner = owner
	return s.fenced(ctx, "take lease", want, s.q.take, func(cur Lease) error {
		if cur.Counter != l.Counter {
			return fmt.Errorf("taken by %q, counter %d, copy says %d: %w", cur.Owner, cur.Counter, l.Counter, ErrLeaseLost)
		}
		return lostError(l, cur)
	}, s.failoverSeconds())
}

// failoverSeconds is the expiry period, as make_interval's secs parameter.
func (s *PGStore) failoverSeconds() float64 { return s.cfg.FailoverTime.Seconds() }

// RenewLease extends the expiry of a lease the caller holds by FailoverTime
// from now, by the database's clock.
func (s *PGStore) RenewLease(ctx context.Context, l Lease) (Lease, error) {
	return s.fenced(ctx, "renew lease", l, s.q.renew, func(cur Lease) error { return fenceError(l, cur, nil) }, s.failoverSeconds())
}

// ReleaseLease gives up a lease the caller holds; it becomes unowned and
// listeners hear EventReleased.
func (s *PGStore) ReleaseLease(ctx context.Context, l Lease) (Lease, error) {
	return s.fenced(ctx, "release lease", l, s.q.release, func(cur Lease) error { return fenceError(l, cur, nil) })
}

// Checkpoint records cp as the checkpoint of a lease the caller holds. See
// Store.
func (s *PGStore) Checkpoint(ctx context.Context, l Lease, cp Checkpoint) (Lease, error) {
	return s.checkpoint(ctx, "checkpoint", s.q.checkpoint, l, cp)
}

// PrepareCheckpoint records cp as the pending checkpoint of a lease the
// caller holds. See Store.
func (s *PGStore) PrepareCheckpoint(ctx context.Context, l Lease, cp Checkpoint) (Lease, error) {
	return s.checkpoint(ctx, "prepare checkpoint", s.q.prepare, l, cp)
}

func (s *PGStore) checkpoint(ctx context.Context, op, query string, l Lease, cp Checkpoint) (Lease, error) {
	if err := cp.Validate(); err != nil {
		return Lease{}, fmt.Errorf("%s %s: %w", op, leaseKey(l.Application, l.Key()), err)
	}
	if cp.IsInitial() {
		return Lease{}, fmt.Errorf("%s %s: %s is an initial position, set when the lease is created: %w",
			op, leaseKey(l.Application, l.Key()), cp.SequenceNumber, ErrInvalid)
	}
	var num *string // the NUMERIC parameter: NULL for ShardEnd
	if !cp.IsShardEnd() {
		num = &cp.SequenceNumber
	}
	return s.fenced(ctx, op, l, query, func(cur Lease) error {
		return fenceError(l, cur, func() error {
			if cp.Compare(cur.Checkpoint) < 0 {
				return fmt.Errorf("%s is behind %s: %w", cp, cur.Checkpoint, ErrCheckpointBackwards)
			}
			return nil
		})
	}, s.failoverSeconds(), cp.SequenceNumber, cp.SubSequenceNumber, num)
}

// DeleteLease deletes a lease whoever holds it. See Store.
func (s *PGStore) DeleteLease(ctx context.Context, application, lkey string) error {
	key := leaseKey(application, lkey)
	if err := validateIDs(application, lkey); err != nil {
		return fmt.Errorf("delete lease %s: %w", key, err)
	}
	return s.retry(ctx, "delete lease "+key, func(ctx context.Context, attempt int) error {
		tag, err := s.pool.Exec(ctx, s.q.del, application, lkey)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 && attempt == 1 {
			// On a later attempt the lease may be gone because an
			// earlier attempt deleted it and lost the reply: success.
			return ErrNotFound
		}
		return nil
	})
}

// FailoverTime returns how long a take, renewal or checkpoint keeps a lease
// owned (PGConfig.FailoverTime). A consumer worker without a failover time of
// its own adopts it.
func (s *PGStore) FailoverTime() time.Duration { return s.cfg.FailoverTime }
