package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callResult is what one API call achieved.
type callResult struct {
	records       int64 // records written or read successfully
	bytes         int64 // payload bytes (Data only) of those records
	failedRecords int64 // PutRecords entries rejected by the server
}

// worker is one load goroutine's job: put workers never finish, get readers
// finish when all their shards have caught up.
type worker interface {
	// call performs one API call.
	call(ctx context.Context) (callResult, error)
	// finished reports whether the worker has nothing left to do.
	finished() bool
}

// phaseStats accumulates the calls of one worker in one phase (warmup or
// measured).
type phaseStats struct {
	calls         int64
	records       int64
	bytes         int64
	failedRecords int64
	failedCalls   int64
	retries       int64
	lat           []time.Duration
	lastEnd       time.Time
	firstErr      error
}

func (s *phaseStats) merge(o *phaseStats) {
	s.calls += o.calls
	s.records += o.records
	s.bytes += o.bytes
	s.failedRecords += o.failedRecords
	s.failedCalls += o.failedCalls
	s.retries += o.retries
	s.lat = append(s.lat, o.lat...)
	if o.lastEnd.After(s.lastEnd) {
		s.lastEnd = o.lastEnd
	}
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
}

// plan says when the measured phase starts and when it stops.
type plan struct {
	warmup   time.Duration
	duration time.Duration // used when requests == 0
	requests int64         // total measured calls over all workers, if > 0
}

// runOutcome is the merged result of a run.
type runOutcome struct {
	warm, measured phaseStats
	elapsed        time.Duration // measured phase, from its start to the end of its last call
	interrupted    bool
}

// driveNow is drive's clock: the phases and the latencies are measured
// with it (a test makes it independent of the machine's speed).
var driveNow = time.Now

// drive runs every worker in its own goroutine, each with its Client (used
// to attribute SDK retries to calls), until the plan is done, every worker
// has finished, or ctx ends. Calls that start before the warmup has elapsed
// are made but only counted in the warmup statistics. In duration mode no
// call starts after the deadline; calls in flight then are waited for and
// counted.
func drive(ctx context.Context, p plan, workers []worker, clients []*Client) runOutcome {
	start := driveNow()
	measureStart := start.Add(p.warmup)
	deadline := measureStart.Add(p.duration)
	var tickets atomic.Int64
	capHint := 1 << 12
	if p.requests > 0 {
		capHint = int(min(p.requests, 1<<20)/int64(len(workers))) + 1
	}
	warm := make([]phaseStats, len(workers))
	meas := make([]phaseStats, len(workers))
	var wg sync.WaitGroup
	for i := range workers {
		meas[i].lat = make([]time.Duration, 0, capHint)
		wg.Add(1)
		go func(w worker, c *Client, ws, ms *phaseStats) {
			defer wg.Done()
			for ctx.Err() == nil && !w.finished() {
				t0 := driveNow()
				st := ws
				if !t0.Before(measureStart) {
					st = ms
					if p.requests > 0 {
						if tickets.Add(1) > p.requests {
							return
						}
					} else if !t0.Before(deadline) {
						return
					}
				}
				r0 := c.Retries()
				res, err := w.call(ctx)
				t1 := driveNow()
				if ctxErr(ctx, err) {
					return
				}
				st.calls++
				st.retries += c.Retries() - r0
				st.lat = append(st.lat, t1.Sub(t0))
				st.lastEnd = t1
				if err != nil {
					st.failedCalls++
					if st.firstErr == nil {
						st.firstErr = err
					}
					continue
				}
				st.records += res.records
				st.bytes += res.bytes
				st.failedRecords += res.failedRecords
			}
		}(workers[i], clients[i], &warm[i], &meas[i])
	}
	wg.Wait()
	var out runOutcome
	for i := range workers {
		out.warm.merge(&warm[i])
		out.measured.merge(&meas[i])
	}
	if out.measured.calls > 0 {
		out.elapsed = out.measured.lastEnd.Sub(measureStart)
	}
	out.interrupted = ctx.Err() != nil
	return out
}

// ctxErr reports whether err is only the consequence of ctx having ended,
// in which case a failed call is not counted as an error.
func ctxErr(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil
}
