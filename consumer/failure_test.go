package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
)

// The failure policy (Config.FailurePolicy), on the real server and
// database: each outcome, what it checkpoints, and what it counts.

var errPoison = errors.New("poison pill")

// poisoned is the tests' ProcessRecords: it fails every batch that holds a
// record whose data starts with "poison", after checkpointing the records
// before it; it checkpoints every other batch.
func poisoned(ctx context.Context, _ *ledgerProc, in ProcessRecordsInput) error {
	for i, r := range in.Records {
		if strings.HasPrefix(string(r.Data), "poison") {
			if i > 0 {
				if err := in.Checkpointer.CheckpointRecord(ctx, in.Records[i-1]); err != nil {
					return err
				}
			}
			return fmt.Errorf("record %s: %w", r.Data, errPoison)
		}
	}
	return in.Checkpointer.Checkpoint(ctx)
}

// failureMetrics counts the failure policy's outcomes and the watchdog's
// stalls.
type failureMetrics struct {
	testMetrics
	mu       sync.Mutex // guards the following
	outcomes map[string]int
	records  map[string]int
	stalls   []time.Time
}

func (m *failureMetrics) BatchFailure(_, outcome string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outcomes == nil {
		m.outcomes, m.records = map[string]int{}, map[string]int{}
	}
	m.outcomes[outcome]++
	m.records[outcome] += n
}

func (m *failureMetrics) ShardStalled(string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stalls = append(m.stalls, time.Now())
}

// counts returns the calls and records of each outcome.
func (m *failureMetrics) counts() (calls, records map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	calls, records = map[string]int{}, map[string]int{}
	for k, v := range m.outcomes {
		calls[k] = v
	}
	for k, v := range m.records {
		records[k] = v
	}
	return calls, records
}

func (m *failureMetrics) stallTimes() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.stalls)
}

// timesDelivered returns how many times data was delivered.
func (l *ledger) timesDelivered(data string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[data]
}

// checkpointOf reads a lease's checkpoint through the test's store; for
// eventually, before the lease exists.
func (e *env) checkpointOf(shard string) (checkpoint.Checkpoint, error) {
	l, err := e.store.GetLease(context.Background(), testApp, shard)
	return l.Checkpoint, err
}

func seqOf(res types.PutRecordsResultEntry) checkpoint.Checkpoint {
	return checkpoint.Checkpoint{SequenceNumber: aws.ToString(res.SequenceNumber)}
}

// TestFailurePolicyStop: after MaxAttempts failed calls, the worker stops
// gracefully and Run returns the processor's error in a *BatchError; the
// checkpoint stays before the batch, and the lease is released.
func TestFailurePolicyStop(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	res := e.put([]string{"k0", "k1", "k2", "k3", "k4"}, []string{"r0", "r1", "poison", "r3", "r4"})
	m := &failureMetrics{}
	w := e.startWorker("w", func(c *Config) {
		c.Metrics = m
		c.FailurePolicy = FailurePolicy{Action: StopWorker, MaxAttempts: 3}
	}, e.ledger.factory("w", procOptions{onBatch: poisoned}))
	err := w.wait(t, 60*time.Second)
	var be *BatchError
	if !errors.As(err, &be) || !errors.Is(err, errPoison) {
		t.Fatalf("Run returned %v, want a *BatchError wrapping the processor's error", err)
	}
	shard := e.shardIDs()[0]
	if be.ShardID != shard || be.Attempts != 3 || be.First != seqOf(res[2]) || be.Records < 1 || be.Last.Compare(be.First) < 0 {
		t.Errorf("BatchError %+v, want shard %s, 3 attempts, from the poison at %s", be, shard, seqOf(res[2]))
	}
	if !strings.Contains(err.Error(), "poison pill") || !strings.Contains(err.Error(), shard) {
		t.Errorf("error text %q", err)
	}
	if n := e.ledger.timesDelivered("poison"); n != 3 {
		t.Errorf("poison delivered %d times, want 3", n)
	}
	// Graceful: the checkpoint stays at the record before the batch, the
	// processor was asked to shut down, the lease is free for another
	// worker.
	if l := e.lease(shard); l.Checkpoint != seqOf(res[1]) || l.Owner != "" {
		t.Errorf("lease at %s owned by %q, want at %s, released", l.Checkpoint, l.Owner, seqOf(res[1]))
	}
	_, evs := e.ledger.snapshot()
	if !slices.ContainsFunc(evs, func(ev procEvent) bool { return ev.kind == "shutdown" && ev.shard == shard }) {
		t.Errorf("no ShutdownRequested: %+v", evs)
	}
	calls, recs := m.counts()
	if calls[FailureRetried] != 2 || calls[FailureStopped] != 1 || recs[FailureStopped] != be.Records || len(calls) != 2 {
		t.Errorf("outcomes %v (records %v), want 2 retried, 1 stopped", calls, recs)
	}
	checkNoLeaks(t)
}

// TestFailurePolicySkip: after MaxAttempts failed calls, the checkpoint
// moves past the batch, and the records after it are processed.
func TestFailurePolicySkip(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	res := e.put([]string{"k0", "k1", "k2", "k3", "k4"}, []string{"r0", "r1", "poison", "r3", "r4"})
	m := &failureMetrics{}
	w := e.startWorker("w", func(c *Config) {
		c.Metrics = m
		c.FailurePolicy = FailurePolicy{Action: SkipBatch, MaxAttempts: 2}
	}, e.ledger.factory("w", procOptions{onBatch: poisoned}))
	shard := e.shardIDs()[0]
	eventually(t, 30*time.Second, func() error {
		if cp, err := e.checkpointOf(shard); err != nil || cp.IsSentinel() || cp.Compare(seqOf(res[2])) <= 0 {
			return fmt.Errorf("checkpoint %s (%v), not past the poison at %s", cp, err, seqOf(res[2]))
		}
		return nil
	})
	calls, recs := m.counts()
	if calls[FailureRetried] != 1 || calls[FailureSkipped] != 1 || len(calls) != 2 || recs[FailureSkipped] < 1 {
		t.Errorf("outcomes %v (records %v), want 1 retried, 1 skipped", calls, recs)
	}
	// The checkpoint is the batch's last record: as many records after the
	// poison as were skipped.
	skipped := recs[FailureSkipped]
	if l := e.lease(shard); skipped > 3 || l.Checkpoint != seqOf(res[2+skipped-1]) {
		t.Errorf("checkpoint %s after skipping %d records from the poison", l.Checkpoint, skipped)
	}
	want := putN(e, "later", 5)
	eventually(t, 30*time.Second, func() error {
		if miss := e.ledger.missing(want); len(miss) > 0 {
			return fmt.Errorf("not processed: %v", miss)
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		if l := e.lease(shard); l.Checkpoint.Compare(seqOf(res[4])) <= 0 {
			return fmt.Errorf("checkpoint %s, not past the later records", l.Checkpoint)
		}
		return nil
	})
	if n := e.ledger.timesDelivered("poison"); n != 2 {
		t.Errorf("poison delivered %d times, want 2", n)
	}
	if err := w.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls, _ := m.counts(); calls[FailureSkipped] != 1 || calls[FailureRetried] != 1 {
		t.Errorf("outcomes %v after the later records", calls)
	}
}

// recordingDLQ is a DeadLetterHandler that fails its first fail calls and
// keeps every batch it is given.
type recordingDLQ struct {
	mu      sync.Mutex // guards the following
	fail    int
	batches []FailedBatch
}

func (d *recordingDLQ) DeadLetter(_ context.Context, b FailedBatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b.Records = slices.Clone(b.Records)
	d.batches = append(d.batches, b)
	if len(d.batches) <= d.fail {
		return errors.New("dead-letter queue unavailable")
	}
	return nil
}

func (d *recordingDLQ) got() []FailedBatch {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.batches)
}

// TestFailurePolicyDeadLetter: after MaxAttempts failed calls, the records
// after the checkpoint go to the dead-letter handler (again after it
// fails), with their stream, shard, sequence and sub-sequence numbers,
// keys, the error and the attempts; then the checkpoint moves past them.
// consumer/deadletter's tests check the same through a dead-letter stream.
func TestFailurePolicyDeadLetter(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	agg := aggregate(t, []aggregation.UserRecord{
		{PartitionKey: "ka0", Data: []byte("a0")},
		{PartitionKey: "ka1", Data: []byte("a1")},
		{PartitionKey: "ka2", Data: []byte("poison-a2")},
		{PartitionKey: "ka3", Data: []byte("a3")},
	})
	res := e.putEntries([]types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k0"), Data: []byte("r0")},
		agg,
		{PartitionKey: aws.String("k1"), Data: []byte("r1")},
	})
	dlq := &recordingDLQ{fail: 1}
	m := &failureMetrics{}
	w := e.startWorker("w", func(c *Config) {
		c.Metrics = m
		c.FailurePolicy = FailurePolicy{Action: DeadLetter, MaxAttempts: 3, DeadLetter: dlq}
	}, e.ledger.factory("w", procOptions{onBatch: poisoned}))
	shard := e.shardIDs()[0]
	eventually(t, 30*time.Second, func() error {
		if cp, err := e.checkpointOf(shard); err != nil || cp != seqOf(res[2]) {
			return fmt.Errorf("checkpoint %s (%v), want %s (past the dead-lettered records)", cp, err, seqOf(res[2]))
		}
		return nil
	})
	got := dlq.got()
	if len(got) != 2 {
		t.Fatalf("%d dead-letter calls, want 2 (one failed)", len(got))
	}
	aggSeq := aws.ToString(res[1].SequenceNumber)
	want := []Record{
		{SequenceNumber: aggSeq, SubSequenceNumber: 2, PartitionKey: "ka2", Data: []byte("poison-a2"), Aggregated: true},
		{SequenceNumber: aggSeq, SubSequenceNumber: 3, PartitionKey: "ka3", Data: []byte("a3"), Aggregated: true},
		{SequenceNumber: aws.ToString(res[2].SequenceNumber), PartitionKey: "k1", Data: []byte("r1")},
	}
	for i, b := range got {
		if b.Application != testApp || b.StreamName != testStream || b.ShardID != shard || b.Attempts != 3 ||
			!errors.Is(b.Err, errPoison) || b.Err.Error() != "record poison-a2: poison pill" {
			t.Errorf("call %d: %+v", i, b)
		}
		if len(b.Records) != len(want) {
			t.Fatalf("call %d: %d records, want %d", i, len(b.Records), len(want))
		}
		for j, r := range b.Records {
			w := want[j]
			if r.SequenceNumber != w.SequenceNumber || r.SubSequenceNumber != w.SubSequenceNumber || r.PartitionKey != w.PartitionKey ||
				string(r.Data) != string(w.Data) || r.Aggregated != w.Aggregated || r.ApproximateArrivalTimestamp.IsZero() {
				t.Errorf("call %d record %d: %+v, want %+v", i, j, r, w)
			}
		}
	}
	later := putN(e, "later", 3)
	eventually(t, 30*time.Second, func() error {
		if miss := e.ledger.missing(later); len(miss) > 0 {
			return fmt.Errorf("not processed: %v", miss)
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	calls, recs := m.counts()
	if calls[FailureRetried] != 2 || calls[FailureDeadLetterFailed] != 1 || calls[FailureDeadLettered] != 1 ||
		recs[FailureDeadLettered] != 3 || len(calls) != 3 {
		t.Errorf("outcomes %v (records %v), want 2 retried, 1 dead_letter_failed, 1 dead_lettered (3 records)", calls, recs)
	}
	if n := e.ledger.timesDelivered("poison-a2"); n != 3 {
		t.Errorf("poison delivered %d times, want 3", n)
	}
}

// TestFailurePolicyDefaultRetriesForever: without a policy, a failing
// batch is delivered again and again, each failure counted, and nothing is
// skipped: the checkpoint stays before it.
func TestFailurePolicyDefaultRetriesForever(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	res := e.put([]string{"k0", "k1", "k2"}, []string{"r0", "poison", "r1"})
	m := &failureMetrics{}
	w := e.startWorker("w", func(c *Config) {
		c.Metrics = m
		c.MaxBackoff = 100 * time.Millisecond
	}, e.ledger.factory("w", procOptions{onBatch: poisoned}))
	const n = 8
	eventually(t, 60*time.Second, func() error {
		if got := e.ledger.timesDelivered("poison"); got < n {
			return fmt.Errorf("poison delivered %d times", got)
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	attempts := e.ledger.timesDelivered("poison")
	calls, _ := m.counts()
	// The last call may have been cut short by the stop (not counted).
	if calls[FailureRetried] < attempts-1 || calls[FailureRetried] > attempts || len(calls) != 1 {
		t.Errorf("outcomes %v after %d attempts, want only retried, once per failed call", calls, attempts)
	}
	if l := e.lease(e.shardIDs()[0]); l.Checkpoint != seqOf(res[0]) {
		t.Errorf("checkpoint %s, want %s: nothing skipped", l.Checkpoint, seqOf(res[0]))
	}
}

func TestFailurePolicyConfig(t *testing.T) {
	c := Config{ApplicationName: "a", StreamName: "s", FailurePolicy: FailurePolicy{Action: SkipBatch}}.withDefaults(nil)
	if err := c.validate(); err != nil || c.FailurePolicy.MaxAttempts != 5 {
		t.Errorf("MaxAttempts %d, %v; want 5", c.FailurePolicy.MaxAttempts, err)
	}
	if c := (Config{ApplicationName: "a", StreamName: "s"}).withDefaults(nil); c.FailurePolicy != (FailurePolicy{}) || c.StallTimeout != 0 || c.CatchUp {
		t.Errorf("defaults: %+v, stall timeout %v, catch-up %v", c.FailurePolicy, c.StallTimeout, c.CatchUp)
	}
	for _, tc := range []struct {
		p    FailurePolicy
		want string
	}{
		{FailurePolicy{Action: DeadLetter}, "needs a DeadLetter handler"},
		{FailurePolicy{Action: 9}, "unknown FailurePolicy FailureAction(9)"},
		{FailurePolicy{Action: StopWorker, MaxAttempts: -1}, "negative FailurePolicy.MaxAttempts"},
	} {
		err := Config{ApplicationName: "a", StreamName: "s", FailurePolicy: tc.p}.withDefaults(nil).validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.want)
		}
	}
	if err := (Config{ApplicationName: "a", StreamName: "s", StallTimeout: -1}).withDefaults(nil).validate(); err == nil || !strings.Contains(err.Error(), "negative StallTimeout") {
		t.Errorf("negative StallTimeout: %v", err)
	}
	for a, want := range map[FailureAction]string{RetryForever: "retry-forever", StopWorker: "stop-worker", SkipBatch: "skip-batch", DeadLetter: "dead-letter"} {
		if a.String() != want {
			t.Errorf("%d: %q, want %q", int(a), a, want)
		}
	}
}
