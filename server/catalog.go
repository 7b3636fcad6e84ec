package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// The server's view of the catalog: an immutable snapshot of the streams by
// name for the data plane, replaced whole (copy on write) when a stream is
// created or forgotten, and one catalog record per stream, written with
// compare-and-set under the stream's ctl lock.

type accountSettings struct {
	CommitmentStatus string
	CommitmentStart  int64
	CommitmentEnd    int64
}

// snapshot returns the current streams by name. The map must not be changed.
func (s *Server) snapshot() map[string]*stream { return *s.streams.Load() }

// current returns the published stream named name, or nil.
func (s *Server) current(name string) *stream { return s.snapshot()[name] }

// publish replaces the snapshot with one where name maps to st (or, for a
// nil st, is absent). The caller holds s.namesMu.
func (s *Server) publishLocked(name string, st *stream) {
	next := maps.Clone(s.snapshot())
	if st == nil {
		delete(next, name)
	} else {
		next[name] = st
	}
	s.streams.Store(&next)
}

// metaLocked returns st's catalog record. The caller holds st.mu.
func (st *stream) metaLocked() engine.StreamMeta {
	m := engine.StreamMeta{
		Name: st.name, ID: st.id, Created: st.created, Status: st.status, Mode: st.mode,
		RetentionHours: st.retentionHours, RetentionBytes: st.retentionBytes, Tags: st.tags, MaxRecordKiB: st.maxRecordKiB,
		WarmMiBps: st.warmMiBps, Distribution: st.distribution, Metrics: st.metrics,
		TrimFloorMs: st.trimFloorMs, NextIndex: st.nextIndex, ScaleTimes: st.scaleTimes,
		Account: st.catAccount, Policy: st.policy.Load().policyDoc(),
		KeyID: st.encKeyID, EncryptionChanges: st.encChanges,
	}
	if st.encKeyID != "" {
		m.Encryption = encryptionKMS
	}
	for _, sh := range st.shards {
		m.Shards = append(m.Shards, sh.meta())
	}
	for _, c := range st.sortedConsumers() {
		m.Consumers = append(m.Consumers, engine.ConsumerMeta{Name: c.name, Created: c.created, Status: c.status, Tags: c.tags, Policy: c.policy.policyDoc()})
	}
	return m.Clone()
}

// meta returns the shard's catalog entry. The caller holds its stream's mu.
func (sh *shard) meta() engine.ShardMeta {
	return engine.ShardMeta{Index: sh.index, Parent: sh.parent, AdjParent: sh.adjParent,
		Start: sh.start.String(), End: sh.end.String(), CreatedMs: sh.createdMs, EndSeq: sh.endSeq, ClosedMs: sh.closedMs,
		DataKeys: sh.keysOf().metaKeys()}
}

// persist writes st's in-memory metadata to the catalog. The caller holds
// st.ctl (and not st.mu).
func (s *Server) persist(ctx context.Context, st *stream) error {
	st.mu.RLock()
	m := st.metaLocked()
	st.mu.RUnlock()
	return s.persistMeta(ctx, st, m)
}

// persistMeta writes m as st's catalog record. The caller holds st.ctl.
func (s *Server) persistMeta(ctx context.Context, st *stream, m engine.StreamMeta) error {
	v, err := s.cat.PutStream(ctx, m, st.version)
	if errors.Is(err, engine.ErrConflict) && s.shared() {
		return s.staleError(st)
	}
	if err != nil {
		return fmt.Errorf("save metadata of stream %s: %w", st.name, err)
	}
	st.version = v
	return nil
}

// bgContext is the context of catalog writes that have no request: timers,
// load, automatic splits. It is never cancelled: a write in flight finishes.
func bgContext() context.Context { return context.Background() }

// load reads the catalog, opens every shard log, finishes transitions a crash
// interrupted, and deletes the logs that no stream record names (streams
// deleted, or reshards and creations that never reached the catalog).
func (s *Server) load(ctx context.Context) error {
	acct, av, err := s.cat.Account(ctx)
	if err != nil {
		return fmt.Errorf("read account metadata: %w", err)
	}
	if acct.Secret == "" {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return fmt.Errorf("generate secret: %w", err)
		}
		acct.Secret = hex.EncodeToString(secret)
		if av, err = s.cat.PutAccount(ctx, acct, av); err != nil {
			return fmt.Errorf("save account metadata: %w", err)
		}
	}
	if s.secret, err = hex.DecodeString(acct.Secret); err != nil || len(s.secret) < 16 {
		return errors.New("metadata: bad secret")
	}
	s.account = accountSettings{CommitmentStatus: acct.CommitmentStatus, CommitmentStart: acct.CommitmentStart, CommitmentEnd: acct.CommitmentEnd}
	s.accountVersion = av

	recs, err := s.cat.Streams(ctx)
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	streams := map[string]*stream{}
	keep := map[engine.LogID]bool{}
	for _, rec := range recs {
		st, dirty, err := s.loadStream(ctx, rec.Meta, !s.shared())
		if err != nil {
			return err
		}
		st.version = rec.Version
		if len(st.metrics) > 0 {
			s.cfg.Metrics.ShardMonitoring(st.name, st.metrics)
		}
		if _, ok := s.eng.(engine.SizeTrimmer); st.retentionBytes > 0 && !ok {
			s.log.Warn("the engine cannot trim logs by size: the stream's size-based retention is not enforced",
				zap.String("stream", st.name), zap.Int64("retention_bytes", st.retentionBytes))
		}
		if st.status == statusDeleting && !s.shared() {
			// Finish the deletion: the record goes, and with it (below) the logs.
			if err := s.cat.DeleteStream(ctx, st.key, st.version); err != nil {
				return fmt.Errorf("finish deleting stream %s: %w", st.name, err)
			}
			s.closeLogs(st)
			continue
		}
		if dirty {
			if err := s.persist(ctx, st); err != nil {
				return err
			}
		}
		for _, sh := range st.shards {
			keep[st.logID(sh.index)] = true
		}
		streams[st.name] = st
	}
	s.streams.Store(&streams)
	if s.shared() {
		// Other servers finish what they began; this one finishes what
		// they leave (resumeTransition), and deletes no log its view does
		// not name: another server may be creating it.
		for _, st := range streams {
			s.resumeTransition(st, "")
		}
		return nil
	}
	ids, err := s.eng.Logs(ctx)
	if err != nil {
		return fmt.Errorf("list shard logs: %w", err)
	}
	for _, id := range ids {
		if keep[id] {
			continue
		}
		s.log.Info("removing shard data that no stream names", zap.Stringer("log", id))
		if err := s.eng.DeleteLog(ctx, id); err != nil {
			return fmt.Errorf("remove shard log %s: %w", id, err)
		}
	}
	return nil
}

// loadStream builds a stream from its catalog record. With finish it ends
// the transitions a restart ends (CREATING and UPDATING become ACTIVE,
// consumers CREATING become ACTIVE and DELETING ones go); dirty reports such
// a change. A server on a shared catalog leaves them to the timers.
func (s *Server) loadStream(ctx context.Context, ms engine.StreamMeta, finish bool) (st *stream, dirty bool, err error) {
	st = &stream{
		name: ms.Name, account: cmp.Or(ms.Account, s.cfg.AccountID), key: ms.Key(), id: ms.ID, epoch: epochOf(ms.ID), created: ms.Created,
		status: ms.Status, retentionHours: ms.RetentionHours, retentionBytes: ms.RetentionBytes, tags: ms.Tags,
		maxRecordKiB: ms.MaxRecordKiB, warmMiBps: ms.WarmMiBps, distribution: ms.Distribution,
		metrics: ms.Metrics, trimFloorMs: ms.TrimFloorMs, nextIndex: ms.NextIndex, scaleTimes: ms.ScaleTimes,
	}
	st.arn = s.streamARN(st.account, st.name)
	st.setMetricsLocked(ms.Metrics)
	st.catAccount = ms.Account
	st.encKeyID, st.encChanges = ms.KeyID, ms.EncryptionChanges
	st.policy.Store(s.storedPolicy(st, "", ms.Policy))
	st.setMode(ms.Mode)
	if st.tags == nil {
		st.tags = map[string]string{}
	}
	st.consumers = map[string]*consumer{}
	for _, mc := range ms.Consumers {
		c := &consumer{name: mc.Name, created: mc.Created, status: mc.Status, tags: mc.Tags}
		switch status := c.status; {
		case !finish: // keep it: the status timers end it
		case status == statusDeleting:
			dirty = true
			continue // finish the deregistration
		case status == statusCreating:
			c.status = statusActive // finish the registration
			dirty = true
		}
		c.arn = consumerARN(st, c.name, c.created)
		c.policy = s.storedPolicy(st, c.name, mc.Policy)
		st.consumers[c.name] = c
	}
	if finish && (st.status == statusCreating || st.status == statusUpdating) {
		st.status = statusActive
		dirty = true
	}
	for _, m := range ms.Shards {
		sh, err := s.shardOf(ctx, st, m)
		if err != nil {
			s.closeLogs(st)
			return nil, false, err
		}
		st.nextIndex = max(st.nextIndex, sh.index+1)
		st.shards = append(st.shards, sh)
	}
	st.rebuildOpen()
	return st, dirty, nil
}

// closeLogs closes the handles of st's shard logs (the data stays).
func (s *Server) closeLogs(st *stream) {
	for _, sh := range st.shards {
		if err := sh.log.Close(); err != nil {
			s.log.Warn("close shard log", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
		}
	}
}

// closeStreams closes every shard log handle. Background work has stopped.
func (s *Server) closeStreams() error {
	var errs []error
	for _, st := range s.snapshot() {
		st.mu.Lock()
		st.statusTimer.stop()
		for _, c := range st.consumers {
			c.timer.stop()
		}
		shards := st.shards
		st.mu.Unlock()
		for _, sh := range shards {
			if err := sh.log.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
				errs = append(errs, fmt.Errorf("close %s/%s: %w", st.name, sh.id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// enforceRetention asks the engine to delete what has expired: records older
// than their stream's retention period, then, for streams with size-based
// retention (retentionBytes), the oldest whole segments of each shard log
// beyond that many bytes. Size wins over time: a segment goes however young
// its records are. Either way the log's oldest record moves forward, and
// trimHorizon (SeekTime, never before the oldest) follows it: readers,
// TRIM_HORIZON and iterators into the dropped data go on from the first
// record kept, as for expired data.
func (s *Server) enforceRetention() {
	if !s.housekeeper() {
		return // the coordinator of the shared catalog does it
	}
	now := s.cfg.Now()
	s.expireClosedShards(now)
	type job struct {
		st     *stream
		log    engine.Log
		id     engine.LogID
		cutoff int64
		bytes  int64
	}
	var jobs []job
	for _, st := range s.snapshot() {
		st.mu.RLock()
		cutoff := st.retentionCutoff(now)
		for _, sh := range st.shards {
			jobs = append(jobs, job{st, sh.log, st.logID(sh.index), cutoff, st.retentionBytes})
		}
		st.mu.RUnlock()
	}
	ctx := bgContext()
	trimmer, _ := s.eng.(engine.SizeTrimmer)
	sized := map[*stream]int{}
	for _, j := range jobs {
		if n, err := j.log.TrimBefore(ctx, j.cutoff); err != nil && !errors.Is(err, engine.ErrClosed) {
			s.log.Error("retention trim", zap.Error(err))
		} else if n > 0 {
			s.log.Debug("retention trimmed", zap.Int("units", n))
		}
		if j.bytes <= 0 || trimmer == nil {
			continue
		}
		n, err := trimmer.TrimToSize(ctx, j.id, j.bytes)
		if err != nil && !errors.Is(err, engine.ErrClosed) {
			s.log.Error("size retention trim", zap.String("stream", j.st.name), zap.Stringer("log", j.id), zap.Error(err))
		}
		if n > 0 {
			sized[j.st] += n
		}
	}
	for st, n := range sized {
		s.log.Debug("size retention trimmed", zap.String("stream", st.name), zap.Int("units", n))
		s.cfg.Metrics.SizeTrimmed(st.name, n)
	}
}

// trimHorizon is the oldest position a reader of the shard may see: records
// older than the retention period are gone even before the engine deletes
// them. SeekTime answers with the first retained record at or after the
// cutoff, so it never lies before the log's oldest record.
func (s *Server) trimHorizon(ctx context.Context, st *stream, sh *shard) (engine.Position, error) {
	st.mu.RLock()
	cutoff := st.retentionCutoff(s.cfg.Now())
	st.mu.RUnlock()
	return sh.log.SeekTime(ctx, cutoff)
}

// retentionCutoff returns the arrival time before which records have expired.
// It never moves backwards: raising the retention period does not bring back
// records that had already expired, as in Kinesis. The caller holds st.mu.
func (st *stream) retentionCutoff(now time.Time) int64 {
	return max(now.Add(-time.Duration(st.retentionHours)*time.Hour).UnixMilli(), st.trimFloorMs)
}

func newStreamID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// restoreLocked puts back the settings and consumers of st recorded in m (a
// metaLocked taken before a change whose persisting failed). Shards are not
// restored: reshards roll back on their own (api_reshard.go). The caller
// holds st.mu.
func (st *stream) restoreLocked(m engine.StreamMeta) {
	st.status = m.Status
	st.setMode(m.Mode)
	st.retentionHours = m.RetentionHours
	st.retentionBytes = m.RetentionBytes
	st.tags = m.Tags
	if st.tags == nil {
		st.tags = map[string]string{}
	}
	st.maxRecordKiB = m.MaxRecordKiB
	st.warmMiBps = m.WarmMiBps
	st.distribution = m.Distribution
	st.setMetricsLocked(m.Metrics)
	st.trimFloorMs = m.TrimFloorMs
	st.nextIndex = m.NextIndex
	st.scaleTimes = m.ScaleTimes
	keep := map[string]bool{}
	for _, mc := range m.Consumers {
		keep[mc.Name] = true
		c := st.consumers[mc.Name]
		if c == nil || c.created != mc.Created {
			continue // only statuses and tags are ever rolled back here
		}
		c.status, c.tags = mc.Status, mc.Tags
	}
	for name := range st.consumers {
		if !keep[name] {
			delete(st.consumers, name)
		}
	}
}

// persistAccount writes the account record. The caller holds s.acctMu.
func (s *Server) persistAccount(ctx context.Context) error {
	a := engine.AccountMeta{Secret: hex.EncodeToString(s.secret), CommitmentStatus: s.account.CommitmentStatus,
		CommitmentStart: s.account.CommitmentStart, CommitmentEnd: s.account.CommitmentEnd}
	v, err := s.cat.PutAccount(ctx, a, s.accountVersion)
	if err != nil {
		return err
	}
	s.accountVersion = v
	return nil
}
