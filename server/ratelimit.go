package server

import (
	"sync"
	"time"
)

// rateLimiter is a pair of token buckets, for bytes and for operations
// (records or calls), each refilled continuously at its rate per second and
// holding at most one second's worth.
type rateLimiter struct {
	mu      sync.Mutex // guards the fields below
	bytes   float64
	ops     float64
	last    time.Time
	byteCap float64
	opsCap  float64
}

func newRateLimiter(bytesPerSec, opsPerSec float64, now time.Time) *rateLimiter {
	return &rateLimiter{bytes: bytesPerSec, ops: opsPerSec, last: now, byteCap: bytesPerSec, opsCap: opsPerSec}
}

// take removes n bytes and one operation if both buckets hold enough, and
// reports whether it did.
func (r *rateLimiter) take(now time.Time, n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if dt := now.Sub(r.last).Seconds(); dt > 0 {
		r.bytes = min(r.byteCap, r.bytes+dt*r.byteCap)
		r.ops = min(r.opsCap, r.ops+dt*r.opsCap)
		r.last = now
	}
	if r.ops < 1 || r.bytes < float64(n) && r.bytes < r.byteCap {
		return false
	}
	r.ops--
	r.bytes -= float64(n) // may go negative for a record larger than a second's worth
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
	return r.bytes
}

// charge removes n bytes, possibly going into debt.
func (r *rateLimiter) charge(n int) {
	r.mu.Lock()
	r.bytes -= float64(n)
	r.mu.Unlock()
}
