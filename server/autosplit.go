package server

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// Automatic splitting of hot shards in ON_DEMAND streams.
//
// Policy (see also the package documentation):
//
//   - Every open shard of an ON_DEMAND stream counts the bytes (data plus
//     partition key) and records it stores (other streams' writes skip
//     this), and keeps a sample of the hash keys written to it (one key in
//     keySampleEvery, the last keySamples of them).
//   - A background loop closes a measurement bucket every
//     AutoSplitWindow/autoSplitBuckets. A bucket is hot when the shard took in
//     more than AutoSplitThreshold times its write capacity (1 MiB/s or 1,000
//     records/s) over it. A shard whose last autoSplitBuckets buckets were all
//     hot (so: above the threshold for the whole window) is split.
//   - The split point is the median of the sampled hash keys, so that each
//     child gets about half the recent load; when the median cannot split the
//     range (it equals the shard's starting key, or the shard writes under the
//     AUTO distribution, which has no hash keys) the midpoint of the range is
//     used instead.
//   - After an automatic split a stream waits AutoSplitCooldown before the
//     next one; every hot shard of the stream splits in the same round.
//   - A stream never grows beyond OnDemandMaxShards open shards (nor the
//     account's ShardLimit); shards are never merged automatically.
//   - Only ACTIVE streams in ON_DEMAND mode split. A PROVISIONED stream (also
//     one switched from ON_DEMAND by UpdateStreamMode) changes only when asked.
//     Automatic splits do not count towards UpdateShardCount's daily cap and
//     do not put the stream in UPDATING.
//
// Buckets close on a real-time ticker; the rate over each is measured with
// Config.Now (so a test clock that stands still measures nothing).

const (
	autoSplitBuckets = 10
	keySamples       = 256
	keySampleEvery   = 4
)

// shardHeat is a shard's recent incoming load.
type shardHeat struct {
	bytes atomic.Int64
	recs  atomic.Int64
	seen  atomic.Uint64 // hash keys offered to sample

	mu   sync.Mutex // guards keys and kept
	keys [keySamples]hashkey.Key
	kept uint64 // keys stored so far; the ring position is kept % keySamples

	hot int // consecutive hot buckets; only the splitter loop touches it
}

// add counts n records of b bytes stored.
func (h *shardHeat) add(b, n int) {
	h.bytes.Add(int64(b))
	h.recs.Add(int64(n))
}

// sample offers the hash key of a record routed to the shard.
func (h *shardHeat) sample(k hashkey.Key) {
	if h.seen.Add(1)%keySampleEvery != 0 {
		return
	}
	h.mu.Lock()
	h.keys[h.kept%keySamples] = k
	h.kept++
	h.mu.Unlock()
}

// median returns the median of the sampled keys, and false without samples.
func (h *shardHeat) median() (hashkey.Key, bool) {
	h.mu.Lock()
	n := min(h.kept, keySamples)
	ks := slices.Clone(h.keys[:n])
	h.mu.Unlock()
	if n == 0 {
		return hashkey.Key{}, false
	}
	slices.SortFunc(ks, hashkey.Key.Cmp)
	return ks[n/2], true
}

// splitKey picks where to split sh: the median sampled key, or the midpoint.
func splitKey(sh *shard) hashkey.Key {
	if m, ok := sh.heat.median(); ok && m.Cmp(sh.start) > 0 && m.Cmp(sh.end) <= 0 {
		return m
	}
	d, _ := sh.end.Sub(sh.start)
	half := hashkey.Key{Hi: d.Hi >> 1, Lo: d.Lo>>1 | d.Hi<<63}
	mid, _ := sh.start.Add(half)
	mid, _ = mid.Add(hashkey.Key{Lo: 1})
	return mid
}

// autoSplitter runs the measurement loop until Shutdown.
func (s *Server) autoSplitter() {
	bucket := s.cfg.AutoSplitWindow / autoSplitBuckets
	t := time.NewTicker(bucket)
	defer t.Stop()
	last := s.cfg.Now()
	cooldown := map[*stream]time.Time{}
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			now := s.cfg.Now()
			elapsed := now.Sub(last).Seconds()
			last = now
			if elapsed <= 0 {
				continue
			}
			for st, hot := range s.measure(elapsed) {
				if until, ok := cooldown[st]; ok && now.Before(until) {
					continue
				}
				if s.autoSplit(st, hot) > 0 {
					cooldown[st] = now.Add(s.cfg.AutoSplitCooldown)
				}
			}
			for st := range cooldown {
				if now.After(cooldown[st]) {
					delete(cooldown, st)
				}
			}
		}
	}
}

// measure closes a bucket of elapsed seconds on every open shard and returns
// the shards of ON_DEMAND ACTIVE streams that were hot for a whole window.
func (s *Server) measure(elapsed float64) map[*stream][]*shard {
	maxBytes := s.cfg.AutoSplitThreshold * writeBytesPerSec * elapsed
	maxRecs := s.cfg.AutoSplitThreshold * writeRecordsPerSec * elapsed
	out := map[*stream][]*shard{}
	for _, st := range s.snapshot() {
		st.mu.RLock()
		eligible := st.mode == modeOnDemand && st.status == statusActive
		for _, sh := range st.open {
			b, n := sh.heat.bytes.Swap(0), sh.heat.recs.Swap(0)
			if !eligible || (float64(b) <= maxBytes && float64(n) <= maxRecs) {
				sh.heat.hot = 0
				continue
			}
			if sh.heat.hot++; sh.heat.hot >= autoSplitBuckets {
				out[st] = append(out[st], sh)
			}
		}
		st.mu.RUnlock()
	}
	return out
}

// autoSplit splits the hot shards of st that it still may, all in one
// reshard (one catalog write), and returns how many it split.
func (s *Server) autoSplit(st *stream, hot []*shard) int {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	plan := s.newPlan(st)
	st.mu.RLock()
	ok := s.current(st.key) == st && st.mode == modeOnDemand && st.status == statusActive
	open := len(st.open)
	st.mu.RUnlock()
	if !ok {
		return 0
	}
	var split []*shard
	for _, sh := range hot {
		if sh.closed.Load() {
			continue
		}
		if open+1 > int(s.cfg.OnDemandMaxShards) {
			s.log.Warn("hot shard not split: shard limit reached", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Int("open", open))
			break
		}
		plan.split(sh, splitKey(sh))
		split = append(split, sh)
		open++
	}
	if len(split) == 0 {
		return 0
	}
	if err := s.commit(bgContext(), plan); err != nil {
		// Nothing was split: the next window tries again.
		s.log.Error("automatic split", zap.String("stream", st.name), zap.Int("shards", len(split)), zap.Error(err))
		return 0
	}
	for _, sh := range split {
		s.log.Info("hot shard split", zap.String("stream", st.name), zap.String("shard", sh.id))
		s.cfg.Metrics.Reshard(st.name, "split")
	}
	return len(split)
}
