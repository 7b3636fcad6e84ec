package consumer

import (
	"context"

	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// TestStaleLeaseConfirmedBeforeDelivery plays a worker that was paused (as
// by SIGSTOP) past its failover time while another worker took its lease:
// when it wakes, it must not hand the next batch of that shard to its
// processor, but find out that the lease is gone first. Renewals are made
// rare (FailoverTime 30 s), and the worker's Store delivers no lease events
// (as when its listening connection was cut), so that only the check before
// delivery can notice in time.
func TestStaleLeaseConfirmedBeforeDelivery(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.storeFailover = 30 * time.Second
	shard := e.shardIDs()[0]

	blocked := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	a := e.startWorkerWith("a", workerOptions{store: deafStore{e.newStore(nil)}, mod: func(c *Config) {
		c.FailoverTime = 30 * time.Second
		c.TakeInterval = time.Minute
	}, factory: e.ledger.factory("a", procOptions{onBatch: func(ctx context.Context, _ *ledgerProc, _ ProcessRecordsInput) error {
		first := false
		once.Do(func() { first = true })
		if first {
			close(blocked)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}})})

	var keys, data []string
	for i := range 5 {
		keys = append(keys, fmt.Sprint("k", i))
		data = append(data, fmt.Sprint("first-", i))
	}
	e.put(keys, data)
	select {
	case <-blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("worker a never delivered the first batch")
	}
	firstBatch := e.ledger.seen()

	// Another worker takes the lease while a is "paused" (for an hour: a
	// cannot take it back when it expires) ...
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.longStore().TakeLease(ctx, e.lease(shard), "thief"); err != nil {
		t.Fatalf("steal: %v", err)
	}
	// ... for longer than the failover time, by a's clock.
	a.w.mu.Lock()
	sc := a.w.shards[shard]
	a.w.mu.Unlock()
	if sc == nil {
		t.Fatal("worker a holds no consumer for the shard")
	}
	sc.lease.confirmed.Store(monoNow() - int64(time.Minute))

	for i := range data {
		data[i] = fmt.Sprint("second-", i)
	}
	e.put(keys, data)
	close(release)

	eventually(t, 30*time.Second, func() error {
		_, events := e.ledger.snapshot()
		for _, ev := range events {
			if ev.worker == "a" && ev.kind == "lost" {
				return nil
			}
		}
		return fmt.Errorf("no LeaseLost for worker a yet")
	})
	if got := e.ledger.seen(); got != firstBatch {
		t.Fatalf("worker a processed %d records after its lease was taken (saw %d, first batch %d)",
			got-firstBatch, got, firstBatch)
	}
	if l := e.lease(shard); l.Owner != "thief" {
		t.Fatalf("lease owner %q, want thief: the paused worker took it back", l.Owner)
	}
}

// deafStore is a Store whose Listen delivers nothing until ctx ends.
type deafStore struct{ checkpoint.Store }

func (deafStore) Listen(ctx context.Context, _ string) (<-chan checkpoint.Event, error) {
	ch := make(chan checkpoint.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}
