package fileengine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// FsyncMode says when appended records are made durable (see Config.Fsync).
type FsyncMode = storage.FsyncMode

// The fsync modes.
const (
	// FsyncAlways makes Append return only once its batch is on stable
	// storage; concurrent appenders share fdatasyncs (group commit). Readers
	// see only durable records. The zero value.
	FsyncAlways = storage.FsyncAlways
	// FsyncInterval makes Append return after write(2); the engine syncs
	// every open log each Config.FsyncInterval, so a crash loses at most
	// that much. Readers see written records.
	FsyncInterval = storage.FsyncInterval
	// FsyncNever leaves write-back to the kernel (Close and Sync still
	// sync).
	FsyncNever = storage.FsyncNever
)

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) { return storage.ParseFsyncMode(s) }

// Defaults of Config fields left zero.
const (
	DefaultFsyncInterval = 200 * time.Millisecond
	DefaultMaxOpenLogs   = 1024
	DefaultIdleTimeout   = time.Minute
)

// Config configures a file engine.
type Config struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// Fsync selects the durability mode; the zero value is FsyncAlways.
	Fsync FsyncMode
	// FsyncInterval is the period of the engine's sync of every open log in
	// FsyncInterval mode; 0 means DefaultFsyncInterval.
	FsyncInterval time.Duration
	// SegmentBytes is the size at which a log's active segment file is
	// rolled; 0 means the storage default (64 MiB).
	SegmentBytes int64
	// MaxOpenLogs bounds the shard logs open at once (each holds a file
	// descriptor per segment); 0 means DefaultMaxOpenLogs. The least
	// recently used idle logs are closed when more are needed.
	MaxOpenLogs int
	// IdleTimeout closes a log unused this long; 0 means
	// DefaultIdleTimeout, a negative value never closes idle logs.
	IdleTimeout time.Duration
	// Logger receives recovery warnings and I/O errors; nil discards them.
	Logger *zap.Logger
	// Now is the clock of arrival times; nil means time.Now.
	Now func() time.Time
	// OnSync, when set, observes each group-commit sync of a log's appended
	// data: its latency, the appended batches it made durable, and its
	// error. It must be fast.
	OnSync func(d time.Duration, batches int, err error)
}

// Engine is the file engine: shard logs in directories under Dir/streams and
// a catalog of small files under Dir/catalog. It implements engine.Engine;
// see the package documentation.
type Engine struct {
	cfg        Config
	lg         *zap.Logger
	streamsDir string
	cat        *catalog
	start      time.Time // origin of logState.lastUse

	// closed is set (under mu) by Close; read without mu as a fast check.
	closed atomic.Bool
	// nOpen counts open logs plus slots reserved by logs being opened. It
	// is changed under mu and read without it.
	nOpen atomic.Int64
	// peakOpen is the highest nOpen seen (for tests).
	peakOpen atomic.Int64

	// mu guards logs and openSet. It is held only briefly and never while
	// waiting for a logState.mu (only TryLock is used under it).
	mu      sync.Mutex
	logs    map[engine.LogID]*logState // every log handed out and not deleted
	openSet map[*logState]struct{}     // logs whose storage.Log is open

	// dirMu orders creating shard directories against removing empty stream
	// directories, so neither breaks the other.
	dirMu sync.Mutex

	stop chan struct{}  // closed by Close to stop the goroutines below
	wg   sync.WaitGroup // the sync ticker and the janitor
}

var _ engine.Engine = (*Engine)(nil)

// Open opens (creating if needed) the engine in cfg.Dir. It migrates a legacy
// meta.json into the catalog and loads the catalog. After a clean Close it
// opens no shard log: each is opened, with crash recovery, on its first use.
// After an unclean end (no clean-shutdown marker) it recovers every log
// before it returns.
func Open(cfg Config) (*Engine, error) {
	if cfg.Dir == "" {
		return nil, errors.New("fileengine: open: Config.Dir is empty")
	}
	if cfg.Fsync < FsyncAlways || cfg.Fsync > FsyncNever {
		return nil, fmt.Errorf("fileengine: open: invalid fsync mode %d", int(cfg.Fsync))
	}
	if cfg.FsyncInterval <= 0 {
		cfg.FsyncInterval = DefaultFsyncInterval
	}
	if cfg.MaxOpenLogs <= 0 {
		cfg.MaxOpenLogs = DefaultMaxOpenLogs
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg:        cfg,
		lg:         cfg.Logger,
		streamsDir: filepath.Join(cfg.Dir, "streams"),
		start:      time.Now(),
		logs:       map[engine.LogID]*logState{},
		openSet:    map[*logState]struct{}{},
		stop:       make(chan struct{}),
	}
	if err := os.MkdirAll(e.streamsDir, 0o755); err != nil {
		return nil, fmt.Errorf("fileengine: open: %w", err)
	}
	cat, err := openCatalog(filepath.Join(cfg.Dir, "catalog"), e.lg)
	if err != nil {
		return nil, fmt.Errorf("fileengine: open: %w", err)
	}
	if err := migrate(cfg.Dir, cat, e.lg); err != nil {
		return nil, fmt.Errorf("fileengine: open: %w", err)
	}
	if err := cat.load(); err != nil {
		return nil, fmt.Errorf("fileengine: open: %w", err)
	}
	e.cat = cat
	clean, err := takeCleanMarker(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("fileengine: open: %w", err)
	}
	if !clean {
		if err := e.recoverAll(); err != nil {
			return nil, fmt.Errorf("fileengine: open: %w", err)
		}
	}
	if cfg.Fsync == FsyncInterval {
		e.wg.Add(1)
		go e.syncLoop()
	}
	if cfg.IdleTimeout > 0 {
		e.wg.Add(1)
		go e.janitor()
	}
	return e, nil
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() engine.Catalog { return e.cat }

// OpenLogs reports how many shard logs are open now (including any being
// opened). It is a diagnostic: it never exceeds Config.MaxOpenLogs unless
// more logs than that are in use at the same instant.
func (e *Engine) OpenLogs() int { return int(e.nOpen.Load()) }

func errClosed(op string) error { return fmt.Errorf("fileengine: %s: %w", op, engine.ErrClosed) }

// shardName is the directory name of shard index i.
func shardName(i uint32) string { return fmt.Sprintf("shardId-%012d", i) }

// parseShardName returns the index of a shard directory name.
func parseShardName(name string) (uint32, bool) {
	digits, ok := strings.CutPrefix(name, "shardId-")
	if !ok || len(digits) != 12 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	return uint32(n), err == nil
}

// logDir returns the directory of log id, or an error if id.Stream is not a
// usable directory name.
func (e *Engine) logDir(id engine.LogID) (string, error) {
	s := id.Stream
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") || len(s) > 255 {
		return "", fmt.Errorf("fileengine: invalid log id %q", id.String())
	}
	return filepath.Join(e.streamsDir, s, shardName(id.Shard)), nil
}

// state returns the shared state of id, making it if needed. It
// fails with ErrClosed after Close.
func (e *Engine) state(id engine.LogID, dir string) (*logState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, errClosed("open log")
	}
	ls := e.logs[id]
	if ls == nil {
		ls = newLogState(e, id, dir)
		e.logs[id] = ls
	}
	return ls, nil
}

// CreateLog makes the directory of a new log. It fails with ErrExists if
// the directory exists (an orphan left by a crash, say) or the id is in use.
func (e *Engine) CreateLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.closed.Load() {
		return nil, errClosed("create log")
	}
	dir, err := e.logDir(id)
	if err != nil {
		return nil, err
	}
	e.dirMu.Lock()
	defer e.dirMu.Unlock()
	e.mu.Lock()
	_, known := e.logs[id]
	e.mu.Unlock()
	if known {
		return nil, fmt.Errorf("fileengine: create log %v: %w", id, engine.ErrExists)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("fileengine: create log %v: %w", id, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("fileengine: create log %v: directory exists: %w", id, engine.ErrExists)
		}
		return nil, fmt.Errorf("fileengine: create log %v: %w", id, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, errClosed("create log")
	}
	if _, known := e.logs[id]; known { // an OpenLog raced us
		return nil, fmt.Errorf("fileengine: create log %v: %w", id, engine.ErrExists)
	}
	ls := newLogState(e, id, dir)
	ls.created = true
	e.logs[id] = ls
	return &handle{ls: ls}, nil
}

// OpenLog returns a handle of log id without touching the disk; the log is
// opened on first use. A log never created opens empty.
func (e *Engine) OpenLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := e.logDir(id)
	if err != nil {
		return nil, err
	}
	ls, err := e.state(id, dir)
	if err != nil {
		return nil, err
	}
	return &handle{ls: ls}, nil
}

// DeleteLog closes log id if open, removes its directory (and its stream's
// directory once empty), and fails its handles with ErrClosed.
func (e *Engine) DeleteLog(ctx context.Context, id engine.LogID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.closed.Load() {
		return errClosed("delete log")
	}
	dir, err := e.logDir(id)
	if err != nil {
		return err
	}
	// The dead state stays in the map while the directory is removed, so
	// that an OpenLog of id meanwhile gets a handle failing with ErrClosed
	// instead of opening a log in a directory being removed.
	e.mu.Lock()
	ls := e.logs[id]
	if ls == nil {
		ls = newLogState(e, id, dir)
		e.logs[id] = ls
	}
	ls.deleters++
	e.mu.Unlock()
	_ = ls.kill(true)
	err = os.RemoveAll(dir)
	e.mu.Lock()
	if ls.deleters--; ls.deleters == 0 && e.logs[id] == ls {
		delete(e.logs, id)
	}
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fileengine: delete log %v: %w", id, err)
	}
	e.dirMu.Lock()
	err = os.Remove(filepath.Dir(dir)) // only succeeds once the stream directory is empty
	e.dirMu.Unlock()
	syncTarget := filepath.Dir(dir)
	if err == nil {
		syncTarget = e.streamsDir
	}
	if e.cfg.Fsync != FsyncNever {
		if err := syncDir(syncTarget); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fileengine: delete log %v: %w", id, err)
		}
	}
	return nil
}

// ensureDir creates the directory of a log about to be opened.
func (e *Engine) ensureDir(dir string) error {
	e.dirMu.Lock()
	defer e.dirMu.Unlock()
	return os.MkdirAll(dir, 0o755)
}

// Logs lists the shard directories under Dir/streams, plus logs created by
// CreateLog whose directory is missing.
func (e *Engine) Logs(ctx context.Context) ([]engine.LogID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.closed.Load() {
		return nil, errClosed("logs")
	}
	streams, err := os.ReadDir(e.streamsDir)
	if err != nil {
		return nil, fmt.Errorf("fileengine: logs: %w", err)
	}
	seen := map[engine.LogID]bool{}
	var ids []engine.LogID
	for _, s := range streams {
		if !s.IsDir() {
			continue
		}
		shards, err := os.ReadDir(filepath.Join(e.streamsDir, s.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // deleted meanwhile
				continue
			}
			return nil, fmt.Errorf("fileengine: logs: %w", err)
		}
		for _, sh := range shards {
			n, ok := parseShardName(sh.Name())
			if !ok || !sh.IsDir() {
				continue
			}
			id := engine.LogID{Stream: s.Name(), Shard: n}
			seen[id] = true
			ids = append(ids, id)
		}
	}
	e.mu.Lock()
	for id, ls := range e.logs {
		if ls.created && !seen[id] {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	return ids, nil
}

// Close stops the engine's goroutines, syncs and closes every open log and
// closes the catalog. Handles fail with ErrClosed afterwards and their
// Changed channels are closed. Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil
	}
	e.closed.Store(true)
	states := make([]*logState, 0, len(e.logs))
	for _, ls := range e.logs {
		states = append(states, ls)
	}
	e.mu.Unlock()
	close(e.stop)
	e.wg.Wait()
	e.cat.close()
	var errs []error
	for _, ls := range states {
		if err := ls.kill(false); err != nil {
			errs = append(errs, fmt.Errorf("close %v: %w", ls.id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fileengine: close: %w", err)
	}
	if err := leaveCleanMarker(e.cfg.Dir); err != nil {
		return fmt.Errorf("fileengine: close: %w", err)
	}
	return nil
}
