// Package tokenbucket is the token bucket behind shoal's throughput limits:
// the server's per-shard limits (--enforce-throughput), its SubscribeToShard
// pacing, and the producer's per-shard rate limit.
//
// A [Bucket] is refilled continuously at its rate, in tokens per second, and
// holds at most one second's worth (its capacity equals its rate). It starts
// full. Unlike golang.org/x/time/rate it can go into debt: [Bucket.Take]
// always takes, so a request larger than the capacity can pass (Kinesis
// admits one record larger than a shard's per-second byte budget) and the
// refill pays the debt back before anything else passes. Time is always
// passed in, never read from a clock, so callers with an injected or fake
// clock stay deterministic.
//
// A Bucket is not safe for concurrent use; its owner serializes calls.
package tokenbucket

import (
	"math"
	"time"
)

// Bucket is a token bucket of capacity one second's worth of its rate. Make
// one with [New]; the zero value has rate 0.
type Bucket struct {
	rate   float64 // tokens per second, and the capacity
	tokens float64 // may be negative: the bucket is in debt
	last   time.Time
}

// New returns a full bucket refilled at rate tokens per second from now on.
func New(rate float64, now time.Time) Bucket {
	return Bucket{rate: rate, tokens: rate, last: now}
}

// Rate returns the refill rate in tokens per second, which is also the
// capacity.
func (b *Bucket) Rate() float64 { return b.rate }

// Tokens returns the tokens in the bucket as of the last [Bucket.Refill]; a
// negative value is a debt.
func (b *Bucket) Tokens() float64 { return b.tokens }

// Refill adds the tokens earned since the last refill, up to the capacity.
// A time not after the last refill changes nothing.
func (b *Bucket) Refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.rate, b.tokens+dt*b.rate)
		b.last = now
	}
}

// Enough reports whether n tokens may be taken: the bucket holds n, or it is
// full (so that a full bucket admits a request larger than its capacity,
// which leaves it in debt).
func (b *Bucket) Enough(n float64) bool {
	return b.tokens >= n || b.tokens >= b.rate
}

// Take removes n tokens, going into debt if the bucket holds fewer.
func (b *Bucket) Take(n float64) { b.tokens -= n }

// Wait returns how long until Enough(n) holds, assuming nobody else takes
// tokens meanwhile and Refill was called at the present time. It rounds up
// to the nanosecond, so a caller that waits that long is never early.
func (b *Bucket) Wait(n float64) time.Duration {
	need := min(n, b.rate) - b.tokens
	if need <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(need / b.rate * float64(time.Second)))
}
