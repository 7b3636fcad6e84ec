package producer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// shardInfo is one shard as ListShards describes it.
type shardInfo struct {
	id         string
	start, end hashkey.Key // inclusive hash key range
	open       bool
}

func (s shardInfo) contains(k hashkey.Key) bool {
	return s.start.Cmp(k) <= 0 && k.Cmp(s.end) <= 0
}

// key identifies a pipeline: a shard id and its range. In Kinesis a shard
// never changes its range, but a stream deleted and re-created under the
// same name reuses ids with other ranges.
func (s shardInfo) key() string {
	return s.id + "/" + s.start.String() + "-" + s.end.String()
}

func overlaps(a, b *shardInfo) bool {
	if a == nil || b == nil { // the holding pipeline covers everything
		return true
	}
	return a.start.Cmp(b.end) <= 0 && b.start.Cmp(a.end) <= 0
}

// route maps the hash keys up to end (from the previous route's end+1) to a
// pipeline.
type route struct {
	end hashkey.Key
	pl  *pipeline
}

// shardMap is an immutable snapshot of the stream's shards. The producer
// publishes a new one on every refresh.
type shardMap struct {
	fetched int64                // mono time the ListShards that built it started; -1 for the holding map
	routes  []route              // open shards by ascending range, covering 0 .. 2^128-1
	shards  map[string]shardInfo // every listed shard, open or closed, by id
	holding bool                 // no map yet: everything goes to the holding pipeline
}

// lookup returns the pipeline of the open shard whose range holds k.
func (m *shardMap) lookup(k hashkey.Key) *pipeline {
	rs := m.routes
	lo, hi := 0, len(rs)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if rs[mid].end.Cmp(k) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return rs[lo].pl
}

// checkOpen returns the open shards sorted by range, or an error unless
// they cover the hash key space exactly once.
func checkOpen(infos []shardInfo) ([]shardInfo, error) {
	var open []shardInfo
	for _, s := range infos {
		if s.open {
			open = append(open, s)
		}
	}
	if len(open) == 0 {
		return nil, errors.New("no open shards")
	}
	slices.SortFunc(open, func(a, b shardInfo) int { return a.start.Cmp(b.start) })
	next := hashkey.Key{}
	for i, s := range open {
		if s.start != next || s.end.Cmp(s.start) < 0 {
			return nil, fmt.Errorf("open shards do not tile the hash key space at %s (shard %s starts at %s)", next, s.id, s.start)
		}
		if s.end == hashkey.Max {
			if i != len(open)-1 {
				return nil, fmt.Errorf("open shards overlap after %s", s.id)
			}
			return open, nil
		}
		next, _ = s.end.Add(hashkey.Key{Lo: 1})
	}
	return nil, fmt.Errorf("open shards end at %s, not at 2^128-1", open[len(open)-1].end)
}

// applyMap publishes a map built from infos. Pipelines whose shard (id and
// range) is still open are kept; the others retire and hand their records
// over; new shards get new pipelines, each gated on every retiring pipeline
// whose range overlaps its own, so that it sends nothing before the records
// put earlier for its keys. It returns an error, and changes nothing, if
// the open shards do not tile the hash key space.
func (p *Producer) applyMap(infos []shardInfo, fetched int64) error {
	open, err := checkOpen(infos)
	if err != nil {
		return err
	}
	all := make(map[string]shardInfo, len(infos))
	for _, s := range infos {
		all[s.id] = s
	}
	p.mapMu.Lock()
	defer p.mapMu.Unlock()
	cur := p.curMap.Load()
	existing := make(map[string]*pipeline, len(cur.routes))
	for _, r := range cur.routes {
		if r.pl.shard != nil {
			existing[r.pl.key] = r.pl
		}
	}
	m := &shardMap{fetched: fetched, shards: all, routes: make([]route, 0, len(open))}
	kept := make(map[*pipeline]bool, len(open))
	var started []*pipeline
	for _, s := range open {
		if pl := existing[s.key()]; pl != nil {
			kept[pl] = true
			m.routes = append(m.routes, route{end: s.end, pl: pl})
			continue
		}
		pl := newPipeline(p, &s)
		started = append(started, pl)
		m.routes = append(m.routes, route{end: s.end, pl: pl})
	}
	var retired []*pipeline
	for _, r := range cur.routes {
		if !kept[r.pl] {
			retired = append(retired, r.pl)
			p.retiring = append(p.retiring, r.pl)
		}
	}
	for _, pl := range started {
		for _, old := range p.retiring {
			if overlaps(pl.shard, old.shard) {
				old.successors = append(old.successors, pl)
				pl.gates++
			}
		}
	}
	p.curMap.Store(m)
	// Retire only after the new map is published, so that a Put that finds
	// a pipeline retired finds its replacement when it looks again.
	for _, pl := range retired {
		pl.mu.Lock()
		pl.retired = true
		pl.mu.Unlock()
	}
	for _, pl := range started {
		p.pipelines.Go(pl.run)
	}
	for _, r := range m.routes {
		r.pl.signal()
	}
	for _, pl := range p.retiring {
		pl.signal()
	}
	if len(started) > 0 || len(retired) > 0 {
		ids := make([]string, len(open))
		for i, s := range open {
			ids[i] = s.id
		}
		p.log.Info("shard map changed", zap.Strings("open_shards", ids),
			zap.Int("new_pipelines", len(started)), zap.Int("retired_pipelines", len(retired)))
	}
	p.m.ShardMapRefreshed(len(open), len(started) > 0 || len(retired) > 0, nil)
	return nil
}

// requestRefresh asks the refresher for a new map (started after now).
func (p *Producer) requestRefresh() {
	select {
	case p.refreshCh <- struct{}{}:
	default:
	}
}

// blockMap stops every pipeline from sending until a map fetched after now
// is published: used when the stream was not found, since a stream
// re-created under the same name may have other shards.
func (p *Producer) blockMap(now time.Time) {
	t := p.mono(now)
	for {
		old := p.blockedAt.Load()
		if old >= t || p.blockedAt.CompareAndSwap(old, t) {
			break
		}
	}
	p.requestRefresh()
}

// mapBlocked reports whether sends must wait for a newer map.
func (p *Producer) mapBlocked(m *shardMap) bool {
	b := p.blockedAt.Load()
	return b != 0 && m.fetched <= b
}

// refresher loads the shard map at start (unless initial is false), when
// asked, periodically, and again after failures with back-off, until stop.
func (p *Producer) refresher(initial bool) {
	need := initial
	var tick <-chan time.Time
	if p.cfg.ShardMapRefreshInterval > 0 {
		t := time.NewTicker(p.cfg.ShardMapRefreshInterval)
		defer t.Stop()
		tick = t.C
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	bo.Reset()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		if need {
			if err := p.refresh(); err != nil {
				retry.Reset(bo.NextBackOff())
			} else {
				bo.Reset()
				need = false
			}
		}
		select {
		case <-p.refreshCh:
			need = true
		case <-tick:
			need = true
		case <-retry.C:
			need = true
		case <-p.stopCh:
			return
		}
	}
}

// refresh lists the stream's shards and applies the result.
func (p *Producer) refresh() error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(p.ctx, 2*p.cfg.RequestTimeout)
	infos, err := p.listShards(ctx)
	cancel()
	if err == nil {
		err = p.applyMap(infos, p.mono(start))
	}
	if err != nil {
		if p.ctx.Err() == nil {
			p.log.Warn("shard map refresh failed", zap.Error(err))
		}
		err = fmt.Errorf("refresh shard map: %w", err)
		p.mapErr.Store(&err)
		p.m.ShardMapRefreshed(0, false, err)
		return err
	}
	p.mapErr.Store(nil)
	return nil
}

// listShards returns every shard of the stream, open and closed (closed
// shards are kept to check where a record landed).
func (p *Producer) listShards(ctx context.Context) ([]shardInfo, error) {
	in := &kinesis.ListShardsInput{}
	if p.cfg.StreamARN != "" {
		in.StreamARN = aws.String(p.cfg.StreamARN)
	} else {
		in.StreamName = aws.String(p.cfg.StreamName)
	}
	var out []shardInfo
	for {
		res, err := p.client.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, s := range res.Shards {
			if s.ShardId == nil || s.HashKeyRange == nil || s.HashKeyRange.StartingHashKey == nil || s.HashKeyRange.EndingHashKey == nil {
				return nil, errors.New("ListShards returned a shard without id or hash key range")
			}
			start, err1 := hashkey.Parse(*s.HashKeyRange.StartingHashKey)
			end, err2 := hashkey.Parse(*s.HashKeyRange.EndingHashKey)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("shard %s: %w", *s.ShardId, err)
			}
			open := s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil
			out = append(out, shardInfo{id: *s.ShardId, start: start, end: end, open: open})
		}
		if res.NextToken == nil || *res.NextToken == "" {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}
