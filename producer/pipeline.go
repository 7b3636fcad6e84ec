package producer

import (
	"errors"
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
