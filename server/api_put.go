package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"
	"unsafe"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/seqnum"
	"github.com/shoalstream/shoal/internal/wire"
)

// maxPutRecordsBytes bounds the data and partition keys of one PutRecords.
const (
	maxPutRecordsBytes   = 10 << 20
	maxPutRecordsEntries = 500
)

func (s *Server) dryRun() error {
	return ErrDryRunOperation.With("Request would have succeeded, but DryRun flag is set.")
}

// route picks the shard of one record: by its explicit hash key, by the MD5 of
// its partition key, or round robin under the AUTO distribution strategy.
// The caller holds st.mu for reading.
func (s *Server) route(st *stream, pk, ehk *string) (*shard, error) {
	if st.distribution == distributionAuto {
		return st.open[st.rr.Add(1)%uint64(len(st.open))], nil
	}
	var k hashkey.Key
	if ehk != nil {
		var err error
		if k, err = hashkey.Parse(*ehk); err != nil {
			return nil, ErrInvalidArgument.With("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *ehk)
		}
	} else {
		k = hashkey.FromPartitionKey(*pk)
	}
	sh := st.shardFor(k)
	if sh == nil {
		return nil, ErrInternalFailure.With("no open shard covers hash key %s", k)
	}
	if st.onDemand.Load() {
		sh.heat.sample(k)
	}
	return sh, nil
}

// checkRecordSize enforces the stream's maximum record size (data plus
// partition key), which UpdateMaxRecordSize sets. entry is the record's
// index in a PutRecords request, or -1 for PutRecord.
func checkRecordSize(st *stream, entry int, data []byte, pk *string) error {
	n := len(data)
	if pk != nil {
		n += len(*pk)
	}
	if max := int(st.maxRecordKiB) * 1024; n > max {
		member := "data"
		if entry >= 0 {
			member = entryMember(entry) + "data"
		}
		return ErrValidation.With("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have a record size (data and partition key) less than or equal to %d bytes, the stream's maximum record size; it has %d bytes", member, max, n)
	}
	return nil
}

// entryMember names PutRecords entry i (0-based) in validation messages.
func entryMember(i int) string { return fmt.Sprintf("records.%d.member.", i+1) }

// entryValid reports whether a PutRecords entry meets the model's
// constraints, without building the member names the validator's messages
// need: the names are formatted only for an entry that fails.
func entryValid(r *wire.PutRecordsRequestEntry) bool {
	if r.Data == nil || len(r.Data) > maxDataBytesModel {
		return false
	}
	if r.PartitionKey != nil {
		if n := utf8.RuneCountInString(*r.PartitionKey); n < 1 || n > maxPartitionKey {
			return false
		}
	}
	return r.ExplicitHashKey == nil || hashKeyRE.MatchString(*r.ExplicitHashKey)
}

func (s *Server) putRecord(ctx context.Context, in *wire.PutRecordInput) (*wire.PutRecordOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.required("data", in.Data != nil)
		v.blobMax("data", in.Data, maxDataBytesModel)
		v.str("partitionKey", in.PartitionKey, 1, maxPartitionKey, nil)
		v.str("explicitHashKey", in.ExplicitHashKey, 0, 0, hashKeyRE)
		v.str("sequenceNumberForOrdering", in.SequenceNumberForOrdering, 0, 0, sequenceNumberRE)
		return v
	})
	if err != nil {
		return nil, err
	}
	if err := s.readable(st); err != nil {
		return nil, err
	}
	if in.SequenceNumberForOrdering != nil {
		if _, err := seqnum.Parse(*in.SequenceNumberForOrdering); err != nil {
			return nil, ErrInvalidArgument.With("ExclusiveMinimumSequenceNumber %s used in PutRecord on stream %s under account %s is invalid.", *in.SequenceNumberForOrdering, st.name, st.account)
		}
	}
	st.mu.RLock()
	if in.PartitionKey == nil && st.distribution != distributionAuto {
		st.mu.RUnlock()
		var v validator
		v.required("partitionKey", false)
		return nil, v.err()
	}
	err = checkRecordSize(st, -1, in.Data, in.PartitionKey)
	var sh *shard
	if err == nil {
		sh, err = s.route(st, in.PartitionKey, in.ExplicitHashKey)
	}
	st.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	// A dry run takes no capacity: it must not throttle the real writes.
	dry := in.DryRun != nil && *in.DryRun
	if full := s.diskRefused(); full != nil && !dry {
		s.cfg.Metrics.Throttled(st.name, true, 1)
		return nil, full
	}
	if !dry && sh.writeRate != nil && !sh.writeRate.take(s.cfg.Now(), recordSize(in.Data, in.PartitionKey)) {
		s.cfg.Metrics.Throttled(st.name, true, 1)
		s.shardMetric(st, sh, smWriteThrottled, 1)
		return nil, s.throttled(st, sh)
	}
	if dry {
		return nil, s.dryRun()
	}
	var (
		first     engine.Position
		encrypted bool
	)
	for {
		sh.appendMu.RLock()
		if !sh.closed.Load() {
			var recs []engine.Record
			recs, encrypted, err = s.sealRecords(st, sh, []engine.Record{{PartitionKey: deref(in.PartitionKey), Data: in.Data}})
			if err == nil {
				t0 := s.cfg.Now()
				first, _, err = sh.log.Append(ctx, recs)
				s.cfg.Metrics.Append(s.cfg.Now().Sub(t0), len(recs), err)
			}
			sh.appendMu.RUnlock()
			if err == nil {
				if st.onDemand.Load() {
					sh.heat.add(recordSize(in.Data, in.PartitionKey), 1)
				}
			}
			if !errors.Is(err, engine.ErrSealed) || !s.awaitClosed(ctx, st, sh) {
				break
			}
		} else {
			sh.appendMu.RUnlock()
		}
		// A reshard closed the shard after it was chosen: route again.
		if sh, err = s.reroute(st, in.PartitionKey, in.ExplicitHashKey); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, s.appendError(st, sh, err)
	}
	n := recordSize(in.Data, in.PartitionKey)
	s.cfg.Metrics.Incoming(st.name, "PutRecord", 1, n)
	s.shardMetric(st, sh, smIncomingBytes, int64(n))
	s.shardMetric(st, sh, smIncomingRecords, 1)
	return &wire.PutRecordOutput{
		ShardID:        sh.id,
		SequenceNumber: st.seq(sh, first),
		EncryptionType: encryptionType(encrypted),
	}, nil
}

func recordSize(data []byte, pk *string) int {
	if pk == nil {
		return len(data)
	}
	return len(data) + len(*pk)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) throttled(st *stream, sh *shard) *APIError {
	return ErrProvisionedThroughputExceeded.With("Rate exceeded for shard %s in stream %s under account %s.", sh.id, st.name, st.account)
}

// appendError maps a failed append: a closed log means the stream was
// deleted under the request; anything else (disk full, I/O error) is an
// internal failure and nothing of the failed batch was acknowledged.
func (s *Server) appendError(st *stream, sh *shard, err error) error {
	if errors.Is(err, engine.ErrClosed) {
		return st.missing()
	}
	return fmt.Errorf("append to %s/%s: %w", st.name, sh.id, err)
}

// shardBatch is the part of a PutRecords request bound for one shard.
type shardBatch struct {
	sh      *shard
	idx     []int           // positions in the request
	records []engine.Record // in plain text: appendBatch encrypts them for the shard it appends to
	first   engine.Position
	err     error
	sealed  bool // the records were stored encrypted

	rerouted []*shardBatch // set instead of first/err when the shard had closed
}

// reroute routes a record again after the shard first chosen for it closed.
func (s *Server) reroute(st *stream, pk, ehk *string) (*shard, error) {
	s.log.Debug("re-routing a record: its shard closed", zap.String("stream", st.name))
	st.mu.RLock()
	defer st.mu.RUnlock()
	if len(st.open) == 0 {
		return nil, st.missing()
	}
	return s.route(st, pk, ehk)
}

// appendBatch appends b to its shard unless a reshard closed the shard, in
// which case its records are routed again into b.rerouted and appended there.
// in holds the request's records, which b.idx indexes.
func (s *Server) appendBatch(ctx context.Context, st *stream, b *shardBatch, in []wire.PutRecordsRequestEntry) {
	b.sh.appendMu.RLock()
	if !b.sh.closed.Load() {
		var recs []engine.Record
		recs, b.sealed, b.err = s.sealRecords(st, b.sh, b.records)
		if b.err == nil {
			t0 := s.cfg.Now()
			b.first, _, b.err = b.sh.log.Append(ctx, recs)
			s.cfg.Metrics.Append(s.cfg.Now().Sub(t0), len(recs), b.err)
		}
		b.sh.appendMu.RUnlock()
		if b.err == nil {
			if st.onDemand.Load() {
				n := 0
				for _, r := range b.records {
					n += len(r.Data) + len(r.PartitionKey)
				}
				b.sh.heat.add(n, len(b.records))
			}
		}
		// Sealed by another server's reshard: once this server's view shows
		// the shard closed, route the records again, as below.
		if !errors.Is(b.err, engine.ErrSealed) || !s.awaitClosed(ctx, st, b.sh) {
			return
		}
		b.err = nil
	} else {
		b.sh.appendMu.RUnlock()
	}
	by := map[*shard]*shardBatch{}
	for j, i := range b.idx {
		sh, err := s.reroute(st, in[i].PartitionKey, in[i].ExplicitHashKey)
		if err != nil {
			b.err = err
			b.rerouted = nil
			return
		}
		c := by[sh]
		if c == nil {
			c = &shardBatch{sh: sh}
			by[sh] = c
			b.rerouted = append(b.rerouted, c)
		}
		c.idx = append(c.idx, i)
		c.records = append(c.records, b.records[j])
	}
	for _, c := range b.rerouted {
		s.appendBatch(ctx, st, c, in)
	}
}

// putScratch is the bookkeeping of one PutRecords call that does not
// outlive it, pooled between calls: which batch each record goes to, and
// the batches' shards in the order of their first record.
type putScratch struct {
	route  []int32 // per request entry: its batch in shards, or -1 when it was refused
	shards []*shard
	counts []int // records per batch
	idx    []int // every batch's request positions, back to back
	find   map[*shard]int32
}

// batchesLinear is how many distinct shards batchOf searches linearly
// before it indexes them in a map.
const batchesLinear = 16

var putScratchPool = sync.Pool{New: func() any { return new(putScratch) }}

func getPutScratch(n int) *putScratch {
	sc := putScratchPool.Get().(*putScratch)
	if cap(sc.route) < n {
		sc.route = make([]int32, n)
	}
	sc.route = sc.route[:n]
	return sc
}

func putPutScratch(sc *putScratch) {
	clear(sc.shards)
	sc.shards, sc.counts, sc.idx = sc.shards[:0], sc.counts[:0], sc.idx[:0]
	clear(sc.find)
	if cap(sc.route) > 4*maxPutRecordsEntries || cap(sc.shards) > 1024 {
		return // a request that went beyond the limits: let its memory go
	}
	putScratchPool.Put(sc)
}

// batchOf returns the batch of shard sh, adding one when it has none yet.
func (sc *putScratch) batchOf(sh *shard) int32 {
	if sc.find == nil || len(sc.shards) <= batchesLinear {
		for k, x := range sc.shards {
			if x == sh {
				return int32(k)
			}
		}
	} else if k, ok := sc.find[sh]; ok {
		return k
	}
	k := int32(len(sc.shards))
	sc.shards = append(sc.shards, sh)
	sc.counts = append(sc.counts, 0)
	if len(sc.shards) > batchesLinear {
		if sc.find == nil {
			sc.find = make(map[*shard]int32)
		}
		if len(sc.find) == 0 {
			for j, x := range sc.shards {
				sc.find[x] = int32(j)
			}
		}
		sc.find[sh] = k
	}
	return k
}

// layout builds the batches of the routed records of in: one array of
// records for every batch, sliced per batch, each batch's records in
// request order.
func (sc *putScratch) layout(in []wire.PutRecordsRequestEntry) []*shardBatch {
	if len(sc.shards) == 0 {
		return nil
	}
	total := 0
	for _, n := range sc.counts {
		total += n
	}
	if cap(sc.idx) < total {
		sc.idx = make([]int, total)
	}
	idx := sc.idx[:total]
	recs := make([]engine.Record, total) // handed to the engine: not pooled
	arr := make([]shardBatch, len(sc.shards))
	batches := make([]*shardBatch, len(sc.shards))
	at := 0
	for k, sh := range sc.shards {
		n := sc.counts[k]
		arr[k] = shardBatch{sh: sh, idx: idx[at : at : at+n], records: recs[at : at : at+n]}
		batches[k] = &arr[k]
		at += n
	}
	for i, k := range sc.route {
		if k < 0 {
			continue
		}
		b := &arr[k]
		r := &in[i]
		b.idx = append(b.idx, i)
		b.records = append(b.records, engine.Record{PartitionKey: deref(r.PartitionKey), Data: r.Data})
	}
	return batches
}

func (s *Server) putRecords(ctx context.Context, in *wire.PutRecordsInput) (*wire.PutRecordsOutput, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	if v.required("records", in.Records != nil) {
		if n := len(in.Records); n < 1 || n > maxPutRecordsEntries {
			c := "Member must have length greater than or equal to 1"
			if n > maxPutRecordsEntries {
				c = fmt.Sprintf("Member must have length less than or equal to %d", maxPutRecordsEntries)
			}
			v.add(fmt.Sprintf("'[%d records]'", n), "records", c)
		}
	}
	total := 0
	for i := range in.Records {
		r := &in.Records[i]
		total += recordSize(r.Data, r.PartitionKey)
		if entryValid(r) {
			continue
		}
		m := entryMember(i)
		if r.Data == nil {
			v.required(m+"data", false)
		}
		v.blobMax(m+"data", r.Data, maxDataBytesModel)
		v.str(m+"partitionKey", r.PartitionKey, 1, maxPartitionKey, nil)
		v.str(m+"explicitHashKey", r.ExplicitHashKey, 0, 0, hashKeyRE)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if total > maxPutRecordsBytes {
		return nil, ErrInvalidArgument.With("Records size exceeds %d bytes: the data and partition keys of one PutRecords request must not exceed 10 MiB (this request has %d bytes).", maxPutRecordsBytes, total)
	}
	st, err := s.lookupRef(ctx, in.StreamRef)
	if err != nil {
		return nil, err
	}
	if err := s.readable(st); err != nil {
		return nil, err
	}

	out := &wire.PutRecordsOutput{Records: make([]wire.PutRecordsResultEntry, len(in.Records))}
	var throttled, okRecords, okBytes int // for Config.Metrics
	sc := getPutScratch(len(in.Records))
	defer putPutScratch(sc)
	now := s.cfg.Now()
	dry := in.DryRun != nil && *in.DryRun // a dry run takes no capacity
	diskFull := s.disk.refused.Load()     // non-nil: the disk guard refuses every record
	var injected []bool                   // records a fault injection rule throttles
	if fs := s.faults.Load(); fs != nil && !dry {
		injected = s.throttleRecords(fs, st.name, len(in.Records))
	}
	st.mu.RLock()
	for i := range in.Records {
		r := &in.Records[i]
		sc.route[i] = -1
		if r.PartitionKey == nil && st.distribution != distributionAuto {
			st.mu.RUnlock()
			var v validator
			v.required(entryMember(i)+"partitionKey", false)
			return nil, v.err()
		}
		if err := checkRecordSize(st, i, r.Data, r.PartitionKey); err != nil {
			st.mu.RUnlock()
			return nil, err
		}
		sh, err := s.route(st, r.PartitionKey, r.ExplicitHashKey)
		if err != nil {
			st.mu.RUnlock()
			return nil, err
		}
		if diskFull != nil && !dry {
			out.Records[i] = wire.PutRecordsResultEntry{ErrorCode: diskFull.Code, ErrorMessage: diskFull.Message}
			out.FailedRecordCount++
			throttled++
			continue
		}
		if injected != nil && injected[i] {
			out.Records[i] = wire.PutRecordsResultEntry{ErrorCode: ErrProvisionedThroughputExceeded.Code, ErrorMessage: s.throttled(st, sh).Message}
			out.FailedRecordCount++
			throttled++
			continue
		}
		if !dry && sh.writeRate != nil && !sh.writeRate.take(now, recordSize(r.Data, r.PartitionKey)) {
			out.Records[i] = wire.PutRecordsResultEntry{ErrorCode: ErrProvisionedThroughputExceeded.Code, ErrorMessage: s.throttled(st, sh).Message}
			out.FailedRecordCount++
			throttled++
			s.shardMetric(st, sh, smWriteThrottled, 1)
			continue
		}
		k := sc.batchOf(sh)
		sc.route[i] = k
		sc.counts[k]++
	}
	st.mu.RUnlock()
	if dry {
		return nil, s.dryRun()
	}
	batches := sc.layout(in.Records)

	// Append to each shard; the appends of different shards run in parallel
	// so that their fsyncs overlap.
	// (Every record may have been throttled: then there is nothing to append.)
	if len(batches) > 0 {
		var wg sync.WaitGroup
		for _, b := range batches[1:] {
			wg.Go(func() { s.appendBatch(ctx, st, b, in.Records) })
		}
		s.appendBatch(ctx, st, batches[0], in.Records)
		wg.Wait()
	}
	// A batch whose shard a reshard closed was re-routed into sub-batches.
	rerouted := false
	for _, b := range batches {
		rerouted = rerouted || b.rerouted != nil
	}
	if rerouted {
		var flat []*shardBatch
		var walk func(b *shardBatch)
		walk = func(b *shardBatch) {
			if b.rerouted == nil {
				flat = append(flat, b)
			}
			for _, c := range b.rerouted {
				walk(c)
			}
		}
		for _, b := range batches {
			walk(b)
		}
		batches = flat
	}
	sealed := st.encrypted()
	for i, b := range batches {
		if i == 0 {
			sealed = b.sealed
		}
		if b.err != nil {
			if errors.Is(b.err, engine.ErrClosed) && len(batches) == 1 {
				return nil, st.missing()
			}
			if ae, ok := asKMSError(b.err); ok {
				return nil, ae // the stream's key is unusable: every batch fails alike
			}
			// Other shards' records of the call may be stored: answer per
			// record, so that the caller retries only the failed ones.
			s.log.Warn("append failed", zap.String("stream", st.name), zap.String("shard", b.sh.id), zap.Error(b.err))
			for _, i := range b.idx {
				out.Records[i] = wire.PutRecordsResultEntry{ErrorCode: "InternalFailure", ErrorMessage: "Internal service failure."}
				out.FailedRecordCount++
			}
			continue
		}
		okRecords += len(b.idx)
	}
	// The sequence numbers of the stored records: formatted batch by batch
	// (consecutive numbers, see seqnum.AppendRun) into one string.
	buf := make([]byte, 0, okRecords*seqnum.Len)
	for _, b := range batches {
		if b.err == nil {
			buf = seqnum.AppendRun(buf, seqnum.Number{Shard: b.sh.index, Offset: b.first.Offset, Index: b.first.Index, Epoch: st.epoch}, len(b.idx))
		}
	}
	all, at := unsafe.String(unsafe.SliceData(buf), len(buf)), 0 // buf is not written again
	for _, b := range batches {
		if b.err != nil {
			continue
		}
		n := 0
		for j, i := range b.idx {
			out.Records[i] = wire.PutRecordsResultEntry{ShardID: b.sh.id, SequenceNumber: all[at : at+seqnum.Len]}
			at += seqnum.Len
			n += len(b.records[j].Data) + len(b.records[j].PartitionKey)
		}
		okBytes += n
		s.shardMetric(st, b.sh, smIncomingBytes, int64(n))
		s.shardMetric(st, b.sh, smIncomingRecords, int64(len(b.idx)))
	}
	out.EncryptionType = encryptionType(sealed)
	if throttled > 0 {
		s.cfg.Metrics.Throttled(st.name, true, throttled)
	}
	s.cfg.Metrics.Incoming(st.name, "PutRecords", okRecords, okBytes)
	s.cfg.Metrics.PutRecords(st.name, len(in.Records), okRecords, len(in.Records)-okRecords, throttled)
	return out, nil
}
