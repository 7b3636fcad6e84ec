// Package checkpointtest is the conformance suite every [checkpoint.Store]
// implementation passes ([checkpoint.PGStore] among them). A Store's tests
// call [RunStoreTests] with a function that opens a new Store; the suite
// checks lease creation, argument validation, taking, renewal and release,
// fencing, checkpoint order, pending checkpoints, shard ends and child
// leases, deletion, expiry, change events, Close, and the invariants of
// concurrent workers; and, for the Stores that implement them, graceful
// hand-off ([checkpoint.HandoffStore]) and lease administration
// ([checkpoint.Admin]).
package checkpointtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// RunStoreTests runs the conformance suite against the Stores newStore
// returns.
//
// Every call of newStore returns a new [checkpoint.Store], as another worker
// would have (with its own connections). The Stores returned for one *testing.T share
// one lease table; Stores of different tests do not. Their failover time
// must be short, at most 1 second (300ms suits): the expiry tests wait for
// it. newStore closes its Stores when the test ends. Subtests run in
// parallel.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T) checkpoint.Store)
	}{
		{"CreateIdempotent", testCreateIdempotent},
		{"InvalidArguments", testInvalidArguments},
		{"TakeRenewRelease", testTakeRenewRelease},
		{"Fencing", testFencing},
		{"CheckpointOrder", testCheckpointOrder},
		{"PendingCheckpoint", testPendingCheckpoint},
		{"ShardEnd", testShardEnd},
		{"ChildLeases", testChildLeases},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"ListenEvents", testListenEvents},
		{"Close", testClose},
		{"ConcurrentInvariants", testConcurrentInvariants},
		{"Handoff", testHandoff},
		{"HandoffLapse", testHandoffLapse},
		{"ResetLeases", testResetLeases},
		{"ForceRelease", testForceRelease},
		{"DeleteApplication", testDeleteApplication},
		{"Streams", testStreams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

const app = "orders-app"

// testCtx bounds one test's calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually calls fn until it returns nil, failing the test with fn's last
// error after timeout.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustCreate(t *testing.T, s checkpoint.Store, l checkpoint.Lease) {
	t.Helper()
	if _, err := s.CreateLease(testCtx(t), l); err != nil {
		t.Fatalf("CreateLease %s: %v", l.ShardID, err)
	}
}

func mustGet(t *testing.T, s checkpoint.Store, shardID string) checkpoint.Lease {
	t.Helper()
	l, err := s.GetLease(testCtx(t), app, shardID)
	if err != nil {
		t.Fatalf("GetLease %s: %v", shardID, err)
	}
	return l
}

// mustHold creates the lease if needed and takes it for owner.
func mustHold(t *testing.T, s checkpoint.Store, shardID, owner string) checkpoint.Lease {
	t.Helper()
	mustCreate(t, s, checkpoint.Lease{Application: app, ShardID: shardID})
	l, err := s.TakeLease(testCtx(t), mustGet(t, s, shardID), owner)
	if err != nil {
		t.Fatalf("TakeLease %s: %v", shardID, err)
	}
	return l
}

func seq(n string) checkpoint.Checkpoint { return checkpoint.Checkpoint{SequenceNumber: n} }

func seqSub(n string, sub int64) checkpoint.Checkpoint {
	return checkpoint.Checkpoint{SequenceNumber: n, SubSequenceNumber: sub}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
