package natsengine

import (
	"context"
	"fmt"
	"math"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// This file holds the read path: Direct Get batches with the leader
// fallback, batch decoding, and Read.

// Read sizes: one Direct Get asks for at most maxDirectBatch messages and
// about maxReadChunk bytes; a Read that wants more asks again.
const (
	maxDirectBatch = 1000
	maxReadChunk   = 8 << 20
)

// arrivalAt returns the arrival time of the batch at seq (0 if there is
// none), reading it through the leader unless it is the newest known.
func (ls *logState) arrivalAt(ctx context.Context, seq uint64) (int64, error) {
	ls.mu.Lock()
	if seq != 0 && seq == ls.newestSeq {
		ms := ls.newestMs
		ls.mu.Unlock()
		return ms, nil
	}
	ls.mu.Unlock()
	m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: seq})
	if err != nil || m == nil {
		return 0, err
	}
	ms, _, err := ls.decode(m.Seq, m.Data)
	return ms, err
}

// decode decodes the batch stored at seq and records its arrival.
func (ls *logState) decode(seq uint64, data []byte) (int64, []engine.Record, error) {
	ms, recs, err := storage.DecodeBatch(data)
	if err != nil {
		return 0, nil, fmt.Errorf("natsengine: log %v, sequence %d: %w: %w", ls.id, seq, engine.ErrCorrupt, err)
	}
	ls.observeArrival(seq, ms)
	return ms, recs, nil
}

// fetch returns messages from seq on: a Direct Get batch from the nearest
// replica and, when that replica ended before what this process knows to
// be stored (a follower may lag the leader by a few messages), the rest up
// to that through the leader. more reports that it stopped at a limit.
func (ls *logState) fetch(ctx context.Context, seq uint64, batch, maxBytes int) (msgs []directMsg, more bool, err error) {
	msgs, more, err = ls.e.directBatch(ctx, ls.name, ls.subject, seq, batch, maxBytes)
	if err != nil || more {
		return msgs, more, err
	}
	next, size := seq, 0
	for _, m := range msgs {
		size += len(m.data)
	}
	if len(msgs) > 0 {
		next = msgs[len(msgs)-1].seq + 1
	}
	seen, _, _ := ls.snapshot()
	for next <= seen && len(msgs) < batch && size < maxBytes {
		m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: next, NextFor: ls.subject})
		if err != nil {
			return nil, false, err
		}
		if m == nil {
			break
		}
		msgs = append(msgs, directMsg{seq: m.Seq, data: m.Data})
		size += len(m.Data)
		next = m.Seq + 1
		ls.e.fallbacks.Add(1)
	}
	return msgs, next <= seen, nil
}

// Read reads batches with Direct Get from the first at or after from; see
// the package documentation.
func (h *handle) Read(ctx context.Context, from engine.Position, maxRecords, maxBytes int) ([]engine.Entry, engine.Position, error) {
	if maxRecords <= 0 {
		maxRecords = math.MaxInt
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	if err := h.check("read"); err != nil {
		return nil, from, err
	}
	ls := h.ls
	_, first, _ := ls.snapshot()
	start := max(from.Offset, first, 1)
	var entries []engine.Entry
	used := 0
	next := from
	for len(entries) < maxRecords {
		batch := min(maxRecords-len(entries), maxDirectBatch)
		chunk := max(min(maxBytes-used, maxReadChunk), 1) + 64*batch // allow for headers and framing
		msgs, more, err := ls.fetch(ctx, start, batch, chunk)
		if err != nil {
			return nil, from, ls.lost("read", err)
		}
		for _, m := range msgs {
			ms, recs, err := ls.decode(m.seq, m.data)
			if err != nil {
				return nil, from, err
			}
			for i, r := range recs {
				if m.seq == from.Offset && i < int(from.Index) {
					continue
				}
				sz := len(r.PartitionKey) + len(r.Data)
				if len(entries) >= maxRecords || len(entries) > 0 && sz > maxBytes-used {
					return entries, engine.Position{Offset: m.seq, Index: uint16(i)}, nil
				}
				entries = append(entries, engine.Entry{
					Pos:           engine.Position{Offset: m.seq, Index: uint16(i)},
					ArrivalMillis: ms,
					PartitionKey:  r.PartitionKey,
					Data:          r.Data,
				})
				used += sz
			}
			next = engine.Position{Offset: m.seq + 1}
		}
		if len(msgs) == 0 || !more {
			break
		}
		start = msgs[len(msgs)-1].seq + 1
	}
	if len(entries) == 0 && !from.Less(next) {
		return nil, from, nil
	}
	return entries, next, nil
}
