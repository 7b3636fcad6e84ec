package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/wire"
)

func (s *Server) createStream(ctx context.Context, in *wire.CreateStreamInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("streamName", in.StreamName, 1, maxStreamNameLen, streamNameRE)
	v.intRange("shardCount", in.ShardCount, 1, 100000)
	v.intRange("maxRecordSizeInKiB", in.MaxRecordSizeInKiB, minMaxRecordKiB, maxMaxRecordKiB)
	v.intRange("warmThroughputMiBps", in.WarmThroughputMiBps, 0, 1<<31-1)
	if in.StreamModeDetails != nil {
		m := in.StreamModeDetails.StreamMode
		v.enum("streamModeDetails.streamMode", &m, modeProvisioned, modeOnDemand)
	}
	v.enum("recordDistributionStrategy", in.RecordDistributionStrategy, distributionUserKey, distributionAuto)
	v.tags("tags", in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	mode := modeProvisioned
	if in.StreamModeDetails != nil {
		mode = in.StreamModeDetails.StreamMode
	}
	var count int
	switch {
	case mode == modeOnDemand:
		count = onDemandShardCount
	case in.ShardCount == nil:
		return nil, ErrInvalidArgument.With("ShardCount is required for a stream in PROVISIONED mode.")
	default:
		count = int(*in.ShardCount)
	}
	distribution := distributionUserKey
	if in.RecordDistributionStrategy != nil {
		distribution = *in.RecordDistributionStrategy
	}
	if distribution == distributionAuto && mode != modeOnDemand {
		return nil, ErrInvalidArgument.With("RecordDistributionStrategy AUTO is only supported for streams in ON_DEMAND mode.")
	}
	if in.WarmThroughputMiBps != nil && mode != modeOnDemand {
		return nil, ErrInvalidArgument.With("WarmThroughputMiBps is only supported for streams in ON_DEMAND mode.")
	}
	if len(in.Tags) > maxTagsPerStream {
		return nil, ErrInvalidArgument.With("A stream can have at most %d tags.", maxTagsPerStream)
	}
	maxKiB := int32(defaultMaxRecordKiB)
	if in.MaxRecordSizeInKiB != nil {
		maxKiB = *in.MaxRecordSizeInKiB
	}

	name := *in.StreamName
	if err := s.reserveName(name, count, mode == modeOnDemand); err != nil {
		return nil, err
	}
	defer s.releaseName(name)
	id, err := newStreamID()
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	now := s.cfg.Now().UnixMilli()
	st := &stream{
		name: name, id: id, epoch: epochOf(id), arn: s.streamARN(name), created: now,
		status: statusCreating, retentionHours: defaultRetentionHours,
		tags: map[string]string{}, maxRecordKiB: maxKiB, warmMiBps: in.WarmThroughputMiBps,
		distribution: distribution, consumers: map[string]*consumer{},
	}
	st.setMode(mode)
	for k, val := range in.Tags {
		st.tags[k] = val
	}
	if s.cfg.CreateDelay == 0 {
		st.status = statusActive
	}
	// Durable before visible: the logs, then the catalog record, then the
	// stream is published. A failure on the way removes what was made.
	starts, ends := hashkey.SplitEvenly(count)
	for i := 0; i < count; i++ {
		sh := &shard{index: uint32(i), id: shardIDOf(uint32(i)), start: starts[i], end: ends[i], createdMs: now}
		if sh.log, err = s.createLog(ctx, st, sh.index); err != nil {
			s.discard(st)
			return nil, fmt.Errorf("create stream %s: %w", name, err)
		}
		s.attachLimits(sh)
		st.shards = append(st.shards, sh)
	}
	st.rebuildOpen()
	st.nextIndex = uint32(count)
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if err := s.persist(ctx, st); err != nil {
		s.discard(st)
		if errors.Is(err, engine.ErrExists) {
			// Another server sharing the catalog created it first.
			return nil, ErrResourceInUse.With("Stream %s under account %s already exists.", name, s.cfg.AccountID)
		}
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	s.namesMu.Lock()
	s.publishLocked(name, st)
	s.namesMu.Unlock()
	if s.cfg.CreateDelay > 0 {
		s.afterDelay(st, s.cfg.CreateDelay, statusCreating, statusActive)
	}
	s.log.Info("stream created", zap.String("stream", name), zap.Int("shards", count), zap.String("mode", mode))
	return &wire.Empty{}, nil
}

// reserveName claims name for a CreateStream in flight, with the open shards
// and on-demand stream it adds, checking the account's limits against the
// published streams and the other reservations.
func (s *Server) reserveName(name string, shards int, onDemand bool) error {
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if _, ok := s.reserved[name]; ok || s.current(name) != nil {
		return ErrResourceInUse.With("Stream %s under account %s already exists.", name, s.cfg.AccountID)
	}
	open, od := s.countsLocked(nil)
	if open+shards > int(s.cfg.ShardLimit) {
		return ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			s.cfg.AccountID, s.cfg.Region, s.cfg.ShardLimit, shards)
	}
	if onDemand && od+1 > int(s.cfg.OnDemandStreamLimit) {
		return ErrLimitExceeded.With("This request would exceed the limit of %d on-demand streams for the account %s.", s.cfg.OnDemandStreamLimit, s.cfg.AccountID)
	}
	s.reserved[name] = reservation{shards: shards, onDemand: onDemand}
	return nil
}

// reservation is what a CreateStream in flight adds to the account.
type reservation struct {
	shards   int
	onDemand bool
}

// releaseName ends a reservation of reserveName.
func (s *Server) releaseName(name string) {
	s.namesMu.Lock()
	delete(s.reserved, name)
	s.namesMu.Unlock()
}

// reserveShards claims extra open shards for a reshard in flight, failing
// when the account's shard limit would be exceeded. The claim ends with
// release.
func (s *Server) reserveShards(extra int) (release func(), err error) {
	if extra <= 0 {
		return func() {}, nil
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	open, _ := s.countsLocked(nil)
	if open+extra > int(s.cfg.ShardLimit) {
		return nil, ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			s.cfg.AccountID, s.cfg.Region, s.cfg.ShardLimit, extra)
	}
	s.pendingShards += extra
	return func() {
		s.namesMu.Lock()
		s.pendingShards -= extra
		s.namesMu.Unlock()
	}, nil
}

// countsLocked returns the account's open shards and on-demand streams,
// counting every stream but except, the creations and reshards in flight.
// The caller holds s.namesMu.
func (s *Server) countsLocked(except *stream) (openShards, onDemand int) {
	for _, st := range s.snapshot() {
		if st == except {
			continue
		}
		st.mu.RLock()
		openShards += len(st.open)
		if st.mode == modeOnDemand {
			onDemand++
		}
		st.mu.RUnlock()
	}
	for _, r := range s.reserved {
		openShards += r.shards
		if r.onDemand {
			onDemand++
		}
	}
	return openShards + s.pendingShards, onDemand
}

// counts is countsLocked for callers that do not hold s.namesMu.
func (s *Server) counts(except *stream) (openShards, onDemand int) {
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	return s.countsLocked(except)
}

// createLog makes the engine log of a new shard. A log left under the same
// id by a crash that the catalog never named (load removes those, so this
// is a safety net) is deleted first: its records were never acknowledged as
// part of this shard.
func (s *Server) createLog(ctx context.Context, st *stream, index uint32) (engine.Log, error) {
	ctx = engine.WithLabels(ctx, engine.Labels{StreamName: st.name, ShardID: shardIDOf(index)})
	l, err := s.eng.CreateLog(ctx, st.logID(index))
	if errors.Is(err, engine.ErrExists) && s.shared() {
		// Another server made it: its reshard of this stream got there
		// first, and this server's view is stale.
		return nil, s.staleError(st)
	}
	if errors.Is(err, engine.ErrExists) {
		s.log.Warn("removing orphaned shard data before reusing its id", zap.String("stream", st.name), zap.String("shard", shardIDOf(index)))
		if err := s.eng.DeleteLog(ctx, st.logID(index)); err != nil {
			return nil, err
		}
		l, err = s.eng.CreateLog(ctx, st.logID(index))
	}
	return l, err
}

// discard deletes a stream's shard logs (after its record left the catalog,
// or when it never reached it).
func (s *Server) discard(st *stream) {
	ctx := bgContext()
	for _, sh := range st.shards {
		_ = sh.log.Close()
		if err := s.eng.DeleteLog(ctx, st.logID(sh.index)); err != nil {
			s.log.Error("remove shard log", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
		}
	}
}

// afterDelay moves st from one status to another after d, unless the stream
// changed in between. The timer is stopped by Shutdown.
func (s *Server) afterDelay(st *stream, d time.Duration, from, to string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.statusTimer.stop()
	st.statusTimer = s.after(d, func() {
		if to == "" {
			s.finishDelete(st)
			return
		}
		s.changeAndSave(st, func() bool {
			if st.status != from {
				return false
			}
			st.status = to
			return true
		})
	})
}

// changeAndSave runs change with st.ctl and st.mu held and, if it reports a
// change, persists it (undoing it if that fails). It is for timers, which
// have nobody to return an error to: a failed save is logged.
func (s *Server) changeAndSave(st *stream, change func() bool) {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if s.current(st.name) != st {
		return
	}
	st.mu.Lock()
	saved := st.metaLocked()
	changed := change()
	st.mu.Unlock()
	if !changed {
		return
	}
	if err := s.persist(bgContext(), st); err != nil {
		s.log.Error("save metadata", zap.String("stream", st.name), zap.Error(err))
		st.mu.Lock()
		st.restoreLocked(saved)
		st.mu.Unlock()
	}
}

func (s *Server) deleteStream(ctx context.Context, in *wire.DeleteStreamInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	st.ctl.Lock()
	st.mu.Lock()
	status := st.status
	if s.current(st.name) != st || status == statusDeleting {
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, s.notFound(st.name)
	}
	if status == statusCreating {
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, s.notActive(st, status)
	}
	if len(st.consumers) > 0 && (in.EnforceConsumerDeletion == nil || !*in.EnforceConsumerDeletion) {
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, ErrResourceInUse.With("Stream %s under account %s has registered consumers; set EnforceConsumerDeletion to delete it with them.", st.name, s.cfg.AccountID)
	}
	saved := st.metaLocked()
	st.status = statusDeleting
	for _, c := range st.consumers {
		c.status = statusDeleting
		c.timer.stop()
	}
	st.mu.Unlock()
	if err := s.persist(ctx, st); err != nil {
		st.mu.Lock()
		st.restoreLocked(saved)
		st.mu.Unlock()
		st.ctl.Unlock()
		return nil, fmt.Errorf("delete stream %s: %w", st.name, err)
	}
	st.ctl.Unlock()
	// Subscriptions end with ResourceNotFoundException now, not when the
	// DELETING period is over.
	s.endSubscriptions(st.arn+"/consumer/", ErrResourceNotFound.With("Stream %s under account %s is being deleted.", st.name, s.cfg.AccountID))
	if s.cfg.DeleteDelay == 0 {
		s.finishDelete(st)
	} else {
		s.afterDelay(st, s.cfg.DeleteDelay, statusDeleting, "")
	}
	return &wire.Empty{}, nil
}

// finishDelete forgets a DELETING stream and removes its data: first its
// catalog record (a crash after that leaves only logs no record names, which
// the next start removes), then the snapshot entry, then the logs.
func (s *Server) finishDelete(st *stream) {
	st.ctl.Lock()
	defer st.ctl.Unlock()
	if s.current(st.name) != st {
		return
	}
	err := s.cat.DeleteStream(bgContext(), st.name, st.version)
	if s.shared() && (errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrConflict)) {
		// Another server finished the deletion first (or the record changed
		// under this one's view: refresh decides).
		s.goBackground(func() { s.refresh(bgContext(), st.name) })
		return
	}
	if err != nil {
		// The stream stays DELETING in the catalog and is removed at the next start.
		s.log.Error("delete stream metadata", zap.String("stream", st.name), zap.Error(err))
	}
	s.namesMu.Lock()
	s.publishLocked(st.name, nil)
	s.namesMu.Unlock()
	st.mu.RLock()
	shards := st.shards
	st.mu.RUnlock()
	s.discard(st)
	for _, sh := range shards {
		sh.signal()
	}
	s.log.Info("stream deleted", zap.String("stream", st.name))
}

func (s *Server) describeStream(_ context.Context, in *wire.DescribeStreamInput) (*wire.DescribeStreamOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.intRange("limit", in.Limit, 1, 10000)
	v.str("exclusiveStartShardId", in.ExclusiveStartShardID, 1, maxShardIDLen, shardIDRE)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := wire.StreamDescription{
		StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
		StreamModeDetails:       &wire.StreamModeDetails{StreamMode: st.mode},
		RetentionPeriodHours:    st.retentionHours,
		StreamCreationTimestamp: wire.Timestamp(st.created),
		EnhancedMonitoring:      []wire.EnhancedMetrics{{ShardLevelMetrics: nonNil(st.metrics)}},
		EncryptionType:          "NONE",
		Shards:                  []wire.Shard{},
	}
	for _, sh := range st.shards {
		if in.ExclusiveStartShardID != nil && sh.id <= *in.ExclusiveStartShardID {
			continue
		}
		if len(d.Shards) == limit {
			d.HasMoreShards = true
			break
		}
		d.Shards = append(d.Shards, describeShard(st, sh))
	}
	return &wire.DescribeStreamOutput{StreamDescription: d}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func describeShard(st *stream, sh *shard) wire.Shard {
	w := wire.Shard{
		ShardID:             sh.id,
		HashKeyRange:        wire.HashKeyRange{StartingHashKey: sh.start.String(), EndingHashKey: sh.end.String()},
		SequenceNumberRange: wire.SequenceNumberRange{StartingSequenceNumber: st.seq(sh, engine.Position{})},
	}
	if sh.parent != "" {
		p := sh.parent
		w.ParentShardID = &p
	}
	if sh.adjParent != "" {
		p := sh.adjParent
		w.AdjacentParentShardID = &p
	}
	if sh.endSeq != "" {
		e := sh.endSeq
		w.SequenceNumberRange.EndingSequenceNumber = &e
	}
	return w
}

func (s *Server) describeStreamSummary(_ context.Context, in *wire.DescribeStreamSummaryInput) (*wire.DescribeStreamSummaryOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := wire.StreamDescriptionSummary{
		StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
		StreamModeDetails:          &wire.StreamModeDetails{StreamMode: st.mode},
		RetentionPeriodHours:       st.retentionHours,
		StreamCreationTimestamp:    wire.Timestamp(st.created),
		EnhancedMonitoring:         []wire.EnhancedMetrics{{ShardLevelMetrics: nonNil(st.metrics)}},
		EncryptionType:             "NONE",
		OpenShardCount:             int32(len(st.open)),
		ConsumerCount:              int32(len(st.consumers)),
		MaxRecordSizeInKiB:         st.maxRecordKiB,
		RecordDistributionStrategy: st.distribution,
	}
	if st.mode == modeOnDemand {
		d.WarmThroughput = st.warmThroughput()
	}
	return &wire.DescribeStreamSummaryOutput{StreamDescriptionSummary: d}, nil
}

// warmThroughput reports the warm throughput of an on-demand stream: its
// target, and the 4 MiB/s an on-demand stream starts with (or the target,
// once reached, which shoal does at once).
func (st *stream) warmThroughput() *wire.WarmThroughput {
	cur := int32(onDemandShardCount)
	w := &wire.WarmThroughput{CurrentMiBps: &cur}
	if st.warmMiBps != nil {
		t := *st.warmMiBps
		w.TargetMiBps = &t
		if t > cur {
			w.CurrentMiBps = &t
		}
	}
	return w
}

// listToken is the content of a ListStreams or ListShards NextToken.
type listToken struct {
	issuedMs int64
	after    string // the last name or shard id returned
	streamID string // ListShards: the stream incarnation
	stream   string // ListShards: the stream name
	filter   string // ListShards: the filter type, shard id and timestamp
}

const tokenTTL = 300 * time.Second

func (s *Server) encodeListToken(t listToken) string {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(t.issuedMs))
	for _, f := range []string{t.after, t.streamID, t.stream, t.filter} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return s.sealToken(b)
}

var errBadToken = errors.New("bad token")

func (s *Server) decodeListToken(tok string) (listToken, error) {
	b, ok := s.openToken(tok)
	if !ok || len(b) < 8 {
		return listToken{}, errBadToken
	}
	t := listToken{issuedMs: int64(binary.BigEndian.Uint64(b))}
	b = b[8:]
	fields := []*string{&t.after, &t.streamID, &t.stream, &t.filter}
	for _, f := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return listToken{}, errBadToken
		}
		*f = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return t, nil
}

func (s *Server) checkTokenAge(t listToken) error {
	now := s.cfg.Now()
	issued := time.UnixMilli(t.issuedMs)
	if now.Sub(issued) > tokenTTL {
		return ErrExpiredNextToken.With("The timestamp sent in the NextToken is %s, which is too old. Tokens expire after %s.", issued.UTC().Format(time.RFC3339), tokenTTL)
	}
	return nil
}

func (s *Server) listStreams(_ context.Context, in *wire.ListStreamsInput) (*wire.ListStreamsOutput, error) {
	var v validator
	v.intRange("limit", in.Limit, 1, 10000)
	v.str("exclusiveStartStreamName", in.ExclusiveStartStreamName, 1, maxStreamNameLen, streamNameRE)
	v.str("nextToken", in.NextToken, 1, maxNextTokenLen, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	after := ""
	if in.ExclusiveStartStreamName != nil {
		after = *in.ExclusiveStartStreamName
	}
	if in.NextToken != nil {
		if in.ExclusiveStartStreamName != nil {
			return nil, ErrInvalidArgument.With("NextToken and ExclusiveStartStreamName cannot be provided together.")
		}
		t, err := s.decodeListToken(*in.NextToken)
		if err != nil || t.stream != "" {
			return nil, ErrInvalidArgument.With("Invalid NextToken.")
		}
		if err := s.checkTokenAge(t); err != nil {
			return nil, err
		}
		after = t.after
	}
	streams := s.snapshot()
	names := make([]string, 0, len(streams))
	for n := range streams {
		if n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := &wire.ListStreamsOutput{StreamNames: []string{}, StreamSummaries: []wire.StreamSummary{}}
	if len(names) > limit {
		names = names[:limit]
		out.HasMoreStreams = true
	}
	for _, n := range names {
		st := streams[n]
		st.mu.RLock()
		out.StreamSummaries = append(out.StreamSummaries, wire.StreamSummary{
			StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
			StreamModeDetails:       &wire.StreamModeDetails{StreamMode: st.mode},
			StreamCreationTimestamp: wire.Timestamp(st.created),
		})
		st.mu.RUnlock()
	}
	out.StreamNames = names
	if out.HasMoreStreams {
		tok := s.encodeListToken(listToken{issuedMs: s.cfg.Now().UnixMilli(), after: names[len(names)-1]})
		out.NextToken = &tok
	}
	return out, nil
}
