package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/wire"
)

func (s *Server) createStream(_ context.Context, in *wire.CreateStreamInput) (*wire.Empty, error) {
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

	s.mu.Lock()
	defer s.mu.Unlock()
	name := *in.StreamName
	if _, ok := s.streams[name]; ok {
		return nil, ErrResourceInUse.With("Stream %s under account %s already exists.", name, s.cfg.AccountID)
	}
	open, onDemand := s.countsLocked()
	if open+count > int(s.cfg.ShardLimit) {
		return nil, ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			s.cfg.AccountID, s.cfg.Region, s.cfg.ShardLimit, count)
	}
	if mode == modeOnDemand && onDemand+1 > int(s.cfg.OnDemandStreamLimit) {
		return nil, ErrLimitExceeded.With("This request would exceed the limit of %d on-demand streams for the account %s.", s.cfg.OnDemandStreamLimit, s.cfg.AccountID)
	}
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
	starts, ends := hashkey.SplitEvenly(count)
	for i := 0; i < count; i++ {
		sh := &shard{index: uint32(i), id: shardIDOf(uint32(i)), start: starts[i], end: ends[i], createdMs: now}
		if sh.log, err = storage.Open(s.shardDir(st, sh.index), s.logOptions()); err != nil {
			s.discard(st)
			return nil, fmt.Errorf("create stream %s: %w", name, err)
		}
		s.attachLimits(sh)
		st.shards = append(st.shards, sh)
	}
	st.rebuildOpen()
	st.nextIndex = uint32(count)
	s.streams[name] = st
	if err := s.saveLocked(); err != nil {
		delete(s.streams, name)
		s.discard(st)
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	if s.cfg.CreateDelay > 0 {
		s.afterDelay(st, s.cfg.CreateDelay, statusCreating, statusActive)
	}
	s.log.Info("stream created", zap.String("stream", name), zap.Int("shards", count), zap.String("mode", mode))
	return &wire.Empty{}, nil
}

// countsLocked returns the account's open shards and on-demand streams.
func (s *Server) countsLocked() (openShards, onDemand int) {
	for _, st := range s.streams {
		st.mu.RLock()
		openShards += len(st.open)
		if st.mode == modeOnDemand {
			onDemand++
		}
		st.mu.RUnlock()
	}
	return openShards, onDemand
}

// discard closes and deletes a stream's shard logs.
func (s *Server) discard(st *stream) {
	for _, sh := range st.shards {
		if err := sh.log.Remove(); err != nil {
			s.log.Error("remove shard log", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
		}
	}
	if err := os.RemoveAll(s.streamDir(st)); err != nil {
		s.log.Error("remove stream dir", zap.String("stream", st.name), zap.Error(err))
	}
}

// afterDelay moves st from one status to another after d, unless the stream
// changed in between. The timer is stopped by Shutdown.
func (s *Server) afterDelay(st *stream, d time.Duration, from, to string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.statusTimer != nil {
		st.statusTimer.Stop()
	}
	st.statusTimer = time.AfterFunc(d, func() {
		select {
		case <-s.done:
			return
		default:
		}
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

// changeAndSave runs change with s.mu and st.mu held and, if it reports a
// change, saves the metadata. It is for timers, which have nobody to return
// an error to: a failed save is logged.
func (s *Server) changeAndSave(st *stream, change func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	changed := change()
	st.mu.Unlock()
	if changed {
		if err := s.saveLocked(); err != nil {
			s.log.Error("save metadata", zap.String("stream", st.name), zap.Error(err))
		}
	}
}

func (s *Server) deleteStream(_ context.Context, in *wire.DeleteStreamInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookupRef(in.StreamRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	st.mu.Lock()
	status := st.status
	if status == statusCreating || status == statusDeleting {
		st.mu.Unlock()
		s.mu.Unlock()
		if status == statusDeleting {
			return nil, s.notFound(st.name)
		}
		return nil, s.notActive(st, status)
	}
	if len(st.consumers) > 0 && (in.EnforceConsumerDeletion == nil || !*in.EnforceConsumerDeletion) {
		st.mu.Unlock()
		s.mu.Unlock()
		return nil, ErrResourceInUse.With("Stream %s under account %s has registered consumers; set EnforceConsumerDeletion to delete it with them.", st.name, s.cfg.AccountID)
	}
	st.status = statusDeleting
	consumerStatus := map[string]string{}
	for _, c := range st.consumers {
		consumerStatus[c.name] = c.status
		c.status = statusDeleting
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	st.mu.Unlock()
	if err := s.saveLocked(); err != nil {
		st.mu.Lock()
		st.status = status
		for _, c := range st.consumers {
			c.status = consumerStatus[c.name]
		}
		st.mu.Unlock()
		s.mu.Unlock()
		return nil, fmt.Errorf("delete stream %s: %w", st.name, err)
	}
	s.mu.Unlock()
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

// finishDelete forgets a DELETING stream and removes its data.
func (s *Server) finishDelete(st *stream) {
	s.mu.Lock()
	if s.streams[st.name] == st {
		delete(s.streams, st.name)
		if err := s.saveLocked(); err != nil {
			s.log.Error("save metadata", zap.Error(err)) // the stream stays DELETING on disk and is removed at the next start
		}
	}
	s.mu.Unlock()
	for _, sh := range st.shards {
		sh.signal()
	}
	s.discard(st)
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
		SequenceNumberRange: wire.SequenceNumberRange{StartingSequenceNumber: st.seq(sh, storage.Position{})},
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
	s.mu.RLock()
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
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
		st := s.streams[n]
		st.mu.RLock()
		out.StreamSummaries = append(out.StreamSummaries, wire.StreamSummary{
			StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
			StreamModeDetails:       &wire.StreamModeDetails{StreamMode: st.mode},
			StreamCreationTimestamp: wire.Timestamp(st.created),
		})
		st.mu.RUnlock()
	}
	s.mu.RUnlock()
	out.StreamNames = names
	if out.HasMoreStreams {
		tok := s.encodeListToken(listToken{issuedMs: s.cfg.Now().UnixMilli(), after: names[len(names)-1]})
		out.NextToken = &tok
	}
	return out, nil
}
