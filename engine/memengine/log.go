package memengine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalstream/shoal/engine"
)

// maxOffset bounds batch sequence numbers: positions carry them in 56 bits.
const maxOffset = 1 << 56

// closedChan is the Changed channel of a dead log.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// batch is one Append's records. Their data shares one buffer; nothing in
// a batch changes after Append.
type batch struct {
	ms   int64
	recs []engine.Record
}

// log is one shard log, shared by all its handles.
type log struct {
	id  engine.LogID
	now func() time.Time

	// mu guards the fields below. Append, Seal, Unseal, TrimBefore, Changed
	// and kill hold it exclusively, Read, SeekTime and Info shared.
	mu      sync.RWMutex
	batches []batch // retained batches; batches[i] has offset first+i
	first   uint64  // offset of batches[0] (next when there are none)
	next    uint64  // offset of the next batch; starts at 1
	lastMs  int64   // arrival of the newest batch ever appended, 0 if none
	sealed  bool
	dead    bool          // deleted, or the engine closed
	changed chan struct{} // closed and cleared on change; nil until asked for
}

// kill marks the log deleted: its handles fail from now on.
func (l *log) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return
	}
	l.dead = true
	l.batches = nil
	l.notifyLocked()
}

// notifyLocked wakes the waiters on Changed.
func (l *log) notifyLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// endLocked is the position after the last record.
func (l *log) endLocked() engine.Position { return engine.Position{Offset: l.next} }

// handle is an engine.Log: one opening of a log.
type handle struct {
	l      *log
	closed atomic.Bool
}

var _ engine.Log = (*handle)(nil)

// errClosed reports op on a closed handle or a dead log.
func (h *handle) errClosed(op string) error {
	return fmt.Errorf("memengine: %s %v: %w", op, h.l.id, engine.ErrClosed)
}

// Append copies recs into a new batch.
func (h *handle) Append(_ context.Context, recs []engine.Record) (engine.Position, int64, error) {
	if len(recs) == 0 || len(recs) > engine.MaxBatchRecords {
		return engine.Position{}, 0, fmt.Errorf("memengine: append to %v: %w: %d records", h.l.id, engine.ErrInvalidBatch, len(recs))
	}
	if h.closed.Load() {
		return engine.Position{}, 0, h.errClosed("append to")
	}
	// Copy outside the lock: all data into one buffer.
	size := 0
	for i := range recs {
		size += len(recs[i].Data)
	}
	buf := make([]byte, 0, size)
	b := batch{recs: make([]engine.Record, len(recs))}
	for i, r := range recs {
		n := len(buf)
		buf = append(buf, r.Data...)
		b.recs[i] = engine.Record{PartitionKey: r.PartitionKey, Data: buf[n:len(buf):len(buf)]}
	}
	now := h.l.now().UnixMilli()

	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.dead:
		return engine.Position{}, 0, h.errClosed("append to")
	case l.sealed:
		return engine.Position{}, 0, fmt.Errorf("memengine: append to %v: %w", l.id, engine.ErrSealed)
	case l.next >= maxOffset:
		return engine.Position{}, 0, fmt.Errorf("memengine: append to %v: offsets exhausted", l.id)
	}
	b.ms = max(now, l.lastMs)
	l.lastMs = b.ms
	if len(l.batches) == 0 {
		l.first = l.next
	}
	l.batches = append(l.batches, b)
	first := engine.Position{Offset: l.next}
	l.next++
	l.notifyLocked()
	return first, b.ms, nil
}

// Read copies out records from the first at or after from. maxRecords or
// maxBytes <= 0 means no limit.
func (h *handle) Read(_ context.Context, from engine.Position, maxRecords, maxBytes int) ([]engine.Entry, engine.Position, error) {
	if maxRecords <= 0 {
		maxRecords = int(^uint(0) >> 1)
	}
	if maxBytes <= 0 {
		maxBytes = int(^uint(0) >> 1)
	}
	if h.closed.Load() {
		return nil, from, h.errClosed("read")
	}
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.dead {
		return nil, from, h.errClosed("read")
	}
	// Find the first record at or after from.
	bi, ri := 0, 0
	if from.Offset >= l.first {
		bi, ri = int(min(from.Offset-l.first, uint64(len(l.batches)))), int(from.Index)
		if bi < len(l.batches) && ri >= len(l.batches[bi].recs) {
			bi, ri = bi+1, 0
		}
	}
	if bi >= len(l.batches) {
		if from.Less(l.endLocked()) {
			from = l.endLocked() // everything from `from` on was trimmed
		}
		return nil, from, nil
	}
	// Count what the limits take, then copy it with one allocation for the
	// entries and one for the data.
	n, bytes := 0, 0
	ebi, eri := bi, ri
	for ebi < len(l.batches) && n < maxRecords {
		r := &l.batches[ebi].recs[eri]
		sz := len(r.PartitionKey) + len(r.Data)
		if n > 0 && sz > maxBytes-bytes {
			break
		}
		n++
		bytes += sz
		if eri++; eri == len(l.batches[ebi].recs) {
			ebi, eri = ebi+1, 0
		}
	}
	entries := make([]engine.Entry, n)
	buf := make([]byte, 0, bytes)
	for i := range entries {
		b := &l.batches[bi]
		r := &b.recs[ri]
		k := len(buf)
		buf = append(buf, r.Data...)
		entries[i] = engine.Entry{
			Pos:           engine.Position{Offset: l.first + uint64(bi), Index: uint16(ri)},
			ArrivalMillis: b.ms,
			PartitionKey:  r.PartitionKey,
			Data:          buf[k:len(buf):len(buf)],
		}
		if ri++; ri == len(b.recs) {
			bi, ri = bi+1, 0
		}
	}
	return entries, engine.Position{Offset: l.first + uint64(ebi), Index: uint16(eri)}, nil
}

// SeekTime binary-searches the batches' arrival times.
func (h *handle) SeekTime(_ context.Context, ms int64) (engine.Position, error) {
	if h.closed.Load() {
		return engine.Position{}, h.errClosed("seek")
	}
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.dead {
		return engine.Position{}, h.errClosed("seek")
	}
	i := sort.Search(len(l.batches), func(i int) bool { return l.batches[i].ms >= ms })
	if i == len(l.batches) {
		return l.endLocked(), nil
	}
	return engine.Position{Offset: l.first + uint64(i)}, nil
}

// Info reports the log's extent.
func (h *handle) Info(context.Context) (engine.Info, error) {
	if h.closed.Load() {
		return engine.Info{}, h.errClosed("info")
	}
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.dead {
		return engine.Info{}, h.errClosed("info")
	}
	return engine.Info{Oldest: engine.Position{Offset: l.first}, End: l.endLocked(), LastArrivalMillis: l.lastMs}, nil
}

// TrimBefore drops the oldest batches that arrived before ms and returns
// how many.
func (h *handle) TrimBefore(_ context.Context, ms int64) (int, error) {
	if h.closed.Load() {
		return 0, h.errClosed("trim")
	}
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return 0, h.errClosed("trim")
	}
	k := sort.Search(len(l.batches), func(i int) bool { return l.batches[i].ms >= ms })
	if k == 0 {
		return 0, nil
	}
	rest := l.batches[k:]
	if len(rest) < cap(l.batches)/2 {
		// Let go of the dropped batches' slots.
		rest = append(make([]batch, 0, len(rest)+len(rest)/4+4), rest...)
	} else {
		clear(l.batches[:k])
	}
	l.batches = rest
	l.first += uint64(k)
	return k, nil
}

// Changed returns a channel closed at the log's next change.
func (h *handle) Changed() <-chan struct{} {
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || h.closed.Load() {
		return closedChan
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// Seal fences the log. Appends hold the log's lock while they add their
// batch, so Seal returns only after those in flight.
func (h *handle) Seal(context.Context) (engine.Position, error) {
	if h.closed.Load() {
		return engine.Position{}, h.errClosed("seal")
	}
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return engine.Position{}, h.errClosed("seal")
	}
	if !l.sealed {
		l.sealed = true
		l.notifyLocked()
	}
	return l.endLocked(), nil
}

// Unseal undoes Seal.
func (h *handle) Unseal(context.Context) error {
	if h.closed.Load() {
		return h.errClosed("unseal")
	}
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return h.errClosed("unseal")
	}
	if l.sealed {
		l.sealed = false
		l.notifyLocked()
	}
	return nil
}

// Sync does nothing: there is nothing to make durable.
func (h *handle) Sync(context.Context) error {
	if h.closed.Load() {
		return h.errClosed("sync")
	}
	l := h.l
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.dead {
		return h.errClosed("sync")
	}
	return nil
}

// Close releases the handle; the log remains. Closing again does nothing.
func (h *handle) Close() error {
	h.closed.Store(true)
	return nil
}
