package producer

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
)

// The answer to a batch: results per record, retries, re-routing after a
// reshard (see pipeline.go for the pipeline itself).

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
