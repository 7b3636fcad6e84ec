package producer

import (
	"math"
	"time"
)

// bucket is a token bucket refilled continuously at rate tokens per second
// and holding at most capacity tokens. It starts full.
type bucket struct {
	rate     float64 // tokens per second
	capacity float64
	tokens   float64
	last     time.Time
}

func newBucket(rate float64, now time.Time) bucket {
	return bucket{rate: rate, capacity: rate, tokens: rate, last: now}
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.capacity, b.tokens+dt*b.rate)
		b.last = now
	}
}

// enough reports whether n tokens may be taken now. A full bucket admits a
// request larger than its capacity (and goes into debt), as Kinesis admits
// one record larger than a shard's per-second byte budget.
func (b *bucket) enough(n float64) bool {
	return b.tokens >= n || b.tokens >= b.capacity
}

// wait returns how long until enough(n) becomes true, assuming no one else
// takes tokens.
func (b *bucket) wait(n float64) time.Duration {
	need := math.Min(n, b.capacity) - b.tokens
	if need <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(need / b.rate * float64(time.Second)))
}

// limiter holds one shard's two token buckets: Kinesis records and bytes
// (data plus partition key) per second. The zero value (or a disabled
// limiter) admits everything. A limiter is owned by one pipeline goroutine.
type limiter struct {
	enabled bool
	records bucket
	bytes   bucket
}

// newLimiter returns a limiter at percent of the shard write limits.
func newLimiter(percent int, enabled bool, now time.Time) limiter {
	if !enabled {
		return limiter{}
	}
	f := float64(percent) / 100
	return limiter{
		enabled: true,
		records: newBucket(ShardRecordsPerSecond*f, now),
		bytes:   newBucket(ShardBytesPerSecond*f, now),
	}
}

// take removes one record and size bytes if both buckets allow it, and
// reports whether it did.
func (l *limiter) take(now time.Time, size int) bool {
	if !l.enabled {
		return true
	}
	l.records.refill(now)
	l.bytes.refill(now)
	if !l.records.enough(1) || !l.bytes.enough(float64(size)) {
		return false
	}
	l.records.tokens--
	l.bytes.tokens -= float64(size)
	return true
}

// wait returns how long until take(size) would succeed.
func (l *limiter) wait(now time.Time, size int) time.Duration {
	if !l.enabled {
		return 0
	}
	l.records.refill(now)
	l.bytes.refill(now)
	return max(l.records.wait(1), l.bytes.wait(float64(size)))
}
