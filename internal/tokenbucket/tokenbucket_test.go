package tokenbucket

import (
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func TestStartsFull(t *testing.T) {
	b := New(1000, t0)
	if b.Rate() != 1000 || b.Tokens() != 1000 {
		t.Fatalf("rate %v tokens %v, want 1000 and 1000", b.Rate(), b.Tokens())
	}
	if !b.Enough(1000) || b.Wait(1000) != 0 {
		t.Fatal("a full bucket refuses its capacity")
	}
}

func TestRefill(t *testing.T) {
	b := New(1000, t0)
	b.Take(1000)
	b.Refill(t0.Add(250 * time.Millisecond))
	if b.Tokens() != 250 {
		t.Fatalf("tokens %v after 250ms at 1000/s, want 250", b.Tokens())
	}
	// A time at or before the last refill adds nothing and does not move
	// the refill time back.
	b.Refill(t0)
	b.Refill(t0.Add(250 * time.Millisecond))
	if b.Tokens() != 250 {
		t.Fatalf("tokens %v after refills in the past, want 250", b.Tokens())
	}
	b.Refill(t0.Add(500 * time.Millisecond))
	if b.Tokens() != 500 {
		t.Fatalf("tokens %v after 500ms, want 500", b.Tokens())
	}
	// Capped at one second's worth.
	b.Refill(t0.Add(time.Hour))
	if b.Tokens() != 1000 {
		t.Fatalf("tokens %v after an hour, want the capacity 1000", b.Tokens())
	}
}

func TestEnoughAndDebt(t *testing.T) {
	b := New(1000, t0)
	b.Take(600)
	if !b.Enough(400) || b.Enough(401) {
		t.Fatalf("with %v tokens: Enough(400) %v, Enough(401) %v", b.Tokens(), b.Enough(400), b.Enough(401))
	}
	// A full bucket admits more than its capacity and goes into debt.
	b = New(1000, t0)
	if !b.Enough(2500) {
		t.Fatal("a full bucket refuses an oversized request")
	}
	b.Take(2500)
	if b.Tokens() != -1500 {
		t.Fatalf("tokens %v, want -1500", b.Tokens())
	}
	if b.Enough(0) {
		t.Fatal("Enough(0) while in debt")
	}
	// The debt is paid first: 1.5s back to zero, 1.501s for one token.
	if w := b.Wait(0); w != 1500*time.Millisecond {
		t.Fatalf("Wait(0) = %v, want 1.5s", w)
	}
	if w := b.Wait(1); w != 1501*time.Millisecond {
		t.Fatalf("Wait(1) = %v, want 1.501s", w)
	}
	b.Refill(t0.Add(1500 * time.Millisecond))
	if !b.Enough(0) || b.Enough(1) {
		t.Fatalf("after 1.5s: tokens %v", b.Tokens())
	}
}

func TestWait(t *testing.T) {
	b := New(1000, t0)
	b.Take(1000)
	if w := b.Wait(1); w != time.Millisecond {
		t.Fatalf("Wait(1) = %v, want 1ms", w)
	}
	// More than the capacity waits only for a full bucket.
	if w := b.Wait(5000); w != time.Second {
		t.Fatalf("Wait(5000) = %v, want 1s", w)
	}
	// Rounded up, never early: 1 token at 3/s is 333333333.33ns.
	b = New(3, t0)
	b.Take(3)
	if w := b.Wait(1); w != 333333334 {
		t.Fatalf("Wait(1) at 3/s = %d ns, want 333333334", w)
	}
	b.Refill(t0.Add(333333334))
	if !b.Enough(1) {
		t.Fatalf("tokens %v after the wait, want at least 1", b.Tokens())
	}
}

// TestFractionalRate covers a rate below one token per second (a producer
// RateLimit percentage of a small limit): the capacity is below one, so only
// a full bucket admits one token.
func TestFractionalRate(t *testing.T) {
	b := New(0.5, t0)
	if !b.Enough(1) {
		t.Fatal("a full bucket of capacity 0.5 refuses one token")
	}
	b.Take(1)
	if w := b.Wait(1); w != 2*time.Second {
		t.Fatalf("Wait(1) = %v, want 2s (0.5 debt plus 0.5 capacity at 0.5/s)", w)
	}
}
