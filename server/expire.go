package server

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// expireClosedShards drops the closed shards of every stream whose records
// have all expired, as Kinesis does once a closed shard is older than the
// retention period: a shard closed before the retention cutoff holds only
// records that arrived before it. The catalog record changes first
// (durable before visible); the logs go after. A log whose deletion fails,
// or a crash in between, leaves data that no record names: the file engine
// removes it at the next start. Housekeeping calls this.
func (s *Server) expireClosedShards(now time.Time) {
	for _, st := range s.snapshot() {
		st.mu.RLock()
		cutoff := st.retentionCutoff(now)
		expired := false
		for _, sh := range st.shards {
			if sh.closed.Load() && sh.closedMs > 0 && sh.closedMs < cutoff {
				expired = true
				break
			}
		}
		st.mu.RUnlock()
		if expired {
			s.expireShards(bgContext(), st, now)
		}
	}
}

// expireShards drops st's closed shards closed before its retention cutoff.
func (s *Server) expireShards(ctx context.Context, st *stream, now time.Time) {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	st.mu.RLock()
	if s.current(st.key) != st || st.status == statusDeleting {
		st.mu.RUnlock()
		return
	}
	cutoff := st.retentionCutoff(now)
	gone := map[uint32]bool{}
	var drop []*shard
	for _, sh := range st.shards {
		if sh.closed.Load() && sh.closedMs > 0 && sh.closedMs < cutoff {
			gone[sh.index] = true
			drop = append(drop, sh)
		}
	}
	m := st.metaLocked()
	st.mu.RUnlock()
	if len(drop) == 0 {
		return
	}
	m.Shards = slices.DeleteFunc(m.Shards, func(sm engine.ShardMeta) bool { return gone[sm.Index] })
	if err := s.persistMeta(ctx, st, m); err != nil {
		s.log.Warn("drop expired closed shards", zap.String("stream", st.name), zap.Error(err))
		return
	}
	st.mu.Lock()
	st.shards = slices.DeleteFunc(st.shards, func(sh *shard) bool { return gone[sh.index] })
	st.mu.Unlock()
	for _, sh := range drop {
		_ = sh.log.Close()
		sh.signal()
		if err := s.eng.DeleteLog(ctx, st.logID(sh.index)); err != nil {
			s.log.Warn("delete an expired shard's log", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
		}
	}
	s.log.Info("expired closed shards dropped", zap.String("stream", st.name), zap.Int("shards", len(drop)))
}
