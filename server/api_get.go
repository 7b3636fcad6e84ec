package server

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/seqnum"
	"github.com/shoalstream/shoal/internal/wire"

	"go.uber.org/zap"
)

// Shard iterator types.
const (
	iterAtSequenceNumber    = "AT_SEQUENCE_NUMBER"
	iterAfterSequenceNumber = "AFTER_SEQUENCE_NUMBER"
	iterTrimHorizon         = "TRIM_HORIZON"
	iterLatest              = "LATEST"
	iterAtTimestamp         = "AT_TIMESTAMP"
)

// GetRecords bounds.
const (
	maxGetRecordsLimit = 10000
	maxGetRecordsBytes = 10 << 20
)

func (s *Server) getShardIterator(ctx context.Context, in *wire.GetShardIteratorInput) (*wire.GetShardIteratorOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.reqStr("shardId", in.ShardID, 1, maxShardIDLen, shardIDRE)
		if v.required("shardIteratorType", in.ShardIteratorType != nil) {
			v.enum("shardIteratorType", in.ShardIteratorType, iterAfterSequenceNumber, iterAtSequenceNumber, iterAtTimestamp, iterTrimHorizon, iterLatest)
		}
		v.str("startingSequenceNumber", in.StartingSequenceNumber, 0, 0, sequenceNumberRE)
		return v
	})
	if err != nil {
		return nil, err
	}
	if err := s.readable(st); err != nil {
		return nil, err
	}
	st.mu.RLock()
	sh := st.shardByID(*in.ShardID)
	st.mu.RUnlock()
	if sh == nil {
		return nil, ErrResourceNotFound.With("Shard %s in stream %s under account %s does not exist", *in.ShardID, st.name, st.account)
	}
	typ := *in.ShardIteratorType
	bySeq := typ == iterAtSequenceNumber || typ == iterAfterSequenceNumber
	switch {
	case bySeq && in.StartingSequenceNumber == nil:
		return nil, ErrInvalidArgument.With("Must specify StartingSequenceNumber for ShardIteratorType %s.", typ)
	case !bySeq && in.StartingSequenceNumber != nil:
		return nil, ErrInvalidArgument.With("Request specified StartingSequenceNumber, but ShardIteratorType is %s; StartingSequenceNumber is only valid for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.", typ)
	case typ == iterAtTimestamp && in.Timestamp == nil:
		return nil, ErrInvalidArgument.With("Must specify Timestamp for ShardIteratorType AT_TIMESTAMP.")
	case typ != iterAtTimestamp && in.Timestamp != nil:
		return nil, ErrInvalidArgument.With("Request specified Timestamp, but ShardIteratorType is %s; Timestamp is only valid for AT_TIMESTAMP.", typ)
	}

	var ts *int64
	if in.Timestamp != nil {
		ms := in.Timestamp.Millis()
		ts = &ms
	}
	pos, err := s.startPosition(ctx, st, sh, typ, in.StartingSequenceNumber, ts, "GetShardIterator")
	if err != nil {
		return nil, err
	}
	if in.DryRun != nil && *in.DryRun {
		return nil, s.dryRun()
	}
	it := iterator{streamID: st.id, stream: st.key, shard: sh.index, pos: pos, issuedMs: s.cfg.Now().UnixMilli()}
	return &wire.GetShardIteratorOutput{ShardIterator: s.encodeIterator(it)}, nil
}

// startPosition resolves a starting position (an iterator type and its
// sequence number or timestamp, already checked for presence) in shard sh.
// op names the operation in error messages.
func (s *Server) startPosition(ctx context.Context, st *stream, sh *shard, typ string, seq *string, tsMillis *int64, op string) (pos engine.Position, err error) {
	switch typ {
	case iterTrimHorizon:
		pos, err = s.trimHorizon(ctx, st, sh)
	case iterLatest:
		var info engine.Info
		info, err = sh.log.Info(ctx)
		pos = info.End
	case iterAtTimestamp:
		if pos, err = sh.log.SeekTime(ctx, *tsMillis); err != nil {
			break
		}
		var th engine.Position
		if th, err = s.trimHorizon(ctx, st, sh); pos.Less(th) {
			pos = th
		}
	default:
		n, err := seqnum.Parse(*seq)
		if err != nil {
			return pos, ErrInvalidArgument.With("StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid.", *seq, op, sh.id, st.name, st.account)
		}
		if n.Shard != sh.index {
			return pos, ErrInvalidArgument.With("Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", shardIDOf(n.Shard), sh.id)
		}
		pos = engine.Position{Offset: n.Offset, Index: n.Index}
		if n.Epoch == st.epoch && pos == beforeFirst {
			// The continuation number of a subscription that started at
			// the very beginning of the shard (see continuation).
			return engine.Position{}, nil
		}
		info, err := sh.log.Info(ctx)
		if err != nil {
			return pos, s.readError(st, sh, err)
		}
		if n.Epoch != st.epoch || !pos.Less(info.End) {
			// The shard holds no such record: the number is from the future,
			// or from an earlier stream of the same name.
			return pos, ErrInvalidArgument.With("StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid because it did not come from this stream.", *seq, op, sh.id, st.name, st.account)
		}
		if typ == iterAfterSequenceNumber {
			pos = after(pos)
		}
	}
	if err != nil {
		return pos, s.readError(st, sh, err)
	}
	return pos, nil
}

// readError maps a failed engine read: a closed log means the stream was
// deleted under the request.
func (s *Server) readError(st *stream, sh *shard, err error) error {
	if errors.Is(err, engine.ErrClosed) {
		return st.missing()
	}
	return fmt.Errorf("read %s/%s: %w", st.name, sh.id, err)
}

// beforeFirst is the position whose sequence number continuation hands out
// for "nothing read yet" at the start of a shard. Index 0xFFFF names no
// record (a batch holds at most 0xFFFF records, indexes 0..0xFFFE), and a
// real position past the end of batch 0 would have to be one of its bytes,
// not its first, so the number is unambiguous.
var beforeFirst = engine.Position{Offset: 0, Index: ^uint16(0)}

// continuation returns the position whose sequence number, used with
// AFTER_SEQUENCE_NUMBER, starts reading exactly at pos: the record just
// before pos if pos is inside a batch, the (otherwise meaningless) last
// index of the byte before pos if pos starts a batch, and beforeFirst at the
// start of the log. AT_SEQUENCE_NUMBER with it also starts at pos, except
// that inside a batch it re-reads the record before pos.
func continuation(pos engine.Position) engine.Position {
	switch {
	case pos.Index > 0:
		return engine.Position{Offset: pos.Offset, Index: pos.Index - 1}
	case pos.Offset > 0:
		return engine.Position{Offset: pos.Offset - 1, Index: ^uint16(0)}
	}
	return beforeFirst
}

// after returns the position just after p. Past the last index of a batch it
// points into the batch's bytes, which the log reads as "the next batch".
func after(p engine.Position) engine.Position {
	if p.Index == ^uint16(0) {
		return engine.Position{Offset: p.Offset + 1}
	}
	return engine.Position{Offset: p.Offset, Index: p.Index + 1}
}

func (s *Server) getRecords(ctx context.Context, in *wire.GetRecordsInput) (*wire.GetRecordsOutput, error) {
	var v validator
	v.reqStr("shardIterator", in.ShardIterator, 1, maxIteratorLen, nil)
	v.intRange("limit", in.Limit, 1, maxGetRecordsLimit)
	v.str("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	if err := v.err(); err != nil {
		return nil, err
	}
	it, err := s.decodeIterator(*in.ShardIterator)
	if err != nil {
		return nil, ErrInvalidArgument.With("Invalid ShardIterator.")
	}
	now := s.cfg.Now().UnixMilli()
	if now-it.issuedMs > iteratorTTLMillis {
		return nil, ErrExpiredIterator.With("Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			fmtMillis(it.issuedMs), fmtMillis(now), iteratorTTLMillis)
	}
	ref := s.refOfKey(it.stream)
	if in.StreamARN != nil {
		r, err := s.parseStreamARN(*in.StreamARN)
		if err != nil {
			return nil, err
		}
		if r != ref {
			if s.current(s.key(r)) == nil {
				return nil, s.notFound(r)
			}
			return nil, ErrInvalidArgument.With("StreamARN %s does not match the stream of the ShardIterator.", *in.StreamARN)
		}
	}
	st, err := s.lookupName(ctx, ref)
	if err != nil {
		return nil, err
	}
	if st.id != it.streamID {
		return nil, st.missing()
	}
	if fs := s.faults.Load(); fs != nil && s.expireIterator(fs, st.name) {
		return nil, ErrExpiredIterator.With("Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			fmtMillis(it.issuedMs), fmtMillis(now), iteratorTTLMillis)
	}
	if err := s.readable(st); err != nil {
		return nil, err
	}
	st.mu.RLock()
	var sh *shard
	for _, x := range st.shards {
		if x.index == it.shard {
			sh = x
			break
		}
	}
	st.mu.RUnlock()
	if sh == nil {
		return nil, ErrResourceNotFound.With("Shard %s in stream %s under account %s does not exist", shardIDOf(it.shard), st.name, st.account)
	}
	// A dry run takes no capacity: it must not throttle the real reads.
	dry := in.DryRun != nil && *in.DryRun
	if !dry && sh.readRate != nil && !sh.readRate.allowCall(s.cfg.Now()) {
		s.cfg.Metrics.Throttled(st.name, false, 1)
		s.shardMetric(st, sh, smReadThrottled, 1)
		return nil, s.throttled(st, sh)
	}
	if dry {
		return nil, s.dryRun()
	}
	limit := maxGetRecordsLimit
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	from := it.pos
	th, err := s.trimHorizon(ctx, st, sh)
	if err != nil {
		return nil, s.readError(st, sh, err)
	}
	if from.Less(th) {
		from = th
	}
	// Observed before the read: once closed, the shard takes no more
	// appends, so a read that reaches its end has seen all of it.
	closed := sh.closed.Load()
	entries, next, err := sh.log.Read(ctx, from, limit, maxGetRecordsBytes)
	if err != nil {
		return nil, s.readError(st, sh, err)
	}
	recs, bytes, err := s.wireRecords(st, sh, entries)
	if err != nil {
		return nil, s.openError(st, sh, err)
	}
	out := &wire.GetRecordsOutput{Records: recs}
	if sh.readRate != nil {
		sh.readRate.charge(bytes)
	}
	s.observeRead(st, sh, "", recs, entries)
	info, err := sh.log.Info(ctx)
	if err != nil {
		return nil, s.readError(st, sh, err)
	}
	end := info.End
	if next.Less(end) && len(entries) > 0 {
		if lag := info.LastArrivalMillis - entries[len(entries)-1].ArrivalMillis; lag > 0 {
			out.MillisBehindLatest = lag
		}
	}
	if closed && !next.Less(end) {
		// The reader passed the last record of a closed shard: no further
		// iterator, and the shards that took over its hash keys.
		out.MillisBehindLatest = 0
		out.ChildShards = childShards(st, sh)
		return out, nil
	}
	nit := s.encodeIterator(iterator{streamID: st.id, stream: st.key, shard: sh.index, pos: next, issuedMs: now})
	out.NextShardIterator = &nit
	return out, nil
}

// childShards lists the shards created by closing sh.
func childShards(st *stream, sh *shard) []wire.ChildShard {
	st.mu.RLock()
	defer st.mu.RUnlock()
	kids := []wire.ChildShard{}
	for _, c := range st.shards {
		if c.parent != sh.id && c.adjParent != sh.id {
			continue
		}
		parents := []string{c.parent}
		if c.adjParent != "" {
			parents = append(parents, c.adjParent)
		}
		kids = append(kids, wire.ChildShard{ShardID: c.id, ParentShards: parents,
			HashKeyRange: wire.HashKeyRange{StartingHashKey: c.start.String(), EndingHashKey: c.end.String()}})
	}
	return kids
}

func fmtMillis(ms int64) string {
	return fmt.Sprintf("%d", ms)
}

// wireRecords returns the records of shard sh that entries hold as the API
// shows them, and their size as the read limits count it (data and
// partition keys).
func (s *Server) wireRecords(st *stream, sh *shard, entries []engine.Entry) ([]wire.Record, int, error) {
	bytes := 0
	for _, e := range entries {
		bytes += len(e.Data) + len(e.PartitionKey) // as stored: encrypted records count their envelope
	}
	enc, err := s.openEntries(st, sh, entries)
	if err != nil {
		return nil, 0, err
	}
	// The sequence numbers, in one string: a record that follows the
	// previous one in its batch takes the previous number plus one index
	// (seqnum.AppendNext), the first of a batch is formatted in full.
	buf := make([]byte, 0, len(entries)*seqnum.Len)
	for i, e := range entries {
		if i > 0 && e.Pos.Index != 0 && e.Pos == (engine.Position{Offset: entries[i-1].Pos.Offset, Index: entries[i-1].Pos.Index + 1}) {
			buf = seqnum.AppendNext(buf, buf[len(buf)-seqnum.Len:])
		} else {
			buf, _ = seqnum.Number{Shard: sh.index, Offset: e.Pos.Offset, Index: e.Pos.Index, Epoch: st.epoch}.AppendText(buf)
		}
	}
	seqs := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
	recs := make([]wire.Record, len(entries))
	for i, e := range entries {
		recs[i] = wire.Record{
			SequenceNumber:              seqs[i*seqnum.Len : (i+1)*seqnum.Len],
			ApproximateArrivalTimestamp: wire.Timestamp(e.ArrivalMillis),
			Data:                        e.Data,
			PartitionKey:                e.PartitionKey,
			EncryptionType:              encryptionType(enc != nil && enc[i]),
		}
	}
	return recs, bytes, nil
}

// openError maps a failure to decrypt a read: the KMS errors as they are;
// a record that does not open is corrupt data, an internal failure.
func (s *Server) openError(st *stream, sh *shard, err error) error {
	if ae, ok := asKMSError(err); ok {
		return ae
	}
	s.log.Error("read an encrypted record", zap.String("stream", st.name), zap.String("shard", sh.id), zap.Error(err))
	return ErrInternalFailure.With("Internal service failure.")
}
