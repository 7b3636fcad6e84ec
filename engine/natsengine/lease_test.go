package natsengine

import (
	"sync"
	"testing"
	"time"
)

// One holder at a time: a second process is refused while the lease runs,
// takes it once it expired or was released; the holder renews it.
func TestLease(t *testing.T) {
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e1 := openTest(t, Config{Now: clock})
	e2 := openTest(t, Config{Prefix: e1.cfg.Prefix, Now: clock})
	ctx := t.Context()
	acquire := func(e *Engine, holder string, want bool) {
		t.Helper()
		got, err := e.AcquireLease(ctx, "coordinator", holder, 10*time.Second)
		if err != nil || got != want {
			t.Fatalf("AcquireLease(%s) = %v, %v; want %v", holder, got, err, want)
		}
	}
	acquire(e1, "a", true)
	acquire(e2, "b", false)
	advance(6 * time.Second)
	acquire(e1, "a", true) // renewed until 16 s
	advance(6 * time.Second)
	acquire(e2, "b", false) // 12 s: a's renewal still runs
	advance(5 * time.Second)
	acquire(e2, "b", true) // 17 s: expired
	acquire(e1, "a", false)
	if err := e1.ReleaseLease(ctx, "coordinator", "a"); err != nil { // not a's: nothing happens
		t.Fatal(err)
	}
	acquire(e1, "a", false)
	if err := e2.ReleaseLease(ctx, "coordinator", "b"); err != nil {
		t.Fatal(err)
	}
	acquire(e1, "a", true) // released: taken at once
	// Racing takers of a free lease: exactly one wins.
	if err := e1.ReleaseLease(ctx, "coordinator", "a"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	won := make([]bool, 6)
	for i := range won {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		wg.Go(func() {
			ok, err := e.AcquireLease(ctx, "race", string(rune('a'+i)), time.Minute)
			if err != nil {
				t.Error(err)
			}
			won[i] = ok
		})
	}
	wg.Wait()
	n := 0
	for _, w := range won {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d racing takers got the lease, want 1", n)
	}
}
