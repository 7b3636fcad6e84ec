package producer

import (
	"time"

	"github.com/shoalstream/shoal/internal/tokenbucket"
)

// limiter holds one shard's two token buckets: Kinesis records and bytes
// (data plus partition key) per second. Each is refilled continuously and
// holds at most one second's worth; a full bucket admits a request larger
// than its capacity (and goes into debt), as Kinesis admits one record
// larger than a shard's per-second byte budget. The zero value (or a
// disabled limiter) admits everything. A limiter is owned by one pipeline
// goroutine.
type limiter struct {
	enabled bool
	records tokenbucket.Bucket
	bytes   tokenbucket.Bucket
}

// newLimiter returns a limiter at percent of the shard write limits.
func newLimiter(percent int, enabled bool, now time.Time) limiter {
	if !enabled {
		return limiter{}
	}
	f := float64(percent) / 100
	return limiter{
		enabled: true,
		records: tokenbucket.New(ShardRecordsPerSecond*f, now),
		bytes:   tokenbucket.New(ShardBytesPerSecond*f, now),
	}
}

// take removes one record and size bytes if both buckets allow it, and
// reports whether it did.
func (l *limiter) take(now time.Time, size int) bool {
	if !l.enabled {
		return true
	}
	l.records.Refill(now)
	l.bytes.Refill(now)
	if !l.records.Enough(1) || !l.bytes.Enough(float64(size)) {
		return false
	}
	l.records.Take(1)
	l.bytes.Take(float64(size))
	return true
}

// wait returns how long until take(size) would succeed.
func (l *limiter) wait(now time.Time, size int) time.Duration {
	if !l.enabled {
		return 0
	}
	l.records.Refill(now)
	l.bytes.Refill(now)
	return max(l.records.Wait(1), l.bytes.Wait(float64(size)))
}
