package fileengine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// logState is the state of one log shared by all its handles: the lazily
// opened storage.Log, the seal flag and the Changed channel. The last two
// live here, not in the storage.Log, so they survive closing the log for
// idleness.
type logState struct {
	e       *Engine
	id      engine.LogID
	dir     string
	created bool // made by CreateLog in this process; set before publication
	// deleters counts DeleteLog calls removing the directory (guarded by
	// Engine.mu); the dead state leaves Engine.logs when the last is done.
	deleters int

	// sealMu orders appends against Seal: an appender holds it for reading
	// across its check of sealed and its storage Append; Seal and Unseal
	// hold it for writing. Taken before mu.
	sealMu sync.RWMutex
	sealed bool // guarded by sealMu

	// mu guards sl, trimMs and the increments of users; it is held while
	// the storage.Log is opened (with recovery) or closed, and briefly by
	// every operation to take sl. Held before Engine.mu, never while
	// waiting for another logState's mu (eviction uses TryLock).
	mu     sync.Mutex
	sl     *storage.Log // nil while closed
	trimMs int64        // a TrimBefore cutoff to apply when next opened
	// dirSynced records that the names of the log's directory and of its
	// stream's directory were fsynced in this process (see openStorage).
	dirSynced bool
	// dead is set under mu by DeleteLog and Engine.Close: every later use
	// fails with ErrClosed.
	dead atomic.Bool
	// users counts operations using sl; incremented under mu (so that a
	// closer holding mu sees it), decremented without.
	users atomic.Int32
	// lastUse is when the last operation released the log (Engine.now).
	lastUse atomic.Int64

	notifyMu   sync.Mutex    // guards notify and notifyDead
	notify     chan struct{} // closed by signal; nil until Changed asks for one
	notifyDead bool          // set by kill: Changed returns a closed channel
}

// closedChan is a closed channel, the Changed channel of dead logs.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newLogState(e *Engine, id engine.LogID, dir string) *logState {
	return &logState{e: e, id: id, dir: dir}
}

// acquire returns the open storage.Log, opening it if needed, and counts
// the caller as a user; the caller must call release.
func (ls *logState) acquire() (*storage.Log, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.dead.Load() {
		return nil, errClosed("log " + ls.id.String())
	}
	if ls.sl == nil {
		if err := ls.openLocked(); err != nil {
			return nil, err
		}
	}
	ls.users.Add(1)
	return ls.sl, nil
}

// acquireAppend is acquire for an appender: before the first append of the
// process is acknowledged, the names of the log's directory and of its
// stream's directory (made by CreateLog or by the open) are made durable.
// storage itself makes only its segment files' names durable.
func (ls *logState) acquireAppend() (*storage.Log, error) {
	sl, err := ls.acquire()
	if err != nil {
		return nil, err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !ls.dirSynced && ls.e.cfg.Fsync != FsyncNever {
		err := syncDir(filepath.Dir(ls.dir))
		if err == nil {
			err = syncDir(ls.e.streamsDir)
		}
		if err != nil {
			ls.release()
			return nil, fmt.Errorf("fileengine: append %v: sync directory: %w", ls.id, err)
		}
		ls.dirSynced = true
	}
	return sl, nil
}

// acquireOpen is acquire without opening: it returns nil if the log is not
// open.
func (ls *logState) acquireOpen() (*storage.Log, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.dead.Load() {
		return nil, errClosed("log " + ls.id.String())
	}
	if ls.sl != nil {
		ls.users.Add(1)
	}
	return ls.sl, nil
}

// release ends a use begun by acquire, then closes idle logs if too many
// are open.
func (ls *logState) release() {
	ls.lastUse.Store(ls.e.now())
	ls.users.Add(-1)
	if ls.e.nOpen.Load() > int64(ls.e.cfg.MaxOpenLogs) {
		ls.e.evict(0)
	}
}

// openLocked opens the storage.Log (recovering it) in a reserved slot and
// applies a pending trim. ls.mu is held.
func (ls *logState) openLocked() error {
	e := ls.e
	if err := e.reserve(); err != nil {
		return err
	}
	sl, err := ls.openStorage()
	if err != nil {
		e.mu.Lock()
		e.nOpen.Add(-1)
		e.mu.Unlock()
		return mapErr("open log "+ls.id.String(), err)
	}
	e.mu.Lock()
	if e.closed.Load() {
		e.nOpen.Add(-1)
		e.mu.Unlock()
		_ = sl.Close()
		return errClosed("open log " + ls.id.String())
	}
	e.openSet[ls] = struct{}{}
	e.mu.Unlock()
	ls.sl = sl
	ls.lastUse.Store(e.now())
	return nil
}

func (ls *logState) openStorage() (*storage.Log, error) {
	e := ls.e
	if err := e.ensureDir(ls.dir); err != nil {
		return nil, err
	}
	sl, err := storage.Open(ls.dir, storage.Options{
		SegmentBytes: e.cfg.SegmentBytes,
		Fsync:        e.cfg.Fsync,
		Logger:       e.lg,
		Now:          e.cfg.Now,
		OnSync:       e.cfg.OnSync,
	})
	if err != nil {
		return nil, err
	}
	if ls.trimMs != 0 {
		if _, err := sl.TrimBefore(ls.trimMs); err != nil {
			e.lg.Warn("deferred trim failed", zap.Stringer("log", ls.id), zap.Error(err))
		}
		ls.trimMs = 0
	}
	return sl, nil
}

// closeIfIdle closes the storage.Log if it is open, unused, and was last
// used at least idleFor ago. It does not wait for ls.mu: a log whose mutex
// is held is busy. It reports whether it closed the log.
func (ls *logState) closeIfIdle(idleFor int64) bool {
	if !ls.mu.TryLock() {
		return false
	}
	defer ls.mu.Unlock()
	if ls.sl == nil || ls.users.Load() > 0 || ls.e.now()-ls.lastUse.Load() < idleFor {
		return false
	}
	if err := ls.sl.Close(); err != nil {
		ls.e.lg.Warn("closing idle log", zap.Stringer("log", ls.id), zap.Error(err))
	}
	ls.closeLocked()
	return true
}

// closeLocked forgets the closed storage.Log. ls.mu is held.
func (ls *logState) closeLocked() {
	ls.sl = nil
	e := ls.e
	e.mu.Lock()
	delete(e.openSet, ls)
	e.nOpen.Add(-1)
	e.mu.Unlock()
}

// kill makes the log dead (deleted, or the engine closed): the storage.Log
// is synced (unless deleted) and closed, every later use fails with
// ErrClosed and Changed channels are closed.
func (ls *logState) kill(deleted bool) error {
	ls.mu.Lock()
	ls.dead.Store(true)
	var err error
	if ls.sl != nil {
		if !deleted && ls.e.cfg.Fsync == FsyncNever {
			err = ls.sl.Sync() // the storage.Log's Close does not sync in this mode
		}
		if cerr := ls.sl.Close(); err == nil {
			err = cerr
		}
		ls.closeLocked()
	}
	ls.mu.Unlock()
	ls.notifyMu.Lock()
	ls.notifyDead = true
	if ls.notify != nil {
		close(ls.notify)
		ls.notify = nil
	}
	ls.notifyMu.Unlock()
	return err
}

// signal closes the current Changed channel.
func (ls *logState) signal() {
	ls.notifyMu.Lock()
	if ls.notify != nil {
		close(ls.notify)
		ls.notify = nil
	}
	ls.notifyMu.Unlock()
}

// mapErr is mapErr for an operation on ls: an operation that failed because
// DeleteLog removed the log under it (its files or directory vanished)
// fails with ErrClosed, as every later one does.
func (ls *logState) mapErr(op string, err error) error {
	if ls.dead.Load() && !errors.Is(err, storage.ErrClosed) {
		return fmt.Errorf("fileengine: %s %v: %w (%w)", op, ls.id, engine.ErrClosed, err)
	}
	return mapErr(op+" "+ls.id.String(), err)
}

// mapErr maps storage errors to the engine's, keeping storage's message.
func mapErr(op string, err error) error {
	switch {
	case errors.Is(err, storage.ErrClosed):
		return fmt.Errorf("fileengine: %s: %w: %w", op, engine.ErrClosed, err)
	case errors.Is(err, storage.ErrInvalidBatch):
		return fmt.Errorf("fileengine: %s: %w: %w", op, engine.ErrInvalidBatch, err)
	case errors.Is(err, storage.ErrCorrupt):
		return fmt.Errorf("fileengine: %s: %w: %w", op, engine.ErrCorrupt, err)
	}
	return fmt.Errorf("fileengine: %s: %w", op, err)
}

// handle is an engine.Log: a reference to a shared logState.
type handle struct {
	ls     *logState
	closed atomic.Bool // set by Close: this handle fails with ErrClosed
}

var _ engine.Log = (*handle)(nil)

// check fails if ctx is done, the handle is closed or the log dead.
func (h *handle) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.closed.Load() || h.ls.dead.Load() {
		return errClosed(op + " " + h.ls.id.String())
	}
	return nil
}

// use checks the handle and acquires the storage.Log.
func (h *handle) use(ctx context.Context, op string) (*storage.Log, error) {
	if err := h.check(ctx, op); err != nil {
		return nil, err
	}
	return h.ls.acquire()
}

// Append appends recs as one batch (see engine.Log). It fails with
// ErrSealed on a sealed log.
func (h *handle) Append(ctx context.Context, recs []engine.Record) (engine.Position, int64, error) {
	if err := h.check(ctx, "append"); err != nil {
		return engine.Position{}, 0, err
	}
	if len(recs) == 0 || len(recs) > engine.MaxBatchRecords {
		return engine.Position{}, 0, fmt.Errorf("fileengine: append %v: %w: %d records", h.ls.id, engine.ErrInvalidBatch, len(recs))
	}
	ls := h.ls
	ls.sealMu.RLock()
	defer ls.sealMu.RUnlock()
	if ls.sealed {
		return engine.Position{}, 0, fmt.Errorf("fileengine: append %v: %w", ls.id, engine.ErrSealed)
	}
	sl, err := ls.acquireAppend()
	if err != nil {
		return engine.Position{}, 0, err
	}
	first, ms, err := sl.Append(recs)
	ls.release()
	if err != nil {
		return engine.Position{}, 0, ls.mapErr("append", err)
	}
	ls.signal()
	return first, ms, nil
}

// Read reads records (see engine.Log). The entries are copies owned by the
// caller: storage.Log.Read copies them out of its scratch buffers, so they
// stay valid after the log is closed for idleness.
func (h *handle) Read(ctx context.Context, from engine.Position, maxRecords, maxBytes int) ([]engine.Entry, engine.Position, error) {
	sl, err := h.use(ctx, "read")
	if err != nil {
		return nil, from, err
	}
	es, next, err := sl.Read(from, maxRecords, maxBytes)
	h.ls.release()
	if err != nil {
		return nil, from, h.ls.mapErr("read", err)
	}
	return es, next, nil
}

// SeekTime returns the first position at or after arrival time ms.
func (h *handle) SeekTime(ctx context.Context, ms int64) (engine.Position, error) {
	sl, err := h.use(ctx, "seek")
	if err != nil {
		return engine.Position{}, err
	}
	defer h.ls.release()
	return sl.SeekTime(ms), nil
}

// Info reports the log's extent.
func (h *handle) Info(ctx context.Context) (engine.Info, error) {
	sl, err := h.use(ctx, "info")
	if err != nil {
		return engine.Info{}, err
	}
	defer h.ls.release()
	// Oldest, then the newest arrival, then End: each is monotonic, so the
	// result is ordered even while appends and trims run.
	in := engine.Info{Oldest: sl.Oldest(), LastArrivalMillis: sl.LastArrival()}
	in.End = sl.End()
	return in, nil
}

// TrimBefore removes whole segments whose records all arrived before ms.
// On a log that is not open it only remembers ms (the latest cutoff wins)
// and returns 0: the trim is applied when the log is next opened, so a
// retention pass over many idle logs opens none of them.
func (h *handle) TrimBefore(ctx context.Context, ms int64) (int, error) {
	if err := h.check(ctx, "trim"); err != nil {
		return 0, err
	}
	ls := h.ls
	ls.mu.Lock()
	if ls.dead.Load() {
		ls.mu.Unlock()
		return 0, errClosed("trim " + ls.id.String())
	}
	if ls.sl == nil {
		ls.trimMs = max(ls.trimMs, ms)
		ls.mu.Unlock()
		return 0, nil
	}
	ls.users.Add(1)
	sl := ls.sl
	ls.mu.Unlock()
	n, err := sl.TrimBefore(ms)
	ls.release()
	if err != nil {
		return n, ls.mapErr("trim", err)
	}
	return n, nil
}

// Changed returns a channel closed at the next append, seal, unseal or
// deletion of the log (or when the engine closes).
func (h *handle) Changed() <-chan struct{} {
	ls := h.ls
	ls.notifyMu.Lock()
	defer ls.notifyMu.Unlock()
	if ls.notifyDead || h.closed.Load() {
		return closedChan
	}
	if ls.notify == nil {
		ls.notify = make(chan struct{})
	}
	return ls.notify
}

// Seal fences the log: it waits for appends in flight, makes later appends
// fail with ErrSealed and returns the end. The flag is kept in memory only.
func (h *handle) Seal(ctx context.Context) (engine.Position, error) {
	if err := h.check(ctx, "seal"); err != nil {
		return engine.Position{}, err
	}
	ls := h.ls
	ls.sealMu.Lock()
	ls.sealed = true
	sl, err := ls.acquireOpen()
	if err == nil && sl == nil && !ls.hasSegments() {
		// Never written (a reshard seals children it closes at once): no
		// need to open, and so create, the log to know it ends at 0.
		ls.sealMu.Unlock()
		ls.signal()
		return engine.Position{}, nil
	}
	if err == nil && sl == nil {
		sl, err = ls.acquire()
	}
	if err != nil {
		ls.sealMu.Unlock()
		return engine.Position{}, err
	}
	end := sl.End()
	ls.release()
	ls.sealMu.Unlock()
	ls.signal()
	return end, nil
}

// hasSegments reports whether the log's directory holds a segment file
// (a missing directory holds none).
func (ls *logState) hasSegments() bool {
	ents, err := os.ReadDir(ls.dir)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // unknown: assume data
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			return true
		}
	}
	return false
}

// Unseal lets appends in again.
func (h *handle) Unseal(ctx context.Context) error {
	if err := h.check(ctx, "unseal"); err != nil {
		return err
	}
	ls := h.ls
	ls.sealMu.Lock()
	ls.sealed = false
	ls.sealMu.Unlock()
	ls.signal()
	return nil
}

// Sync makes the appended records durable. A log that is not open has
// nothing to sync: closing it synced it (except in FsyncNever mode, where
// write-back is the kernel's).
func (h *handle) Sync(ctx context.Context) error {
	if err := h.check(ctx, "sync"); err != nil {
		return err
	}
	sl, err := h.ls.acquireOpen()
	if err != nil || sl == nil {
		return err
	}
	err = sl.Sync()
	h.ls.release()
	if err != nil {
		return h.ls.mapErr("sync", err)
	}
	return nil
}

// Close releases the handle; the log stays.
func (h *handle) Close() error {
	h.closed.Store(true)
	return nil
}
