package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/server"
)

func putN(e *env, prefix string, n int) []string {
	var keys, data []string
	for i := range n {
		keys = append(keys, fmt.Sprint("k", i))
		data = append(data, fmt.Sprintf("%s%d", prefix, i))
	}
	e.put(keys, data)
	return data
}

func deliveredData(l *ledger) []string {
	ds, _ := l.snapshot()
	var out []string
	for _, d := range ds {
		out = append(out, d.data)
	}
	return out
}

func TestInitialPositionLatest(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	putN(e, "old", 5)
	m := &testMetrics{}
	w := e.startWorker("w", func(c *Config) { c.InitialPosition = Latest; c.Metrics = m }, nil)
	// Once the worker has read the shard, its LATEST iterator is placed.
	eventually(t, 20*time.Second, func() error {
		if m.getCalls.Load() == 0 {
			return errors.New("no GetRecords yet")
		}
		return nil
	})
	want := putN(e, "new", 5)
	eventually(t, 20*time.Second, func() error {
		if len(e.ledger.missing(want)) > 0 {
			return errors.New("new records not processed")
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := deliveredData(e.ledger); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestInitialPositionAtTimestamp(t *testing.T) {
	var skew atomic.Int64
	e := newEnv(t, envOptions{shards: 1, server: server.Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}})
	putN(e, "old", 5)
	skew.Store(int64(time.Hour)) // later records arrive an hour later
	want := putN(e, "new", 5)
	w := e.startWorker("w", func(c *Config) {
		c.InitialPosition = AtTimestamp
		c.InitialTimestamp = time.Now().Add(30 * time.Minute)
	}, nil)
	eventually(t, 20*time.Second, func() error {
		if len(e.ledger.missing(want)) > 0 {
			return errors.New("new records not processed")
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := deliveredData(e.ledger); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if l := e.lease(e.shardIDs()[0]); l.Checkpoint.IsSentinel() {
		t.Errorf("checkpoint %s", l.Checkpoint)
	}
}

// TestProcessRecordsErrorRedelivers: a batch whose ProcessRecords fails is
// delivered again, from just after the checkpoint the processor made.
func TestProcessRecordsErrorRedelivers(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	putN(e, "r", 10)
	var mu sync.Mutex
	var attempts [][]string
	w := e.startWorker("w", nil, e.ledger.factory("w", procOptions{onBatch: func(ctx context.Context, p *ledgerProc, in ProcessRecordsInput) error {
		var ds []string
		for _, r := range in.Records {
			ds = append(ds, string(r.Data))
		}
		mu.Lock()
		attempts = append(attempts, ds)
		n := len(attempts)
		mu.Unlock()
		if n == 1 {
			if err := in.Checkpointer.CheckpointRecord(ctx, in.Records[3]); err != nil {
				return err
			}
			return errors.New("downstream unavailable")
		}
		return in.Checkpointer.Checkpoint(ctx)
	}}))
	eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) < 2 {
			return fmt.Errorf("%d attempts", len(attempts))
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts[0]) != "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9]" || fmt.Sprint(attempts[1]) != "[r4 r5 r6 r7 r8 r9]" {
		t.Fatalf("attempts %v", attempts)
	}
}

type flakyInit struct {
	ledgerProc
	fails *atomic.Int32
}

func (p *flakyInit) Initialize(ctx context.Context, in InitializeInput) error {
	if p.fails.Add(-1) >= 0 {
		return errors.New("not ready")
	}
	return p.ledgerProc.Initialize(ctx, in)
}

func TestInitializeRetried(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	want := putN(e, "r", 3)
	var fails atomic.Int32
	fails.Store(2)
	w := e.startWorker("w", nil, func(shard string) Processor {
		return &flakyInit{ledgerProc: ledgerProc{l: e.ledger, shard: shard, worker: "w", o: procOptions{checkpointEvery: true}}, fails: &fails}
	})
	eventually(t, 20*time.Second, func() error {
		if len(e.ledger.missing(want)) > 0 {
			return errors.New("not processed")
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	if fails.Load() >= 0 {
		t.Errorf("Initialize not retried (%d)", fails.Load())
	}
}

// TestCheckpointerRules: checkpoints ahead of the delivered records are
// refused, backwards ones are refused by the Store, and a prepared
// checkpoint is shown to the next owner.
func TestCheckpointerRules(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	putN(e, "r", 4)
	errs := make(chan error, 4)
	var prepared checkpoint.Checkpoint
	w := e.startWorker("w", nil, e.ledger.factory("w", procOptions{noShutdownCheckpoint: true,
		onBatch: func(ctx context.Context, p *ledgerProc, in ProcessRecordsInput) error {
			last := in.Records[len(in.Records)-1]
			errs <- in.Checkpointer.CheckpointAt(ctx, last.SequenceNumber, last.SubSequenceNumber+1)
			errs <- in.Checkpointer.CheckpointRecord(ctx, in.Records[2])
			errs <- in.Checkpointer.CheckpointRecord(ctx, in.Records[1])
			prepared = last.Position()
			errs <- in.Checkpointer.Prepare(ctx, last.SequenceNumber, last.SubSequenceNumber)
			return nil
		}}))
	for i, want := range []error{ErrCheckpointAhead, nil, checkpoint.ErrCheckpointBackwards, nil} {
		select {
		case err := <-errs:
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Errorf("call %d: %v, want %v", i, err, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no batch")
		}
	}
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	var got InitializeInput
	inited := make(chan struct{})
	w2 := e.startWorker("w2", nil, e.ledger.factory("w2", procOptions{onInit: func(in InitializeInput) {
		got = in
		close(inited)
	}}))
	select {
	case <-inited:
	case <-time.After(20 * time.Second):
		t.Fatal("no Initialize")
	}
	if err := w2.stop(t); err != nil {
		t.Fatal(err)
	}
	if got.PendingCheckpoint == nil || *got.PendingCheckpoint != prepared || got.Checkpoint.SubSequenceNumber != 0 {
		t.Errorf("Initialize %+v, want pending %s", got, prepared)
	}
}

// TestDeletedLeaseIsLost: a lease deleted under its owner (by an operator)
// is lost at once.
func TestDeletedLeaseIsLost(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	m := &testMetrics{}
	w := e.startWorker("w", func(c *Config) { c.Metrics = m }, nil)
	eventually(t, 20*time.Second, func() error { return balanced([]*running{w}, 1, 1, 1) })
	if err := e.store.DeleteLease(context.Background(), testApp, e.shardIDs()[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if m.lost.Load() == 0 {
			return errors.New("not lost")
		}
		return nil
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	checkNoLeaks(t)
}
