// Package consumer consumes Kinesis streams the way the Kinesis Client
// Library (KCL) does, in Go, on aws-sdk-go-v2: the workers of one
// application divide a stream's shards between them with leases kept in a
// [checkpoint.Store] (PostgreSQL), each shard is read by polling GetRecords
// or through enhanced fan-out (Config.Retrieval),
// KPL aggregates are unpacked, and progress is checkpointed per user record.
//
// A program implements a [Processor] (the KCL's ShardRecordProcessor), and
// runs a [Worker] (the KCL's Scheduler):
//
//	pool, _ := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	store, _ := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{})
//	w, err := consumer.New(kinesisClient, store, func(shardID string) consumer.Processor {
//		return &myProcessor{}
//	}, consumer.Config{ApplicationName: "orders-app", StreamName: "orders"})
//	...
//	err = w.Run(ctx) // until ctx ends; then a graceful shutdown
//
// # How the work is divided
//
// Each shard has a lease: an owner, a counter that every change increments,
// and the checkpoint. A worker renews its leases every FailoverTime/3; a
// lease not renewed for FailoverTime (judged by the database's clock)
// expires, and another worker takes it. Workers take available leases, and
// steal from the most loaded worker (at most
// Config.MaxLeasesToStealAtOneTime per round), until each holds its share,
// ceil(leases / workers), as the KCL 2.x does. A worker hears of released,
// expired, created and ended leases at once (PostgreSQL LISTEN/NOTIFY), and
// also looks every Config.TakeInterval as a safety net.
//
// A lease moved for balance is handed over rather than stolen (unless
// Config.NoGracefulHandoff, or the Store is no checkpoint.HandoffStore): the
// worker below its share asks the owner for it through the lease table;
// the owner hears of it at once, lets the batch in hand finish, calls its
// Processor's ShutdownRequested (which checkpoints) and hands the lease
// over; the worker that asked starts right after that checkpoint. Scaling a
// fleet out processes no record twice. An owner that does not hand over
// within the Store's failover time has the lease stolen, as the KCL 2.x
// would.
//
// Each worker lists the shards at start and every Config.ShardSyncInterval,
// creates the leases of new shards (recording their parents and hash key
// ranges), and deletes the leases of shards that were fully consumed and
// have left the stream. When a shard ends (a split or merge closed it),
// its reader creates the children's leases in one transaction, then calls
// ShardEnded, whose checkpoint at SHARD_END lets the children start: a
// child is processed only once each of its parents (two after a merge) is
// checkpointed at SHARD_END, has no lease (consumed and cleaned up, or
// older than the application's initial position), or was trimmed away (a
// shard listing has the child but no longer the parent). A merge child's
// lease is created only once both parents have leases, so that it cannot
// overtake a parent whose own lease is still to come. In catch-up mode
// (Config.CatchUp) children do not wait: a child's lease is taken as soon
// as it exists, from a shard sync or from its parent's end.
//
// # Guarantees
//
// At least once. Every record after the checkpoint is delivered to some
// processor at least once, in shard order, as long as the stream retains
// it. A record is delivered again in these cases, which are where
// duplicates come from:
//
//   - after a worker dies, its successor starts after the last checkpoint:
//     records processed but not checkpointed are processed again;
//   - after a lease is stolen (rebalancing with Config.NoGracefulHandoff,
//     or an owner that did not hand the lease over within FailoverTime) or
//     expires while its owner is still busy (a ProcessRecords call longer
//     than FailoverTime, a network partition): the old owner goes on with
//     its current batch until it
//     notices (at its next renewal or checkpoint, or at once when it hears
//     of the take), while the new owner starts after the last checkpoint.
//     It never starts another batch on a lease it cannot vouch for: when
//     renewals have stalled for two thirds of FailoverTime (the process was
//     paused, or cut off from the Store), it renews the lease before
//     handing over the next batch, and stops if the lease moved.
//     Processing is not fenced, checkpoints are: the old owner's
//     checkpoints fail with checkpoint.ErrLeaseLost and never overwrite the
//     new owner's;
//   - after ProcessRecords returns an error: the batch's records after the
//     checkpoint are delivered again (see When processing fails);
//   - after the shard watchdog cut a ProcessRecords call short: the
//     batch's records after the checkpoint are read and delivered again;
//   - producers' retries put records twice in the first place.
//
// Exact resume inside aggregates. Checkpoints name a user record by
// sequence number and sub-sequence number. A worker resuming from a
// checkpoint in the middle of a KPL aggregate reads the aggregate again
// (AT_SEQUENCE_NUMBER) and skips the user records up to and including the
// checkpointed one, as the KCL does; the remaining ones are neither lost nor
// repeated.
//
// Ordering. Within a shard, records are delivered in sequence-number order,
// user records of an aggregate in sub-sequence order, one batch at a time
// to one processor. Records of a key move to a child shard only after the
// parent's records were all processed (SHARD_END), so per-key order holds
// across splits and merges, except in catch-up mode (Config.CatchUp),
// where a child's records may be processed before its parents'. A replay
// after a change of owner repeats a suffix of what was delivered, in
// order.
//
// Filtering. User records of an aggregate whose hash key (explicit hash
// key, else MD5 of the partition key) lies outside the shard's hash key
// range are dropped and counted (Metrics.RecordsDropped): after a reshard a
// producer re-sends them to the right shard. The KCL drops the whole
// aggregate when one of its user records is out of range; this package
// drops only those user records, since dropping in-range ones could lose
// them. Corrupt aggregates are delivered as one plain record each and
// counted.
//
// Initial position. A shard without a checkpoint is read from
// Config.InitialPosition (LATEST by default, TRIM_HORIZON, or
// AT_TIMESTAMP). With LATEST, records put before the first checkpoint are
// skipped if the lease changes owner before it: checkpoint early.
//
// # When processing fails
//
// A ProcessRecords call that returns an error has its batch delivered
// again after a back-off (TaskBackoff doubling to MaxBackoff), only the
// records after the shard's checkpoint. Config.FailurePolicy says for how
// long: by default forever (the shard stalls on the batch, each failure
// logged and counted, nothing skipped); or MaxAttempts calls, after which
// the policy stops the worker (Run returns a *BatchError once the worker
// has shut down gracefully), skips the batch (checkpointing its last
// record), or hands its records to a DeadLetterHandler and then
// checkpoints past them (consumer/deadletter writes them to another
// Kinesis stream). Every decision is counted (Metrics.BatchFailure). A
// handler that fails is called again, after a back-off, until it succeeds:
// records are never skipped unless stored or the policy says so.
//
// Stalls are another matter: a shard whose processing makes no progress
// for Config.StallTimeout while records wait (a ProcessRecords call that
// does not return, a read that hangs while the shard is behind) is found
// by the shard watchdog, logged, counted (Metrics.ShardStalled), and its
// reader restarted: the ctx of the call in progress is cancelled and,
// once the call returns, the shard is read again through a new iterator
// (or subscription) from its first record not processed. An idle shard
// never counts as stalled, nor does one in the failure policy's back-off.
// The watchdog is off unless StallTimeout is set.
//
// # Shutdown
//
// [Worker.Run] returns when its ctx ends, after a graceful shutdown bounded
// by Config.ShutdownTimeout: each shard's current ProcessRecords call
// completes, ShutdownRequested is called (checkpoint there, so that the
// successor repeats nothing), and the lease is released: a worker of the
// same application hears of it at once and takes it over, typically within
// milliseconds. Run also returns, with the error, when the Store fails
// beyond its retries; each processor then gets LeaseLost, and the leases
// expire. Kinesis errors never stop the worker: throttling
// (ProvisionedThroughputExceeded) and other failures are retried with
// exponential back-off, and an expired iterator is replaced by one after the
// last record read.
//
// # Lease administration
//
// An operator may reset leases, release them or delete an application's
// leases while the workers run ("shoal leases reset|release|delete", or a
// Store's checkpoint.Admin). A worker holding a lease that was reset or
// released hears of it at once (checkpoint.EventReset, EventReleased; or
// at its next take round): the shard's processing stops, without a
// checkpoint (the Processor gets LeaseLost: the lease's counter moved, so a
// checkpoint would fail anyway), and the lease is taken again, by this
// worker or another, from its new checkpoint. A lease reset to a time (an
// AT_TIMESTAMP checkpoint with its own Timestamp) is read from the first
// record that arrived at or after that time, whatever
// Config.InitialTimestamp says.
//
// # Caveats
//
// Config.FailoverTime must match the Store's (checkpoint.PGConfig
// FailoverTime): the worker renews at a third of it, and logs a warning when
// the leases it takes show a shorter one. Config.WorkerID must be
// unique among running workers. A panic in a Processor is not recovered,
// and Run waits for every Processor call to return: processors should
// return when their ctx ends.
// A checkpoint whose sequence number the shard does not hold (the stream
// was deleted and re-created under the same name) stalls that shard, with
// errors logged, until its leases are deleted or reset ("shoal leases
// delete" or "reset", checkpoint.Admin): the worker will not guess
// between skipping and repeating records. A worker that holds
// no lease is not counted by the others, and asks for its share itself. The
// hash key range filter applies only to leases that record their range
// (those this package creates do).
//
// # Enhanced fan-out
//
// With Config.Retrieval set to FanOut, Run registers the stream consumer
// Config.ConsumerName (default: the application name), or reuses it, and
// waits until it is ACTIVE; then each leased shard is read through one
// SubscribeToShard subscription at a time ([fanout.SubscribeShard]), which
// re-subscribes from the last ContinuationSequenceNumber when Kinesis ends a
// subscription (every 5 minutes) or it breaks. Everything after the read is
// shared with polling: de-aggregation, the hash key range filter,
// checkpoints, SHARD_END and parents before children. A lost lease cancels
// its subscription as soon as the worker learns of it (see the fanOut type
// for the window in which two workers may both read a shard). The client
// must implement [FanOutAPI] (*kinesis.Client does), and its HTTP client
// should have no overall Timeout shorter than the subscription lifetime.
package consumer
