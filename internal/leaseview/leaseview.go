// Package leaseview reads the lease table of consumer applications (package
// consumer's PostgreSQL table, package checkpoint) without changing it, and
// tells how far each lease's checkpoint is behind its shard. The "shoal
// leases" command (internal/leasescli) and the web console
// (server/console) show what it reads.
//
// A Reader never creates a lease table: a missing one is ErrNoTable, so
// that a wrong schema or table name is reported rather than papered over.
package leaseview

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shoalstream/shoal/checkpoint"
)

// ErrNoTable is the error of a Reader whose lease table does not exist.
var ErrNoTable = errors.New("no lease table")

// maxApplications bounds the applications Applications returns.
const maxApplications = 1000

// Reader reads one lease table (schema and table as the consumers'
// checkpoint.PGConfig). It is safe for concurrent use.
type Reader struct {
	pool          *pgxpool.Pool
	schema, table string

	mu    sync.Mutex          // guards store
	store *checkpoint.PGStore // opened once the table is known to exist
}

// NewReader returns a Reader of the table schema.table ("" for either: the
// checkpoint package's default) through pool, which the caller keeps and
// closes after Close.
func NewReader(pool *pgxpool.Pool, schema, table string) *Reader {
	if schema == "" {
		schema = checkpoint.DefaultSchema
	}
	if table == "" {
		table = checkpoint.DefaultTable
	}
	return &Reader{pool: pool, schema: schema, table: table}
}

// Connect opens a pool of at most maxConns connections to the database at
// dbURL, for NewReader. Its errors never repeat the URL (which may hold a
// password).
func Connect(ctx context.Context, dbURL string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, errors.New("invalid database URL")
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// Table is the lease table's qualified name, schema.table.
func (r *Reader) Table() string { return r.schema + "." + r.table }

// storeFor returns the checkpoint store of the table, opening it the
// first time the table exists.
func (r *Reader) storeFor(ctx context.Context) (*checkpoint.PGStore, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != nil {
		return r.store, nil
	}
	ok, err := r.exists(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w %s in the database", ErrNoTable, r.Table())
	}
	// NewPGStore would create a missing table: checked above.
	store, err := checkpoint.NewPGStore(ctx, r.pool, checkpoint.PGConfig{Schema: r.schema, Table: r.table})
	if err != nil {
		return nil, err
	}
	r.store = store
	return store, nil
}

func (r *Reader) exists(ctx context.Context) (bool, error) {
	var exists bool
	if err := r.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{r.schema, r.table}.Sanitize()).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for the lease table: %w", err)
	}
	return exists, nil
}

// Leases returns the leases of application app, by shard ID, and the
// database's clock when they were read (their times are by that clock).
func (r *Reader) Leases(ctx context.Context, app string) ([]checkpoint.Lease, time.Time, error) {
	store, err := r.storeFor(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	leases, err := store.ListLeases(ctx, app)
	if err != nil {
		return nil, time.Time{}, err
	}
	var now time.Time
	if err := r.pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return leases, now, nil
}

// Applications returns the names of the applications that have leases in
// the table, sorted (at most a thousand).
func (r *Reader) Applications(ctx context.Context) ([]string, error) {
	if _, err := r.storeFor(ctx); err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, "SELECT DISTINCT application FROM "+pgx.Identifier{r.schema, r.table}.Sanitize()+" ORDER BY application LIMIT $1", maxApplications)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	apps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	if apps == nil {
		apps = []string{}
	}
	return apps, nil
}

// Close releases the Reader's store. It does not close the pool.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		return nil
	}
	err := r.store.Close()
	r.store = nil
	return err
}

// API is the part of the Kinesis client that Lags calls.
type API interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Lag is how far a lease's checkpoint is behind the newest record of its
// shard.
type Lag struct {
	// Behind is MillisBehindLatest of a GetRecords call from the
	// checkpointed record; valid when Known.
	Behind time.Duration
	// Known is false where it cannot be told: no record checkpointed yet
	// but LATEST or AT_TIMESTAMP, a finished shard, or an error.
	Known bool
	// Err is the call's error, if one failed.
	Err error
}

// LagOptions tune Lags. The zero value is valid.
type LagOptions struct {
	// Concurrency bounds the shards asked at once. Zero means 8.
	Concurrency int
	// BeforeRead, when set, is called before each GetRecords call with
	// the shard's ID, to pace the reads (an error is the lag's Err).
	BeforeRead func(ctx context.Context, shardID string) error
}

// Lags returns the lag of each lease's checkpoint on stream (by its name),
// by lease key (checkpoint.Lease.Key; the shard ID for the leases of an
// application's only stream): one GetShardIterator and one GetRecords
// (Limit 1) call from the checkpointed record per lease. Leases of a
// multi-stream application's other streams (by name) are left out.
func Lags(ctx context.Context, client API, stream string, leases []checkpoint.Lease, o LagOptions) map[string]Lag {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	var (
		mu   sync.Mutex // guards lags
		lags = make(map[string]Lag, len(leases))
		wg   sync.WaitGroup
		sem  = make(chan struct{}, o.Concurrency)
	)
	for _, l := range leases {
		if !OfStream(l, stream) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			lag := shardLag(ctx, client, stream, l, o.BeforeRead)
			mu.Lock()
			lags[l.Key()] = lag
			mu.Unlock()
		})
	}
	wg.Wait()
	return lags
}

func shardLag(ctx context.Context, client API, stream string, l checkpoint.Lease, before func(context.Context, string) error) Lag {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(l.ShardID)}
	switch cp := l.Checkpoint; {
	case cp.SequenceNumber == checkpoint.TrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case cp.IsSentinel():
		return Lag{}
	default:
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(cp.SequenceNumber)
	}
	it, err := client.GetShardIterator(ctx, in)
	if err != nil {
		return Lag{Err: err}
	}
	if before != nil {
		if err := before(ctx, l.ShardID); err != nil {
			return Lag{Err: err}
		}
	}
	res, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil {
		return Lag{Err: err}
	}
	return Lag{Behind: time.Duration(aws.ToInt64(res.MillisBehindLatest)) * time.Millisecond, Known: true}
}

// OfStream reports whether l is a lease of the stream named stream (a
// name, an ARN or an identity): a lease of the application's only stream
// (Stream "") is of any.
func OfStream(l checkpoint.Lease, stream string) bool {
	return l.Stream == "" || l.Stream == stream || checkpoint.StreamName(l.Stream) == checkpoint.StreamName(stream)
}
