package server

import (
	"testing"
	"time"
)

// TestRateLimiter checks the per-shard limiter on explicit times, as the
// injected Config.Now gives them: operations and bytes both gate take, a
// full byte bucket admits one oversized record, and a read call is refused
// while earlier reads left the byte bucket in debt.
func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRateLimiter(1000, 2, t0)
	for i := range 2 {
		if !r.take(t0, 400) {
			t.Fatalf("operation %d refused from full buckets", i)
		}
	}
	if r.take(t0, 1) {
		t.Fatal("a third operation admitted at 2/s in the same instant")
	}
	t1 := t0.Add(500 * time.Millisecond) // one operation and 500 bytes back: 700
	if r.take(t1, 701) {
		t.Fatal("701 bytes admitted with 700 in the bucket")
	}
	if !r.take(t1, 700) {
		t.Fatal("700 bytes refused with 700 in the bucket")
	}

	// A record larger than a second's worth passes a full bucket only.
	r = newRateLimiter(1000, 100, t0)
	if !r.take(t0, 2500) {
		t.Fatal("oversized record refused by a full bucket")
	}
	if r.take(t0.Add(time.Second), 0) {
		t.Fatal("admitted while 500 bytes in debt")
	}
	if !r.take(t0.Add(1500*time.Millisecond), 0) {
		t.Fatal("refused once the debt was repaid")
	}

	// Reads: charge puts the byte bucket into debt, which refuses the next
	// call until the debt is repaid.
	r = newRateLimiter(1000, 5, t0)
	if !r.allowCall(t0) {
		t.Fatal("first call refused")
	}
	r.charge(3000)
	if r.allowCall(t0.Add(time.Second)) {
		t.Fatal("call allowed while 1000 bytes in debt")
	}
	if !r.allowCall(t0.Add(2500 * time.Millisecond)) {
		t.Fatal("call refused once the debt was repaid")
	}
}
