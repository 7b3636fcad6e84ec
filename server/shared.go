package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// Shared catalogs: several servers on one engine (engine.CatalogWatcher).
//
// Each server keeps its own view of the streams, as on a private engine, and
// follows the catalog: a change any server stores reaches the others through
// the engine's watch, and they apply it (refresh). No server owns a stream
// or a shard. The engine orders appends and fences sealed logs; the
// catalog's compare-and-set orders control-plane changes: a server whose
// view is stale loses the compare-and-set, refreshes, and the caller retries
// (ResourceInUseException). A status transition (CREATING, UPDATING,
// DELETING) that a server sees is finished by whichever server's timer runs
// out first, so one server's death does not leave a stream CREATING.

// resyncInterval is how often a server compares every stream with a shared
// catalog even without a watch event (a missed event costs at most this).
const resyncInterval = 30 * time.Second

// shared reports whether other servers may change the catalog.
func (s *Server) shared() bool {
	_, ok := s.eng.(engine.CatalogWatcher)
	return ok
}

// followCatalog applies the changes other servers make to a shared catalog
// until Shutdown. It runs on a background goroutine.
func (s *Server) followCatalog(w engine.CatalogWatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // owned by this goroutine: ends when ctx is cancelled
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := w.WatchCatalog(ctx)
		if err != nil {
			s.log.Warn("watch the catalog", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		s.resyncAll(ctx)
		tick := time.NewTicker(resyncInterval)
	events:
		for {
			select {
			case name, ok := <-ch:
				if !ok {
					break events
				}
				if name == "" {
					s.resyncAll(ctx)
				} else {
					s.refresh(ctx, name)
				}
			case <-tick.C:
				s.resyncAll(ctx)
			}
		}
		tick.Stop()
	}
}

// resyncAll compares every stream with the catalog.
func (s *Server) resyncAll(ctx context.Context) {
	recs, err := s.cat.Streams(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read the catalog", zap.Error(err))
		}
		return
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Meta.Key()] = true
		s.refreshWith(ctx, r.Meta.Key(), &r.Meta, r.Version)
	}
	for name, st := range s.snapshot() {
		if !seen[name] && s.gone(ctx, st) {
			s.refreshWith(ctx, name, nil, 0)
		}
	}
}

// gone confirms that st, missing from a listing of the catalog, was deleted:
// its record reads as not found and its first log is gone too. A listing
// taken while the engine recovers (a NATS cluster restarting) can come back
// short; forgetting a stream on its word alone would answer
// ResourceNotFoundException for a stream that exists. A deletion that this
// check misses (its logs not yet removed) is applied at a later comparison
// or by the watch event of the deletion, which refresh handles directly.
func (s *Server) gone(ctx context.Context, st *stream) bool {
	if _, _, err := s.cat.Stream(ctx, st.key); !errors.Is(err, engine.ErrNotFound) {
		return false // there, or unknown: keep it
	}
	st.mu.RLock()
	var first *shard
	if len(st.shards) > 0 {
		first = st.shards[0]
	}
	st.mu.RUnlock()
	if first == nil {
		return true
	}
	_, err := first.log.Info(ctx)
	return errors.Is(err, engine.ErrClosed) || errors.Is(err, engine.ErrNotFound)
}

// refresh brings the server's view of stream name up to date with the
// catalog.
func (s *Server) refresh(ctx context.Context, name string) {
	m, v, err := s.cat.Stream(ctx, name)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		s.refreshWith(ctx, name, nil, 0)
	case err != nil:
		if ctx.Err() == nil {
			s.log.Warn("read a stream's catalog record", zap.String("stream", name), zap.Error(err))
		}
	default:
		s.refreshWith(ctx, name, &m, v)
	}
}

// refreshWith applies the catalog record m (version v) of name, nil when
// the catalog holds none, to the server's view.
func (s *Server) refreshWith(ctx context.Context, name string, m *engine.StreamMeta, v uint64) {
	st := s.current(name)
	if st != nil && (m == nil || m.ID != st.id) {
		s.forget(st)
		st = nil
	}
	if m == nil {
		return
	}
	if st == nil {
		s.adopt(ctx, *m, v)
		return
	}
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if s.current(name) != st || v <= st.version {
		return // forgotten meanwhile, or nothing new (this server's own change)
	}
	if err := s.applyLocked(ctx, st, *m, v, nil); err != nil {
		s.log.Warn("apply a stream's catalog record", zap.String("stream", name), zap.Error(err))
	}
}

// adopt publishes a stream another server created.
func (s *Server) adopt(ctx context.Context, m engine.StreamMeta, v uint64) {
	s.namesMu.Lock()
	_, creating := s.reserved[m.Key()]
	s.namesMu.Unlock()
	if creating {
		return // this server's own CreateStream publishes it
	}
	st, _, err := s.loadStream(ctx, m, false)
	if err != nil {
		s.log.Warn("open a stream another server created", zap.String("stream", m.Name), zap.Error(err))
		return
	}
	st.version = v
	s.namesMu.Lock()
	_, creating = s.reserved[m.Key()]
	if creating || s.current(m.Key()) != nil {
		s.namesMu.Unlock()
		s.closeLogs(st)
		return
	}
	s.publishLocked(m.Key(), st)
	s.namesMu.Unlock()
	s.resumeTransition(st, "")
}

// forget drops st from the server's view (its record left the catalog, or
// the name now belongs to a new incarnation): its readers end, its log
// handles close. The data is the deleting server's to remove.
func (s *Server) forget(st *stream) {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	s.namesMu.Lock()
	if s.current(st.key) != st {
		s.namesMu.Unlock()
		return
	}
	s.publishLocked(st.key, nil)
	s.namesMu.Unlock()
	s.cfg.Metrics.StreamDeleted(st.name)
	st.mu.Lock()
	st.statusTimer.stop()
	for _, c := range st.consumers {
		c.timer.stop()
	}
	shards := st.shards
	st.mu.Unlock()
	s.closeLogs(st)
	for _, sh := range shards {
		sh.signal()
	}
	s.log.Debug("stream removed by another server", zap.String("stream", st.name))
}

// applyLocked makes st match its catalog record m of version v. premade
// holds shards this server already opened for indexes m names (a reshard
// finishing, see rollForward). The caller holds st.ctl.
func (s *Server) applyLocked(ctx context.Context, st *stream, m engine.StreamMeta, v uint64, premade map[uint32]*shard) error {
	st.mu.RLock()
	have := make(map[uint32]*shard, len(st.shards))
	for _, sh := range st.shards {
		have[sh.index] = sh
	}
	oldStatus := st.status
	st.mu.RUnlock()
	// Open the logs of new shards first (I/O, without st.mu).
	added := map[uint32]*shard{}
	for _, ms := range m.Shards {
		if have[ms.Index] != nil {
			continue
		}
		sh := premade[ms.Index]
		if sh == nil {
			var err error
			if sh, err = s.shardOf(ctx, st, ms); err != nil {
				for _, a := range added {
					if premade[a.index] == nil {
						_ = a.log.Close()
					}
				}
				return err
			}
		}
		added[ms.Index] = sh
	}
	var closing, dropped []*shard
	st.mu.Lock()
	keep := make([]*shard, 0, len(m.Shards))
	for _, ms := range m.Shards {
		sh := have[ms.Index]
		if sh == nil {
			sh = added[ms.Index]
			sh.endSeq, sh.closedMs = ms.EndSeq, ms.ClosedMs
			sh.closed.Store(ms.EndSeq != "")
		} else if ms.EndSeq != "" && !sh.closed.Load() {
			sh.endSeq, sh.closedMs = ms.EndSeq, ms.ClosedMs
			sh.closed.Store(true)
			closing = append(closing, sh)
		}
		if len(ms.DataKeys) != len(sh.keysOf().keys) || ms.DataKeys != nil && ms.DataKeys[len(ms.DataKeys)-1].Current != (sh.keysOf().seal >= 0) {
			sh.keys.Store(keysFromMeta(ms.DataKeys)) // another server changed the stream's encryption
		}
		delete(have, ms.Index)
		keep = append(keep, sh)
	}
	for _, sh := range have {
		dropped = append(dropped, sh)
	}
	st.shards = keep
	st.status, st.retentionHours, st.maxRecordKiB = m.Status, m.RetentionHours, m.MaxRecordKiB
	st.retentionBytes = m.RetentionBytes
	st.setMode(m.Mode)
	st.tags = m.Tags
	if st.tags == nil {
		st.tags = map[string]string{}
	}
	if m.Policy != st.policy.Load().policyDoc() {
		st.policy.Store(s.storedPolicy(st, "", m.Policy))
	}
	st.warmMiBps, st.distribution = m.WarmMiBps, m.Distribution
	if !slices.Equal(st.metrics, m.Metrics) {
		s.cfg.Metrics.ShardMonitoring(st.name, m.Metrics)
	}
	st.setMetricsLocked(m.Metrics)
	st.trimFloorMs, st.scaleTimes = m.TrimFloorMs, m.ScaleTimes
	st.encKeyID, st.encChanges = m.KeyID, m.EncryptionChanges
	st.nextIndex = max(st.nextIndex, m.NextIndex)
	for _, sh := range st.shards {
		st.nextIndex = max(st.nextIndex, sh.index+1)
	}
	gone := s.applyConsumersLocked(st, m.Consumers)
	st.rebuildOpen()
	st.mu.Unlock()
	st.version = v
	for _, arn := range gone {
		s.endSubscriptions(arn, ErrResourceNotFound.With("Consumer %s under account %s has been deregistered.", arn, st.account))
	}
	for _, sh := range closing {
		sh.signal() // its subscribers finish with ChildShards
	}
	for _, sh := range dropped {
		_ = sh.log.Close()
		sh.signal()
	}
	if m.Status != oldStatus {
		s.resumeTransition(st, oldStatus)
	}
	return nil
}

// applyConsumersLocked makes st's consumers match the catalog's, starts
// this server's timers for the CREATING and DELETING periods it sees begin
// (so that they end without the server that began them), and returns the
// ARNs of consumers that are being deregistered, whose subscriptions on
// this server must end. The caller holds st.mu.
func (s *Server) applyConsumersLocked(st *stream, ms []engine.ConsumerMeta) (gone []string) {
	keep := map[string]bool{}
	for _, mc := range ms {
		keep[mc.Name] = true
		c := st.consumers[mc.Name]
		old := ""
		if c == nil || c.created != mc.Created {
			if c != nil {
				c.timer.stop()
				gone = append(gone, c.arn)
			}
			c = &consumer{name: mc.Name, created: mc.Created, arn: consumerARN(st, mc.Name, mc.Created)}
			st.consumers[mc.Name] = c
		} else {
			old = c.status
		}
		c.status, c.tags = mc.Status, mc.Tags
		if mc.Policy != c.policy.policyDoc() {
			c.policy = s.storedPolicy(st, c.name, mc.Policy)
		}
		if c.status == old {
			continue
		}
		switch c.status {
		case statusCreating:
			s.consumerAfterLocked(st, c, s.cfg.ConsumerCreateDelay, statusCreating)
		case statusDeleting:
			gone = append(gone, c.arn)
			s.consumerAfterLocked(st, c, s.cfg.ConsumerDeleteDelay, statusDeleting)
		}
	}
	for name, c := range st.consumers {
		if !keep[name] {
			c.timer.stop()
			delete(st.consumers, name)
			gone = append(gone, c.arn)
		}
	}
	return gone
}

// shardOf opens the log of a shard the catalog names and builds its state.
func (s *Server) shardOf(ctx context.Context, st *stream, m engine.ShardMeta) (*shard, error) {
	sh := &shard{index: m.Index, id: shardIDOf(m.Index), parent: m.Parent, adjParent: m.AdjParent,
		createdMs: m.CreatedMs, endSeq: m.EndSeq, closedMs: m.ClosedMs}
	var err error
	if sh.start, err = hashkey.Parse(m.Start); err != nil {
		return nil, fmt.Errorf("metadata: stream %s shard %d: %w", st.name, m.Index, err)
	}
	if sh.end, err = hashkey.Parse(m.End); err != nil {
		return nil, fmt.Errorf("metadata: stream %s shard %d: %w", st.name, m.Index, err)
	}
	if sh.log, err = s.eng.OpenLog(ctx, st.logID(m.Index)); err != nil {
		return nil, fmt.Errorf("open stream %s %s: %w", st.name, sh.id, err)
	}
	s.attachLimits(sh)
	sh.closed.Store(sh.endSeq != "")
	sh.keys.Store(keysFromMeta(m.DataKeys))
	return sh, nil
}

// resumeTransition starts this server's timer for a status transition it
// sees in a shared catalog (from is the status before), so that the
// transition ends even if the server that began it is gone. The
// coordinator does this (every server, on an engine without leases);
// whichever server's timer runs first, the beginner's or the
// coordinator's, stores the change, and the other loses the
// compare-and-set and refreshes.
func (s *Server) resumeTransition(st *stream, from string) {
	if !s.shared() || !s.housekeeper() {
		return
	}
	st.mu.RLock()
	status := st.status
	st.mu.RUnlock()
	if status == from {
		return
	}
	switch status {
	case statusCreating:
		s.afterDelay(st, s.cfg.CreateDelay, statusCreating, statusActive)
	case statusUpdating:
		s.afterDelay(st, s.cfg.UpdateDelay, statusUpdating, statusActive)
	case statusDeleting:
		s.afterDelay(st, s.cfg.DeleteDelay, statusDeleting, "")
	}
}

// staleError is the answer to a change that lost the catalog's
// compare-and-set to another server: the view is refreshed in the
// background and the caller retries.
func (s *Server) staleError(st *stream) error {
	s.goBackground(func() { s.refresh(bgContext(), st.name) })
	return ErrResourceInUse.With("Stream %s under account %s was changed by another request at the same time; retry.", st.name, st.account)
}

// awaitClosed waits, after an append failed because the engine had sealed
// sh, until the server's view shows sh closed (another server's reshard
// sealed it and is storing the closing). It reports false if the catalog
// does not show it closed within a few seconds or ctx ends: the append
// then fails and the caller retries.
func (s *Server) awaitClosed(ctx context.Context, st *stream, sh *shard) bool {
	if sh.closed.Load() {
		return true
	}
	if !s.shared() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		s.refresh(ctx, st.name)
		if sh.closed.Load() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// unseal opens the shards a failed reshard sealed again. It reports whether
// the engine cannot (engine.ErrIrreversible): the reshard must then finish.
func (s *Server) unseal(st *stream, sealed []*shard) (irreversible bool) {
	for _, sh := range sealed {
		err := sh.log.Unseal(bgContext())
		if errors.Is(err, engine.ErrIrreversible) {
			return true
		}
		if err != nil {
			s.log.Error("unseal a shard after a failed reshard", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
		}
	}
	return false
}

// rollForward finishes a reshard whose parents the engine sealed for good
// but whose catalog write failed (cause): it reads the stream's record again
// and stores the reshard on top of it, retrying for a while. It fails, and
// the new shards' logs go, only when another change closed the parents
// first (a concurrent reshard won) or the catalog stays unreachable; the
// parents then stay sealed, and appends to them fail until a reshard that
// closes them is stored. The caller holds st.ctl.
func (s *Server) rollForward(st *stream, p *reshardPlan, cause error) error {
	ctx := bgContext()
	closes := map[uint32]bool{}
	for _, sh := range p.closes {
		closes[sh.index] = true
	}
	premade := map[uint32]*shard{}
	for _, sh := range p.made {
		premade[sh.index] = sh
	}
	delay := 50 * time.Millisecond
	giveUp := time.NewTimer(30 * time.Second)
	defer giveUp.Stop()
	for attempt := 1; ; attempt++ {
		m, v, err := s.cat.Stream(ctx, st.key)
		if err == nil {
			if m.ID != st.id {
				return st.missing()
			}
			ok := m.NextIndex <= p.made[0].index
			for i := range m.Shards {
				if closes[m.Shards[i].Index] {
					if m.Shards[i].EndSeq != "" {
						ok = false // closed by a reshard that won
					}
					m.Shards[i].EndSeq, m.Shards[i].ClosedMs = endSeqOf(st, &shard{index: m.Shards[i].Index}), p.now
				}
				if m.Shards[i].Index >= p.made[0].index {
					ok = false
				}
			}
			if !ok {
				s.log.Warn("reshard lost to a concurrent change", zap.String("stream", st.name), zap.Error(cause))
				s.goBackground(func() { s.refresh(bgContext(), st.name) })
				return ErrResourceInUse.With("Stream %s under account %s was resharded by another request at the same time.", st.name, st.account)
			}
			for _, sh := range p.made {
				m.Shards = append(m.Shards, sh.meta())
			}
			m.NextIndex = p.next
			if p.status != "" {
				m.Status = p.status
			}
			if p.scales != nil {
				m.ScaleTimes = p.scales
			}
			nv, err := s.cat.PutStream(ctx, m, v)
			if err == nil {
				s.log.Info("reshard finished after a failed catalog write", zap.String("stream", st.name), zap.Int("attempts", attempt), zap.NamedError("first", cause))
				return s.applyLocked(ctx, st, m, nv, premade)
			}
			cause = err
		} else {
			cause = err
		}
		select {
		case <-giveUp.C:
			return fmt.Errorf("reshard %s: parents sealed but the catalog write keeps failing: %w", st.name, cause)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
