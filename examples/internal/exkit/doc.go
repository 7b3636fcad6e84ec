// Package exkit holds the few lines of setup every example repeats: an
// embedded shoal server on a loopback port (or the one a flag names), the
// credentials to sign with (the AWS SDK's default chain or a -profile, see
// Server.Credentials), a Kinesis client pointed at a server (and one fit
// for enhanced fan-out),
// creating a stream and waiting until it is ACTIVE, opening the lease table
// in PostgreSQL and deleting an application's old leases, a run id, a
// writer that goroutines can share, and the database URL and logger the
// examples default to.
//
// It is internal to the examples: a program of your own would write these
// lines itself, as the examples' README files show.
package exkit
