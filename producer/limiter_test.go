package producer

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLimiter(100, true, t0)
	// The buckets start full: 1000 records or 1 MiB at once.
	for i := range 1000 {
		if !l.take(t0, 10) {
			t.Fatalf("record %d refused from a full bucket", i)
		}
	}
	if l.take(t0, 10) {
		t.Fatal("record 1001 admitted in the same instant")
	}
	if w := l.wait(t0, 10); w != time.Millisecond {
		t.Fatalf("wait = %v, want 1ms (one record at 1000/s)", w)
	}
	t1 := t0.Add(time.Millisecond)
	if !l.take(t1, 10) || l.take(t1, 10) {
		t.Fatal("not exactly one record after 1ms")
	}

	// Bytes: 1 MiB/s.
	l = newLimiter(100, true, t0)
	if !l.take(t0, 600<<10) || l.take(t0, 600<<10) {
		t.Fatal("two 600 KiB records in one instant")
	}
	if w := l.wait(t0, 600<<10); w < 170*time.Millisecond || w > 180*time.Millisecond {
		t.Fatalf("wait %v for the missing ~176 KiB", w)
	}
	// A record larger than a second's worth passes when the bucket is full.
	l = newLimiter(100, true, t0)
	if !l.take(t0, 2<<20) {
		t.Fatal("oversized record refused by a full bucket")
	}
	if l.take(t0.Add(time.Second), 1) {
		t.Fatal("admitted while in debt")
	}
	if !l.take(t0.Add(3*time.Second), 1) {
		t.Fatal("refused after the debt was repaid")
	}

	// RateLimit scales both limits; disabled admits everything.
	l = newLimiter(50, true, t0)
	n := 0
	for l.take(t0, 1) {
		n++
	}
	if n != 500 {
		t.Fatalf("50%%: %d records, want 500", n)
	}
	l = newLimiter(100, false, t0)
	for range 100000 {
		if !l.take(t0, 1<<20) {
			t.Fatal("disabled limiter refused")
		}
	}
	if l.wait(t0, 1) != 0 {
		t.Fatal("disabled limiter waits")
	}
}

// TestRateLimitedSending runs a producer against the in-memory fake in a
// synctest bubble, so that time is fake: with aggregation off, 3500 records
// to one shard must take at least 2.5 s at 1000 records/s (the bucket
// starts with 1000), and no second may see more than the bucket allows.
func TestRateLimitedSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(1)
		p, err := New(f, Config{StreamName: "s", DisableAggregation: true})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		const n = 3500
		for i := range n {
			if _, err := p.Put(context.Background(), fmt.Sprint("k", i), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if elapsed < 2500*time.Millisecond || elapsed > 3500*time.Millisecond {
			t.Errorf("%d records took %v of fake time, want about 2.5s", n, elapsed)
		}
		// Sliding one-second windows: at most the burst (1000) plus one
		// second of refill (1000).
		calls := f.callLog()
		total := 0
		for i, c := range calls {
			total += len(c.entries)
			inWindow := 0
			for _, d := range calls[i:] {
				if d.at.Sub(c.at) >= time.Second {
					break
				}
				inWindow += len(d.entries)
			}
			if inWindow > 2000 {
				t.Errorf("%d records sent within one second from %v", inWindow, c.at.Sub(start))
			}
		}
		if total != n {
			t.Errorf("%d records sent, want %d", total, n)
		}
	})
}

// TestMaxBufferedTime checks, in fake time, that a lone record waits
// MaxBufferedTime before it is sent, and that a full aggregate is sent
// earlier.
func TestMaxBufferedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(1)
		p, err := New(f, Config{StreamName: "s", MaxBufferedTime: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := p.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		if _, err := p.PutSync(context.Background(), "k", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 500*time.Millisecond || d > 600*time.Millisecond {
			t.Errorf("lone record sent after %v, want 500ms", d)
		}
		// 300 KiB in 100-byte records reaches the 256 KiB early-send mark.
		// (The calls before the backlog are counted first: the early send
		// may happen while the loop still puts.)
		first := f.callLog()
		start = time.Now()
		var last *Pending
		for i := range 3000 {
			last, _ = p.Put(context.Background(), fmt.Sprint("k", i), make([]byte, 100))
		}
		if _, err := last.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		calls := f.callLog()[len(first):]
		if len(calls) == 0 {
			t.Fatal("no call for a large backlog")
		}
		if d := calls[0].at.Sub(start); d >= 500*time.Millisecond {
			t.Errorf("first call of a large backlog after %v, want at once", d)
		}
	})
}
