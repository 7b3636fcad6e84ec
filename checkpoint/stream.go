package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Streams. A lease belongs to one application and one stream: an
// application may read several streams with one lease set and one worker
// fleet (the KCL's multi-stream mode). Lease.Stream names the stream by
// identity, StreamIdentity(ARN, creation time), so that a stream deleted
// and re-created under the same name (a new creation time) has leases of
// its own and never inherits the old stream's checkpoints.
//
// The empty stream names "the application's only stream": the leases of
// an application that reads one stream, and every lease written before
// the lease table had streams (PGStore schema version 3). The consumer
// writes the empty stream when it reads one stream, as the KCL does
// outside multi-stream mode.
//
// Where a Store method names a lease by a string (GetLease, DeleteLease,
// CreateChildLeases's parent, ForceRelease, ResetLeases), the string is the
// lease's key, LeaseKey(stream, shardID): the bare shard ID for the empty
// stream, as before streams existed.

// StreamIdentity returns the identity of the stream arn created at
// created: the ARN, "@" and the creation time in Unix milliseconds, e.g.
// arn:aws:kinesis:us-east-1:000000000000:stream/orders@1700000000000.
func StreamIdentity(arn string, created time.Time) string {
	return arn + "@" + strconv.FormatInt(created.UnixMilli(), 10)
}

// ParseStreamIdentity splits a StreamIdentity into the stream's ARN and
// creation time. It fails with ErrInvalid on anything else.
func ParseStreamIdentity(id string) (arn string, created time.Time, err error) {
	i := strings.LastIndexByte(id, '@')
	if i <= 0 {
		return "", time.Time{}, fmt.Errorf("stream identity %q: want ARN@creation-millis: %w", id, ErrInvalid)
	}
	ms, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("stream identity %q: creation time: %w", id, ErrInvalid)
	}
	return id[:i], time.UnixMilli(ms).UTC(), nil
}

// StreamName returns the name of the stream an identity (or ARN) names:
// what follows "stream/" in the ARN, or the string itself when it is
// neither. The empty stream's name is "".
func StreamName(id string) string {
	if i := strings.LastIndexByte(id, '@'); i > 0 && strings.Contains(id[:i], ":stream/") {
		id = id[:i]
	}
	if i := strings.LastIndex(id, ":stream/"); i >= 0 {
		return id[i+len(":stream/"):]
	}
	return id
}

// keySep separates the stream from the shard ID in a lease key. Shard IDs
// never contain it, so a key splits at its last one; stream identities
// (ARNs) do.
const keySep = ':'

// LeaseKey returns the key that names a lease of the stream (an identity,
// or "" for the application's only stream) and shard in the Store methods
// that take a string: the shard ID for the empty stream, else the stream,
// ":" and the shard ID.
func LeaseKey(stream, shardID string) string {
	if stream == "" {
		return shardID
	}
	return stream + string(keySep) + shardID
}

// SplitLeaseKey is the inverse of LeaseKey.
func SplitLeaseKey(key string) (stream, shardID string) {
	if i := strings.LastIndexByte(key, keySep); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// Key returns the lease's key, LeaseKey(l.Stream, l.ShardID).
func (l Lease) Key() string { return LeaseKey(l.Stream, l.ShardID) }

// Key returns the key of the lease the event is about.
func (e Event) Key() string { return LeaseKey(e.Stream, e.ShardID) }

// ValidateStreamAndShard reports, wrapping ErrInvalid, why stream and
// shardID cannot name a lease: a shard ID must not contain ":" (it would
// not split off a lease key), and a stream must not end in one.
func ValidateStreamAndShard(stream, shardID string) error {
	switch {
	case strings.IndexByte(shardID, keySep) >= 0:
		return fmt.Errorf("shard ID %q contains %q: %w", shardID, keySep, ErrInvalid)
	case stream != "" && stream[len(stream)-1] == keySep:
		return fmt.Errorf("stream %q ends in %q: %w", stream, keySep, ErrInvalid)
	case len(stream) > maxIDBytes:
		return fmt.Errorf("stream longer than %d bytes: %w", maxIDBytes, ErrInvalid)
	}
	return nil
}

// validateIDs checks an application name and a lease key (LeaseKey).
func validateIDs(application, key string) error {
	stream, shardID := SplitLeaseKey(key)
	if err := ValidateStreamAndShard(stream, shardID); err != nil {
		return err
	}
	switch {
	case application == "":
		return fmt.Errorf("empty application name: %w", ErrInvalid)
	case shardID == "":
		return fmt.Errorf("empty shard ID: %w", ErrInvalid)
	case len(application) > maxIDBytes:
		return fmt.Errorf("application name longer than %d bytes: %w", maxIDBytes, ErrInvalid)
	case len(shardID) > maxIDBytes:
		return fmt.Errorf("shard ID longer than %d bytes: %w", maxIDBytes, ErrInvalid)
	}
	return nil
}

// leaseKey names a lease in errors.
func leaseKey(application, key string) string { return application + "/" + key }
