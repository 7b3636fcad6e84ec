package server

import (
	"sync"
	"time"

	"github.com/shoalstream/shoal/internal/tokenbucket"
)

// rateLimiter is a pair of token buckets, for bytes and for operations
// (records or calls), each refilled continuously at its rate per second and
// holding at most one second's worth.
type rateLimiter struct {
	mu    sync.Mutex // guards the buckets
	bytes tokenbucket.Bucket
	ops   tokenbucket.Bucket
}

func newRateLimiter(bytesPerSec, opsPerSec float64, now time.Time) *rateLimiter {
	return &rateLimiter{bytes: tokenbucket.New(bytesPerSec, now), ops: tokenbucket.New(opsPerSec, now)}
}

// take removes n bytes and one operation if both buckets hold enough, and
// reports whether it did. A record larger than a second's worth of bytes
// passes a full byte bucket, leaving it in debt.
func (r *rateLimiter) take(now time.Time, n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes.Refill(now)
	r.ops.Refill(now)
	if r.ops.Tokens() < 1 || !r.bytes.Enough(float64(n)) {
		return false
	}
	r.ops.Take(1)
	r.bytes.Take(float64(n))
	return true
}

// Provisioned per-shard limits of Kinesis.
const (
	writeBytesPerSec   = 1 << 20
	writeRecordsPerSec = 1000
	readBytesPerSec    = 2 << 20
	readCallsPerSec    = 5
)

func (s *Server) attachLimits(sh *shard) {
	if !s.cfg.EnforceThroughput {
		return
	}
	now := s.cfg.Now()
	sh.writeRate = newRateLimiter(writeBytesPerSec, writeRecordsPerSec, now)
	sh.readRate = newRateLimiter(readBytesPerSec, readCallsPerSec, now)
}

// allowCall takes one call if the call bucket holds one and the byte bucket
// is not in debt from earlier large reads.
func (r *rateLimiter) allowCall(now time.Time) bool {
	return r.take(now, 0) && r.bytesLeft() > 0
}

func (r *rateLimiter) bytesLeft() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes.Tokens()
}

// charge removes n bytes, possibly going into debt.
func (r *rateLimiter) charge(n int) {
	r.mu.Lock()
	r.bytes.Take(float64(n))
	r.mu.Unlock()
}

// pacer spaces a subscription's events to a byte rate, allowing a burst of
// one second's worth.
type pacer struct {
	b tokenbucket.Bucket // in debt while events are sent faster than the rate
}

func newPacer(bytesPerSec float64, now time.Time) *pacer {
	return &pacer{b: tokenbucket.New(bytesPerSec, now)}
}

// delay charges n bytes and returns how long to wait before sending them:
// until the refill has paid back the debt they leave.
func (p *pacer) delay(now time.Time, n int) time.Duration {
	p.b.Refill(now)
	p.b.Take(float64(n))
	return p.b.Wait(0)
}
