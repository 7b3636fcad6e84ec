package memengine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shoalstream/shoal/engine"
)

// Config configures an Engine.
type Config struct {
	// Now is the clock arrival times come from; nil means time.Now.
	Now func() time.Time
}

// Engine is an engine.Engine that keeps everything in memory. Its zero
// value is not usable; call New.
type Engine struct {
	now func() time.Time
	cat *catalog

	mu     sync.Mutex // guards closed and logs
	closed bool
	logs   map[engine.LogID]*log
}

var _ engine.Engine = (*Engine)(nil)

// New returns an empty engine.
func New(cfg Config) *Engine {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Engine{now: now, cat: newCatalog(), logs: make(map[engine.LogID]*log)}
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() engine.Catalog { return e.cat }

// CreateLog makes a new, empty log.
func (e *Engine) CreateLog(_ context.Context, id engine.LogID) (engine.Log, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("memengine: create log %v: %w", id, engine.ErrClosed)
	}
	if _, ok := e.logs[id]; ok {
		return nil, fmt.Errorf("memengine: create log %v: %w", id, engine.ErrExists)
	}
	l := &log{id: id, now: e.now, first: 1, next: 1}
	e.logs[id] = l
	return &handle{l: l}, nil
}

// OpenLog returns a new handle of the log id, or ErrNotFound.
func (e *Engine) OpenLog(_ context.Context, id engine.LogID) (engine.Log, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("memengine: open log %v: %w", id, engine.ErrClosed)
	}
	l, ok := e.logs[id]
	if !ok {
		return nil, fmt.Errorf("memengine: open log %v: %w", id, engine.ErrNotFound)
	}
	return &handle{l: l}, nil
}

// DeleteLog drops the log id and its records; its handles fail with
// ErrClosed afterwards.
func (e *Engine) DeleteLog(_ context.Context, id engine.LogID) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("memengine: delete log %v: %w", id, engine.ErrClosed)
	}
	l, ok := e.logs[id]
	delete(e.logs, id)
	e.mu.Unlock()
	if ok {
		l.kill()
	}
	return nil
}

// Logs lists the engine's logs.
func (e *Engine) Logs(context.Context) ([]engine.LogID, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("memengine: logs: %w", engine.ErrClosed)
	}
	ids := make([]engine.LogID, 0, len(e.logs))
	for id := range e.logs {
		ids = append(ids, id)
	}
	return ids, nil
}

// Close drops every log and the catalog: all of them fail with ErrClosed
// afterwards. Closing again does nothing.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	logs := e.logs
	e.logs = nil
	e.mu.Unlock()
	for _, l := range logs {
		l.kill()
	}
	e.cat.close()
	return nil
}
