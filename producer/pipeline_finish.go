package producer

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// How records leave a pipeline: expiry sweeps, draining, aborting, and
// delivering results (see pipeline.go for the pipeline itself).

// sweep fails every queued record whose RecordTTL ran out.
func (pl *pipeline) sweep(now time.Time) {
	pl.nextSweep = farFuture
	for i := 0; i < len(pl.ready); {
		kr := pl.ready[i]
		if now.Before(kr.minDeadline) {
			pl.nextSweep = minTime(pl.nextSweep, kr.minDeadline)
			i++
			continue
		}
		if kr.landed != "" {
			// Stored on an unexpected shard and never confirmed: its fate
			// is unknown, so it fails.
			pl.unresolved--
			var alive []*Pending
			for _, r := range kr.members {
				if now.Before(r.deadline) {
					alive = append(alive, r)
					continue
				}
				pl.fail(r, pl.expiredErr(r))
			}
			// Members not yet expired are sent again.
			pl.setLastErr(kr, errWrongShard)
			repl := pl.rebuild(alive)
			pl.ready = append(pl.ready[:i], append(repl, pl.ready[i+1:]...)...)
			pl.readyBytes -= kr.size
			for _, k := range repl {
				pl.readyBytes += k.size
				pl.nextSweep = minTime(pl.nextSweep, k.minDeadline)
			}
			i += len(repl)
			continue
		}
		repl := pl.split(kr, now)
		pl.ready = append(pl.ready[:i], append(repl, pl.ready[i+1:]...)...)
		pl.readyBytes -= kr.size
		for _, k := range repl {
			pl.readyBytes += k.size
			pl.nextSweep = minTime(pl.nextSweep, k.minDeadline)
		}
		i += len(repl)
	}
	if pl.agg != nil && pl.agg.Len() > 0 {
		if !now.Before(pl.aggDeadline) {
			members := pl.aggMembers
			pl.agg.Reset()
			pl.aggMembers = make([]*Pending, 0, cap(members))
			for _, r := range members {
				pl.add(r, now) // fails the expired ones
			}
		}
		if len(pl.aggMembers) > 0 {
			pl.nextSweep = minTime(pl.nextSweep, pl.aggDeadline)
		}
	}
}

// sweepGated fails the expired records waiting in the inbox of a gated
// pipeline.
func (pl *pipeline) sweepGated(now time.Time) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.inbox) == 0 || now.Before(pl.inbox[0].deadline) {
		return
	}
	keep := pl.inbox[:0]
	for _, r := range pl.inbox {
		if now.Before(r.deadline) {
			keep = append(keep, r)
		} else {
			pl.fail(r, pl.expiredErr(r))
		}
	}
	clear(pl.inbox[len(keep):])
	pl.inbox = keep
}

// expire fails the expired records of rs and returns the others.
func (pl *pipeline) expire(now time.Time, rs []*Pending) []*Pending {
	pl.nextSweep = farFuture
	keep := rs[:0]
	for _, r := range rs {
		if now.Before(r.deadline) {
			keep = append(keep, r)
			pl.nextSweep = minTime(pl.nextSweep, r.deadline)
		} else {
			pl.fail(r, pl.expiredErr(r))
		}
	}
	clear(rs[len(keep):])
	return keep
}

func (pl *pipeline) expiredErr(r *Pending) error {
	var cause error
	if r.last != nil {
		cause = r.last.err
	}
	if cause == nil && pl.shard == nil {
		if e := pl.p.mapErr.Load(); e != nil {
			cause = *e
		} else {
			cause = errors.New("no shard map yet")
		}
	}
	if cause == nil {
		return fmt.Errorf("%w after %v", ErrRecordExpired, pl.p.cfg.RecordTTL)
	}
	return fmt.Errorf("%w after %v: %w", ErrRecordExpired, pl.p.cfg.RecordTTL, cause)
}

// drainAll empties the pipeline and returns its records in send order.
func (pl *pipeline) drainAll() []*Pending {
	var rs []*Pending
	for _, kr := range pl.ready {
		rs = append(rs, kr.members...)
	}
	clear(pl.ready)
	pl.ready, pl.readyBytes = pl.ready[:0], 0
	rs = append(rs, pl.aggMembers...)
	if pl.agg != nil {
		pl.agg.Reset()
	}
	pl.aggMembers = nil
	pl.mu.Lock()
	rs = append(rs, pl.handover...)
	rs = append(rs, pl.inbox...)
	pl.handover, pl.inbox = nil, nil
	pl.mu.Unlock()
	return rs
}

// finish hands a retired pipeline's records over, in order, to the
// pipelines of the current map, releases the pipelines gated on it, and
// marks it exited. Every pipeline of the current map whose range overlaps
// this one's is among its successors, so the records land in front of
// anything put since.
func (pl *pipeline) finish(rs []*Pending) {
	p := pl.p
	p.mapMu.Lock()
	defer p.mapMu.Unlock()
	pl.mu.Lock()
	rs = append(rs, pl.handover...)
	rs = append(rs, pl.inbox...)
	pl.handover, pl.inbox = nil, nil
	pl.exited = true
	pl.mu.Unlock()
	m := p.curMap.Load()
	for _, r := range rs {
		t := m.lookup(r.hash)
		t.mu.Lock()
		if t.exited {
			t.mu.Unlock()
			pl.fail(r, ErrClosed)
			continue
		}
		t.handover = append(t.handover, r)
		t.mu.Unlock()
	}
	for _, s := range pl.successors {
		s.mu.Lock()
		s.gates--
		s.mu.Unlock()
		s.signal()
	}
	pl.successors = nil
	for _, r := range m.routes {
		r.pl.signal()
	}
	for i, x := range p.retiring {
		if x == pl {
			p.retiring = append(p.retiring[:i], p.retiring[i+1:]...)
			break
		}
	}
	if len(rs) > 0 {
		p.log.Debug("pipeline handed over", zap.String("shard", pl.shardID()), zap.Int("records", len(rs)))
	}
}

// abort fails everything the pipeline holds with ErrClosed, waits for the
// batch in flight (whose call Close cancelled), and stops the pipeline. It
// returns true once the pipeline has stopped.
func (pl *pipeline) abort() bool {
	if pl.inflight != nil {
		b := <-pl.results
		pl.handle(b)
	}
	rs := pl.drainAll()
	rs = append(rs, pl.held...)
	pl.held = nil
	pl.mu.Lock()
	pl.exited = true
	pl.mu.Unlock()
	pl.failAll(rs, ErrClosed)
	// Release the pipelines gated on this one: nothing more comes from it.
	pl.p.mapMu.Lock()
	for _, s := range pl.successors {
		s.mu.Lock()
		s.gates--
		s.mu.Unlock()
		s.signal()
	}
	pl.successors = nil
	for i, x := range pl.p.retiring {
		if x == pl {
			pl.p.retiring = append(pl.p.retiring[:i], pl.p.retiring[i+1:]...)
			break
		}
	}
	pl.p.mapMu.Unlock()
	return true
}

// succeed resolves the members of a stored Kinesis record.
func (pl *pipeline) succeed(kr *krecord, shardID, seq string) {
	for i, r := range kr.members {
		sub := int64(0)
		if kr.aggregated {
			sub = int64(i)
		}
		r.resolve(shardID, seq, sub, kr.aggregated, nil)
	}
	pl.done = append(pl.done, kr.members...)
	pl.p.m.KinesisRecordsPut(1, len(kr.members))
	pl.p.m.UserRecordsPut(len(kr.members))
}

func (pl *pipeline) fail(r *Pending, err error) {
	shard := ""
	if r.last != nil {
		shard = r.last.shard
	} else if r.attempts > 0 {
		shard = pl.shardID()
	}
	r.resolve(shard, "", 0, false, &PutError{ShardID: shard, Attempts: int(r.attempts), Err: err})
	pl.done = append(pl.done, r)
	pl.p.m.UserRecordsFailed(errorCode(err), 1)
}

func (pl *pipeline) failAll(rs []*Pending, err error) {
	for _, r := range rs {
		pl.fail(r, err)
	}
}

// deliver passes the records resolved so far on to the producer.
func (pl *pipeline) deliver() {
	if len(pl.done) == 0 {
		return
	}
	pl.p.deliver(pl.done)
	clear(pl.done)
	pl.done = pl.done[:0]
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
