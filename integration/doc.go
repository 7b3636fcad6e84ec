// Package integration holds end-to-end tests that run the real shoal binary
// as a child process and talk to it with the AWS SDK, the way users do.
//
// The tests build ./cmd/shoal once per "go test" run, start it on a free
// loopback port with its own data directory, and crash it (SIGKILL), damage
// its files, or stop it gracefully (SIGTERM) while writers are running. After
// every restart they read every shard back from TRIM_HORIZON and check the
// durability contract of --fsync always:
//
//   - every record the server acknowledged is present, with the shard id,
//     sequence number, partition key and data of its acknowledgement;
//   - sequence numbers strictly increase within a shard, and an append that
//     was acknowledged before another was sent orders before it;
//   - the records of one key keep the order they were sent in, and no record
//     is present twice, or present without having been sent;
//   - what one verification read is a prefix of what the next one reads: a
//     crash never loses, changes or reorders anything that was readable.
//
// TestCrashReshard (crash_reshard_test.go) does the same while the stream is
// split and merged continuously: four writers own fixed partition keys, a
// resharder splits a random open shard or merges a random adjacent pair
// (1 to 6 open shards), and the server is killed at random moments, every
// other time while a reshard call is in flight, sometimes again while it
// restarts. After each restart it also checks the lineage (parents exist,
// children tile each closed shard's range, open shards tile the key space,
// a shard closed by an acknowledged reshard stays closed), per-key order
// across shards read parents first, and that no shard directory exists that
// ListShards does not report. SHOAL_CRASH_CYCLES sets the cycles (8).
// BenchmarkScale (go test -run '^$' -bench BenchmarkScale -benchtime 1x)
// measures CreateStream latency with 1,000 streams of 10 shards, restart
// time with 10,000 shards and the server's open file descriptors.
//
// Records whose PutRecords call failed, or whose result entry failed, have an
// unknown outcome: they may be present or not, but never twice and never out
// of order. The tests report how many of those were found.
//
// # The system test
//
// TestSystem (system_test.go) runs shoal as users do, with every part real:
// the shoal binary (on a tmpfs data dir when run as root), three producers
// of the producer package putting 24 keyed sequences ("p<n>k<m>:<counter>",
// 480 records/s in all) through a TCP proxy, and three consumer worker
// processes running consumer.Worker on PostgreSQL through the same proxy.
// The workers are the test binary itself, re-executed with
// SHOAL_SYSTEM_WORKER set (TestMain runs the worker instead of the tests);
// each reports every record it processed, every Initialize (with its
// starting checkpoint), every checkpoint and every lease loss as a line on
// its stdout (system_worker_test.go), before checkpointing the batch. A
// stall (no new record of some key acknowledged and processed within two
// minutes of a fault) fails the test with a diagnosis: counters per key,
// the producers' buffers, the last tenures of each shard and the lease
// table.
//
// Each fault cycle, with the load running: SIGKILL a worker and restart it
// 0.5s later; cut a worker off PostgreSQL (pg_terminate_backend on its
// application_name every 50ms for 2s, then a blackholing proxy between it
// and the database for twice the 2s failover time); stop a worker with
// SIGSTOP for twice the failover time and resume it (a long pause: its
// leases move, it may finish its batch in hand, its checkpoints must fail);
// cut the clients off the
// server (the proxy drops the server's replies for 2s, so that requests take
// effect unacknowledged and the producers store some records twice, then
// resets every connection for 3s, then blackholes them for 2s); SIGKILL the server and restart it on the same data dir; fill its
// disk (the tmpfs is shrunk to its usage, filler records are put until a
// put fails, which must be a clean InternalFailure, for PutRecord as a 500
// and for PutRecords per entry, with the server still running; then the
// tmpfs is grown and puts must succeed again); and SIGKILL a worker and
// restart it after twice the failover time, so that the others take its
// leases and it steals some back. After each fault the test waits until
// every key has a record put after the fault both acknowledged and
// processed.
//
// At the end the producers are closed, the test waits until every
// acknowledged record was processed, stops the workers with SIGTERM (they
// must exit 0, having released every lease, each checkpointed at the last
// record of its shard processed), and checks (system_ledger_test.go):
//
//   - no acknowledged record is lost: each was processed, at the shard,
//     sequence number and sub-sequence number of its acknowledgement;
//   - every processed record was put, and no worker output is unaccounted;
//   - within a tenure (one worker process holding one shard, from its
//     Initialize to LeaseLost, ShardEnded, ShutdownRequested or death),
//     records come in shard order after the starting checkpoint, and each
//     key's counters increase (a record the producer stored twice aside);
//   - per key, the first copies of the records are in counter order in one
//     shard;
//   - a record is processed again only by a later tenure of its shard that
//     started from a checkpoint before it, after the previous tenure was
//     killed or lost its lease (a failover window), never after a graceful
//     handoff;
//   - checkpoints never go back: a tenure starts at or after every
//     checkpoint of its shard confirmed before it started.
//
// It logs the counts: records put, acknowledged, processed, redelivered
// (by cause and by the fault before them), stored twice by producer
// retries, processed by a worker after its lease had moved, tenures by how
// they ended. The default run has 2 cycles and takes about 55s; the disk
// fault needs root (it is skipped with a note otherwise, and fails the test
// with CI=true). SHOAL_SOAK=1 runs SHOAL_SOAK_CYCLES cycles (default 10):
//
//	go test -race -count=1 -run 'TestSystem$' -v ./integration/
//	SHOAL_SOAK=1 SHOAL_SOAK_CYCLES=30 go test -count=1 -run 'TestSystem$' -timeout 60m -v ./integration/
//
// # Running time
//
// The tests take tens of seconds and are skipped with -short.
// SHOAL_CRASH_CYCLES sets the number of crash cycles of TestCrashRecovery
// (default 20), SHOAL_CRASH_SEED fixes the random seed (it is logged), and
// SHOAL_BUILD_FLAGS adds flags to the "go build" of the binary (for example
// "-race" to run the server itself under the race detector).
package integration
