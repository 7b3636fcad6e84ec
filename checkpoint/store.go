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
	// Stream is the stream the shard belongs to, by identity
	// (StreamIdentity), or "" for the application's only stream (see
	// LeaseKey). Application, Stream and ShardID name the lease.
	Stream string
	// ShardID is the shard, e.g. shardId-000000000001. It never contains
	// ":".
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
	// HandoffTo is the worker that asked the owner to hand the lease over
	// (HandoffStore.RequestHandoff), or "" when none did since the lease
	// last changed owner: every take, release and hand-off clears it.
	HandoffTo string
	// HandoffExpiresAt is when that request lapses, by the database's
	// clock; zero without a request. Compare it with nothing on the local
	// clock: use HandoffExpired.
	HandoffExpiresAt time.Time
	// HandoffExpired reports whether, when the lease was read, it carried
	// a request whose HandoffExpiresAt had passed by the database's clock:
	// the owner did not hand the lease over in time.
	HandoffExpired bool
}

// HandoffPending reports whether a worker other than the owner asked for
// the lease and its request has not lapsed.
func (l Lease) HandoffPending() bool { return l.HandoffTo != "" && !l.HandoffExpired }

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
	// EventHandoffRequested: a worker asked the owner to hand the lease
	// over (HandoffStore.RequestHandoff). Owner is the owner, HandoffTo
	// the worker that asked.
	EventHandoffRequested EventType = "handoff_requested"
	// EventReset: an operator reset the lease's checkpoint (Admin.
	// ResetLeases); it is unowned now, and its former owner must drop it
	// without checkpointing.
	EventReset EventType = "reset"
	// EventResync: events may have been missed (the listener reconnected,
	// or the receiver fell behind and the buffer overflowed). Re-read the
	// leases with ListLeases.
	EventResync EventType = "resync"
)

// Event is a change to a lease, delivered by Store.Listen. Owner, Counter
// and HandoffTo are the lease's values right after the change (for
// EventDeleted, right before it). An EventResync carries only Type and
// Application.
type Event struct {
	Type        EventType
	Application string
	// Stream and ShardID name the lease (Event.Key).
	Stream  string
	ShardID string
	Owner   string
	Counter int64
	// HandoffTo is the worker a hand-off was asked for, if any (set on
	// EventHandoffRequested).
	HandoffTo string
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
	// The parent is named by its key (LeaseKey); the children belong to
	// its stream (a child's Stream defaults to it, and may not differ).
	CreateChildLeases(ctx context.Context, application, parentKey string, children []Lease) error
	// GetLease reads one lease, named by its key (LeaseKey).
	GetLease(ctx context.Context, application, key string) (Lease, error)
	// ListLeases reads every lease of the application, of all its
	// streams, ordered by stream (the empty stream first) and shard ID.
	ListLeases(ctx context.Context, application string) ([]Lease, error)
	// TakeLease makes owner the lease's owner, provided its counter still
	// is l.Counter (whoever owned it: taking an owned lease steals it), and
	// starts a new expiry period. It clears any hand-off request.
	TakeLease(ctx context.Context, l Lease, owner string) (Lease, error)
	// RenewLease extends the expiry of a lease the caller holds.
	RenewLease(ctx context.Context, l Lease) (Lease, error)
	// ReleaseLease gives up a lease the caller holds, leaving it unowned
	// and available to others at once (they hear EventReleased). It clears
	// any hand-off request.
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
	DeleteLease(ctx context.Context, application, key string) error
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

// HandoffStore is a Store that moves a lease between two running workers
// without a steal: the worker that wants the lease asks for it
// (RequestHandoff); the owner, hearing EventHandoffRequested, finishes what
// it is doing, checkpoints, and hands the lease over (HandOffLease), so
// that the new owner starts exactly where the old one stopped. A request
// lapses after the store's failover time; the requester may then take the
// lease as before (TakeLease). The consumer package uses it to rebalance
// without processing records twice; a Store without it makes the consumer
// steal.
//
// A request does not move the lease counter: the owner's copy stays valid,
// and the owner goes on renewing and checkpointing until it hands over.
type HandoffStore interface {
	Store
	// RequestHandoff asks the owner of l (l.Owner, who must not be
	// requester) to hand the lease over to requester: it records
	// requester as HandoffTo, lapsing after the store's failover time,
	// and listeners hear EventHandoffRequested. The lease's counter and
	// checkpoint do not change. It fails with ErrLeaseLost when the lease
	// is no longer owned by l.Owner, has expired (take it instead), or
	// carries another worker's request that has not lapsed: the caller
	// lost a race. Asking again for one's own request renews it.
	RequestHandoff(ctx context.Context, l Lease, requester string) (Lease, error)
	// HandOffLease gives a lease the caller holds to the worker whose
	// request it carries (lapsed or not): that worker becomes the owner,
	// with a new expiry period (an owner switch), and listeners hear
	// EventTaken. Without a request it releases the lease, as
	// ReleaseLease. Fenced as ReleaseLease; the request is cleared.
	HandOffLease(ctx context.Context, l Lease) (Lease, error)
}

// Admin is implemented by Stores that let an operator change leases while
// workers run ("shoal leases reset", "release", "delete"). Every change is
// made under the lease table's own rules: it moves the lease counter, so
// that the former owner's next renewal or checkpoint fails with
// ErrLeaseLost and can never land after (and undo) the change, and it is
// announced to the workers at once.
type Admin interface {
	// ResetLeases sets the checkpoint of the application's leases of the
	// given keys (LeaseKey; all its leases, of every stream, when keys is
	// empty) to cp, in one
	// transaction, backwards as well as forwards: each lease becomes
	// unowned, its pending checkpoint and hand-off request are cleared,
	// its owner switches reset, its counter moves on, and listeners hear
	// EventReset. Workers take the leases again at once and resume from
	// cp: after the record cp names, or at its initial position
	// (TrimHorizon, Latest, or AtTimestamp, with cp.Timestamp or else the
	// consumer's configured timestamp). cp must not be ShardEnd, and a
	// sequence number needs exactly one shard (ErrInvalid); a shard
	// without a lease, or an application without leases, is ErrNotFound
	// and changes nothing. It returns the leases as reset.
	ResetLeases(ctx context.Context, application string, keys []string, cp Checkpoint) ([]Lease, error)
	// ForceRelease makes a lease unowned at once, whoever holds it: its
	// owner drops it (without checkpointing: its counter moved) and the
	// application's workers take it as any released lease (the former
	// owner among them). Listeners hear EventReleased. A lease nobody
	// owns is returned unchanged. It fails with ErrNotFound if there is
	// no such lease.
	ForceRelease(ctx context.Context, application, key string) (Lease, error)
	// DeleteApplication deletes every lease of the application and
	// returns how many it deleted; listeners hear EventDeleted for each.
	// Workers still running recreate leases for the shards they find at
	// their next shard sync, from their initial position: stop them
	// first.
	DeleteApplication(ctx context.Context, application string) (int, error)
}
