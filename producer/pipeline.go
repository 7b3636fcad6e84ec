package producer

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
)

// krecord is one Kinesis record: an aggregate of user records bound for
// one shard, or a single user record.
type krecord struct {
	rec         aggregation.Record
	members     []*Pending // in order: member i has sub-sequence number i
	size        int        // len(PartitionKey) + len(Data), as Kinesis counts it
	aggregated  bool       // members are inside an aggregated record
	oldest      time.Time  // earliest arrival of a member
	minDeadline time.Time  // earliest deadline of a member
	sent        bool       // sent at least once

	// landed is the shard an aggregate was stored on when that was not the
	// predicted one; landedSeq its sequence number. The record waits in
	// front of its pipeline's queue until a fresh map says whether that
	// shard owns all its members (see pipeline.resolve).
	landed, landedSeq string
}

// pipeline owns everything about one predicted shard: its aggregator, its
// queue of Kinesis records, its token buckets, its retry back-off and its
// batch in flight. Only its run goroutine touches those; others reach it
// through the fields guarded by mu and the wake and results channels.
//
// A pipeline with a nil shard is the holding pipeline, which keeps records
// until the first shard map arrives.
type pipeline struct {
	p     *Producer
	shard *shardInfo
	key   string

	mu       sync.Mutex // guards the fields below
	inbox    []*Pending // records put, in order
	handover []*Pending // records handed over by retiring predecessors, in order
	gates    int        // retiring predecessors that have not handed over yet
	retired  bool       // no longer in the current map
	exited   bool       // the run goroutine stopped

	wake    chan struct{} // cap 1: look at the fields under mu, the map, the flags
	results chan *batch   // cap 1: the answer to the batch in flight

	successors []*pipeline // guarded by Producer.mapMu: pipelines gated on this one

	// Owned by the run goroutine.
	spare       []*Pending
	agg         *aggregation.Aggregator
	aggMembers  []*Pending
	aggOldest   time.Time
	aggDeadline time.Time
	ready       []*krecord // sealed Kinesis records in send order
	readyBytes  int
	unresolved  int       // records in ready with landed set
	landedAt    int64     // mono time of the latest unexpected landing
	inflight    *batch    // the batch being sent, or nil
	retryAt     time.Time // no send before this (back-off)
	limitAt     time.Time // no send before this (token buckets)
	bo          *backoff.ExponentialBackOff
	lim         limiter
	nextSweep   time.Time // no record expires before this
	held        []*Pending
	done        []*Pending          // resolved records to deliver
	keys        map[string]struct{} // partition keys of the batch being built
}

var farFuture = time.Now().Add(100 * 365 * 24 * time.Hour)

func newPipeline(p *Producer, s *shardInfo) *pipeline {
	pl := &pipeline{
		p:         p,
		shard:     s,
		wake:      make(chan struct{}, 1),
		results:   make(chan *batch, 1),
		nextSweep: farFuture,
	}
	if s == nil {
		return pl
	}
	pl.key = s.key()
	if !p.cfg.DisableAggregation {
		// The config was validated, so the aggregation config is valid.
		pl.agg, _ = aggregation.NewAggregator(aggregation.Config{
			MaxBytes:   p.cfg.AggregationMaxBytes,
			MaxRecords: p.cfg.AggregationMaxCount,
			OuterKey:   aggregation.OuterKeyKPL,
		})
	}
	pl.lim = newLimiter(p.cfg.RateLimit, !p.cfg.DisableRateLimit, time.Now())
	pl.bo = backoff.NewExponentialBackOff()
	pl.bo.InitialInterval = p.cfg.MinBackoff
	pl.bo.MaxInterval = p.cfg.MaxBackoff
	pl.bo.Multiplier = 2
	pl.bo.RandomizationFactor = 0.5
	pl.bo.MaxElapsedTime = 0
	pl.bo.Reset()
	return pl
}

func (pl *pipeline) signal() {
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

func (pl *pipeline) shardID() string {
	if pl.shard == nil {
		return ""
	}
	return pl.shard.id
}

// run is the pipeline's goroutine.
func (pl *pipeline) run() {
	p := pl.p
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if pl.step() {
			return
		}
		next := pl.nextWake()
		timer.Reset(time.Until(next))
		abort := p.abortCh
		if pl.aborted() {
			abort = nil
		}
		select {
		case <-pl.wake:
		case b := <-pl.results:
			pl.handle(b)
		case <-timer.C:
		case <-abort:
		case <-p.stopCh:
		}
		timer.Stop()
	}
}

func (pl *pipeline) aborted() bool { return pl.p.aborting() }

func (pl *pipeline) stopping() bool {
	select {
	case <-pl.p.stopCh:
		return true
	default:
		return false
	}
}

// step does all the work that is possible now. It returns true when the
// pipeline has stopped.
func (pl *pipeline) step() bool {
	p := pl.p
	now := time.Now()
	defer pl.deliver()

	if pl.aborted() || (pl.stopping() && pl.inflight == nil) {
		return pl.abort()
	}

	pl.mu.Lock()
	gated := pl.gates > 0
	retired := pl.retired
	var ho, in []*Pending
	if !gated {
		ho, pl.handover = pl.handover, nil
		in, pl.inbox = pl.inbox, pl.spare[:0]
	}
	pl.mu.Unlock()
	if gated {
		pl.sweepGated(now)
		return false
	}

	if pl.shard == nil { // the holding pipeline
		for _, r := range ho {
			pl.nextSweep = minTime(pl.nextSweep, r.deadline)
		}
		for _, r := range in {
			pl.nextSweep = minTime(pl.nextSweep, r.deadline)
		}
		pl.held = append(pl.held, ho...)
		pl.held = append(pl.held, in...)
		clear(in)
		pl.spare = in[:0]
		if retired {
			pl.finish(pl.held)
			pl.held = nil
			return true
		}
		if !now.Before(pl.nextSweep) {
			pl.held = pl.expire(now, pl.held)
		}
		return false
	}

	for _, r := range ho {
		pl.add(r, now)
	}
	for _, r := range in {
		pl.add(r, now)
	}
	clear(in)
	pl.spare = in[:0]

	m := p.curMap.Load()
	if pl.unresolved > 0 && m.fetched > pl.landedAt {
		pl.resolve(m, now)
	}
	if !now.Before(pl.nextSweep) {
		pl.sweep(now)
	}
	if retired {
		if pl.inflight == nil && pl.unresolved == 0 {
			pl.finish(pl.drainAll())
			return true
		}
		return false
	}
	pl.dispatch(now, m)
	return false
}

// add queues one record: into the aggregator, or as its own Kinesis record.
func (pl *pipeline) add(r *Pending, now time.Time) {
	if !now.Before(r.deadline) {
		pl.fail(r, pl.expiredErr(r))
		return
	}
	pl.nextSweep = minTime(pl.nextSweep, r.deadline)
	if pl.agg == nil {
		pl.push(pl.single(r))
		return
	}
	err := pl.agg.Add(r.userRecord())
	if errors.Is(err, aggregation.ErrFull) {
		pl.seal()
		err = pl.agg.Add(r.userRecord())
	}
	if err != nil {
		// ErrTooLarge: the record is within MaxRecordBytes but does not fit
		// an aggregate (AggregationMaxBytes, or the aggregate framing of
		// data that starts with the aggregation magic). Send it alone,
		// after what is already aggregated.
		pl.seal()
		pl.push(pl.single(r))
		return
	}
	if len(pl.aggMembers) == 0 {
		pl.aggDeadline = r.deadline
	}
	pl.aggDeadline = minTime(pl.aggDeadline, r.deadline)
	pl.aggOldest = pl.aggDeadline.Add(-pl.p.cfg.RecordTTL)
	pl.aggMembers = append(pl.aggMembers, r)
}

// single returns a Kinesis record holding r alone, as it was put.
func (pl *pipeline) single(r *Pending) *krecord {
	return &krecord{
		rec:         aggregation.Record{PartitionKey: r.rec.PartitionKey, ExplicitHashKey: r.rec.ExplicitHashKey, Data: r.rec.Data},
		members:     []*Pending{r},
		size:        int(r.size),
		oldest:      r.deadline.Add(-pl.p.cfg.RecordTTL),
		minDeadline: r.deadline,
	}
}

// seal turns the aggregator's contents into a Kinesis record at the end of
// the queue.
func (pl *pipeline) seal() {
	if pl.agg == nil || pl.agg.Len() == 0 {
		return
	}
	rec, err := pl.agg.Build()
	members := pl.aggMembers
	pl.agg.Reset()
	pl.aggMembers = make([]*Pending, 0, cap(members))
	if err != nil {
		// Unreachable: Build fails only when empty or on a size
		// bookkeeping bug. Send the members one by one rather than lose
		// them.
		pl.p.log.Error("aggregate build failed", zap.Error(err))
		for _, r := range members {
			pl.push(pl.single(r))
		}
		return
	}
	pl.push(&krecord{
		rec:         rec,
		members:     members,
		size:        len(rec.PartitionKey) + len(rec.Data),
		aggregated:  len(members) > 1 || aggregation.IsAggregated(members[0].rec.Data),
		oldest:      pl.aggOldest,
		minDeadline: pl.aggDeadline,
	})
}

func (pl *pipeline) push(kr *krecord) {
	pl.ready = append(pl.ready, kr)
	pl.readyBytes += kr.size
}

// flushBytes is the queued size (sealed records, or the aggregate being
// built) at which an idle shard sends without waiting for MaxBufferedTime.
const flushBytes = 256 << 10

// dispatch sends the next batch if the shard may send now (nothing in
// flight, no back-off, tokens available) and something is due: the oldest
// record reached MaxBufferedTime, flushBytes or a full call's worth is
// queued, or Flush asked.
func (pl *pipeline) dispatch(now time.Time, m *shardMap) {
	p := pl.p
	cfg := &p.cfg
	if pl.inflight != nil || pl.unresolved > 0 || now.Before(pl.retryAt) || p.mapBlocked(m) {
		return
	}
	flushing := p.flushing.Load() > 0
	if pl.agg != nil && pl.agg.Len() > 0 && (flushing || pl.agg.Size() >= flushBytes ||
		!now.Before(pl.aggOldest.Add(cfg.MaxBufferedTime))) {
		pl.seal()
	}
	if len(pl.ready) == 0 {
		return
	}
	maxN := cfg.CollectionMaxCount
	due := flushing || len(pl.ready) >= maxN || pl.readyBytes >= min(flushBytes, cfg.CollectionMaxBytes) ||
		!now.Before(pl.ready[0].oldest.Add(cfg.MaxBufferedTime))
	if !due {
		return
	}
	pl.limitAt = time.Time{}
	var recs []*krecord
	bytes, i := 0, 0
	clear(pl.keys)
	for i < len(pl.ready) && len(recs) < maxN {
		kr := pl.ready[i]
		if len(recs) > 0 && !cfg.RelaxedOrdering && pl.conflicts(kr) {
			// kr shares a key with a record already in the batch: if that
			// one failed and kr were stored, kr would overtake it.
			break
		}
		if !now.Before(kr.minDeadline) {
			// Some members expired while queued: fail them, requeue the rest.
			repl := pl.split(kr, now)
			pl.ready = append(pl.ready[:i], append(repl, pl.ready[i+1:]...)...)
			pl.readyBytes -= kr.size
			for _, k := range repl {
				pl.readyBytes += k.size
			}
			continue
		}
		if bytes+kr.size > cfg.CollectionMaxBytes {
			break
		}
		if !pl.lim.take(now, kr.size) {
			pl.limitAt = now.Add(max(pl.lim.wait(now, kr.size), time.Millisecond))
			break
		}
		recs = append(recs, kr)
		bytes += kr.size
		i++
		if !cfg.RelaxedOrdering && i < len(pl.ready) && len(recs) < maxN {
			if len(pl.keys)+len(kr.members) > maxKeyCheck {
				// Checking more keys costs more than it gains: a batch
				// this large is worth a call of its own.
				break
			}
			pl.addKeys(kr)
		}
	}
	n := copy(pl.ready, pl.ready[i:])
	clear(pl.ready[n:])
	pl.ready = pl.ready[:n]
	pl.readyBytes -= bytes
	if len(recs) == 0 {
		return
	}
	for _, kr := range recs {
		if !kr.sent {
			kr.sent = true
			p.m.BufferedTime(now.Sub(kr.oldest))
		}
		for _, r := range kr.members {
			r.attempts++
		}
	}
	pl.inflight = &batch{pl: pl, recs: recs, bytes: bytes}
	p.sendq.push(pl.inflight)
}

// maxKeyCheck bounds the partition keys a pipeline collects to check that
// a batch holds no key twice.
const maxKeyCheck = 4096

// conflicts reports whether kr holds a partition key already in pl.keys.
func (pl *pipeline) conflicts(kr *krecord) bool {
	for _, r := range kr.members {
		if _, ok := pl.keys[r.rec.PartitionKey]; ok {
			return true
		}
	}
	return false
}

// addKeys adds the partition keys of kr to pl.keys.
func (pl *pipeline) addKeys(kr *krecord) {
	if pl.keys == nil {
		pl.keys = make(map[string]struct{})
	}
	for _, r := range kr.members {
		pl.keys[r.rec.PartitionKey] = struct{}{}
	}
}

// nextWake returns when the pipeline must look at its queues again if
// nothing else wakes it.
func (pl *pipeline) nextWake() time.Time {
	t := pl.nextSweep
	if pl.shard == nil {
		return t
	}
	pl.mu.Lock()
	gated := pl.gates > 0
	pl.mu.Unlock()
	if gated {
		return minTime(t, time.Now().Add(time.Second))
	}
	if pl.inflight != nil || pl.unresolved > 0 || pl.p.mapBlocked(pl.p.curMap.Load()) {
		return t // woken by the answer or by the next map
	}
	mbt := pl.p.cfg.MaxBufferedTime
	if pl.p.flushing.Load() > 0 {
		mbt = 0 // Flush wants everything out: only back-off and rate limits wait
	}
	if pl.agg != nil && pl.agg.Len() > 0 {
		t = minTime(t, maxTime(pl.aggOldest.Add(mbt), pl.retryAt))
	}
	if len(pl.ready) > 0 {
		t = minTime(t, maxTime(pl.ready[0].oldest.Add(mbt), pl.retryAt, pl.limitAt))
	}
	return t
}

// handle processes the answer to the batch in flight.
func (pl *pipeline) handle(b *batch) {
	p := pl.p
	pl.inflight = nil
	now := time.Now()
	defer pl.deliver()
	var back []*krecord // records to send again, in order, in front of the queue
	failedAny := false
	if b.err != nil {
		err := b.err
		if isNotFound(err) {
			p.blockMap(now)
		}
		if pl.aborted() {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		if pl.mayRetry(err) {
			p.m.Retried(errorCode(err), len(b.recs))
			p.log.Debug("PutRecords failed, will retry", zap.String("shard", pl.shard.id), zap.Error(err))
			for _, kr := range b.recs {
				pl.setLastErr(kr, err)
			}
			back = b.recs
			failedAny = true
		} else {
			for _, kr := range b.recs {
				pl.failAll(kr.members, err)
			}
		}
	} else {
		wrong := false
		// While the stream is known to have been missing (a call failed
		// with ResourceNotFoundException), shard ids prove nothing: a
		// stream re-created under the same name reuses them with other
		// ranges. Aggregates stored meanwhile are checked against the next
		// map even if they landed where predicted.
		suspect := p.mapBlocked(p.curMap.Load())
		for i, kr := range b.recs {
			e := &b.entries[i]
			if e.ErrorCode != nil {
				msg := ""
				if e.ErrorMessage != nil {
					msg = *e.ErrorMessage
				}
				err := entryError(*e.ErrorCode, msg)
				if pl.mayRetry(err) {
					p.m.Retried(*e.ErrorCode, 1)
					pl.setLastErr(kr, err)
					back = append(back, kr)
					failedAny = true
				} else {
					pl.failAll(kr.members, err)
				}
				continue
			}
			sid, seq := deref(e.ShardId), deref(e.SequenceNumber)
			if sid == "" || seq == "" {
				// Malformed answer: the record's fate is unknown. Sending it
				// again may store it twice but cannot lose it.
				err := errors.New("PutRecords answered an entry with neither an error nor a shard and sequence number")
				p.m.Retried("InvalidResponse", 1)
				pl.setLastErr(kr, err)
				back = append(back, kr)
				failedAny = true
				continue
			}
			if sid != pl.shard.id || suspect {
				wrong = true
				if kr.aggregated {
					// Kinesis routed the aggregate by its first member; the
					// others may belong elsewhere. Decide once the map is
					// fresh (resolve).
					kr.landed, kr.landedSeq = sid, seq
					pl.unresolved++
					back = append(back, kr)
					continue
				}
			}
			// A lone user record is always where Kinesis put it.
			pl.succeed(kr, sid, seq)
		}
		if wrong {
			pl.landedAt = p.mono(now)
			p.requestRefresh()
			p.log.Debug("records landed on an unexpected shard", zap.String("predicted", pl.shard.id))
		}
	}
	if len(back) > 0 {
		pl.ready = append(back, pl.ready...)
		for _, kr := range back {
			pl.readyBytes += kr.size
		}
	}
	if failedAny {
		pl.retryAt = now.Add(pl.bo.NextBackOff())
	} else {
		pl.bo.Reset()
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// mayRetry applies retryable and FailIfThrottled, and refuses once Close
// gave up.
func (pl *pipeline) mayRetry(err error) bool {
	if pl.aborted() || !retryable(err) {
		return false
	}
	return !(pl.p.cfg.FailIfThrottled && isThrottle(err))
}

func (pl *pipeline) setLastErr(kr *krecord, err error) {
	a := &attempt{shard: pl.shardID(), err: err}
	for _, r := range kr.members {
		r.last = a
	}
}

// resolve decides, with a map fetched after they landed, the fate of the
// aggregates that landed on an unexpected shard. The KCL drops a whole
// aggregated record if any of its user records lies outside the receiving
// shard's hash range (AggregatorUtil.deaggregate), so an aggregate is
// either stored whole (every member inside that range: done, with the
// receiving shard's sequence number) or sent again whole (its members go
// back through the current map once this pipeline retires, or to the same
// shard if the map still says they belong here).
func (pl *pipeline) resolve(m *shardMap, now time.Time) {
	resend := false
	for i := 0; i < len(pl.ready) && pl.unresolved > 0; {
		kr := pl.ready[i]
		if kr.landed == "" {
			i++
			continue
		}
		pl.unresolved--
		info, ok := m.shards[kr.landed]
		valid := ok
		for _, r := range kr.members {
			if !valid {
				break
			}
			valid = info.contains(r.hash)
		}
		if valid {
			pl.succeed(kr, kr.landed, kr.landedSeq)
			pl.readyBytes -= kr.size
			pl.ready = append(pl.ready[:i], pl.ready[i+1:]...)
			continue
		}
		pl.p.m.Retried("WrongShard", 1)
		if ok && !pl.p.cfg.ResendWholeAggregate {
			// Keep the members the receiving shard owns, send the others.
			var foreign []*Pending
			owned := 0
			for j, r := range kr.members {
				if info.contains(r.hash) {
					r.resolve(kr.landed, kr.landedSeq, int64(j), true, nil)
					pl.done = append(pl.done, r)
					owned++
				} else {
					foreign = append(foreign, r)
				}
			}
			pl.p.m.UserRecordsPut(owned)
			a := &attempt{shard: pl.shardID(), err: errWrongShard}
			for _, r := range foreign {
				r.last = a
			}
			repl := pl.rebuild(foreign)
			pl.ready = append(pl.ready[:i], append(repl, pl.ready[i+1:]...)...)
			pl.readyBytes -= kr.size
			for _, k := range repl {
				pl.readyBytes += k.size
			}
			i += len(repl)
			resend = true
			continue
		}
		pl.p.log.Debug("aggregate landed on a shard that does not own all its records; sending again",
			zap.String("predicted", pl.shard.id), zap.String("landed", kr.landed), zap.Int("records", len(kr.members)))
		pl.setLastErr(kr, errWrongShard)
		kr.landed, kr.landedSeq = "", ""
		resend = true
		i++
	}
	if resend {
		pl.retryAt = now.Add(pl.bo.NextBackOff())
	}
}

// split fails the expired members of kr and returns Kinesis records for
// the others, in order.
func (pl *pipeline) split(kr *krecord, now time.Time) []*krecord {
	var alive []*Pending
	for _, r := range kr.members {
		if now.Before(r.deadline) {
			alive = append(alive, r)
		} else {
			pl.fail(r, pl.expiredErr(r))
		}
	}
	return pl.rebuild(alive)
}

// rebuild packs records into Kinesis records as the aggregator would, with
// a scratch aggregator so that the pipeline's own one is left alone.
func (pl *pipeline) rebuild(rs []*Pending) []*krecord {
	if len(rs) == 0 {
		return nil
	}
	if pl.agg == nil {
		out := make([]*krecord, len(rs))
		for i, r := range rs {
			out[i] = pl.single(r)
		}
		return out
	}
	scratch := &pipeline{p: pl.p, agg: nil}
	scratch.agg, _ = aggregation.NewAggregator(pl.agg.Config())
	for _, r := range rs {
		scratch.add(r, time.Time{})
	}
	scratch.seal()
	return scratch.ready
}

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
