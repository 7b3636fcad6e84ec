// Package checkpoint keeps the leases and checkpoints of Kinesis consumer
// applications: which worker processes each shard, and how far it got. It is
// the equivalent of the KCL's DynamoDB lease table, kept in PostgreSQL.
//
// [Store] is the interface the consumer library uses; [PGStore] implements
// it on a pgx pool:
//
//	pool, _ := pgxpool.New(ctx, "postgres://...")
//	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: "kinesis", Table: "leases"})
//	...
//	lease, err = store.TakeLease(ctx, lease, "worker-1")
//	lease, err = store.Checkpoint(ctx, lease, checkpoint.Checkpoint{SequenceNumber: seq})
//	if errors.Is(err, checkpoint.ErrLeaseLost) { /* stop processing the shard */ }
//
// One row holds one shard's lease for one application: the owner, the lease
// counter, the checkpoint (a sequence number and sub-sequence number, or one
// of the sentinels TRIM_HORIZON, LATEST, AT_TIMESTAMP (with its time, if it
// has one), SHARD_END), the pending checkpoint, the owner switches since the
// last checkpoint, the parent and child shard IDs, the hash key range, the
// expiry, a pending hand-off request and timestamps. Its key is the
// application, the stream (by identity, StreamIdentity; "" for the
// application's only stream) and the shard ID; methods that name a lease by
// a string take LeaseKey(stream, shardID), the bare shard ID for "".
//
// # Guarantees
//
// Fencing. The lease counter is a fencing token. Every change of a lease
// (take, renew, checkpoint, prepare, release) is one conditional UPDATE that
// names the counter the caller read, and the owner for all but a take, and
// adds one to the counter. Of two workers racing from the same counter at
// most one succeeds; the other gets [ErrLeaseLost]. A worker whose lease was
// taken cannot renew it, release it or write a checkpoint to it any more,
// however late its request arrives. Processing itself is not fenced (as in
// the KCL): a worker that has lost its lease may still be handling records
// until it tries to checkpoint, which is where the at-least-once duplicates
// come from.
//
// Checkpoint order. A checkpoint never moves back: a sequence number is
// compared with the stored one as an integer (up to 129 digits, by
// PostgreSQL's NUMERIC), then by sub-sequence number; an initial position
// may be followed by anything; anything may be followed by SHARD_END, and
// SHARD_END only by itself. A checkpoint behind the stored one fails with
// [ErrCheckpointBackwards] and leaves the lease unchanged and held.
//
// Expiry clock. Every take, renewal and checkpoint sets the lease's expiry
// to the database's now() plus [PGConfig.FailoverTime], and a lease is
// expired when the database's now() has passed it ([Lease.Expired]). No
// decision depends on the workers' clocks, which may disagree. Expiry makes
// a lease available to take; it does not fence: the owner of an expired
// lease that nobody took may still renew it.
//
// Lost replies. Transient failures (lost connections, timeouts,
// serialization failures, server shutdown) are retried with exponential
// back-off, within ctx and [PGConfig.MaxRetryTime]. Each call marks the row
// it writes with a random token, so a retry after a reply that was lost
// although the write committed finds its own write and succeeds, rather than
// reporting a lease lost that it holds.
//
// Children in one transaction. [Store.CreateChildLeases] creates a closed
// shard's child leases and records their IDs on the parent in one
// transaction: either all are there or none.
//
// Schema. [NewPGStore] creates the schema and table if needed and applies
// the versioned migrations (recorded in <table>_schema_version) in one
// transaction under advisory locks, so any number of workers may start at
// once. A worker finding its table current takes no lock. A table migrated
// by a newer version of this package is refused with [ErrSchemaVersion].
//
// # Events
//
// [Store.Listen] uses PostgreSQL's LISTEN/NOTIFY: a trigger on the lease
// table announces created, taken, released, shard-ended, reset and deleted
// leases, and hand-off requests, when the change commits, whoever makes
// it, and a watcher on the same
// connection asks the database when the next lease expires and reports it
// then. Workers therefore pick up released and expired leases, and start
// children whose parents ended, within moments instead of at their next
// poll. Events are hints, not a log: notifications sent while the listener
// reconnects are lost, and a receiver that falls behind loses events; both
// are followed by an [EventResync], after which the receiver re-reads the
// leases. Workers should still poll, rarely, as a safety net.
//
// # Graceful hand-off
//
// [PGStore] is a [HandoffStore]: a worker that wants a lease another
// worker holds asks for it ([HandoffStore.RequestHandoff]: the lease's
// handoff_to column names it, until the request lapses after FailoverTime;
// the counter does not move, so the owner keeps renewing and checkpointing);
// the owner, hearing [EventHandoffRequested], finishes its work, checkpoints
// and hands the lease over ([HandoffStore.HandOffLease]: one fenced UPDATE
// makes the requester the owner). Takes and releases clear a request. The
// consumer package rebalances this way, so that a lease moved for balance
// is never processed by two workers at once.
//
// # Administration
//
// [PGStore] is an [Admin]: an operator (or "shoal leases") resets
// checkpoints ([Admin.ResetLeases]: to a sequence number, an initial
// position, or a time, backwards too, in one transaction over any number
// of leases), releases a lease whoever holds it ([Admin.ForceRelease]), or
// deletes an application's leases ([Admin.DeleteApplication]) while
// workers run. A reset and a forced release leave the lease unowned and
// move its counter, so the former owner's next checkpoint fails with
// [ErrLeaseLost] (a reset can never be undone by a checkpoint in flight:
// the row lock orders the two, and whichever comes second sees the other);
// workers hear [EventReset] or [EventReleased] at once and take the lease
// again from its new checkpoint. The trigger tells a reset by the
// transaction-local setting shoal.lease_op = 'reset', so an operator
// with psql can announce one too.
//
// # Shutdown
//
// [PGStore.Close] stops the listeners and waits for their goroutines; their
// channels are closed. It does not close the pool, which the caller closes
// after the Store. Later calls fail with [ErrClosed]. A listener also stops
// when the ctx given to Listen ends.
//
// # Caveats
//
// A caller must serialize its own calls on one lease and use the Lease each
// call returns: a renewal racing with a checkpoint of the same lease, both
// from the same copy, is two changes from one counter, and one of them fails
// with ErrLeaseLost. [Store.DeleteLease] and [Store.CreateChildLeases] are
// not fenced (the KCL's cleanup and shard sync are not either).
// An AT_TIMESTAMP checkpoint carries its time only when a reset (or
// CreateLease) gave it one ([Checkpoint.Timestamp], column
// checkpoint_timestamp); otherwise the time comes from the consumer's
// configuration, as in the KCL. Each Listen call holds one database
// connection, taken out of the pool for good.
package checkpoint
