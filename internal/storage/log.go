package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// segment is one segment file. base and f never change. refs counts the
// Log's own reference (dropped by TrimBefore or Close) plus one per reader
// currently using f; f is closed when it reaches zero. The remaining fields
// are guarded by Log.mu.
type segment struct {
	base uint64
	f    *os.File
	refs atomic.Int32

	size   int64        // bytes of valid batches in the file (the write position for the active segment)
	index  []indexEntry // sparse time/offset index; index[0] is the first batch when size > 0
	lastMs int64        // arrival of the newest batch, 0 if none
}

// indexEntry records the logical offset and arrival time of a batch.
type indexEntry struct {
	off uint64
	ms  int64
}

func (s *segment) end() uint64 { return s.base + uint64(s.size) }

// addIndex notes a batch at off, adding an index entry at most every
// indexInterval bytes.
func (s *segment) addIndex(off uint64, ms int64) {
	if n := len(s.index); n == 0 || off-s.index[n-1].off >= indexInterval {
		s.index = append(s.index, indexEntry{off, ms})
	}
	s.lastMs = ms
}

// indexHint returns the offset of the latest indexed batch at or before off,
// or base.
func (s *segment) indexHint(off uint64) uint64 {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].off > off })
	if i == 0 {
		return s.base
	}
	return s.index[i-1].off
}

// acquire takes a reader reference; it must be called with Log.mu held on a
// segment still listed in Log.segs.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference, closing the file when it was the last.
func (s *segment) release() error {
	if s.refs.Add(-1) == 0 {
		return s.f.Close()
	}
	return nil
}

// waiter is an FsyncAlways appender (or Sync caller) waiting for its batch
// end to become durable. err is set by the goroutine that discards it.
type waiter struct {
	end uint64
	ms  int64
	err error
}

var waiterPool = sync.Pool{New: func() any { return new(waiter) }}

// Log is one shard's durable, segmented, append-only record log. All methods
// are safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	lg   *zap.Logger

	// I/O hooks, replaced by tests to inject failures. Set before concurrent use.
	writeAt   func(f *os.File, b []byte, off int64) (int, error)
	syncFile  func(f *os.File) error
	truncFile func(f *os.File, size int64) error
	syncDir   func(dir string) error

	// mu guards every field below, and segment.size/index/lastMs. It is held
	// for encoding and write(2), never across fdatasync of appended data
	// (except when rolling or closing a segment).
	mu sync.Mutex
	// cond (L = &mu) is broadcast when a sync finishes or the log closes.
	cond sync.Cond

	closed    bool
	segs      []*segment // ordered by base; never empty while open; last is active
	written   uint64     // logical end of written data
	durable   uint64     // logical end of data known to be durable
	lastMs    int64      // arrival of the newest written batch (keeps arrivals monotonic)
	durableMs int64      // arrival of the newest durable batch
	syncing   bool       // a group-commit leader is in fdatasync
	pending   []*waiter  // FsyncAlways waiters not yet durable, in write order
	encBuf    []byte     // reused batch encoding buffer
	// truncPending means truncating the active segment back to its size
	// failed; it must succeed before the next write.
	truncPending bool
}

// Open opens (creating if needed) the log in dir, recovering from any torn
// or corrupt batch tails left by a crash.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.Fsync < FsyncAlways || opts.Fsync > FsyncNever {
		return nil, fmt.Errorf("storage: open: invalid fsync mode %d", int(opts.Fsync))
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	l := &Log{
		dir:       dir,
		opts:      opts,
		lg:        opts.Logger.With(zap.String("dir", dir)),
		writeAt:   func(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) },
		syncFile:  fdatasync,
		truncFile: func(f *os.File, size int64) error { return f.Truncate(size) },
		syncDir:   syncDir,
	}
	l.cond.L = &l.mu
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			_ = s.f.Close() // the recovery error is the one to report
		}
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	return l, nil
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d.log", base) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// committedLocked is the end of what readers may see.
func (l *Log) committedLocked() uint64 {
	if l.opts.Fsync == FsyncAlways {
		return l.durable
	}
	return l.written
}

// Append writes recs (1..MaxBatchRecords records) as one batch. Record i is
// at Position{first.Offset, first.Index+i}; all share arrivalMillis, which is
// max(now, previous arrival). In FsyncAlways mode Append returns only once
// the batch is durable.
func (l *Log) Append(recs []Record) (first Position, arrivalMillis int64, err error) {
	if len(recs) == 0 || len(recs) > MaxBatchRecords {
		return Position{}, 0, fmt.Errorf("storage: append: %w: %d records", ErrInvalidBatch, len(recs))
	}
	size := batchSize(recs)
	if size > MaxBatchBytes {
		return Position{}, 0, fmt.Errorf("storage: append: %w: batch exceeds %d bytes", ErrInvalidBatch, MaxBatchBytes)
	}
	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return Position{}, 0, ErrClosed
		}
		if l.truncPending {
			a := l.active()
			if err := l.truncFile(a.f, a.size); err != nil {
				l.mu.Unlock()
				return Position{}, 0, fmt.Errorf("storage: append: truncate after failed write: %w", err)
			}
			l.truncPending = false
		}
		if a := l.active(); a.size > 0 && a.size+int64(size) > l.opts.SegmentBytes {
			if l.syncing {
				l.cond.Wait()
				continue
			}
			if err := l.rollLocked(); err != nil {
				l.mu.Unlock()
				return Position{}, 0, fmt.Errorf("storage: append: %w", err)
			}
			continue
		}
		break
	}
	off := l.written
	if off+uint64(size) >= MaxOffset {
		l.mu.Unlock()
		return Position{}, 0, fmt.Errorf("storage: append: %w", ErrFull)
	}
	ms := max(l.opts.Now().UnixMilli(), l.lastMs)
	buf := encodeBatch(l.encBuf, recs, ms, size)
	a := l.active()
	if _, err := l.writeAt(a.f, buf, a.size); err != nil {
		if terr := l.truncFile(a.f, a.size); terr != nil {
			l.truncPending = true
			l.lg.Error("truncate after failed write", zap.Error(terr))
		}
		l.mu.Unlock()
		return Position{}, 0, fmt.Errorf("storage: append: %w", err)
	}
	if cap(buf) <= 4<<20 {
		l.encBuf = buf[:0]
	} else {
		l.encBuf = nil
	}
	a.size += int64(size)
	l.written += uint64(size)
	a.addIndex(off, ms)
	l.lastMs = ms
	if l.opts.Fsync != FsyncAlways {
		l.mu.Unlock()
		return Position{Offset: off}, ms, nil
	}
	w := waiterPool.Get().(*waiter)
	w.end, w.ms, w.err = l.written, ms, nil
	l.pending = append(l.pending, w)
	err = l.waitLocked(w)
	l.mu.Unlock()
	w.err = nil
	waiterPool.Put(w)
	if err != nil {
		return Position{}, 0, err
	}
	return Position{Offset: off}, ms, nil
}

// waitLocked waits until w's batch is durable or discarded, leading a group
// commit whenever no sync is in flight.
func (l *Log) waitLocked(w *waiter) error {
	for {
		if w.err != nil {
			return w.err
		}
		if l.durable >= w.end {
			return nil
		}
		if l.closed {
			return ErrClosed
		}
		if !l.syncing {
			// Only FsyncAlways waits here: a failed sync discards the batch
			// and sets w.err, which the next iteration returns.
			_ = l.leadSyncLocked()
			continue
		}
		l.cond.Wait()
	}
}

// leadSyncLocked syncs the active segment without holding mu, so appends
// continue meanwhile. In FsyncAlways mode a failure discards every batch not
// yet durable (their waiters get the error).
func (l *Log) leadSyncLocked() error {
	l.syncing = true
	a, target := l.active(), l.written
	batches := 0
	for _, w := range l.pending {
		if w.end <= target {
			batches++
		}
	}
	l.mu.Unlock()
	t0 := time.Now()
	err := l.syncFile(a.f)
	if l.opts.OnSync != nil {
		l.opts.OnSync(time.Since(t0), batches, err)
	}
	l.mu.Lock()
	l.syncing = false
	l.cond.Broadcast()
	if err != nil {
		err = fmt.Errorf("storage: sync: %w", err)
		l.lg.Error("fdatasync failed", zap.Error(err))
		if l.opts.Fsync == FsyncAlways {
			l.failLocked(err)
		}
		return err
	}
	l.advanceDurableLocked(target)
	return nil
}

// advanceDurableLocked records that everything below target is durable and
// releases the waiters it covers.
func (l *Log) advanceDurableLocked(target uint64) {
	if target <= l.durable {
		return
	}
	l.durable = target
	k := 0
	for k < len(l.pending) && l.pending[k].end <= target {
		l.durableMs = l.pending[k].ms
		k++
	}
	if target == l.written {
		l.durableMs = l.lastMs
	}
	n := copy(l.pending, l.pending[k:])
	clear(l.pending[n:])
	l.pending = l.pending[:n]
}

// failLocked handles a failed sync in FsyncAlways mode: the active segment is
// truncated back to the durable end and every waiter beyond it gets err.
func (l *Log) failLocked(err error) {
	keep := l.durable
	a := l.active()
	if l.written > keep {
		size := int64(keep - a.base)
		if terr := l.truncFile(a.f, size); terr != nil {
			l.truncPending = true
			l.lg.Error("truncate after failed sync", zap.Error(terr))
		}
		a.size = size
		i := sort.Search(len(a.index), func(i int) bool { return a.index[i].off >= keep })
		a.index = a.index[:i]
		a.lastMs = 0
		if i > 0 {
			a.lastMs = l.durableMs
		}
		l.written = keep
	}
	for _, w := range l.pending {
		if w.end > keep {
			w.err = err
		}
	}
	clear(l.pending)
	l.pending = l.pending[:0]
	l.cond.Broadcast()
}

// rollLocked makes the active segment durable (unless FsyncNever) and starts
// a new one whose name is made durable before any record in it is
// acknowledged. No sync may be in flight.
func (l *Log) rollLocked() error {
	a := l.active()
	if l.opts.Fsync != FsyncNever {
		if l.durable < l.written {
			if err := l.syncFile(a.f); err != nil {
				err = fmt.Errorf("roll: sync: %w", err)
				l.lg.Error("fdatasync failed", zap.Error(err))
				if l.opts.Fsync == FsyncAlways {
					l.failLocked(err)
				}
				return err
			}
		}
		l.advanceDurableLocked(l.written)
		l.cond.Broadcast()
	}
	base := l.written
	path := filepath.Join(l.dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("roll: %w", err)
	}
	if l.opts.Fsync != FsyncNever {
		if err := l.syncDir(l.dir); err != nil {
			// Best effort: the new segment is empty, and the sync error is what counts.
			_ = f.Close()
			_ = os.Remove(path)
			return fmt.Errorf("roll: sync dir: %w", err)
		}
	}
	s := &segment{base: base, f: f}
	s.refs.Store(1)
	l.segs = append(l.segs, s)
	return nil
}

// Sync makes everything written so far durable (fdatasync of the active
// segment, shared with concurrent appenders). In FsyncInterval mode this is
// what makes data durable; in FsyncAlways mode it is rarely needed.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.durable >= l.written {
		return nil
	}
	if l.opts.Fsync == FsyncAlways {
		w := waiterPool.Get().(*waiter)
		w.end, w.ms, w.err = l.written, l.lastMs, nil
		l.pending = append(l.pending, w)
		err := l.waitLocked(w)
		w.err = nil
		waiterPool.Put(w)
		return err
	}
	target := l.written
	for {
		if l.closed {
			return ErrClosed
		}
		if l.durable >= target {
			return nil
		}
		if !l.syncing {
			if err := l.leadSyncLocked(); err != nil {
				return err
			}
			continue
		}
		l.cond.Wait()
	}
}

// TrimBefore deletes the oldest segments whose newest record arrived before
// ms (and empty ones among them), never the active segment. It returns how
// many segments it removed.
func (l *Log) TrimBefore(ms int64) (removed int, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	k := 0
	for k < len(l.segs)-1 {
		if s := l.segs[k]; s.size > 0 && s.lastMs >= ms {
			break
		}
		k++
	}
	return l.dropOldestLocked(k)
}

// TrimToSize deletes the oldest segments while the log's segments hold
// more than maxBytes in all, never the active segment: afterwards the log
// holds at most maxBytes, or only its active segment. Size wins over time:
// a segment goes however young its records are. Readers holding a removed
// segment finish with it (segments are reference counted); later reads
// start at the new oldest segment. It returns how many segments it
// removed. A maxBytes <= 0 removes nothing.
func (l *Log) TrimToSize(maxBytes int64) (removed int, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if maxBytes <= 0 {
		l.mu.Unlock()
		return 0, nil
	}
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	k := 0
	for k < len(l.segs)-1 && total > maxBytes {
		total -= l.segs[k].size
		k++
	}
	return l.dropOldestLocked(k)
}

// dropOldestLocked removes the k oldest segments (k < len(l.segs), so
// never the active one) from the log and their files from the directory.
// l.mu is held on entry and released.
func (l *Log) dropOldestLocked(k int) (removed int, err error) {
	if k == 0 {
		l.mu.Unlock()
		return 0, nil
	}
	victims := make([]*segment, k)
	copy(victims, l.segs)
	n := copy(l.segs, l.segs[k:])
	clear(l.segs[n:])
	l.segs = l.segs[:n]
	l.mu.Unlock()

	for _, s := range victims {
		if rerr := os.Remove(filepath.Join(l.dir, segmentName(s.base))); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = fmt.Errorf("storage: trim: %w", rerr)
		}
		_ = s.release() // a trimmed segment: a failed close of its file loses nothing
	}
	if err == nil && l.opts.Fsync != FsyncNever {
		if serr := l.syncDir(l.dir); serr != nil {
			err = fmt.Errorf("storage: trim: sync dir: %w", serr)
		}
	}
	return k, err
}

// End returns the position just after the last committed record. The next
// Append's first position is at or after it.
func (l *Log) End() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Position{Offset: l.committedLocked()}
}

// Oldest returns the position of the first retained committed record, or
// End() when there is none.
func (l *Log) Oldest() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.committedLocked()
	for _, s := range l.segs {
		if s.base >= c {
			break
		}
		if s.size > 0 {
			return Position{Offset: s.base}
		}
	}
	return Position{Offset: c}
}

// LastArrival returns the arrival time (unix ms) of the newest committed
// record, or 0 if the log has none.
func (l *Log) LastArrival() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opts.Fsync == FsyncAlways {
		return l.durableMs
	}
	return l.lastMs
}

// Close syncs (unless FsyncNever) and closes the log. It is idempotent; other
// methods called afterwards return ErrClosed. Reads in flight finish first.
func (l *Log) Close() error {
	l.mu.Lock()
	for l.syncing && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	var err error
	if l.opts.Fsync != FsyncNever && l.durable < l.written {
		if serr := l.syncFile(l.active().f); serr != nil {
			err = fmt.Errorf("storage: close: sync: %w", serr)
			if l.opts.Fsync == FsyncAlways {
				l.failLocked(err)
			}
		} else {
			l.advanceDurableLocked(l.written)
		}
	}
	l.closed = true
	l.cond.Broadcast()
	segs := l.segs
	l.mu.Unlock()
	for _, s := range segs {
		if cerr := s.release(); cerr != nil && err == nil {
			err = fmt.Errorf("storage: close: %w", cerr)
		}
	}
	return err
}
