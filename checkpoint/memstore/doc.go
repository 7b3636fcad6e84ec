// Package memstore is an in-memory [checkpoint.Store]: leases and
// checkpoints of consumer applications kept in the process, for tests,
// examples and applications that need no lease table that outlives them.
// It passes the same conformance suite ([checkpointtest.RunStoreTests]) as
// the PostgreSQL store, graceful hand-off ([checkpoint.HandoffStore]) and
// lease administration ([checkpoint.Admin]) included, and links no
// database driver.
//
// Workers of one application in one process share a [Table], each with its
// own [Store] (as workers share a PostgreSQL table, each with its own
// PGStore), or simply share one Store made by [New]. Nothing survives the
// process: a restarted application starts from its initial position.
//
// The store keeps time with the time package only, so that inside a
// testing/synctest bubble its expiries follow the bubble's fake clock: a
// consumer worker can run on it through minutes of lease renewals, takes
// and expiries in milliseconds of real time. A Table made inside a bubble
// must only be used in that bubble.
package memstore
