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
// Records whose PutRecords call failed, or whose result entry failed, have an
// unknown outcome: they may be present or not, but never twice and never out
// of order. The tests report how many of those were found.
//
// The tests take tens of seconds and are skipped with -short.
// SHOAL_CRASH_CYCLES sets the number of crash cycles of TestCrashRecovery
// (default 20), SHOAL_CRASH_SEED fixes the random seed (it is logged), and
// SHOAL_BUILD_FLAGS adds flags to the "go build" of the binary (for example
// "-race" to run the server itself under the race detector).
package integration
