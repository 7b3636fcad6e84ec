package checkpoint

import (
	"context"
	"errors"
	"time"
)

// Errors returned by a Store. Match them with errors.Is: the Store wraps them
// with the lease and the values it found.
var (
	// ErrLeaseLost: the caller does not hold the lease any more. Another
	// worker took it, or the caller released it, since the copy passed in
	// was read; the lease counter (the fencing token) has moved on. The
	// caller must stop processing the shard and must not checkpoint it.
	ErrLeaseLost = errors.New("checkpoint: lease lost")
	// ErrCheckpointBackwards: the checkpoint would move back (a lower
	// sequence number, or the same one with a lower sub-sequence number, or
	// anything after ShardEnd). The lease is unchanged and still held.
	ErrCheckpointBackwards = errors.New("checkpoint: checkpoint moves backwards")
	// ErrNotFound: there is no lease for the application and shard.
	ErrNotFound = errors.New("checkpoint: lease not found")
	// ErrInvalid: an argument is malformed (an empty shard ID, a sequence
	// number that is not decimal, an initial position passed to
	// Checkpoint ...). Retrying cannot help.
	ErrInvalid = errors.New("checkpoint: invalid argument")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("checkpoint: store closed")
	// ErrSchemaVersion: the lease table was migrated by a newer version of
	// this library than the one running; this version refuses to write to it.
	ErrSchemaVersion = errors.New("checkpoint: lease table schema is newer than this library")
)

// Lease is one shard's lease for one application: who processes the shard
// and how far it got. Owner, Counter and the checkpoints change only through
// the Store's conditional updates.
type Lease struct {
	// Application names the consumer application (the KCL's lease table
	// name, or application name). Leases of different applications are
	// independent.
	Application string
	// ShardID is the lease key, e.g. shardId-000000000001.
	ShardID string
	// Owner is the worker that holds the lease, "" when nobody does.
	Owner string
	// Counter is the lease counter and the fencing token: every successful
	// change of the lease adds one, so a worker whose copy carries an older
	// counter can no longer change it.
	Counter int64
	// Checkpoint is the last position processed.
	Checkpoint Checkpoint
	// PendingCheckpoint is a checkpoint prepared but not yet committed
	// (the KCL's two-phase checkpoint), or nil.
	PendingCheckpoint *Checkpoint
	// OwnerSwitchesSinceCheckpoint counts the takes by a different worker
	// since the last checkpoint; a growing value on a lease points at a
	// worker that cannot make progress on it.
	OwnerSwitchesSinceCheckpoint int64
	// ParentShardIDs are the shard's parents (two after a merge). A lease
	// is processed only after its parents reach ShardEnd.
	ParentShardIDs []string
	// ChildShardIDs are the shard's children, recorded when they were
	// created (CreateChildLeases).
	ChildShardIDs []string
	// StartingHashKey and EndingHashKey are the shard's hash key range, in
	// decimal, or "" if unknown.
	StartingHashKey, EndingHashKey string
	// ExpiresAt is when the owner's claim ends unless it renews, by the
	// database's clock; zero when nobody owns the lease. Compare it with
	// nothing on the local clock: use Expired.
	ExpiresAt time.Time
	// Expired reports whether, when the lease was read, it had an owner
	// and ExpiresAt had passed by the database's clock.
	Expired bool
	// CreatedAt and UpdatedAt are when the lease was created and last
	// changed, by the database's clock.
	CreatedAt, UpdatedAt time.Time
}

// Available reports whether the lease may be taken without stealing it: it
// has no owner, or its owner let it expire.
func (l Lease) Available() bool { return l.Owner == "" || l.Expired }

// EventType says what happened to a lease.
type EventType string

// The event types.
const (
	// EventCreated: a lease was created.
	EventCreated EventType = "created"
	// EventTaken: a lease changed owner (taken when available, or stolen).
	EventTaken EventType = "taken"
	// EventReleased: the owner gave a lease up; it is available at once.
	EventReleased EventType = "released"
	// EventExpired: an owned lease passed its expiry, by the database's
	// clock, without being renewed; it is available.
	EventExpired EventType = "expired"
	// EventShardEnded: a lease was checkpointed at ShardEnd; its children
	// may start.
	EventShardEnded EventType = "shard_ended"
	// EventDeleted: a lease was deleted.
	EventDeleted EventType = "deleted"
	// EventResync: events may have been missed (the listener reconnected,
	// or the receiver fell behind and the buffer overflowed). Re-read the
	// leases with ListLeases.
	EventResync EventType = "resync"
)

// Event is a change to a lease, delivered by Store.Listen. Owner and Counter
// are the lease's values right after the change (for EventDeleted, right
// before it). An EventResync carries only Type and Application.
type Event struct {
	Type        EventType
	Application string
	ShardID     string
	Owner       string
	Counter     int64
}

// Store keeps the leases and checkpoints of consumer applications: the
// KCL lease table's equivalent. Its methods are safe for concurrent use, and
// every change is a conditional update, so workers sharing one Store's
// backing table never both succeed in owning or checkpointing a lease.
//
// Fenced methods take the caller's latest copy of the lease and, on success,
// return the new one, whose Counter has moved on: the caller must use it for
// its next call (and must serialize its own calls on one lease). They fail
// with ErrLeaseLost once the lease's owner or counter differ from the copy.
//
// ctx bounds the whole call, including retries of transient database
// errors; it does not govern anything that outlives the call. An error that
// matches none of the sentinels above is one the Store could not recover
// from within its retries (the database stayed unreachable, a permission is
// missing ...): the worker should stop cleanly rather than carry on.
type Store interface {
	// CreateLease creates the lease l (Application, ShardID, Checkpoint and
	// the shard metadata are used; it starts unowned with Counter 0) unless
	// it exists. It reports whether it created it; an existing lease is
	// left as it is.
	CreateLease(ctx context.Context, l Lease) (created bool, err error)
	// CreateChildLeases creates, in one transaction, the children of a
	// shard that reached its end (each unless it exists; a child's
	// ParentShardIDs default to the parent) and records their IDs in the
	// parent's ChildShardIDs. It is idempotent, and unfenced, so that a
	// shard syncer can repair what a crashed owner left half done. It
	// fails with ErrNotFound if the parent lease does not exist.
	CreateChildLeases(ctx context.Context, application, parentShardID string, children []Lease) error
	// GetLease reads one lease.
	GetLease(ctx context.Context, application, shardID string) (Lease, error)
	// ListLeases reads every lease of the application, ordered by shard ID.
	ListLeases(ctx context.Context, application string) ([]Lease, error)
	// TakeLease makes owner the lease's owner, provided its counter still
	// is l.Counter (whoever owned it: taking an owned lease steals it), and
	// starts a new expiry period.
	TakeLease(ctx context.Context, l Lease, owner string) (Lease, error)
	// RenewLease extends the expiry of a lease the caller holds.
	RenewLease(ctx context.Context, l Lease) (Lease, error)
	// ReleaseLease gives up a lease the caller holds, leaving it unowned
	// and available to others at once (they hear EventReleased).
	ReleaseLease(ctx context.Context, l Lease) (Lease, error)
	// Checkpoint records cp as the lease's checkpoint, clears the pending
	// checkpoint, resets OwnerSwitchesSinceCheckpoint and extends the
	// expiry. cp must be a sequence number or ShardEnd, and must not be
	// behind the current checkpoint (ErrCheckpointBackwards).
	Checkpoint(ctx context.Context, l Lease, cp Checkpoint) (Lease, error)
	// PrepareCheckpoint records cp as the pending checkpoint, with the same
	// rules as Checkpoint; the next Checkpoint clears it.
	PrepareCheckpoint(ctx context.Context, l Lease, cp Checkpoint) (Lease, error)
	// DeleteLease deletes a lease, whoever holds it (the KCL's lease
	// cleanup of finished shards). Deleting a lease that does not exist
	// fails with ErrNotFound.
	DeleteLease(ctx context.Context, application, shardID string) error
	// Listen delivers the application's lease events on the returned
	// channel until ctx ends or the Store is closed, and then closes it.
	// Events are hints that save a poll; they are not a log, so a receiver
	// still re-reads the leases it acts on (and reads them all on
	// EventResync). ctx governs the listener, not just the call.
	Listen(ctx context.Context, application string) (<-chan Event, error)
	// Close stops the Store's listeners and waits for them. It does not
	// close the database connections the Store was given. Later calls
	// fail with ErrClosed. Close is idempotent.
	Close() error
}
